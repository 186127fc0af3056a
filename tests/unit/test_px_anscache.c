/* Unit tests for proxy/anscache: the per-worker cache of BIND's answers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/scan.h"
#include "codec/wire.h"
#include "proxy/engine/anscache.h"
#include "tests/unit/helpers.h"

/* A query for NAME/A with the given ID, EDNS (1232, no options) or not. */
static size_t query(uint8_t *out, uint16_t id, const char *wire_name, size_t nlen, bool edns,
                    bool rd)
{
	size_t n = 0;
	codec_put_u16(out, id);
	codec_put_u16(out + 2, rd ? CODEC_FLAG_RD : 0);
	codec_put_u16(out + 4, 1);
	codec_put_u16(out + 6, 0);
	codec_put_u16(out + 8, 0);
	codec_put_u16(out + 10, edns ? 1 : 0);
	n = 12;
	memcpy(out + n, wire_name, nlen);
	n += nlen;
	codec_put_u16(out + n, CODEC_TYPE_A);
	codec_put_u16(out + n + 2, CODEC_CLASS_IN);
	n += 4;
	if (edns) {
		out[n++] = 0;
		codec_put_u16(out + n, CODEC_TYPE_OPT);
		codec_put_u16(out + n + 2, 1232);
		codec_put_u32(out + n + 4, 0);
		codec_put_u16(out + n + 8, 0);
		n += 10;
	}
	return n;
}

/* BIND's answer to q: the question, one A RR with ttl, EDNS as q. */
static size_t answer(uint8_t *out, const uint8_t *q, size_t qlen, bool edns, uint32_t ttl,
                     unsigned rcode)
{
	struct codec_view v;
	assert_int_equal(codec_scan(q, qlen, &v), 0);
	memcpy(out, q, v.question_end);
	out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR AA, RD copied */
	out[3] = (uint8_t)rcode;
	codec_put_u16(out + 6, rcode == 0 ? 1 : 0);
	codec_put_u16(out + 10, edns ? 1 : 0);
	size_t n = v.question_end;
	if (rcode == 0) {
		out[n++] = 0xc0;
		out[n++] = 12;
		codec_put_u16(out + n, CODEC_TYPE_A);
		codec_put_u16(out + n + 2, CODEC_CLASS_IN);
		codec_put_u32(out + n + 4, ttl);
		codec_put_u16(out + n + 8, 4);
		memcpy(out + n + 10, "\xc0\x00\x02\x19", 4);
		n += 14;
	}
	if (edns) {
		out[n++] = 0;
		codec_put_u16(out + n, CODEC_TYPE_OPT);
		codec_put_u16(out + n + 2, 1232);
		codec_put_u32(out + n + 4, 0);
		codec_put_u16(out + n + 8, 0);
		n += 10;
	}
	return n;
}

#define NAME "\4mail\7example\4test\0"
#define NAME_UP "\4MAIL\7Example\4TEST\0"
#define NLEN (sizeof(NAME) - 1)

static void scan(const uint8_t *m, size_t n, struct codec_view *v)
{
	assert_int_equal(codec_scan(m, n, v), 0);
}

static void test_acache_hit_gets_client_id_case_and_aged_ttl(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535], q2[512];
	struct codec_view v, v2;

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 0x1111, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 300, 0);
	scan(q, ql, &v);
	assert_int_equal(px_anscache_get(c, q, &v, 1000, 0, 1232, out), -ENOENT);
	px_anscache_put(c, q, &v, r, rl, 1000, 0);

	size_t q2l = query(q2, 0x2222, NAME_UP, NLEN, true, false);
	scan(q2, q2l, &v2);
	ssize_t n = px_anscache_get(c, q2, &v2, 1000 + 42500, 0, 1232, out);
	assert_int_equal(n, (ssize_t)rl);
	assert_int_equal(codec_get_u16(out), 0x2222);
	assert_false(out[2] & 0x01); /* RD as the client sent it */
	assert_memory_equal(out + 12, NAME_UP, NLEN);
	struct codec_view ov;
	scan(out, (size_t)n, &ov);
	assert_int_equal(codec_get_u32(out + ov.an_off + 6), 300 - 42);
	px_anscache_free(c);
}

