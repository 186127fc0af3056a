/* flatten/policy.c - reading BIND's answer and deciding whether to flatten. */
#include "flatten/policy.h"

#include <errno.h>
#include <string.h>

#include "codec/name.h"
#include "codec/rr.h"
#include "codec/svcb.h"
#include "codec/ttl.h"

/*
 * Longest CNAME chain followed inside one BIND answer. max-chain is at
 * most 32 in the configuration, so a longer chain (or a loop, which
 * never ends) is reported as CHASE with hops = UINT8_MAX: the chase then
 * fails at once on its depth limit and the failure rules apply (stale,
 * siblings, SERVFAIL), instead of relaying a visible CNAME. The bound
 * also caps the work: each hop scans the answer section once.
 */
#define POLICY_MAX_HOPS 64

/* RFC 6672; codec/wire.h names only the types codec/ itself reads. */
#define POLICY_TYPE_DNAME 39

/* SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM after the two SOA names. */
#define SOA_FIXED_LEN 20

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* The RELAY default in out, every field set but the result's buffer
 * (flat_result_clear()): out is cleared for each of BIND's answers. */
static void out_reset(struct flat_policy_out *out)
{
	memset(out, 0, offsetof(struct flat_policy_out, local));
	flat_result_clear(&out->local);
	out->action = FLAT_POLICY_RELAY;
	out->chain_ttl = UINT32_MAX;
}

/* Decompresses the name at msg[off] and lowercases it.
 * Returns the wire length or -EBADMSG. */
static int name_lower_at(const uint8_t *msg, size_t len, size_t off, uint8_t *out)
{
	int n = codec_name_unpack(msg, len, off, out);

	if (n > 0)
		codec_name_lower(out, (size_t)n);
	return n;
}

/*
 * Reads a RDATA that is exactly one (maybe compressed) name, as CNAME
 * RDATA is: the in-place bytes must end where the RDATA ends, or the
 * record is malformed and the caller relays. Output lowercased.
 */
static int rdata_single_name(const uint8_t *msg, size_t len, const struct codec_rr *rr,
                             uint8_t *out)
{
	size_t end;

	if (rr->rdlen == 0 || codec_name_skip(msg, len, rr->rdata_off, &end) < 0 ||
	    end != (size_t)rr->rdata_off + rr->rdlen)
		return -EBADMSG;
	return name_lower_at(msg, len, rr->rdata_off, out);
}

static bool has_rrsig(const uint8_t *msg, size_t len, const struct codec_view *v)
{
	static const enum codec_section secs[] = {CODEC_SEC_ANSWER, CODEC_SEC_AUTHORITY,
	                                          CODEC_SEC_ADDITIONAL};

	for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++) {
		struct codec_rr_iter it;
		struct codec_rr rr;

		codec_rr_iter_init(&it, msg, len, v, secs[s]);
		while (codec_rr_next(&it, &rr) == 1) {
			if (rr.type == CODEC_TYPE_RRSIG)
				return true;
		}
	}
	return false;
}

/*
 * Is name at or below anc (strictly below with strict)? Both uncompressed
 * and lowercase; the comparison starts at a label boundary of name.
 */
static bool name_at_or_below(const uint8_t *name, size_t len, const uint8_t *anc, size_t alen,
                             bool strict)
{
	size_t off = 0;

	while (len - off > alen) {
		off += 1u + name[off];
		if (off >= len)
			return false;
	}
	if (len - off != alen || (strict && off == 0))
		return false;
	return memcmp(name + off, anc, alen) == 0;
}

static bool is_addr_type(uint16_t t)
{
	return t == CODEC_TYPE_A || t == CODEC_TYPE_AAAA;
}

/* Does the answer section hold an address RR relevant to qtype at name? */
static bool answer_has_addrs(const uint8_t *msg, size_t len, const struct codec_view *v,
                             uint16_t qtype, const uint8_t *lname, size_t lname_len)
{
	struct codec_rr_iter it;
	struct codec_rr rr;

	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		bool want = qtype == CODEC_TYPE_ANY ? is_addr_type(rr.type) : rr.type == qtype;

		if (want && rr.rclass == CODEC_CLASS_IN &&
		    codec_name_is(msg, len, rr.owner_off, lname, lname_len))
			return true;
	}
	return false;
}

/*
 * The question checks shared by every decision: one question each, the
 * same name (BIND echoes the client's spelling, but compare without case
 * anyway), type and class IN, an ordinary query without TSIG (a rebuilt
 * message would break its signature). qname gets the client's spelling;
 * the callers lowercase it when they use it.
 */
