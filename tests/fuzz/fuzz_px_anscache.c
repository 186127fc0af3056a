/* tests/fuzz/fuzz_px_anscache.c - BIND's answers through the answer cache
 * (proxy/engine/anscache.c): what apexd does with a backend response besides
 * relaying it and flattening it (fuzz_flat_rewrite covers that part).
 *
 * Input layout:
 *   byte 0   bits 0-2 age at the final lookup: 0, 1, 30, 59, 60, 299,
 *            3600 s or 2^31 s
 *            bit 3 the generation moves on before it (a NOTIFY): a miss
 *            bit 4 the final lookup spells the name in another case
 *            bit 5 a 1 KiB cache, so entries are evicted or refused
 *            bits 6-7 the client's size: 512, 1232, 4096, 65535
 *   bytes 1-2 query length, then the query, then BIND's answers to it,
 *            separated by the 4 octets c0 fe c0 fe, stored in turn
 *
 * After each store the query is looked up at once: a hit is exactly the
 * answer just stored (or, when that one was not kept, the one before),
 * with the client's ID, RD bit and name. The same answer is stored under
 * the query with CD flipped too, for a second entry to evict. The final
 * lookup, aged, must serve that answer with every TTL lowered by the age
 * and still above 0 (none wraps), within the client's size, or miss; a
 * new generation must miss. Whatever is served must scan.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/wire.h"
#include "proxy/engine/anscache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CTL_AGE 0x07
#define CTL_NEW_GEN 0x08
#define CTL_RECASE 0x10
#define CTL_SMALL 0x20
#define CTL_SIZE_SHIFT 6

#define CACHE_BYTES (1u << 20)
#define SMALL_CACHE_BYTES 1024u
#define START_MS 1000000u

static const uint8_t sep[4] = {0xc0, 0xfe, 0xc0, 0xfe};

static void check(int cond)
{
	if (!cond)
		abort();
}

/* What a hit must be: resp with the client's ID, RD and name, and every
 * TTL but OPT's lowered by age. False when resp cannot be a kept answer
 * to q (it does not scan, has another name length, or a TTL not above
 * the age); a kept one (strict) must be. */
static int expected(const uint8_t *q, const struct codec_view *qv, const uint8_t *resp, size_t rlen,
                    uint32_t age, bool strict, uint8_t *out)
{
	struct codec_view rv;

	if (codec_scan(resp, rlen, &rv) < 0 || rv.qname_off != CODEC_HDR_LEN ||
	    rv.qname_len != qv->qname_len) {
		check(!strict);
		return 0;
	}
	memcpy(out, resp, rlen);
	out[0] = q[0];
	out[1] = q[1];
	out[2] = (uint8_t)((out[2] & ~0x01) | (q[2] & 0x01));
	memcpy(out + CODEC_HDR_LEN, q + qv->qname_off, qv->qname_len);
	for (int sec = CODEC_SEC_ANSWER; sec <= CODEC_SEC_ADDITIONAL; sec++) {
		struct codec_rr_iter it;
		struct codec_rr rr;

		codec_rr_iter_init(&it, resp, rlen, &rv, (enum codec_section)sec);
		while (codec_rr_next(&it, &rr) == 1) {
			if (rr.type == CODEC_TYPE_OPT)
				continue;
			/* Kept for its smallest TTL, so none is below the age:
			 * served TTLs never wrap and stay above 0. */
			if (rr.ttl <= age) {
				check(!strict);
				return 0;
			}
			codec_put_u32(out + rr.ttl_off, rr.ttl - age);
		}
	}
	return 1;
}