static void test_acache_expiry_generation_and_size_limits(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 10, 0);
	scan(q, ql, &v);
	px_anscache_put(c, q, &v, r, rl, 0, 7);
	assert_true(px_anscache_get(c, q, &v, 9999, 7, 1232, out) > 0);
	/* Expired at the TTL. */
	assert_int_equal(px_anscache_get(c, q, &v, 10000, 7, 1232, out), -ENOENT);
	/* Another generation (a NOTIFY came) is a miss. */
	px_anscache_put(c, q, &v, r, rl, 0, 7);
	assert_int_equal(px_anscache_get(c, q, &v, 1, 8, 1232, out), -ENOENT);
	/* Larger than the client's UDP size: BIND must truncate, not us. */
	px_anscache_put(c, q, &v, r, rl, 0, 8);
	assert_int_equal(px_anscache_get(c, q, &v, 1, 8, rl - 1, out), -EMSGSIZE);
	px_anscache_free(c);
}

/* Appends one EDNS option to m (whose last RR is an OPT without options). */
static size_t add_option(uint8_t *m, size_t n, uint16_t code, const uint8_t *data, uint16_t len)
{
	struct codec_view v;
	scan(m, n, &v);
	codec_put_u16(m + n, code);
	codec_put_u16(m + n + 2, len);
	memcpy(m + n + 4, data, len);
	codec_put_u16(m + v.opt_rdata_off - 2, (uint16_t)(v.opt_rdlen + 4 + len));
	return n + 4 + len;
}

/* BIND's cookie is not kept; a client with a cookie pair gets its own
 * pair back; a client cookie alone, or another option, is a miss. */
static void test_acache_cookies(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535], q2[512], q3[512], q4[512];
	struct codec_view v, v2, v3, v4, ov;
	static const uint8_t pair1[24] = "AAAAAAAA\1\0\0\0sssssssssss";
	static const uint8_t bind1[24] = "AAAAAAAA\1\0\0\0BBBBBBBBBBB";
	static const uint8_t pair2[16] = "CCCCCCCCdddddddd";
	size_t off;
	uint16_t len;

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 300, 0);
	size_t plain_rl = rl;
	ql = add_option(q, ql, CODEC_EDNS_OPT_COOKIE, pair1, sizeof(pair1));
	rl = add_option(r, rl, CODEC_EDNS_OPT_COOKIE, bind1, sizeof(bind1));
	scan(q, ql, &v);
	px_anscache_put(c, q, &v, r, rl, 0, 0);

	/* Another client's pair: served, with that pair, no trace of BIND's. */
	size_t q2l = add_option(q2, query(q2, 2, NAME, NLEN, true, true), CODEC_EDNS_OPT_COOKIE,
	                        pair2, sizeof(pair2));
	scan(q2, q2l, &v2);
	ssize_t n = px_anscache_get(c, q2, &v2, 1000, 0, 1232, out);
	assert_int_equal(n, (ssize_t)(plain_rl + 4 + sizeof(pair2)));
	scan(out, (size_t)n, &ov);
	assert_true(codec_edns_option(out, &ov, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_int_equal(len, sizeof(pair2));
	assert_memory_equal(out + off, pair2, sizeof(pair2));
	assert_int_equal(ov.opt_rdlen, 4 + sizeof(pair2));
	/* Without a cookie: BIND's answer without its cookie. */
	ql = query(q3, 3, NAME, NLEN, true, true);
	scan(q3, ql, &v3);
	n = px_anscache_get(c, q3, &v3, 1000, 0, 1232, out);
	assert_int_equal(n, (ssize_t)plain_rl);
	scan(out, (size_t)n, &ov);
	assert_int_equal(ov.opt_rdlen, 0);
	/* The pair does not fit the client's size: a miss for BIND to handle. */
	assert_int_equal(px_anscache_get(c, q2, &v2, 1000, 0, plain_rl + 4, out), -EMSGSIZE);

	/* A client cookie alone: BIND must give the first server cookie. */
	size_t q4l = add_option(q4, query(q4, 4, NAME, NLEN, true, true), CODEC_EDNS_OPT_COOKIE,
	                        pair2, 8);
	scan(q4, q4l, &v4);
	assert_int_equal(px_anscache_get(c, q4, &v4, 1000, 0, 1232, out), -ENOENT);
	/* A pair plus another option (NSID): not ours to answer. */
	q4l = add_option(q4, query(q4, 4, NAME, NLEN, true, true), CODEC_EDNS_OPT_COOKIE, pair2,
	                 sizeof(pair2));
	q4l = add_option(q4, q4l, 3, (const uint8_t *)"", 0);
	scan(q4, q4l, &v4);
	assert_int_equal(px_anscache_get(c, q4, &v4, 1000, 0, 1232, out), -ENOENT);
	px_anscache_free(c);
}

static void test_acache_keeps_only_plain_questions_and_answers(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	scan(q, ql, &v);
	/* TTL 0, SERVFAIL, TC: never kept. */
	size_t rl = answer(r, q, ql, true, 0, 0);
	px_anscache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px_anscache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	rl = answer(r, q, ql, true, 300, 2);
	px_anscache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px_anscache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	rl = answer(r, q, ql, true, 300, 0);
	r[2] |= 0x02;
	px_anscache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px_anscache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);

	/* A query with an EDNS option (a cookie) is neither kept nor served. */
	uint8_t qc[512];
	size_t qcl = query(qc, 1, NAME, NLEN, false, true);
	qc[11] = 1;
	memcpy(qc + qcl,
	       "\0\0\x29\x04\xd0\0\0\0\0\0\x0c\0\x0a\0\x08"
	       "abcdefgh",
	       23);
	qcl += 23;
	struct codec_view vc;
	scan(qc, qcl, &vc);
	rl = answer(r, q, ql, true, 300, 0);
	px_anscache_put(c, qc, &vc, r, rl, 0, 0);
	assert_int_equal(px_anscache_get(c, qc, &vc, 0, 0, 1232, out), -ENOENT);

	/* EDNS on and off are different keys. */
	rl = answer(r, q, ql, true, 300, 0);
	px_anscache_put(c, q, &v, r, rl, 0, 0);
	uint8_t qn[512];
	size_t qnl = query(qn, 1, NAME, NLEN, false, true);
	struct codec_view vn;
	scan(qn, qnl, &vn);
	assert_int_equal(px_anscache_get(c, qn, &vn, 0, 0, 512, out), -ENOENT);
	assert_true(px_anscache_get(c, q, &v, 0, 0, 1232, out) > 0);
	px_anscache_free(c);
}