static bool question_ok(const struct flat_policy_in *in, uint8_t *qname, size_t *qname_len)
{
	const struct codec_view *qv = in->qv;
	const struct codec_view *rv = in->rv;

	if (qv->qdcount != 1 || rv->qdcount != 1 || qv->opcode != CODEC_OPCODE_QUERY ||
	    rv->opcode != CODEC_OPCODE_QUERY || qv->has_tsig || rv->has_tsig)
		return false;
	if (qv->qtype != rv->qtype || qv->qclass != CODEC_CLASS_IN || rv->qclass != CODEC_CLASS_IN)
		return false;
	/* A first question's name is never compressed (a pointer may only
	 * point before the name, into the header): codec_scan() left it in
	 * place, qname_len octets long, in both messages. */
	size_t n = qv->qname_len;
	const uint8_t *q = in->query + qv->qname_off;

	if (n == 0 || n > CODEC_MAX_NAME || (size_t)qv->qname_off + n > in->qlen ||
	    !codec_name_valid(q, n))
		return false;
	memcpy(qname, q, n);
	/* BIND echoes the client's spelling, so equal octets mostly settle
	 * it; else the compare that folds case and follows pointers. */
	if (!(rv->qname_len == n && (size_t)rv->qname_off + n <= in->rlen &&
	      memcmp(in->resp + rv->qname_off, q, n) == 0) &&
	    !codec_name_is(in->resp, in->rlen, rv->qname_off, qname, n))
		return false;
	*qname_len = n;
	return true;
}

/* ANAME or [alias] owner: the target is known, BIND's answer only tells
 * whether siblings exist. */
static void decide_target(const struct flat_policy_in *in, const uint8_t *qname, size_t qname_len,
                          struct flat_policy_out *out)
{
	const struct codec_view *rv = in->rv;

	if (rv->rcode == CODEC_RCODE_NXDOMAIN) {
		/* An ANAME owner exists by definition; NXDOMAIN means the zone
		 * changed under the presence cache, and BIND is right. An
		 * [alias] owner need not exist in the zone at all. */
		if (!in->target_is_alias)
			return;
		out->owner_nxdomain = true;
	}
	if (!codec_name_valid(in->target, in->target_len))
		return;
	memcpy(out->target, in->target, in->target_len);
	out->target_len = in->target_len;
	codec_name_lower(out->target, out->target_len);
	out->siblings = rv->rcode == CODEC_RCODE_NOERROR &&
	                answer_has_addrs(in->resp, in->rlen, rv, in->qv->qtype, qname, qname_len);
	out->action = FLAT_POLICY_CHASE;
}

/* Appends one SVCB/HTTPS RDATA to r's stream: well formed (a client
 * rejects the whole RRset for one bad RR, RFC 9460 2.4.3), and room left.
 * Its names are never compressed (RFC 9460 2.2), so the bytes stand. */
static bool add_rdata(struct flat_result *r, const uint8_t *rd, uint16_t rdlen)
{
	struct codec_svcb sv;

	if (codec_svcb_parse(rd, rdlen, &sv) < 0 || r->n_addrs >= FLAT_MAX_ADDRS ||
	    (size_t)rdlen + 2 > (size_t)FLAT_RDATA_MAX - r->rdata_len)
		return false;
	codec_put_u16(r->rdata + r->rdata_len, rdlen);
	memcpy(r->rdata + r->rdata_len + 2, rd, rdlen);
	r->rdata_len = (uint16_t)(r->rdata_len + 2 + rdlen);
	r->n_addrs++;
	return true;
}

/* Collects the qtype RRs owned by name into a LOCAL result; false if
 * there are none (or any is malformed, or an SVCB/HTTPS set is too big:
 * then the chase decides, with its own failure rules). */
