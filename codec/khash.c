/* codec/khash.c - SipHash-1-3, keyed per table (see khash.h). */
#include "codec/khash.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t rotl(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = rotl(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl(s->v2, 32);
}

/* Little-endian whatever the host, so a key gives the same hashes on
 * every machine (the reference vectors hold). */
static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

uint64_t codec_khash(const struct codec_hkey *k, const void *data, size_t len)
{
	const uint8_t *p = data;
	struct sip s = {
	        .v0 = k->k0 ^ 0x736f6d6570736575ull,
	        .v1 = k->k1 ^ 0x646f72616e646f6dull,
	        .v2 = k->k0 ^ 0x6c7967656e657261ull,
	        .v3 = k->k1 ^ 0x7465646279746573ull,
	};
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = load_le64(p + i);
		s.v3 ^= m;
		sip_round(&s);
		s.v0 ^= m;
	}
	uint8_t tail[8] = {0};
	memcpy(tail, p + whole, len - whole);
	uint64_t last = load_le64(tail) | (uint64_t)len << 56;
	s.v3 ^= last;
	sip_round(&s);
	s.v0 ^= last;
	s.v2 ^= 0xff;
	sip_round(&s);
	sip_round(&s);
	sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void codec_hkey_random(struct codec_hkey *k)
{
	if (getrandom(k, sizeof(*k), GRND_NONBLOCK) == (ssize_t)sizeof(*k))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	k->k0 = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)k;
	k->k1 = ((uint64_t)(unsigned)getpid() << 32) ^ (uint64_t)(uintptr_t)&ts;
}
