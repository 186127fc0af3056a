/* flatten/chase.c - I/O-free chase of a flattening target to its addresses. */
#include "flatten/chase.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/text.h"
#include "codec/ttl.h"
#include "flatten/zones.h"

/* Text form of a name: every octet may become "\DDD", plus the NUL. */
#define CHASE_NAME_TEXT (CODEC_MAX_NAME * 4 + 1)
/* RFC 9460; HTTPS (65) is the other flat_qtype_is_rdata() type. */
#define CHASE_TYPE_SVCB 64

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static struct flat_chase_hop *cur(struct flat_chase *c)
{
	return &c->hop[c->n_hop - 1];
}

static void name_text(const uint8_t *name, size_t len, char *buf, size_t n)
{
	/* A cut name is still NUL-terminated; the why text is short anyway. */
	if (codec_name_to_text(name, len, buf, n) == -EBADMSG)
		snprintf(buf, n, "?");
}

static void cur_text(struct flat_chase *c, char *buf, size_t n)
{
	name_text(cur(c)->name, cur(c)->len, buf, n);
}

static void server_text(const struct flat_chase *c, char *buf, size_t n)
{
	if (c->server == FLAT_SERVER_BACKEND)
		snprintf(buf, n, "backend");
	else
		snprintf(buf, n, "resolver %u", c->resolver);
}

__attribute__((format(printf, 3, 4))) static void set_why(struct flat_chase *c, uint16_t ede,
                                                          const char *fmt, ...)
{
	va_list ap;

	c->result.ede = ede;
	va_start(ap, fmt);
	vsnprintf(c->result.why, sizeof(c->result.why), fmt, ap);
	va_end(ap);
}

static enum flat_step finish(struct flat_chase *c, enum flat_result_kind kind)
{
	c->done = true;
	c->result.kind = kind;
	c->result.qtype = c->qtype;
	c->result.hops = c->hops;
	if (kind != FLAT_RES_ADDRS)
		c->result.n_addrs = 0;
	if (kind == FLAT_RES_FAIL) {
		c->result.ttl = 0;
		c->scope = 0;
	} else {
		/* A resolver that failed before another answered leaves its
		 * reason behind; a success must not carry it into the cache. */
		c->result.ede = 0;
		memset(c->result.why, 0, sizeof(c->result.why));
	}
	return FLAT_STEP_DONE;
}

/* codec_build_query() ends the query with an empty OPT: its RDLENGTH is
 * the last two octets, and the option goes right after them. */
static void add_ecs(struct flat_chase *c)
{
	size_t n =
	        codec_ecs_write(&c->ecs, c->out + c->out_len, sizeof(c->out) - (size_t)c->out_len);

	/* init checked family and prefix, and FLAT_CHASE_OUT_MAX leaves room
	 * for the longest option after the longest query. */
	assert(n > 0);
	codec_put_u16(c->out + c->out_len - 2, (uint16_t)n);
	c->out_len = (uint16_t)(c->out_len + n);
}

/* Writes the query for the current name to the current server, ID 0. */
static void build_query(struct flat_chase *c)
{
	struct flat_chase_hop *h = cur(c);

	/* The backend is authoritative for what we ask it: RD=0 keeps BIND
	 * from recursing should it be configured to. */
	c->out_len = (uint16_t)codec_build_query(c->out, 0, c->server == FLAT_SERVER_RESOLVER,
	                                         h->name, h->len, c->qtype);
	/* The client's subnet goes to resolvers only: BIND answers for our
	 * own zones, the same for everyone, and never learns client
	 * addresses from us (RFC 7871 7.1.1 leaves the choice to us). */
	if (c->server == FLAT_SERVER_RESOLVER && c->ecs.family != 0)
		add_ecs(c);
	h->server = c->server;
	h->resolver = (uint8_t)c->resolver;
}

/* Picks the first server for the current name and builds its query. */
static enum flat_step ask(struct flat_chase *c)
{
	struct flat_chase_hop *h = cur(c);
	size_t idx;
	bool apex;