static bool collect_local(const struct flat_policy_in *in, const uint8_t *name, size_t name_len,
                          uint32_t ttl, struct flat_policy_out *out)
{
	uint16_t qtype = in->qv->qtype;
	size_t alen = qtype == CODEC_TYPE_A ? 4 : 16;
	bool rdata = flat_qtype_is_rdata(qtype);
	struct flat_result *r = &out->local;
	struct codec_rr_iter it;
	struct codec_rr rr;

	if (!flat_qtype_flattens(qtype))
		return false;
	codec_rr_iter_init(&it, in->resp, in->rlen, in->rv, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		if (rr.type != qtype || rr.rclass != CODEC_CLASS_IN ||
		    !codec_name_is(in->resp, in->rlen, rr.owner_off, name, name_len))
			continue;
		if (rdata) {
			if (!add_rdata(r, in->resp + rr.rdata_off, rr.rdlen))
				return false;
			ttl = min_u32(ttl, rr.ttl);
			continue;
		}
		if (rr.rdlen != alen)
			return false;
		ttl = min_u32(ttl, rr.ttl);
		/* DESIGN.md: at most 64 addresses; the rest are dropped. */
		if (r->n_addrs < FLAT_MAX_ADDRS)
			memcpy(r->addrs[r->n_addrs++], in->resp + rr.rdata_off, alen);
	}
	if (r->n_addrs == 0)
		return false;
	r->kind = FLAT_RES_ADDRS;
	r->qtype = qtype;
	r->ttl = ttl;
	r->hops = out->hops;
	return true;
}

/*
 * Does the answer hold a DNAME strictly above the query name? Then the
 * CNAME at the query name is synthesized from the client's own labels
 * (RFC 6672 2.2, 5.3.1), in whatever order the records come.
 */
static bool below_dname(const struct flat_policy_in *in, const uint8_t *qname, size_t qname_len)
{
	uint8_t owner[CODEC_MAX_NAME];
	struct codec_rr_iter it;
	struct codec_rr rr;

	codec_rr_iter_init(&it, in->resp, in->rlen, in->rv, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		if (rr.type != POLICY_TYPE_DNAME || rr.rclass != CODEC_CLASS_IN)
			continue;
		int n = name_lower_at(in->resp, in->rlen, rr.owner_off, owner);

		if (n < 0 || name_at_or_below(qname, qname_len, owner, (size_t)n, true))
			return true;
	}
	return false;
}

/* CNAME policy: follow the chain BIND already followed inside its answer. */
static void decide_cname(const struct flat_policy_in *in, const uint8_t *qname, size_t qname_len,
                         struct flat_policy_out *out)
{
	const struct codec_view *rv = in->rv;
	struct codec_rr_iter it;
	struct codec_rr rr;
	uint8_t cur[CODEC_MAX_NAME];
	size_t cur_len = qname_len;
	uint32_t ttl = UINT32_MAX;
	unsigned hops = 0;

	if (in->mode == FLAT_CNAME_NONE || (in->mode == FLAT_CNAME_APEX && !in->is_apex))
		return;
	/* Flattening a DNAME-synthesized CNAME would let any client choose
	 * the names apexd chases and caches (docs/security.md): relayed.
	 * A DNAME further down a chain the zone wrote is followed as any
	 * CNAME; its names are the zone's, not the client's. */
	if (below_dname(in, qname, qname_len))
		return;
	codec_rr_iter_init(&it, in->resp, in->rlen, rv, CODEC_SEC_ANSWER);
	if (codec_rr_next(&it, &rr) != 1 || rr.type != CODEC_TYPE_CNAME ||
	    rr.rclass != CODEC_CLASS_IN ||
	    !codec_name_is(in->resp, in->rlen, rr.owner_off, qname, qname_len))
		return;

	memcpy(cur, qname, qname_len);
	for (;;) {
		bool found = false;

		codec_rr_iter_init(&it, in->resp, in->rlen, rv, CODEC_SEC_ANSWER);
		while (codec_rr_next(&it, &rr) == 1) {
			if (rr.type == CODEC_TYPE_CNAME && rr.rclass == CODEC_CLASS_IN &&
			    codec_name_is(in->resp, in->rlen, rr.owner_off, cur, cur_len)) {
				found = true;
				break;
			}
		}
		if (!found)
			break;
		int n = rdata_single_name(in->resp, in->rlen, &rr, cur);

		if (n < 0)
			return; /* malformed CNAME RDATA: BIND's bytes go out as they are */
		cur_len = (size_t)n;
		ttl = min_u32(ttl, rr.ttl);
		if (++hops > POLICY_MAX_HOPS) {
			hops = UINT8_MAX;
			break;
		}
	}
	out->hops = (uint8_t)hops;
	out->chain_ttl = ttl;