static void check_hit(const uint8_t *q, const struct codec_view *qv, const uint8_t *resp,
                      size_t rlen, uint32_t age, const uint8_t *got, ssize_t n)
{
	static uint8_t want[CODEC_MAX_MSG];
	struct codec_view v;

	check((size_t)n == rlen);
	check(expected(q, qv, resp, rlen, age, true, want));
	check(memcmp(got, want, rlen) == 0);
	check(codec_scan(got, (size_t)n, &v) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t ages[] = {0, 1, 30, 59, 60, 299, 3600, 1u << 31};
	static const size_t sizes[] = {512, 1232, 4096, CODEC_MAX_MSG};
	static uint8_t out[CODEC_MAX_MSG];
	static uint8_t q2[CODEC_MAX_MSG];
	struct codec_view qv, qv2;
	struct px_anscache *c;

	if (size < 3)
		return 0;
	uint8_t ctl = data[0];
	size_t qlen = (size_t)data[1] << 8 | data[2];
	data += 3;
	size -= 3;
	if (qlen > size)
		qlen = size;
	const uint8_t *q = data;
	if (codec_scan(q, qlen, &qv) < 0)
		return 0;
	check(px_anscache_new(&c, (ctl & CTL_SMALL) ? SMALL_CACHE_BYTES : CACHE_BYTES) == 0);

	/* The same query with CD flipped: another key, the same answers. */
	memcpy(q2, q, qlen);
	q2[3] ^= 0x10;
	check(codec_scan(q2, qlen, &qv2) == 0);

	const uint8_t *p = data + qlen;
	size_t left = size - qlen;
	const uint8_t *cur = NULL; /* the answer a hit must be */
	size_t cur_len = 0;
	const uint64_t now = START_MS;

	for (;;) {
		const uint8_t *end = memmem(p, left, sep, sizeof(sep));
		size_t rlen = end != NULL ? (size_t)(end - p) : left;

		px_anscache_put(c, q, &qv, p, rlen, now, 1);
		ssize_t n = px_anscache_get(c, q, &qv, now, 1, CODEC_MAX_MSG, out);
		check(n == -ENOENT || n > 0);
		if (n > 0) {
			/* The new answer, or the one before when this one was
			 * not kept (the first byte that differs tells). */
			static uint8_t want[CODEC_MAX_MSG];
			if ((size_t)n == rlen && expected(q, &qv, p, rlen, 0, false, want) &&
			    memcmp(out, want, rlen) == 0) {
				cur = p;
				cur_len = rlen;
			}
			check(cur != NULL);
			check_hit(q, &qv, cur, cur_len, 0, out, n);
		} else {
			/* A miss after a hit: only a tiny cache refuses. */
			check(cur == NULL || (ctl & CTL_SMALL));
			cur = NULL;
		}
		px_anscache_put(c, q2, &qv2, p, rlen, now, 1);
		if (end == NULL)
			break;
		p = end + sizeof(sep);
		left = size - (size_t)(p - data);
	}

	/* The final lookup, aged, maybe recased, maybe a new generation. */
	uint32_t age = ages[ctl & CTL_AGE];
	size_t max = sizes[ctl >> CTL_SIZE_SHIFT];
	const uint8_t *fq = q;
	struct codec_view fv = qv;

	if (ctl & CTL_RECASE) {
		memcpy(q2, q, qlen);
		for (size_t i = qv.qname_off; i < (size_t)qv.qname_off + qv.qname_len; i++)
			if ((q2[i] | 0x20) >= 'a' && (q2[i] | 0x20) <= 'z')
				q2[i] ^= 0x20;
		check(codec_scan(q2, qlen, &fv) == 0);
		fq = q2;
	}
	ssize_t n = px_anscache_get(c, fq, &fv, now + (uint64_t)age * 1000,
	                            (ctl & CTL_NEW_GEN) ? 2 : 1, max, out);
	check(n == -ENOENT || n == -EMSGSIZE || n > 0);
	if (ctl & CTL_NEW_GEN)
		check(n == -ENOENT);
	if (n > 0) {
		check((size_t)n <= max && cur != NULL);
		check_hit(fq, &fv, cur, cur_len, age, out, n);
	} else if (n == -EMSGSIZE) {
		check(cur != NULL && cur_len > max);
	}
	px_anscache_free(c);
	return 0;
}