static void test_acache_lru_bound_evicts_oldest(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;
	char name[32];

	/* Room for a handful of entries only. */
	assert_int_equal(px_anscache_new(&c, 1000), 0);
	for (int i = 0; i < 50; i++) {
		int l = snprintf(name + 1, sizeof(name) - 1, "n%02d", i);
		name[0] = (char)l;
		memcpy(name + 1 + l, "\4test", 6);
		size_t nl = (size_t)l + 1 + 6;
		size_t ql = query(q, 1, name, nl, true, true);
		size_t rl = answer(r, q, ql, true, 300, 0);
		scan(q, ql, &v);
		px_anscache_put(c, q, &v, r, rl, 0, 0);
		/* The newest is always there. */
		assert_true(px_anscache_get(c, q, &v, 0, 0, 1232, out) > 0);
	}
	/* The first ones were evicted. */
	int l = snprintf(name + 1, sizeof(name) - 1, "n%02d", 0);
	name[0] = (char)l;
	memcpy(name + 1 + l, "\4test", 6);
	size_t ql = query(q, 1, name, (size_t)l + 7, true, true);
	scan(q, ql, &v);
	assert_int_equal(px_anscache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	px_anscache_free(c);
}

static void test_acache_drop_name_drops_that_name_only(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535], q2[512], r2[512];
	struct codec_view v, v2;
	static const char other[] = "\5other\7example\3com";

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 300, 0);
	scan(q, ql, &v);
	px_anscache_put(c, q, &v, r, rl, 0, 0);
	size_t q2l = query(q2, 2, other, sizeof(other), false, true);
	size_t r2l = answer(r2, q2, q2l, false, 300, 0);
	scan(q2, q2l, &v2);
	px_anscache_put(c, q2, &v2, r2, r2l, 0, 0);
	assert_true(px_anscache_get(c, q, &v, 1, 0, 1232, out) > 0);
	assert_int_equal(px_anscache_drop_name(c, (const uint8_t *)NAME_UP, NLEN), 1);
	assert_int_equal(px_anscache_get(c, q, &v, 1, 0, 1232, out), -ENOENT);
	assert_true(px_anscache_get(c, q2, &v2, 1, 0, 1232, out) > 0);
	assert_int_equal(px_anscache_drop_name(c, (const uint8_t *)NAME, NLEN), 0);
	assert_int_equal(px_anscache_drop_name(NULL, (const uint8_t *)NAME, NLEN), 0);
	px_anscache_free(c);
}