	if (hops != UINT8_MAX) {
		if (rv->rcode == CODEC_RCODE_NOERROR && collect_local(in, cur, cur_len, ttl, out)) {
			out->action = FLAT_POLICY_LOCAL;
			return;
		}
		/* NXDOMAIN with a chain applies to its last name (RFC 6604 3);
		 * it is BIND's own authoritative verdict, so no chase. */
		struct flat_soa soa;

		if (rv->rcode == CODEC_RCODE_NXDOMAIN &&
		    flat_policy_soa(in->resp, in->rlen, rv, &soa) == 0) {
			out->local.kind = FLAT_RES_NXDOMAIN;
			out->local.qtype = in->qv->qtype;
			out->local.ttl = min_u32(ttl, codec_soa_neg_ttl(soa.ttl, soa.minimum));
			out->local.hops = out->hops;
			out->action = FLAT_POLICY_LOCAL;
			return;
		}
	}
	memcpy(out->target, cur, cur_len);
	out->target_len = cur_len;
	out->action = FLAT_POLICY_CHASE;
}

/*
 * A flattened RRset cannot carry a valid RRSIG, and the target's
 * signatures must never appear under the owner: a validating client gets
 * BIND's signed answer instead, whatever the query type. Unsigned zones
 * flatten whatever the DO bit says.
 */
static enum flat_policy_action signed_rule(const struct flat_policy_in *in,
                                           struct flat_policy_out *out)
{
	if (out->action != FLAT_POLICY_RELAY && in->qv->do_bit &&
	    has_rrsig(in->resp, in->rlen, in->rv)) {
		out->action = FLAT_POLICY_RELAY;
		out->signed_relay = true;
	}
	return out->action;
}

enum flat_policy_action flat_policy_inspect(const struct flat_policy_in *in,
                                            struct flat_policy_out *out)
{
	const struct codec_view *rv = in->rv;
	uint8_t qname[CODEC_MAX_NAME];
	size_t qname_len = 0;
	uint16_t qtype = in->qv->qtype;

	out_reset(out);

	if (!question_ok(in, qname, &qname_len))
		return out->action;
	if (!flat_qtype_flattens(qtype) && qtype != CODEC_TYPE_ANY)
		return out->action;
	/* Only authoritative, complete answers are ever flattened; a
	 * truncated one is retried over TCP before it gets here. */
	if ((rv->flags & (CODEC_FLAG_QR | CODEC_FLAG_AA | CODEC_FLAG_TC)) !=
	    (CODEC_FLAG_QR | CODEC_FLAG_AA))
		return out->action;
	if ((rv->has_opt && rv->ext_rcode != 0) ||
	    (rv->rcode != CODEC_RCODE_NOERROR && rv->rcode != CODEC_RCODE_NXDOMAIN))
		return out->action;

	/* No target, and the CNAME policy leaves this name alone: relayed
	 * (most answers), without lowercasing a name nothing will read. */
	if (in->target == NULL &&
	    (in->mode == FLAT_CNAME_NONE || (in->mode == FLAT_CNAME_APEX && !in->is_apex)))
		return out->action;
	codec_name_lower(qname, qname_len);
	if (in->target != NULL)
		decide_target(in, qname, qname_len, out);
	else
		decide_cname(in, qname, qname_len, out);

	return signed_rule(in, out);
}

enum flat_policy_action flat_policy_inspect_aname(const struct flat_policy_in *in,
                                                  struct flat_policy_out *out,
                                                  struct flat_aname *an)
{
	uint8_t qname[CODEC_MAX_NAME];
	size_t qname_len = 0;

	out_reset(out);
	memset(an, 0, sizeof(*an));
	an->state = FLAT_ANAME_UNKNOWN;

	if (!question_ok(in, qname, &qname_len))
		return out->action;
	codec_name_lower(qname, qname_len);
	if (flat_aname_parse(in->resp, in->rlen, in->rv, qname, qname_len, in->qv->qtype, an) !=
	            FLAT_ANAME_PRESENT ||
	    an->n_targets > 1)
		return out->action;
	memcpy(out->target, an->target, an->target_len);
	out->target_len = an->target_len;
	/* Without addresses, BIND's answer (the record alone) is still
	 * right: it is the fallback. */
	out->siblings = true;
	out->action = FLAT_POLICY_CHASE;
	return signed_rule(in, out);
}

/* Copies the (maybe compressed) name at msg[off], which must end in place
 * at or before lim, into out at *pos. */
static int copy_rdata_name(const uint8_t *msg, size_t len, size_t off, size_t lim, uint8_t *out,
                           size_t *pos, size_t *next)
{
	int n = codec_name_skip(msg, len, off, next);

	if (n < 0 || *next > lim)
		return -EBADMSG;
	n = codec_name_unpack(msg, len, off, out + *pos);
	if (n < 0)
		return -EBADMSG;
	*pos += (size_t)n;
	return 0;
}

