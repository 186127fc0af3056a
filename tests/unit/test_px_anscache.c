/* Unit tests for proxy/anscache: the per-worker cache of BIND's answers. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/scan.h"
#include "codec/wire.h"
#include "proxy/anscache.h"
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
	struct px_acache *c = NULL;
	uint8_t q[512], r[512], out[65535], q2[512];
	struct codec_view v, v2;

	assert_int_equal(px__acache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 0x1111, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 300, 0);
	scan(q, ql, &v);
	assert_int_equal(px__acache_get(c, q, &v, 1000, 0, 1232, out), -ENOENT);
	px__acache_put(c, q, &v, r, rl, 1000, 0);

	size_t q2l = query(q2, 0x2222, NAME_UP, NLEN, true, false);
	scan(q2, q2l, &v2);
	ssize_t n = px__acache_get(c, q2, &v2, 1000 + 42500, 0, 1232, out);
	assert_int_equal(n, (ssize_t)rl);
	assert_int_equal(codec_get_u16(out), 0x2222);
	assert_false(out[2] & 0x01); /* RD as the client sent it */
	assert_memory_equal(out + 12, NAME_UP, NLEN);
	struct codec_view ov;
	scan(out, (size_t)n, &ov);
	assert_int_equal(codec_get_u32(out + ov.an_off + 6), 300 - 42);
	px__acache_free(c);
}

static void test_acache_expiry_generation_and_size_limits(void **state)
{
	(void)state;
	struct px_acache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px__acache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	size_t rl = answer(r, q, ql, true, 10, 0);
	scan(q, ql, &v);
	px__acache_put(c, q, &v, r, rl, 0, 7);
	assert_true(px__acache_get(c, q, &v, 9999, 7, 1232, out) > 0);
	/* Expired at the TTL. */
	assert_int_equal(px__acache_get(c, q, &v, 10000, 7, 1232, out), -ENOENT);
	/* Another generation (a NOTIFY came) is a miss. */
	px__acache_put(c, q, &v, r, rl, 0, 7);
	assert_int_equal(px__acache_get(c, q, &v, 1, 8, 1232, out), -ENOENT);
	/* Larger than the client's UDP size: BIND must truncate, not us. */
	px__acache_put(c, q, &v, r, rl, 0, 8);
	assert_int_equal(px__acache_get(c, q, &v, 1, 8, rl - 1, out), -EMSGSIZE);
	px__acache_free(c);
}

static void test_acache_keeps_only_plain_questions_and_answers(void **state)
{
	(void)state;
	struct px_acache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px__acache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 1, NAME, NLEN, true, true);
	scan(q, ql, &v);
	/* TTL 0, SERVFAIL, TC: never kept. */
	size_t rl = answer(r, q, ql, true, 0, 0);
	px__acache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px__acache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	rl = answer(r, q, ql, true, 300, 2);
	px__acache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px__acache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	rl = answer(r, q, ql, true, 300, 0);
	r[2] |= 0x02;
	px__acache_put(c, q, &v, r, rl, 0, 0);
	assert_int_equal(px__acache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);

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
	px__acache_put(c, qc, &vc, r, rl, 0, 0);
	assert_int_equal(px__acache_get(c, qc, &vc, 0, 0, 1232, out), -ENOENT);

	/* EDNS on and off are different keys. */
	rl = answer(r, q, ql, true, 300, 0);
	px__acache_put(c, q, &v, r, rl, 0, 0);
	uint8_t qn[512];
	size_t qnl = query(qn, 1, NAME, NLEN, false, true);
	struct codec_view vn;
	scan(qn, qnl, &vn);
	assert_int_equal(px__acache_get(c, qn, &vn, 0, 0, 512, out), -ENOENT);
	assert_true(px__acache_get(c, q, &v, 0, 0, 1232, out) > 0);
	px__acache_free(c);
}

static void test_acache_lru_bound_evicts_oldest(void **state)
{
	(void)state;
	struct px_acache *c = NULL;
	uint8_t q[512], r[512], out[65535];
	struct codec_view v;
	char name[32];

	/* Room for a handful of entries only. */
	assert_int_equal(px__acache_new(&c, 1000), 0);
	for (int i = 0; i < 50; i++) {
		int l = snprintf(name + 1, sizeof(name) - 1, "n%02d", i);
		name[0] = (char)l;
		memcpy(name + 1 + l, "\4test", 6);
		size_t nl = (size_t)l + 1 + 6;
		size_t ql = query(q, 1, name, nl, true, true);
		size_t rl = answer(r, q, ql, true, 300, 0);
		scan(q, ql, &v);
		px__acache_put(c, q, &v, r, rl, 0, 0);
		/* The newest is always there. */
		assert_true(px__acache_get(c, q, &v, 0, 0, 1232, out) > 0);
	}
	/* The first ones were evicted. */
	int l = snprintf(name + 1, sizeof(name) - 1, "n%02d", 0);
	name[0] = (char)l;
	memcpy(name + 1 + l, "\4test", 6);
	size_t ql = query(q, 1, name, (size_t)l + 7, true, true);
	scan(q, ql, &v);
	assert_int_equal(px__acache_get(c, q, &v, 0, 0, 1232, out), -ENOENT);
	px__acache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_acache_hit_gets_client_id_case_and_aged_ttl),
	        cmocka_unit_test(test_acache_expiry_generation_and_size_limits),
	        cmocka_unit_test(test_acache_keeps_only_plain_questions_and_answers),
	        cmocka_unit_test(test_acache_lru_bound_evicts_oldest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
