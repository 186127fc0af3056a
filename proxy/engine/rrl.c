/* proxy/engine/rrl.c - the response rate limiting table (see rrl.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/khash.h"
#include "codec/wire.h"
#include "proxy/engine/rrl.h"

#define PX_RRL_SETS (PX_RRL_ENTRIES / PX_RRL_WAYS)
_Static_assert((PX_RRL_SETS & (PX_RRL_SETS - 1)) == 0, "PX_RRL_ENTRIES / WAYS: a power of two");
_Static_assert((uint64_t)PX_RRL_RATE_MAX *PX_RRL_TOKEN <= UINT32_MAX, "tokens fit 32 bits");

/* Key tags: the family in the top byte, so an IPv4 /24 and an IPv6 /56
 * with the same bits are different prefixes, and 0 means "empty". */
#define KEY_V4 (UINT64_C(4) << 56)
#define KEY_V6 (UINT64_C(6) << 56)

struct px_rrl_entry {
	uint64_t key;     /* 0: empty */
	uint64_t last_ms; /* when tokens was last brought up to date */
	uint32_t tokens;  /* thousandths of an answer */
	uint32_t limited; /* answers refused so far: every slip-th one slips */
};

struct px_rrl {
	uint32_t rate; /* answers per second = thousandths per millisecond */
	uint32_t cap;  /* rate * PX_RRL_TOKEN: one second's worth, the burst */
	uint32_t slip;
	uint64_t seed;
	struct px_rrl_entry *tab; /* PX_RRL_SETS sets of PX_RRL_WAYS */
};

int px_rrl_new(struct px_rrl **out, unsigned rate, unsigned slip, uint64_t seed)
{
	struct px_rrl *r;

	*out = NULL;
	if (rate == 0 || rate > PX_RRL_RATE_MAX)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->tab = calloc(PX_RRL_ENTRIES, sizeof(*r->tab));
	if (r->tab == NULL) {
		free(r);
		return -ENOMEM;
	}
	r->rate = rate;
	r->cap = rate * PX_RRL_TOKEN;
	r->slip = slip;
	r->seed = seed;
	*out = r;
	return 0;
}

int px_rrl_new_random(struct px_rrl **out, unsigned rate, unsigned slip)
{
	struct codec_hkey key;

	/* The seed only has to be unknown to clients. */
	codec_hkey_random(&key);
	uint64_t seed = key.k0 ^ key.k1;
	return px_rrl_new(out, rate, slip, seed);
}

void px_rrl_free(struct px_rrl *r)
{
	if (r == NULL)
		return;
	free(r->tab);
	free(r);
}

uint64_t px_rrl_key(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const uint8_t *a = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
		return KEY_V4 | (uint64_t)a[0] << 16 | (uint64_t)a[1] << 8 | a[2];
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		uint64_t k = 0;
		for (int i = 0; i < 7; i++)
			k = k << 8 | a[i];
		return KEY_V6 | k;
	}
	return 0;
}

/* MurmurHash3's 64-bit finaliser over the keyed prefix: cheap, and every
 * key bit reaches the set index. */
static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= UINT64_C(0xff51afd7ed558ccd);
	k ^= k >> 33;
	k *= UINT64_C(0xc4ceb9fe1a85ec53);
	k ^= k >> 33;
	return k;
}

/* The entry's tokens as of now (not stored). */
static uint32_t tokens_now(const struct px_rrl *r, const struct px_rrl_entry *e, uint64_t now_ms)
{
	uint64_t dt = now_ms > e->last_ms ? now_ms - e->last_ms : 0;

	/* A second refills any bucket, and bounding dt keeps the product
	 * far from overflow. */
	if (dt >= 1000)
		return r->cap;
	uint64_t t = e->tokens + dt * r->rate;
	return t > r->cap ? r->cap : (uint32_t)t;
}

enum px_rrl_verdict px_rrl_check(struct px_rrl *r, const struct sockaddr *peer, uint64_t now_ms)
{
	uint64_t key = px_rrl_key(peer);

	if (key == 0)
		return PX_RRL_PASS;
	struct px_rrl_entry *set = &r->tab[(mix(key ^ r->seed) & (PX_RRL_SETS - 1)) * PX_RRL_WAYS];
	struct px_rrl_entry *e = NULL, *victim = NULL;
	uint64_t victim_tokens = 0;

	for (unsigned i = 0; i < PX_RRL_WAYS; i++) {
		if (set[i].key == key) {
			e = &set[i];
			break;
		}
		/* An empty way counts as more than a full bucket. */
		uint64_t t =
		        set[i].key == 0 ? (uint64_t)r->cap + 1 : tokens_now(r, &set[i], now_ms);
		if (victim == NULL || t > victim_tokens) {
			victim = &set[i];
			victim_tokens = t;
		}
	}
	if (e == NULL) {
		/* A prefix not seen lately starts with a full bucket. */
		*victim = (struct px_rrl_entry){.key = key, .last_ms = now_ms, .tokens = r->cap};
		e = victim;
	} else {
		e->tokens = tokens_now(r, e, now_ms);
		if (now_ms > e->last_ms)
			e->last_ms = now_ms;
	}
	if (e->tokens >= PX_RRL_TOKEN) {
		e->tokens -= PX_RRL_TOKEN;
		return PX_RRL_PASS;
	}
	e->limited++;
	if (r->slip != 0 && e->limited % r->slip == 0)
		return PX_RRL_SLIP;
	return PX_RRL_DROP;
}

ssize_t px_rrl_slip_reply(const uint8_t *query, size_t qlen, const struct codec_view *v,
                          uint8_t *out, size_t outlen)
{
	ssize_t n = codec_build_error(query, qlen, v, CODEC_RCODE_NOERROR, CODEC_EDE_NONE, NULL,
	                              out, outlen);

	if (n >= CODEC_HDR_LEN)
		out[2] |= CODEC_FLAG_TC >> 8;
	return n;
}
