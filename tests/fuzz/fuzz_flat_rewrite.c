/* tests/fuzz/fuzz_flat_rewrite.c - libFuzzer target for the flatten policy
 * and rewrite.
 *
 * Input: one control octet, a two-octet query length, the client query,
 * and BIND's response (the rest). The control octet picks the zone mode,
 * apex flag, an ANAME/alias target, the transport and result shapes. Both
 * messages are scanned; the policy, SOA and ANAME readers run on whatever
 * scans; every builder runs on what they decide (and on synthetic
 * results) and each reply must scan again with codec_scan(), fit the
 * size asked for, and keep the client's ID and question. A client's ECS
 * option (RFC 7871) is echoed with a scope taken from the control octet,
 * and must come back in every answer but a SERVFAIL, even a truncated
 * one; without it none may appear. Any crash,
 * sanitizer report or broken invariant (abort) is a bug.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ecs.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/svcb.h"
#include "flatten/policy.h"
#include "flatten/rewrite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CTL_MODE 0x03 /* 0 apex, 1 all, 2/3 none */
#define CTL_APEX 0x04
#define CTL_TARGET 0x08
#define CTL_ALIAS 0x10
#define CTL_TCP 0x20
#define CTL_SMALL 0x40 /* squeeze the output to provoke TC */
#define CTL_STALE 0x80

static const uint8_t fz_target[] = "\3cdn\6target\4test";

static void check(int cond)
{
	if (!cond)
		abort();
}

/* Every reply of ours: scans, fits, and answers this client's question;
 * it echoes ecs (NULL: carries no ECS option). */
static void check_reply(const uint8_t *q, const struct codec_view *qv, const uint8_t *out,
                        ssize_t n, size_t cap, const struct codec_ecs *ecs)
{
	struct codec_view r;
	struct codec_ecs got;

	check(n == -EMSGSIZE || (n >= CODEC_HDR_LEN && (size_t)n <= cap));
	if (n < 0)
		return;
	check(codec_scan(out, (size_t)n, &r) == 0);
	check(r.id == qv->id);
	check(r.qdcount == 1);
	check(r.has_opt == qv->has_opt);
	check(memcmp(out + CODEC_HDR_LEN, q + CODEC_HDR_LEN,
	             (size_t)qv->question_end - CODEC_HDR_LEN) == 0);
	if (r.flags & CODEC_FLAG_TC)
		check(r.ancount == 0 && r.nscount == 0);
	if (ecs != NULL && r.has_opt)
		check(codec_ecs_find(out, &r, false, &got) == 1 && codec_ecs_matches(ecs, &got) &&
		      got.scope == ecs->scope);
	else
		check(codec_ecs_find(out, &r, false, &got) == 0);
}

static void fill_result(struct flat_result *res, uint16_t type, unsigned n, const uint8_t *seed,
                        size_t seed_len)
{
	memset(res, 0, sizeof(*res));
	res->kind = FLAT_RES_ADDRS;
	res->qtype = type;
	res->n_addrs = (uint8_t)(n > FLAT_MAX_ADDRS ? FLAT_MAX_ADDRS : n);
	res->ttl = 300;
	for (unsigned i = 0; i < res->n_addrs; i++)
		for (unsigned k = 0; k < 16; k++)
			res->addrs[i][k] =
			        seed_len > 0 ? seed[(i * 16 + k) % seed_len] : (uint8_t)i;
}

/* An SVCB/HTTPS result: a few copies of one well-formed RDATA, and with
 * CTL_STALE one more made of the query's own bytes (mostly malformed). */
static void fill_rdata(struct flat_result *res, uint16_t type, uint8_t ctl, const uint8_t *seed,
                       size_t seed_len)
{
	static const uint8_t good[] = {0, 1, 0, 0, 1, 0, 3, 2, 'h', '2'};
	size_t extra = seed_len < 64 ? seed_len : 64;

	memset(res, 0, sizeof(*res));
	res->kind = FLAT_RES_ADDRS;
	res->qtype = type;
	res->ttl = 300;
	for (unsigned i = 0; i <= (ctl & 0x0fu); i++) {
		codec_put_u16(res->rdata + res->rdata_len, sizeof(good));
		memcpy(res->rdata + res->rdata_len + 2, good, sizeof(good));
		res->rdata_len = (uint16_t)(res->rdata_len + 2 + sizeof(good));
		res->n_addrs++;
	}
	if (ctl & CTL_STALE) {
		codec_put_u16(res->rdata + res->rdata_len, (uint16_t)extra);
		memcpy(res->rdata + res->rdata_len + 2, seed, extra);
		res->rdata_len = (uint16_t)(res->rdata_len + 2 + extra);
		res->n_addrs++;
	}
}