	c->tcp = false;
	c->resolver = 0;
	c->all_timeouts = true;
	if (!c->skip_backend && c->cfg.own != NULL &&
	    flat_zones_find(c->cfg.own, h->name, h->len, &idx, &apex) == 0) {
		c->server = FLAT_SERVER_BACKEND;
	} else if (c->cfg.n_resolvers > 0) {
		c->server = FLAT_SERVER_RESOLVER;
	} else {
		char name[CHASE_NAME_TEXT];

		cur_text(c, name, sizeof(name));
		c->fail = FLAT_CHASE_FAIL_NO_RESOLVER;
		set_why(c, CODEC_EDE_NO_REACHABLE_AUTHORITY, "no resolver configured for %s", name);
		return finish(c, FLAT_RES_FAIL);
	}
	build_query(c);
	return FLAT_STEP_SEND;
}

/*
 * The current server gave no usable answer for the current name. A
 * non-timeout failure has already put its reason into result.why/ede,
 * so that when the last resolver fails too, the most precise reason seen
 * is what the client's EDE says.
 */
static enum flat_step server_failed(struct flat_chase *c, bool timeout)
{
	if (!timeout)
		c->all_timeouts = false;
	if (c->server == FLAT_SERVER_RESOLVER && c->resolver + 1 < c->cfg.n_resolvers) {
		c->resolver++;
		c->tcp = false;
		build_query(c);
		return FLAT_STEP_SEND;
	}
	if (c->all_timeouts) {
		char name[CHASE_NAME_TEXT];

		c->fail = FLAT_CHASE_FAIL_TIMEOUT;

		cur_text(c, name, sizeof(name));
		if (c->server == FLAT_SERVER_BACKEND)
			set_why(c, CODEC_EDE_NO_REACHABLE_AUTHORITY,
			        "backend did not answer for %s", name);
		else
			set_why(c, CODEC_EDE_NO_REACHABLE_AUTHORITY, "no resolver answered for %s",
			        name);
	}
	return finish(c, FLAT_RES_FAIL);
}

/* The answer cannot be used: malformed, a query, a wrong opcode, bad
 * RDATA, truncated over TCP. what completes "<server> <what> for NAME". */
static enum flat_step unusable(struct flat_chase *c, const char *what)
{
	char name[CHASE_NAME_TEXT];
	char server[24];

	cur_text(c, name, sizeof(name));
	server_text(c, server, sizeof(server));
	c->fail = FLAT_CHASE_FAIL_BAD_ANSWER;
	set_why(c, CODEC_EDE_NETWORK_ERROR, "%s %s for %s", server, what, name);
	return server_failed(c, false);
}

/* name is lowercase; the visited set is the pre-visited names plus the
 * chain so far. */
static bool visited(const struct flat_chase *c, const uint8_t *name, size_t len)
{
	for (unsigned i = 0; i < c->n_pre; i++)
		if (c->pre[i].len == len && memcmp(c->pre[i].name, name, len) == 0)
			return true;
	for (unsigned i = 0; i < c->n_hop; i++)
		if (c->hop[i].len == len && memcmp(c->hop[i].name, name, len) == 0)
			return true;
	return false;
}

/* Follows a CNAME from the current name to target (lowercase).
 * @return false when the chase ended instead (loop, chain too long). */
static bool follow(struct flat_chase *c, const uint8_t *target, size_t len, uint32_t ttl)
{
	struct flat_chase_hop *h = cur(c);
	char name[CHASE_NAME_TEXT];

	h->ttl = ttl;
	if (visited(c, target, len)) {
		name_text(target, len, name, sizeof(name));
		c->fail = FLAT_CHASE_FAIL_LOOP;
		set_why(c, CODEC_EDE_OTHER, "CNAME loop at %s", name);
		finish(c, FLAT_RES_FAIL);
		return false;
	}
	/* n_hop <= hops - hops_already + 1 <= max_chain + 1, so the second
	 * test only guards the array should that reasoning ever break. */
	if (c->hops >= c->cfg.max_chain || c->n_hop >= FLAT_CHASE_MAX_CHAIN + 1) {
		name_text(target, len, name, sizeof(name));
		c->fail = FLAT_CHASE_FAIL_CHAIN;
		set_why(c, CODEC_EDE_OTHER, "chain longer than %u at %s", c->cfg.max_chain, name);
		finish(c, FLAT_RES_FAIL);
		return false;
	}
	c->hops++;
	c->ttl = min_u32(c->ttl, ttl);

	struct flat_chase_hop *n = &c->hop[c->n_hop++];

	memcpy(n->name, target, len);
	n->len = (uint8_t)len;
	n->ttl = UINT32_MAX;
	/* Known from the same answer; a later query overwrites it. */
	n->server = h->server;
	n->resolver = h->resolver;
	c->skip_backend = false;
	return true;
}