int flat_policy_soa(const uint8_t *msg, size_t len, const struct codec_view *v,
                    struct flat_soa *soa)
{
	return flat_policy_soa_in(msg, len, v, CODEC_SEC_AUTHORITY, soa);
}

/* Copies the SOA rr of msg into *soa, both RDATA names decompressed. */
static int soa_copy(const uint8_t *msg, size_t len, const struct codec_rr *rr, struct flat_soa *soa)
{
	int n = codec_name_unpack(msg, len, rr->owner_off, soa->owner);
	size_t lim = (size_t)rr->rdata_off + rr->rdlen;
	size_t pos = 0;
	size_t next;

	if (n < 0)
		return -EBADMSG;
	soa->owner_len = (size_t)n;
	soa->ttl = rr->ttl;
	if (copy_rdata_name(msg, len, rr->rdata_off, lim, soa->rdata, &pos, &next) < 0 ||
	    copy_rdata_name(msg, len, next, lim, soa->rdata, &pos, &next) < 0)
		return -EBADMSG;
	if (lim - next != SOA_FIXED_LEN)
		return -EBADMSG;
	memcpy(soa->rdata + pos, msg + next, SOA_FIXED_LEN);
	pos += SOA_FIXED_LEN;
	soa->rdlen = pos;
	soa->minimum = codec_get_u32(msg + lim - 4);
	return 0;
}

int flat_policy_soa_in(const uint8_t *msg, size_t len, const struct codec_view *v,
                       enum codec_section sec, struct flat_soa *soa)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	codec_rr_iter_init(&it, msg, len, v, sec);
	while ((rc = codec_rr_next(&it, &rr)) == 1) {
		if (rr.type == CODEC_TYPE_SOA)
			return soa_copy(msg, len, &rr, soa);
	}
	return rc < 0 ? -EBADMSG : -ENOENT;
}

int flat_policy_owner_soa(const uint8_t *msg, size_t len, const struct codec_view *v,
                          const uint8_t *qname, size_t qname_len, const uint8_t *zone,
                          size_t zone_len, struct flat_soa *soa)
{
	uint8_t lq[CODEC_MAX_NAME], lz[CODEC_MAX_NAME], owner[CODEC_MAX_NAME];
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	if (!codec_name_valid(qname, qname_len) || !codec_name_valid(zone, zone_len))
		return -EINVAL;
	memcpy(lq, qname, qname_len);
	codec_name_lower(lq, qname_len);
	memcpy(lz, zone, zone_len);
	codec_name_lower(lz, zone_len);
	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_AUTHORITY);
	while ((rc = codec_rr_next(&it, &rr)) == 1) {
		if (rr.type != CODEC_TYPE_SOA)
			continue;
		int n = name_lower_at(msg, len, rr.owner_off, owner);

		if (n < 0)
			return -EBADMSG;
		/* Between the configured apex and the owner: the owner's own
		 * zone, or a zone BIND serves inside the configured one that
		 * holds the owner. Anything else is the zone of a name BIND
		 * reached by following the chain. */
		if (name_at_or_below(lq, qname_len, owner, (size_t)n, false) &&
		    name_at_or_below(owner, (size_t)n, lz, zone_len, false))
			return soa_copy(msg, len, &rr, soa);
	}
	return rc < 0 ? -EBADMSG : -ENOENT;
}

/* RFC 2308 5, from the SOA flat_policy_soa() picks, as decide_cname()
 * does; without one nothing says how long the answer holds, so 0 (do
 * not cache). */
static uint32_t negative_ttl(const uint8_t *msg, size_t len, const struct codec_view *v)
{
	struct flat_soa soa;

	if (flat_policy_soa(msg, len, v, &soa) < 0)
		return 0;
	return codec_soa_neg_ttl(soa.ttl, soa.minimum);
}

/* Puts the ANAME RDATA of found[0..n) into out as a names blob in
 * RFC 4034 6.1 canonical order, duplicates dropped. False when one is
 * malformed or they do not fit. */