/* A result for SVCB/HTTPS goes out byte for byte when every RDATA is
 * well formed, and is refused otherwise. */
static void run_rdata(const uint8_t *q, size_t qlen, const struct codec_view *qv, uint8_t ctl,
                      size_t cap, const struct flat_rewrite_opts *o)
{
	static uint8_t out[CODEC_MAX_MSG];
	struct flat_result res;
	unsigned count = 0;
	struct codec_view r;

	fill_rdata(&res, qv->qtype, ctl, q, qlen);
	bool ok = codec_svcb_check_set(res.rdata, res.rdata_len, &count, NULL) == 0 &&
	          count == res.n_addrs;
	ssize_t n = flat_rewrite(q, qlen, qv, &res, 42, o, cap, out, sizeof(out));

	check(ok == (n != -EINVAL));
	if (n == -EINVAL)
		return;
	check_reply(q, qv, out, n, cap, o->ecs);
	if (n > 0 && codec_scan(out, (size_t)n, &r) == 0 && !(r.flags & CODEC_FLAG_TC))
		check(r.ancount >= res.n_addrs);
}

static void run_rewrites(const uint8_t *q, size_t qlen, const struct codec_view *qv, uint8_t ctl,
                         const struct flat_soa *soa, const struct flat_result *local)
{
	static uint8_t out[CODEC_MAX_MSG];
	size_t cap = flat_rewrite_max_size(qv, (ctl & CTL_TCP) != 0);
	struct flat_rewrite_opts o = {
	        .soa = soa,
	        .ede = (ctl & CTL_STALE) ? CODEC_EDE_STALE_ANSWER : CODEC_EDE_NONE,
	        .ede_text = "stale answer served",
	        .show_aname = (ctl & CTL_TARGET) != 0,
	        .aname_type = 65401,
	        .aname_target = fz_target,
	        .aname_target_len = sizeof(fz_target),
	        .aname_ttl = 60,
	};
	struct flat_result res;
	struct codec_ecs client;
	ssize_t n;

	/* As the proxy does: the client's option, with a scope of ours no
	 * longer than its SOURCE. A malformed one would have been FORMERR. */
	if (codec_ecs_find(q, qv, true, &client) == 1) {
		client.scope = (uint8_t)(ctl & 0x3f);
		if (client.scope > client.source)
			client.scope = client.source;
		o.ecs = &client;
	}
	if (ctl & CTL_SMALL)
		cap = CODEC_HDR_LEN + (size_t)(ctl & 0x3f) * 4;
	if (qv->qdcount != 1 || qv->qname_off != CODEC_HDR_LEN) {
		fill_result(&res, CODEC_TYPE_A, 1, NULL, 0);
		check(flat_rewrite(q, qlen, qv, &res, 60, &o, cap, out, sizeof(out)) == -EBADMSG);
		return;
	}

	if (local != NULL) {
		n = flat_rewrite(q, qlen, qv, local, flat_ttl_final(local->ttl, 30, 3600), &o, cap,
		                 out, sizeof(out));
		check(n != -EBADMSG);
		if (n != -EINVAL)
			check_reply(q, qv, out, n, cap, o.ecs);
	}
	if (qv->qtype == CODEC_TYPE_A || qv->qtype == CODEC_TYPE_AAAA) {
		static const enum flat_result_kind kinds[] = {FLAT_RES_ADDRS, FLAT_RES_NODATA,
		                                              FLAT_RES_NXDOMAIN, FLAT_RES_FAIL};

		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
			fill_result(&res, qv->qtype, 1u + (ctl & 0x3f), q, qlen);
			res.kind = kinds[k];
			res.ede = CODEC_EDE_NO_REACHABLE_AUTHORITY;
			memcpy(res.why, "timeout", 8);
			n = flat_rewrite(q, qlen, qv, &res, 42, &o, cap, out, sizeof(out));
			if (n == -EINVAL) {
				/* Only a negative answer without SOA is refused. */
				check(soa == NULL && k != 0 && k != 3);
				continue;
			}
			/* A failure is codec_build_error()'s SERVFAIL. */
			check_reply(q, qv, out, n, cap, kinds[k] == FLAT_RES_FAIL ? NULL : o.ecs);
			if (n > 0 && k != 3)
				check((out[3] & CODEC_RCODE_MASK) == CODEC_RCODE_NOERROR);
		}
	}

	if (flat_qtype_is_rdata(qv->qtype))
		run_rdata(q, qlen, qv, ctl, cap, &o);

	struct flat_result ra;
	struct flat_result raaaa;
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};
	struct flat_rrset_in aaaa = {.res = &raaaa, .ttl = 90};

	fill_result(&ra, CODEC_TYPE_A, ctl & 0x0f, q, qlen);
	fill_result(&raaaa, CODEC_TYPE_AAAA, (ctl >> 4) & 0x0f, q, qlen);
	n = flat_rewrite_aname_query(q, qlen, qv, fz_target, sizeof(fz_target), 600, &a, &aaaa, &o,
	                             cap, out, sizeof(out));
	if (n == -EINVAL)
		check(qv->qtype == 0 || qv->qtype == CODEC_TYPE_OPT ||
		      (qv->qtype >= 128 && qv->qtype <= 255));
	else
		check_reply(q, qv, out, n, cap, o.ecs);
	n = flat_rewrite_any_minimal(q, qlen, qv, 3600, cap, out, sizeof(out));
	check_reply(q, qv, out, n, cap, NULL);
}