/* The type's name for texts: only flat_qtype_flattens() types are chased. */
static const char *qtype_text(uint16_t qtype)
{
	switch (qtype) {
	case CODEC_TYPE_A:
		return "A";
	case CODEC_TYPE_AAAA:
		return "AAAA";
	case CHASE_TYPE_SVCB:
		return "SVCB";
	default:
		return "HTTPS";
	}
}

/*
 * Is rd[0..len) SVCB/HTTPS RDATA that can be copied into another message
 * as it is (RFC 9460 2.2)? SvcPriority, then a TargetName that must be
 * uncompressed (RFC 9460 2.2 forbids compression, and a pointer would
 * point into a message we do not copy) and end inside the RDATA, then
 * SvcParams. The params are checked as RFC 9460 2.2 asks every client to:
 * none may run past the end, and the keys strictly increase; their
 * values are the client's business. An AliasMode record with params is
 * fine: its recipients must ignore them.
 */
static bool svcb_rdata_ok(const uint8_t *rd, size_t len)
{
	size_t pos = 2;
	long last_key = -1;

	if (len < 3)
		return false;
	for (;;) {
		if (pos >= len || (rd[pos] & 0xc0) != 0)
			return false;
		if (rd[pos] == 0)
			break;
		pos += 1 + (size_t)rd[pos];
		if (pos - 2 >= CODEC_MAX_NAME)
			return false;
	}
	pos++;
	while (pos < len) {
		if (len - pos < 4 || (long)codec_get_u16(rd + pos) <= last_key)
			return false;
		last_key = codec_get_u16(rd + pos);
		size_t vlen = codec_get_u16(rd + pos + 2);

		if (len - pos - 4 < vlen)
			return false;
		pos += 4 + vlen;
	}
	return true;
}

/*
 * Appends one RR's RDATA to the result's stream, dropping a duplicate
 * (RFC 2181 5: an RRset holds no two equal RRs).
 * @return 0, or -ENOSPC when the RRset does not fit the result.
 */
static int add_rdata(struct flat_result *r, const uint8_t *rd, size_t len)
{
	size_t pos = 0;

	while (pos + 2 <= r->rdata_len) {
		size_t n = codec_get_u16(r->rdata + pos);

		if (n == len && memcmp(r->rdata + pos + 2, rd, len) == 0)
			return 0;
		pos += 2 + n;
	}
	/* Unlike surplus addresses, a surplus record cannot just be
	 * dropped: the client would miss the endpoint or the keys it
	 * carries. FLAT_MAX_ADDRS also bounds the records an answer holds. */
	if (r->n_addrs >= FLAT_MAX_ADDRS || len + 2 > (size_t)FLAT_RDATA_MAX - r->rdata_len)
		return -ENOSPC;
	codec_put_u16(r->rdata + r->rdata_len, (uint16_t)len);
	memcpy(r->rdata + r->rdata_len + 2, rd, len);
	r->rdata_len = (uint16_t)(r->rdata_len + 2 + len);
	r->n_addrs++;
	return 0;
}

static void add_addr(struct flat_result *r, const uint8_t *rdata, size_t alen)
{
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (memcmp(r->addrs[i], rdata, alen) == 0)
			return;
	/* DESIGN.md: at most 64 addresses; the rest are dropped, which keeps
	 * the flattened answer within any client's UDP size anyway. */
	if (r->n_addrs >= FLAT_MAX_ADDRS)
		return;
	memset(r->addrs[r->n_addrs], 0, sizeof(r->addrs[0]));
	memcpy(r->addrs[r->n_addrs], rdata, alen);
	r->n_addrs++;
}

/* RFC 2308 5 (codec_neg_ttl()); without a well-formed SOA, a short
 * default. */
static uint32_t negative_ttl(const uint8_t *m, size_t len, const struct codec_view *v)
{
	uint32_t ttl;

	return codec_neg_ttl(m, len, v, &ttl) == 0 ? ttl : FLAT_CHASE_NEG_TTL_NOSOA;
}

static enum flat_step negative(struct flat_chase *c, enum flat_result_kind kind, const uint8_t *m,
                               size_t len, const struct codec_view *v)
{
	uint32_t neg = negative_ttl(m, len, v);

	cur(c)->ttl = neg;
	c->result.ttl = min_u32(c->ttl, neg);
	return finish(c, kind);
}

