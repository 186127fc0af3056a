/* tests/fuzz/fuzz_codec_proxyv2.c - libFuzzer target for the PROXY
 * protocol v2 header parser (codec_pp2_parse), as the UDP listener
 * calls it on a whole datagram and the connection reader on the bytes
 * read so far.
 *
 * Input: the bytes at the start of a datagram or a connection, a header
 * and whatever follows it. Seeds (tests/fuzz/corpus/codec_proxyv2/,
 * written by tests/fuzz/seeds_codec_proxyv2.py) are the headers dnsdist
 * and haproxy send, LOCAL health checks, TLVs, and broken headers.
 *
 * Invariants, each checked with abort(): a header's length lies within
 * 16..CODEC_PP2_MAX_LEN and within the input, and agrees with its length
 * field; every shorter prefix of a valid header is "incomplete" (0), so
 * a stream reader that gets it byte by byte reaches the same verdict; an
 * incomplete input is shorter than the length its fixed part announces;
 * an error stays the same error whatever bytes follow; an address is
 * IPv4 or IPv6 and never an IPv4-mapped IPv6 one; every result has a
 * description.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/proxyv2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_addr(const union codec_pp2_addr *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	check(a->sa.sa_family == AF_INET || a->sa.sa_family == AF_INET6);
	if (a->sa.sa_family == AF_INET6)
		check(memcmp(&a->in6.sin6_addr, mapped, sizeof(mapped)) != 0);
}

static void check_valid(const uint8_t *data, size_t size, int rc, const struct codec_pp2 *p)
{
	struct codec_pp2 q;

	check(rc >= CODEC_PP2_FIXED_LEN && rc <= CODEC_PP2_MAX_LEN && (size_t)rc <= size);
	check(p->len == (size_t)rc);
	check((size_t)rc == CODEC_PP2_FIXED_LEN + ((size_t)data[14] << 8 | data[15]));
	check(p->cmd == CODEC_PP2_LOCAL || p->cmd == CODEC_PP2_PROXY);
	check(!p->has_addr || p->cmd == CODEC_PP2_PROXY);
	if (p->has_addr) {
		check_addr(&p->src);
		check_addr(&p->dst);
		check(p->src.sa.sa_family == p->dst.sa.sa_family ||
		      /* one side mapped, the other not */ (data[13] >> 4) == 2);
	}
	/* Prefixes: the fixed part, one byte short, and a few in between. */
	const size_t cuts[] = {0, 1, 12, 13, 15, 16, (size_t)rc / 2, (size_t)rc - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		if (cuts[i] < (size_t)rc)
			check(codec_pp2_parse(data, cuts[i], &q) == 0);
	}
	/* What follows the header does not change it. */
	check(codec_pp2_parse(data, (size_t)rc, &q) == rc);
	check(q.cmd == p->cmd && q.has_addr == p->has_addr);
	if (p->has_addr)
		check(memcmp(&q.src, &p->src, sizeof(q.src)) == 0 &&
		      memcmp(&q.dst, &p->dst, sizeof(q.dst)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_pp2 p;
	int rc = codec_pp2_parse(data, size, &p);

	check(codec_pp2_strerror(rc) != NULL);
	if (rc > 0) {
		check_valid(data, size, rc, &p);
	} else if (rc == 0) {
		/* Short of the fixed part, or of the length it announces. */
		check(size < CODEC_PP2_FIXED_LEN ||
		      size < CODEC_PP2_FIXED_LEN + ((size_t)data[14] << 8 | data[15]));
		check(size < CODEC_PP2_MAX_LEN);
	} else {
		check(rc == -EBADMSG || rc == -EPROTONOSUPPORT || rc == -EOPNOTSUPP ||
		      rc == -EAFNOSUPPORT || rc == -EINVAL || rc == -EILSEQ || rc == -EMSGSIZE);
		/* More bytes never change a verdict: a stream reader may
		 * close as soon as it has one. */
		if (size <= 4096) {
			static uint8_t more[4096 + 64];
			memcpy(more, data, size);
			memset(more + size, 0, 64);
			check(codec_pp2_parse(more, size + 64, &p) == rc);
		}
	}
	return 0;
}