/* BIND's message rebuilt with addresses: scans, fits, and can itself be
 * rebuilt again (its RDATA names are now uncompressed and valid, so a
 * second pass cannot fail on them). */
static void run_append(const uint8_t *r, size_t rlen, const struct codec_view *rv, uint8_t ctl)
{
	static uint8_t out[CODEC_MAX_MSG];
	static uint8_t out2[CODEC_MAX_MSG];
	struct flat_result ra;
	struct flat_result raaaa;
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};
	struct flat_rrset_in aaaa = {.res = &raaaa, .ttl = 90};
	size_t cap = (ctl & CTL_SMALL) ? 512 : CODEC_MAX_MSG;
	struct codec_view v;
	struct codec_view v2;

	fill_result(&ra, CODEC_TYPE_A, ctl & 0x0f, r, rlen);
	fill_result(&raaaa, CODEC_TYPE_AAAA, (ctl >> 4) & 0x0f, r, rlen);
	if (ctl & CTL_STALE)
		ra.kind = FLAT_RES_FAIL;
	ssize_t n = flat_rewrite_append(r, rlen, rv, &a, &aaaa, cap, out, sizeof(out));

	if (n == -EBADMSG || n == -EINVAL || n == -EMSGSIZE)
		return;
	check(n >= CODEC_HDR_LEN && (size_t)n <= cap);
	check(codec_scan(out, (size_t)n, &v) == 0);
	check(v.id == rv->id && v.has_opt == rv->has_opt);
	if (v.flags & CODEC_FLAG_TC)
		return;
	ssize_t n2 = flat_rewrite_append(out, (size_t)n, &v, NULL, NULL, CODEC_MAX_MSG, out2,
	                                 sizeof(out2));

	check(n2 >= CODEC_HDR_LEN);
	check(codec_scan(out2, (size_t)n2, &v2) == 0);
	/* Nothing more to drop: the second pass keeps every record (only
	 * our pointers to the question get spelled out). */
	if (!(v2.flags & CODEC_FLAG_TC))
		check(v2.ancount == v.ancount && v2.nscount == v.nscount &&
		      v2.arcount == v.arcount);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_view qv;
	struct codec_view rv;

	if (size < 3)
		return 0;
	uint8_t ctl = data[0];
	size_t qlen = (size_t)data[1] << 8 | data[2];

	data += 3;
	size -= 3;
	if (qlen > size)
		qlen = size;
	const uint8_t *q = data;
	const uint8_t *r = data + qlen;
	size_t rlen = size - qlen;
	bool q_ok = codec_scan(q, qlen, &qv) == 0;
	bool r_ok = codec_scan(r, rlen, &rv) == 0;
	struct flat_soa soa;
	bool have_soa = false;
	struct flat_policy_out po;

	if (r_ok) {
		int rc = flat_policy_soa(r, rlen, &rv, &soa);

		check(rc == 0 || rc == -ENOENT || rc == -EBADMSG);
		if (rc == 0) {
			check(soa.owner_len >= 1 && soa.owner_len <= CODEC_MAX_NAME);
			check(soa.rdlen >= 22 && soa.rdlen <= FLAT_SOA_RDATA_MAX);
			have_soa = true;
		}
		if (rv.qdcount >= 1) {
			uint8_t name[CODEC_MAX_NAME];
			int len = codec_name_unpack(r, rlen, rv.qname_off, name);
			struct flat_aname an;

			check(len > 0);
			/* The owner zone's SOA, with the question's parent as the
			 * configured apex (the name itself at the root). */
			size_t zoff = name[0] != 0 ? 1u + name[0] : 0;
			struct flat_soa osoa;
			int src = flat_policy_owner_soa(r, rlen, &rv, name, (size_t)len,
			                                name + zoff, (size_t)len - zoff, &osoa);
			check(src == 0 || src == -ENOENT || src == -EBADMSG);
			if (src == 0)
				check(osoa.owner_len <= (size_t)len &&
				      osoa.owner_len + zoff >= (size_t)len);
			flat_aname_parse(r, rlen, &rv, name, (size_t)len, rv.qtype, &an);
			if (an.state == FLAT_ANAME_PRESENT)
				check(an.target_len > 1 && an.target_len <= CODEC_MAX_NAME &&
				      an.n_targets >= 1 && an.n_targets <= FLAT_POOL_MAX &&
				      flat_pool_count(an.targets, an.targets_len) == an.n_targets);
			else
				check(an.target_len == 0 && an.n_targets == 0);
		}
		run_append(r, rlen, &rv, ctl);
	}
	if (!q_ok)
		return 0;

	const struct flat_result *local = NULL;

	if (r_ok) {
		struct flat_policy_in in = {
		        .query = q,
		        .qlen = qlen,
		        .qv = &qv,
		        .resp = r,
		        .rlen = rlen,
		        .rv = &rv,
		        .mode = (ctl & CTL_MODE) > 2 ? FLAT_CNAME_NONE
		                                     : (enum flat_cname_mode)(ctl & CTL_MODE),
		        .is_apex = (ctl & CTL_APEX) != 0,
		        .target = (ctl & CTL_TARGET) ? fz_target : NULL,
		        .target_len = sizeof(fz_target),
		        .target_is_alias = (ctl & CTL_ALIAS) != 0,
		};

		switch (flat_policy_inspect(&in, &po)) {
		case FLAT_POLICY_CHASE:
			check(po.target_len >= 1 && po.target_len <= CODEC_MAX_NAME);
			check(!po.signed_relay);
			break;
		case FLAT_POLICY_LOCAL:
			check(po.local.kind == FLAT_RES_NXDOMAIN ||
			      (po.local.n_addrs >= 1 && po.local.n_addrs <= FLAT_MAX_ADDRS &&
			       po.local.qtype == qv.qtype));
			local = &po.local;
			break;
		case FLAT_POLICY_RELAY:
			break;
		default:
			check(0);
		}

		struct flat_policy_out pa;
		struct flat_aname an;

		switch (flat_policy_inspect_aname(&in, &pa, &an)) {
		case FLAT_POLICY_CHASE:
			check(an.state == FLAT_ANAME_PRESENT && pa.target_len == an.target_len);
			check(pa.siblings && !pa.signed_relay);
			break;
		case FLAT_POLICY_RELAY:
			check(!pa.signed_relay || (qv.do_bit && an.state == FLAT_ANAME_PRESENT));
			break;
		default:
			check(0);
		}
	}
	run_rewrites(q, qlen, &qv, ctl, have_soa ? &soa : NULL, local);
	return 0;
}