static bool has_soa(const uint8_t *m, size_t len, const struct codec_view *v)
{
	struct codec_rr_iter it;
	struct codec_rr rr;

	codec_rr_iter_init(&it, m, len, v, CODEC_SEC_AUTHORITY);
	while (codec_rr_next(&it, &rr) == 1)
		if (rr.type == CODEC_TYPE_SOA)
			return true;
	return false;
}

/* Chase state before an answer was used, to undo its steps should the
 * answer turn out unusable halfway through. */
struct snapshot {
	unsigned n_hop;
	uint8_t hops;
	uint32_t ttl;
	bool skip_backend;
	uint8_t scope;
};

static void rollback(struct flat_chase *c, const struct snapshot *s)
{
	c->n_hop = s->n_hop;
	c->hops = s->hops;
	c->ttl = s->ttl;
	c->skip_backend = s->skip_backend;
	c->scope = s->scope;
	cur(c)->ttl = UINT32_MAX;
	c->result.n_addrs = 0;
	c->result.rdata_len = 0;
}

/* What one pass over the answer section found at the current name. */
struct pass {
	bool addr;  /* at least one address RR */
	bool cname; /* a CNAME (the first one if several) */
	struct codec_rr cname_rr;
	uint32_t addr_ttl;
	int bad_rdlen;  /* rdlen of a malformed address RR, or -1 */
	bool bad_rdata; /* a malformed SVCB/HTTPS RR */
	bool too_large; /* the SVCB/HTTPS RRset does not fit the result */
};

/* One RR of the asked type at the current name, into the result.
 * @return false when the pass must stop (p says why). */
static bool take_rr(struct flat_chase *c, const uint8_t *m, const struct codec_rr *rr,
                    struct pass *p)
{
	size_t alen = c->qtype == CODEC_TYPE_A ? 4 : 16;

	if (flat_qtype_is_rdata(c->qtype)) {
		if (!svcb_rdata_ok(m + rr->rdata_off, rr->rdlen)) {
			p->bad_rdata = true;
			return false;
		}
		if (add_rdata(&c->result, m + rr->rdata_off, rr->rdlen) < 0) {
			p->too_large = true;
			return false;
		}
	} else if (rr->rdlen != alen) {
		p->bad_rdlen = rr->rdlen;
		return false;
	} else {
		add_addr(&c->result, m + rr->rdata_off, alen);
	}
	p->addr = true;
	p->addr_ttl = min_u32(p->addr_ttl, codec_ttl_sane(rr->ttl));
	return true;
}

static int scan_pass(struct flat_chase *c, const uint8_t *m, size_t len, const struct codec_view *v,
                     struct pass *p)
{
	const struct flat_chase_hop *h = cur(c);
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	memset(p, 0, sizeof(*p));
	p->addr_ttl = UINT32_MAX;
	p->bad_rdlen = -1;
	codec_rr_iter_init(&it, m, len, v, CODEC_SEC_ANSWER);
	while ((rc = codec_rr_next(&it, &rr)) == 1) {
		/* codec_scan() checked every owner name, so a false here
		 * always means another owner, never a malformed one. */
		if (rr.rclass != CODEC_CLASS_IN ||
		    (rr.type != c->qtype && rr.type != CODEC_TYPE_CNAME) ||
		    !codec_name_is(m, len, rr.owner_off, h->name, h->len))
			continue;
		if (rr.type == CODEC_TYPE_CNAME) {
			/* Two CNAMEs at one owner are illegal (RFC 2181
			 * 10.1); take the first rather than fail. */
			if (!p->cname) {
				p->cname = true;
				p->cname_rr = rr;
			}
			continue;
		}
		if (!take_rr(c, m, &rr, p))
			return 0;
	}
	return rc;
}

/* The pass over an answer stopped at something it cannot use; the chase
 * state is rolled back already. */
static enum flat_step pass_failed(struct flat_chase *c, int rc, const struct pass *p)
{
	char what[48];

