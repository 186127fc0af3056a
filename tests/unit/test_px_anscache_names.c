/* Unit tests for proxy/anscache: answers whose names would change as
 * they are served from the cache (compression pointers into a TTL or the
 * header) are not kept. Found by fuzz_px_acache. */
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
 * by fuzz_px_acache (corpus: crash-owner-pointer-into-ttl). */
static void test_acache_refuses_names_read_through_patched_octets(void **state)
{
	(void)state;
	struct px_acache *c = NULL;
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
		assert_int_equal(px__acache_new(&c, 1 << 20), 0);
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
		px__acache_put(c, q, &v, r, rl, 1000, 0);
		ssize_t n = px__acache_get(c, q, &v, 3000, 0, 1232, out);
		if (cases[i].kept != (n > 0))
			fail_msg("%s: %s", cases[i].what, n > 0 ? "kept" : "not kept");
		px__acache_free(c);
	}
}

/* An answer to another question of the same length is not kept under
 * this one: serving writes the client's name over it, and a name read
 * through the question would change. Found by fuzz_px_acache (corpus:
 * crash-other-question-name). */
static void test_acache_refuses_answer_to_another_question(void **state)
{
	(void)state;
	struct px_acache *c = NULL;
	uint8_t q[512], q_other[512], r[512], out[65535];
	struct codec_view v;

	assert_int_equal(px__acache_new(&c, 1 << 20), 0);
	size_t ql = query(q, 7, NAME, NLEN, false, true);
	size_t qol = query(q_other, 7, "\4mall\7example\4test\0", NLEN, false, true);
	size_t rl = answer(r, q_other, qol, false, 300, 0);
	scan(q, ql, &v);
	px__acache_put(c, q, &v, r, rl, 1000, 0);
	assert_int_equal(px__acache_get(c, q, &v, 1000, 0, 1232, out), -ENOENT);
	/* Its own answer is kept, whatever the case of the letters. */
	rl = answer(r, q, ql, false, 300, 0);
	memcpy(r + 12, NAME_UP, NLEN);
	px__acache_put(c, q, &v, r, rl, 1000, 0);
	assert_int_equal(px__acache_get(c, q, &v, 1000, 0, 1232, out), (ssize_t)rl);
	px__acache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_acache_refuses_names_read_through_patched_octets),
	        cmocka_unit_test(test_acache_refuses_answer_to_another_question),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