/* Answers whose names would change as they are served from the cache
 * (compression pointers into a TTL or the header, another question of
 * the same length) are not kept. Found by fuzz_px_anscache. */

/* An RR at out[n]: owner, type, TTL and RDATA as given; returns its end. */
static size_t put_rr(uint8_t *out, size_t n, const uint8_t *owner, size_t olen, uint16_t type,
                     uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	memcpy(out + n, owner, olen);
	n += olen;
	codec_put_u16(out + n, type);
	codec_put_u16(out + n + 2, CODEC_CLASS_IN);
	codec_put_u32(out + n + 4, ttl);
	codec_put_u16(out + n + 8, rdlen);
	memcpy(out + n + 10, rdata, rdlen);
	return n + 10 + rdlen;
}

/* A name read through a TTL (or the ID) would change as the entry ages
 * (or as another client's ID goes in): such answers are not kept. Found
 * by fuzz_px_anscache (corpus: crash-owner-pointer-into-ttl). */
static void test_acache_refuses_names_read_through_patched_octets(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;
	/* Pointers to the question name (12), the low octet of the answer
	 * A's TTL (a TTL of 256 makes it 0, the root: valid until aged), and
	 * the ID. */
	static const uint8_t to_qname[] = {0xc0, 12};
	const uint8_t to_ttl[] = {0xc0, (uint8_t)(12 + NLEN + 4 + 2 + 4 + 3)};
	static const uint8_t to_id[] = {0xc0, 0};
	static const uint8_t a[] = {192, 0, 2, 1};
	static const uint8_t mx_to_ttl_pref[] = {0, 10};
	struct {
		const char *what;
		int section; /* 0 authority, 1 additional */
		const uint8_t *owner;
		uint16_t type;
		const uint8_t *rdata_pre; /* 2 octets before the name, or NULL */
		const uint8_t *rdata_name;
		bool kept;
	} cases[] = {
	        {"NS to the question", 0, to_qname, CODEC_TYPE_NS, NULL, to_qname, true},
	        {"NS through a TTL", 0, to_qname, CODEC_TYPE_NS, NULL, to_ttl, false},
	        {"MX through a TTL", 0, to_qname, CODEC_TYPE_MX, mx_to_ttl_pref, to_ttl, false},
	        {"owner through a TTL", 1, to_ttl, CODEC_TYPE_A, NULL, NULL, false},
	        {"CNAME through the ID", 0, to_qname, CODEC_TYPE_CNAME, NULL, to_id, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
		size_t ql = query(q, 0x0101, NAME, NLEN, false, true);
		size_t rl = answer(r, q, ql, false, 256, 0);
		uint8_t rd[4];
		uint16_t rdlen;

		assert_int_equal(r[rl - 4 - 3 - 2], 0); /* the TTL's low octet */
		if (cases[i].rdata_name == NULL) {
			memcpy(rd, a, 4);
			rdlen = 4;
		} else {
			size_t pre = cases[i].rdata_pre != NULL ? 2 : 0;
			if (pre)
				memcpy(rd, cases[i].rdata_pre, 2);
			memcpy(rd + pre, cases[i].rdata_name, 2);
			rdlen = (uint16_t)(pre + 2);
		}
		rl = put_rr(r, rl, cases[i].owner, 2, cases[i].type, 3600, rd, rdlen);
		codec_put_u16(r + (cases[i].section == 0 ? 8 : 10), 1);
		struct codec_view rv;
		if (codec_scan(r, rl, &rv) != 0)
			fail_msg("%s: the answer does not scan", cases[i].what);
		scan(q, ql, &v);
		px_anscache_put(c, q, &v, r, rl, 1000, 0);
		ssize_t n = px_anscache_get(c, q, &v, 3000, 0, 1232, out);
		if (cases[i].kept != (n > 0))
			fail_msg("%s: %s", cases[i].what, n > 0 ? "kept" : "not kept");
		px_anscache_free(c);
	}
}

/* An answer to another question of the same length is not kept under
 * this one: serving writes the client's name over it, and a name read
 * through the question would change. Found by fuzz_px_anscache (corpus:
 * crash-other-question-name). */
static void test_acache_refuses_answer_to_another_question(void **state)
{
	(void)state;
	struct px_anscache *c = NULL;
	uint8_t q[512], q_other[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px_anscache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 7, NAME, NLEN, false, true);
	size_t qol = query(q_other, 7, "\4mall\7example\4test\0", NLEN, false, true);
	size_t rl = answer(r, q_other, qol, false, 300, 0);
	scan(q, ql, &v);
	px_anscache_put(c, q, &v, r, rl, 1000, 0);
	assert_int_equal(px_anscache_get(c, q, &v, 1000, 0, 1232, out), -ENOENT);
	/* Its own answer is kept, whatever the case of the letters. */
	rl = answer(r, q, ql, false, 300, 0);
	memcpy(r + 12, NAME_UP, NLEN);
	px_anscache_put(c, q, &v, r, rl, 1000, 0);
	assert_int_equal(px_anscache_get(c, q, &v, 1000, 0, 1232, out), (ssize_t)rl);
	px_anscache_free(c);
}

/* Hash flooding (issue 12, item 8): names an attacker picks so that the
 * old unkeyed 32-bit FNV-1a of their keys lands in one bucket of the
 * 1024 a 256 KiB cache starts with. BIND's answers to them get kept (its
 * NXDOMAIN for random names in the wild; NOERROR here, the table does not
 * care), and every lookup in that bucket used to walk the whole chain.
 * With a keyed hash they spread out: every one is still kept and found,
 * and no chain is longer than a handful. */
#define FLOOD_N 600
#define FLOOD_CHAIN_BOUND 8

static uint32_t old_fnv1a(const uint8_t *k, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 16777619u;
	return h;
}

/* \x08 h<7 hex digits> \x07 example \x04 test \x00 */
static size_t flood_name(uint8_t *out, uint32_t i)
{
	char label[16];
	snprintf(label, sizeof(label), "h%07x", (unsigned)i);
	out[0] = 8;
	memcpy(out + 1, label, 8);
	memcpy(out + 9, "\7example\4test\0", 14);
	return 23;
}

static void test_acache_colliding_names_keep_chains_short(void **state)
{
	(void)state;
	static uint8_t names[FLOOD_N][32];
	struct px_anscache *c = NULL;
	uint8_t q[512], r[512], out[65535], key[64];
	struct codec_view v;
	uint32_t bucket = UINT32_MAX;
	unsigned found = 0;

	assert_int_equal(px_anscache_new(&c, 256 << 10), 0);
	for (uint32_t i = 0; found < FLOOD_N; i++) {
		size_t nl = flood_name(key, i);
		/* The key: the name, type A, class IN, no DO, CD or EDNS. */
		memcpy(key + nl, "\0\1\0\1\0", 5);
		uint32_t b = old_fnv1a(key, nl + 5) & 1023;
		if (bucket == UINT32_MAX)
			bucket = b;
		if (b != bucket)
			continue;
		memcpy(names[found], key, nl);
		size_t ql = query(q, (uint16_t)found, (const char *)key, nl, false, true);
		size_t rl = answer(r, q, ql, false, 300, 0);
		scan(q, ql, &v);
		px_anscache_put(c, q, &v, r, rl, 1000, 0);
		found++;
	}
	for (unsigned i = 0; i < FLOOD_N; i++) {
		size_t ql = query(q, 1, (const char *)names[i], 23, false, true);
		scan(q, ql, &v);
		if (px_anscache_get(c, q, &v, 2000, 0, 1232, out) <= 0)
			fail_msg("colliding name %u was not kept", i);
	}
	size_t longest = px_anscache_longest_chain(c);
	if (longest > FLOOD_CHAIN_BOUND)
		fail_msg("%u names that collide under the old hash: a lookup walks %zu entries",
		         FLOOD_N, longest);
	px_anscache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_acache_hit_gets_client_id_case_and_aged_ttl),
	        cmocka_unit_test(test_acache_expiry_generation_and_size_limits),
	        cmocka_unit_test(test_acache_cookies),
	        cmocka_unit_test(test_acache_refuses_names_read_through_patched_octets),
	        cmocka_unit_test(test_acache_refuses_answer_to_another_question),
	        cmocka_unit_test(test_acache_keeps_only_plain_questions_and_answers),
	        cmocka_unit_test(test_acache_lru_bound_evicts_oldest),
	        cmocka_unit_test(test_acache_drop_name_drops_that_name_only),
	        cmocka_unit_test(test_acache_colliding_names_keep_chains_short),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