	if (rc < 0)
		return unusable(c, "sent a malformed answer");
	if (p->too_large) {
		char name[CHASE_NAME_TEXT];

		/* No failover: the RRset is the zone's data, and every
		 * resolver would hand over the same records. */
		cur_text(c, name, sizeof(name));
		c->fail = FLAT_CHASE_FAIL_BAD_ANSWER;
		set_why(c, CODEC_EDE_OTHER, "%s RRset too large at %s", qtype_text(c->qtype), name);
		return finish(c, FLAT_RES_FAIL);
	}
	if (p->bad_rdata)
		snprintf(what, sizeof(what), "sent a malformed %s record", qtype_text(c->qtype));
	else
		snprintf(what, sizeof(what), "sent an %s record of %d octets", qtype_text(c->qtype),
		         p->bad_rdlen);
	return unusable(c, what);
}

/*
 * A NOERROR or NXDOMAIN answer to the query in c->out, whose ECS scope
 * is scope (0 without ECS): walk the chain from the asked name as far as
 * this answer goes. Records may come in any
 * order, so each step is a fresh pass over the section; a DNAME is
 * ignored in favour of the CNAME synthesized next to it (RFC 6672 5.3).
 */
static enum flat_step use_answer(struct flat_chase *c, const uint8_t *m, size_t len,
                                 const struct codec_view *v, uint8_t scope)
{
	const struct snapshot snap = {c->n_hop, c->hops, c->ttl, c->skip_backend, c->scope};
	unsigned followed = 0;
	struct pass p;

	/* The result is as narrow as the narrowest answer it rests on: a
	 * CNAME tailored to a /24 makes everything behind it a /24 answer. */
	if (scope > c->scope)
		c->scope = scope;

	c->result.n_addrs = 0;
	c->result.rdata_len = 0;
	for (;;) {
		int rc = scan_pass(c, m, len, v, &p);

		if (rc < 0 || p.bad_rdlen >= 0 || p.bad_rdata || p.too_large) {
			rollback(c, &snap);
			return pass_failed(c, rc, &p);
		}
		if (p.addr) {
			/* A CNAME next to addresses is illegal; the addresses
			 * are what the client asked for. */
			cur(c)->ttl = p.addr_ttl;
			c->result.ttl = min_u32(c->ttl, p.addr_ttl);
			return finish(c, FLAT_RES_ADDRS);
		}
		if (!p.cname)
			break;

		uint8_t target[CODEC_MAX_NAME];
		size_t end;
		int tlen = codec_name_skip(m, len, p.cname_rr.rdata_off, &end);

		if (tlen < 0 || end != (size_t)p.cname_rr.rdata_off + p.cname_rr.rdlen ||
		    codec_name_unpack(m, len, p.cname_rr.rdata_off, target) != tlen) {
			rollback(c, &snap);
			return unusable(c, "sent a malformed CNAME");
		}
		codec_name_lower(target, (size_t)tlen);
		if (!follow(c, target, (size_t)tlen, codec_ttl_sane(p.cname_rr.ttl)))
			return FLAT_STEP_DONE;
		followed++;
	}

	/* Nothing more at the current name in this answer. NXDOMAIN after
	 * CNAMEs is about the last name (RFC 6604 2.1). */
	if (v->rcode == CODEC_RCODE_NXDOMAIN)
		return negative(c, FLAT_RES_NXDOMAIN, m, len, v);
	/* The answer stopped at a CNAME's target without saying anything
	 * about it (an authoritative server leaving its zone, or a resolver
	 * that did not follow): ask about the new name. */
	if (followed > 0)
		return ask(c);
	/* An empty non-authoritative answer without SOA from the backend is a
	 * referral: the name is delegated out of our zone, so a resolver
	 * must find it. */
	if (c->server == FLAT_SERVER_BACKEND && !(v->flags & CODEC_FLAG_AA) &&
	    !has_soa(m, len, v)) {
		c->skip_backend = true;
		return ask(c);
	}
	return negative(c, FLAT_RES_NODATA, m, len, v);
}

/*
 * The ECS option of an answer to the query in c->out, when that query
 * carried one (RFC 7871 7.3).
 * @return 1 with *scope set (0 when there is nothing to go by: no ECS
 *         sent, or none came back, which RFC 7871 7.2.1 says means the
 *         answer is for everyone); 0 when the option is not the one sent:
 *         the answer to someone else's query, dropped like a wrong ID; or
 *         -EINVAL for a malformed option.
 */