static bool aname_targets(const uint8_t *resp, const struct codec_rr *found, unsigned n,
                          struct flat_aname *out)
{
	uint8_t names[FLAT_POOL_MAX][CODEC_MAX_NAME];
	size_t lens[FLAT_POOL_MAX];
	unsigned m = 0;

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *rd = resp + found[i].rdata_off;
		/* codec_name_valid(), not the message readers: those accept
		 * compression, which the ANAME RDATA must not use (its type is
		 * unknown to every other server). The root as target names no
		 * host: reject it too. */
		if (!codec_name_valid(rd, found[i].rdlen) || found[i].rdlen == 1)
			return false;
		uint8_t name[CODEC_MAX_NAME];
		size_t len = found[i].rdlen;
		memcpy(name, rd, len);
		codec_name_lower(name, len);
		/* Insertion in canonical order: at most FLAT_POOL_MAX. */
		unsigned at = 0;
		int cmp = 1;
		while (at < m && (cmp = flat_pool_name_cmp(names[at], lens[at], name, len)) < 0)
			at++;
		if (at < m && cmp == 0)
			continue;
		memmove(names[at + 1], names[at], (m - at) * sizeof(names[0]));
		memmove(&lens[at + 1], &lens[at], (m - at) * sizeof(lens[0]));
		memcpy(names[at], name, len);
		lens[at] = len;
		m++;
	}
	for (unsigned i = 0; i < m; i++) {
		if (out->targets_len + lens[i] > FLAT_POOL_NAMES_MAX)
			return false;
		memcpy(out->targets + out->targets_len, names[i], lens[i]);
		out->targets_len += lens[i];
	}
	out->n_targets = m;
	memcpy(out->target, names[0], lens[0]);
	out->target_len = lens[0];
	return true;
}

enum flat_aname_state flat_aname_parse(const uint8_t *resp, size_t len, const struct codec_view *v,
                                       const uint8_t *name, size_t name_len, uint16_t type,
                                       struct flat_aname *out)
{
	uint8_t lname[CODEC_MAX_NAME];
	struct codec_rr_iter it;
	struct codec_rr rr;
	struct codec_rr found[FLAT_POOL_MAX];
	unsigned count = 0;
	bool cname = false;
	uint32_t cname_ttl = 0, ttl = UINT32_MAX;

	/* Not the targets blob: only targets_len of it is ever read. */
	memset(out, 0, offsetof(struct flat_aname, targets));
	out->targets_len = 0;
	out->n_targets = 0;
	out->ttl = 0;
	out->state = FLAT_ANAME_UNKNOWN;

	if (!codec_name_valid(name, name_len))
		return out->state;
	memcpy(lname, name, name_len);
	codec_name_lower(lname, name_len);
	if ((v->flags & (CODEC_FLAG_QR | CODEC_FLAG_TC)) != CODEC_FLAG_QR ||
	    v->opcode != CODEC_OPCODE_QUERY || v->qdcount != 1 || v->qtype != type ||
	    v->qclass != CODEC_CLASS_IN || !codec_name_is(resp, len, v->qname_off, lname, name_len))
		return out->state;
	if (!(v->flags & CODEC_FLAG_AA) || (v->has_opt && v->ext_rcode != 0))
		return out->state;
	if (v->rcode == CODEC_RCODE_NXDOMAIN) {
		out->state = FLAT_ANAME_ABSENT;
		out->ttl = negative_ttl(resp, len, v);
		return out->state;
	}
	if (v->rcode != CODEC_RCODE_NOERROR)
		return out->state;

	codec_rr_iter_init(&it, resp, len, v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		if (rr.rclass != CODEC_CLASS_IN || (rr.type != type && rr.type != CODEC_TYPE_CNAME))
			continue;
		if (!codec_name_is(resp, len, rr.owner_off, lname, name_len))
			continue;
		if (rr.type == CODEC_TYPE_CNAME) {
			cname = true;
			cname_ttl = rr.ttl;
			continue;
		}
		if (count < FLAT_POOL_MAX)
			found[count] = rr;
		if (rr.ttl < ttl)
			ttl = rr.ttl;
		count++;
	}
	if (count == 0) {
		/* A CNAME owner has no other data (RFC 2181 10.1), so it has no
		 * ANAME for as long as the CNAME lives. */
		out->state = FLAT_ANAME_ABSENT;
		out->ttl = cname ? cname_ttl : negative_ttl(resp, len, v);
		return out->state;
	}
	out->state = FLAT_ANAME_INVALID;
	if (count > FLAT_POOL_MAX || cname || !aname_targets(resp, found, count, out)) {
		out->targets_len = 0;
		out->n_targets = 0;
		out->target_len = 0;
		return out->state;
	}
	out->ttl = ttl;
	out->state = FLAT_ANAME_PRESENT;
	return out->state;
}