static int answer_ecs(const struct flat_chase *c, const uint8_t *m, const struct codec_view *v,
                      uint8_t *scope)
{
	struct codec_ecs got;
	int rc;

	*scope = 0;
	if (c->server != FLAT_SERVER_RESOLVER || c->ecs.family == 0)
		return 1;
	rc = codec_ecs_find(m, v, false, &got);
	if (rc < 0)
		return -EINVAL;
	if (rc == 0)
		return 1;
	if (!codec_ecs_matches(&c->ecs, &got))
		return 0;
	/* A scope longer than what we sent would key the cache on bits we
	 * never told the resolver (RFC 7871 7.3.1). */
	*scope = got.scope < c->ecs.source ? got.scope : c->ecs.source;
	return 1;
}

void flat_chase_init(struct flat_chase *c, const struct flat_chase_cfg *cfg)
{
	memset(c, 0, sizeof(*c));
	c->cfg = *cfg;
	if (c->cfg.max_chain < 1)
		c->cfg.max_chain = 1;
	if (c->cfg.max_chain > FLAT_CHASE_MAX_CHAIN)
		c->cfg.max_chain = FLAT_CHASE_MAX_CHAIN;
	c->cfg.ecs = NULL;
	/* Copied, so that the caller's subnet need not outlive init. An
	 * option codec_ecs_write() could not write counts as none. The code
	 * reads c->ecs, never c->cfg.ecs, so that a moved chase stays right. */
	if (cfg->ecs != NULL && codec_ecs_addr_len(cfg->ecs->family) != 0 &&
	    cfg->ecs->source <= codec_ecs_addr_len(cfg->ecs->family) * 8) {
		c->ecs = *cfg->ecs;
		c->ecs.scope = 0; /* RFC 7871 6: SCOPE is 0 in a query */
		c->cfg.ecs = &c->ecs;
	}
	/* Input before begin is a caller bug; answer it with a failure rather
	 * than read an empty chain. */
	c->done = true;
	c->result.kind = FLAT_RES_FAIL;
	snprintf(c->result.why, sizeof(c->result.why), "chase not started");
	c->fail = FLAT_CHASE_FAIL_INVALID;
}

uint64_t flat_chase_try_ms(uint64_t left_ms, unsigned tries, uint64_t timeout_ms)
{
	uint64_t share = left_ms / (tries > 0 ? tries : 1);

	if (share < FLAT_CHASE_TRY_MIN_MS)
		share = FLAT_CHASE_TRY_MIN_MS;
	return share < timeout_ms ? share : timeout_ms;
}

const char *flat_chase_fail_name(enum flat_chase_fail f)
{
	static const char *const fail_names[FLAT_CHASE_FAIL_COUNT] = {
	        [FLAT_CHASE_FAIL_TIMEOUT] = "timeout",
	        [FLAT_CHASE_FAIL_NO_RESOLVER] = "no_resolver",
	        [FLAT_CHASE_FAIL_BAD_ANSWER] = "bad_answer",
	        [FLAT_CHASE_FAIL_RCODE] = "rcode",
	        [FLAT_CHASE_FAIL_LOOP] = "loop",
	        [FLAT_CHASE_FAIL_CHAIN] = "chain_too_long",
	        [FLAT_CHASE_FAIL_INVALID] = "invalid",
	};

	return (unsigned)f < FLAT_CHASE_FAIL_COUNT ? fail_names[f] : "?";
}

int flat_chase_visit(struct flat_chase *c, const uint8_t *name, size_t len)
{
	if (!codec_name_valid(name, len))
		return -EINVAL;
	if (c->n_pre >= FLAT_CHASE_MAX_PREVISIT)
		return -ENOSPC;
	memcpy(c->pre[c->n_pre].name, name, len);
	c->pre[c->n_pre].len = (uint8_t)len;
	codec_name_lower(c->pre[c->n_pre].name, len);
	c->n_pre++;
	return 0;
}

enum flat_step flat_chase_begin(struct flat_chase *c, const uint8_t *target, size_t len,
                                uint16_t qtype, uint32_t initial_ttl, uint8_t hops_already)
{
	char name[CHASE_NAME_TEXT];

	c->qtype = qtype;
	c->done = false;
	c->skip_backend = false;
	c->hops = hops_already;
	c->ttl = initial_ttl;
	c->n_hop = 0;
	c->out_len = 0;
	c->server = FLAT_SERVER_RESOLVER;
	c->resolver = 0;
	c->tcp = false;
	c->fail = FLAT_CHASE_FAIL_INVALID;
	c->scope = 0;
	memset(&c->result, 0, sizeof(c->result));

	if (!codec_name_valid(target, len) || !flat_qtype_flattens(qtype)) {
		c->fail = FLAT_CHASE_FAIL_INVALID;
		set_why(c, CODEC_EDE_OTHER, "invalid chase target");
		return finish(c, FLAT_RES_FAIL);
	}
	struct flat_chase_hop *h = &c->hop[c->n_hop++];

	memcpy(h->name, target, len);
	h->len = (uint8_t)len;
	h->ttl = UINT32_MAX;
	codec_name_lower(h->name, len);
	name_text(h->name, h->len, name, sizeof(name));
	/* Only pre-visited names can match here; hop[0] is the target. */
	for (unsigned i = 0; i < c->n_pre; i++) {
		if (c->pre[i].len == len && memcmp(c->pre[i].name, h->name, len) == 0) {
			c->fail = FLAT_CHASE_FAIL_LOOP;
			set_why(c, CODEC_EDE_OTHER, "CNAME loop at %s", name);
			return finish(c, FLAT_RES_FAIL);
		}
	}
	if (hops_already > c->cfg.max_chain) {
		c->fail = FLAT_CHASE_FAIL_CHAIN;
		set_why(c, CODEC_EDE_OTHER, "chain longer than %u at %s", c->cfg.max_chain, name);
		return finish(c, FLAT_RES_FAIL);
	}
	return ask(c);
}

enum flat_step flat_chase_input(struct flat_chase *c, const uint8_t *resp, size_t len)
{
	struct codec_view v;
	char what[48];
	char rbuf[16];
	uint8_t scope;

	if (c->done)
		return FLAT_STEP_DONE;
	if (len == 0)
		return server_failed(c, true);
	/* Anything that does not carry our random ID is someone else's
	 * datagram (late, or spoofed): ignore it and let the timeout run. */
	if (len < 2 || codec_get_u16(resp) != codec_get_u16(c->out))
		return FLAT_STEP_WAIT;
	if (codec_scan(resp, len, &v) < 0)
		return unusable(c, "sent a malformed answer");
	if (!(v.flags & CODEC_FLAG_QR))
		return unusable(c, "sent a query, not an answer");
	if (v.opcode != CODEC_OPCODE_QUERY) {
		snprintf(what, sizeof(what), "answered with opcode %u", v.opcode);
		return unusable(c, what);
	}

	unsigned rcode = v.rcode | (v.has_opt ? (unsigned)v.ext_rcode << 4 : 0);

	if (v.qdcount == 1) {
		/* Same reasoning as the ID: a wrong question is not this
		 * server's answer to us (RFC 5452 9.1). c->out asks about
		 * the current name (build_query()). */
		if (!codec_answers_question(resp, len, codec_get_u16(c->out), cur(c)->name,
		                            cur(c)->len, c->qtype, CODEC_CLASS_IN))
			return FLAT_STEP_WAIT;
	} else if (v.qdcount > 1 || rcode == CODEC_RCODE_NOERROR || rcode == CODEC_RCODE_NXDOMAIN) {
		/* An error reply may drop the question (FORMERR, NOTIMP);
		 * data without the question it answers cannot be used. */
		snprintf(what, sizeof(what), "answered with %u questions", v.qdcount);
		return unusable(c, what);
	}
	int ecs = answer_ecs(c, resp, &v, &scope);

	if (ecs == 0)
		return FLAT_STEP_WAIT;
	if (ecs < 0)
		return unusable(c, "sent a malformed ECS option");
	if (v.flags & CODEC_FLAG_TC) {
		if (c->tcp)
			return unusable(c, "truncated its TCP answer");
		/* RFC 7766 5: retry the same question over TCP, same server. */
		c->tcp = true;
		build_query(c);
		return FLAT_STEP_SEND;
	}
	if (rcode != CODEC_RCODE_NOERROR && rcode != CODEC_RCODE_NXDOMAIN) {
		char name[CHASE_NAME_TEXT];
		char server[24];

		cur_text(c, name, sizeof(name));
		server_text(c, server, sizeof(server));
		c->fail = FLAT_CHASE_FAIL_RCODE;
		set_why(c, CODEC_EDE_OTHER, "%s answered %s for %s", server,
		        codec_rcode_text(rcode, rbuf, sizeof(rbuf)), name);
		return server_failed(c, false);
	}
	return use_answer(c, resp, len, &v, scope);
}
