/* Unit tests for flatten/cache: TTL, serve-stale, failures, prefetch,
 * the memory bound, coalescing, flushes, scoped (ECS) entries, SVCB/HTTPS
 * values and concurrent use. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flatten/cache.h"
#include "tests/unit/helpers.h"

/* A key from a wire-name literal; the literal's explicit "\0" is the root
 * label (the implicit NUL is not counted). */
#define KEY(s, t, k) key_of((const uint8_t *)(s), sizeof(s) - 1, (t), (k))
#define TKEY(s) KEY(s, CODEC_TYPE_A, FLAT_KEY_TARGET)

#define ANAME_TYPE 65401

static struct flat_cache_key key_of(const uint8_t *name, size_t len, uint16_t type,
                                    enum flat_key_kind kind)
{
	struct flat_cache_key k;

	memset(&k, 0, sizeof(k));
	k.name = name;
	k.len = len;
	k.type = type;
	k.kind = kind;
	return k;
}

/* Waiters handed to the wake callback, single-threaded tests. */
struct wakes {
	size_t calls;
	size_t n;
	uint32_t tokens[256];
};

static void collect(void *arg, const struct flat_cache_waiter *w, size_t n)
{
	struct wakes *wk = arg;

	wk->calls++;
	for (size_t i = 0; i < n; i++)
		if (wk->n < 256)
			wk->tokens[wk->n++] = w[i].token;
}

static struct wakes g_wakes;

static struct flat_cache *make(size_t max_bytes, unsigned shards, uint32_t stale_s, uint32_t fail_s)
{
	struct flat_cache_conf conf = {
	        .max_bytes = max_bytes,
	        .shards = shards,
	        .serve_stale_s = stale_s,
	        .failure_ttl_s = fail_s,
	        .wake = collect,
	        .wake_arg = &g_wakes,
	};
	struct flat_cache *c = NULL;

	memset(&g_wakes, 0, sizeof(g_wakes));
	assert_int_equal(flat_cache_new(&c, &conf), 0);
	return c;
}

static union flat_cache_value addrs(uint8_t n, uint8_t base, uint32_t ttl)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_ADDRS;
	v.result.qtype = CODEC_TYPE_A;
	v.result.n_addrs = n;
	for (uint8_t i = 0; i < n; i++) {
		v.result.addrs[i][0] = 192;
		v.result.addrs[i][1] = 0;
		v.result.addrs[i][2] = 2;
		v.result.addrs[i][3] = (uint8_t)(base + i);
	}
	v.result.ttl = ttl;
	v.result.hops = 2;
	return v;
}

static union flat_cache_value failure(uint16_t ede, const char *why)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_FAIL;
	v.result.qtype = CODEC_TYPE_A;
	v.result.ede = ede;
	snprintf(v.result.why, sizeof(v.result.why), "%s", why);
	return v;
}

static const struct flat_cache_waiter *waiter(uint32_t token)
{
	static struct flat_cache_waiter w;

	w.worker = &w;
	w.token = token;
	return &w;
}

static void test_cache_put_fresh_hit_remaining_ttl(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key upper = TKEY("\3CDN\7ExAmPlE\3NET\0");
	union flat_cache_value v = addrs(3, 10, 300);
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_get(c, &k, 1000, &hit), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_put(c, &k, &v, 1000), 0);
	assert_int_equal(flat_cache_get(c, &k, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.ttl_left, 300);
	assert_int_equal(hit.value.result.ttl, 300);
	assert_int_equal(hit.value.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(hit.value.result.qtype, CODEC_TYPE_A);
	assert_int_equal(hit.value.result.n_addrs, 3);
	assert_int_equal(hit.value.result.hops, 2);
	for (int i = 0; i < 3; i++)
		assert_memory_equal(hit.value.result.addrs[i], v.result.addrs[i], 16);

	/* 100.9 s later: ttl - whole seconds of age, any spelling of the name. */
	assert_int_equal(flat_cache_get(c, &upper, 101900, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.ttl_left, 200);
	assert_int_equal(hit.value.result.ttl, 200);
	/* Last millisecond of freshness still says at least 1. */
	memset(&g_wakes, 0, sizeof(g_wakes));
	assert_int_equal(flat_cache_get(c, &k, 300999, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(hit.ttl_left, 1);
	/* Another type or kind is another key. */
	struct flat_cache_key aaaa = KEY("\3cdn\7example\3net\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	assert_int_equal(flat_cache_get(c, &aaaa, 1000, &hit), FLAT_CACHE_MISS);
	flat_cache_free(c);
}

static void test_cache_expired_stale_then_gone(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 10);
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &v, 1000), 0);
	assert_int_equal(flat_cache_get(c, &k, 10999, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(flat_cache_abandon(c, &k), 0);
	assert_int_equal(flat_cache_get(c, &k, 11000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(hit.ttl_left, 0);
	assert_int_equal(hit.value.result.ttl, 0);
	assert_int_equal(hit.value.result.n_addrs, 1);
	assert_int_equal(hit.value.result.addrs[0][3], 1);
	assert_false(hit.has_stale);
	assert_int_equal(flat_cache_get(c, &k, 70999, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_get(c, &k, 71000, &hit), FLAT_CACHE_MISS);

	/* The dead entry was dropped on that lookup. */
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.entry_bytes, 0);
	flat_cache_free(c);
}

static void test_cache_serve_stale_zero_expires_to_miss(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 0, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 10);
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &k, 5000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k, 10000, &hit), FLAT_CACHE_MISS);

	/* A TTL of 0 is never fresh, and with serve-stale 0 never kept. */
	v.result.ttl = 0;
	assert_int_equal(flat_cache_put(c, &k, &v, 20000), 0);
	assert_int_equal(flat_cache_get(c, &k, 20000, &hit), FLAT_CACHE_MISS);
	flat_cache_free(c);
}

static void test_cache_failure_remembered_then_miss(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\4dead\7example\3net\0");
	union flat_cache_value f = failure(22, "resolver timeout");
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &f, 1000), 0);
	assert_int_equal(flat_cache_get(c, &k, 1000, &hit), FLAT_CACHE_FAIL);
	assert_false(hit.has_stale);
	assert_int_equal(hit.fail_ede, 22);
	assert_string_equal(hit.fail_why, "resolver timeout");
	assert_int_equal(hit.value.result.kind, FLAT_RES_FAIL);
	assert_int_equal(hit.value.result.ede, 22);
	assert_string_equal(hit.value.result.why, "resolver timeout");
	/* A remembered failure means no new chase. */
	assert_int_equal(flat_cache_claim(c, &k, 5999, waiter(1)), FLAT_CLAIM_READY);
	assert_int_equal(flat_cache_get(c, &k, 5999, &hit), FLAT_CACHE_FAIL);
	/* Failures are never served stale: serve-stale is 60 s here. */
	assert_int_equal(flat_cache_get(c, &k, 6000, &hit), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_claim(c, &k, 6000, waiter(1)), FLAT_CLAIM_OWNER);
	flat_cache_free(c);
}

static void test_cache_failure_over_stale_keeps_stale(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(2, 7, 10);
	union flat_cache_value f = failure(2, "SERVFAIL from resolver");
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	/* Expired: the caller claims and refreshes, the refresh fails. */
	assert_int_equal(flat_cache_get(c, &k, 20000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &k, 20000, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &k, 20000, waiter(2)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_put(c, &k, &f, 20000), 0);
	assert_int_equal(g_wakes.n, 1);
	assert_int_equal(g_wakes.tokens[0], 2);

	/* The woken waiter finds the failure plus the last good value. */
	memset(&hit, 0xa5, sizeof(hit));
	assert_int_equal(flat_cache_get(c, &k, 21000, &hit), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_int_equal(hit.fail_ede, 2);
	assert_string_equal(hit.fail_why, "SERVFAIL from resolver");
	assert_int_equal(hit.value.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(hit.value.result.n_addrs, 2);
	assert_int_equal(hit.value.result.addrs[1][3], 8);
	assert_int_equal(hit.value.result.ttl, 0);
	assert_int_equal(hit.ttl_left, 0);

	/* Failure mark over: stale again, so the next query refreshes. */
	assert_int_equal(flat_cache_get(c, &k, 25000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &k, 25000, waiter(1)), FLAT_CLAIM_OWNER);
	/* A failure near the end of serve-stale (good until 70 s). */
	assert_int_equal(flat_cache_put(c, &k, &f, 68000), 0);
	assert_int_equal(flat_cache_get(c, &k, 69999, &hit), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_int_equal(flat_cache_get(c, &k, 70000, &hit), FLAT_CACHE_FAIL);
	assert_false(hit.has_stale);
	assert_int_equal(hit.value.result.kind, FLAT_RES_FAIL);
	assert_string_equal(hit.value.result.why, "SERVFAIL from resolver");
	assert_int_equal(flat_cache_get(c, &k, 73000, &hit), FLAT_CACHE_MISS);

	/* Good value after failures: failure mark cleared. */
	assert_int_equal(flat_cache_put(c, &k, &f, 80000), 0);
	assert_int_equal(flat_cache_put(c, &k, &v, 80001), 0);
	assert_int_equal(flat_cache_get(c, &k, 80002, &hit), FLAT_CACHE_HIT);
	flat_cache_free(c);
}

static void test_cache_failure_over_fresh_still_hit(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 100);
	union flat_cache_value f = failure(22, "timeout");
	struct flat_cache_hit hit;

	/* A failed prefetch must not hide a value that is still fresh. */
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &k, 95000, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(flat_cache_put(c, &k, &f, 95500), 0);
	assert_int_equal(flat_cache_get(c, &k, 96000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.ttl_left, 4);
	/* No second prefetch for the same stored value. */
	assert_int_equal(flat_cache_get(c, &k, 97000, &hit), FLAT_CACHE_HIT);
	/* Expired within the failure mark: FAIL with the stale value. */
	assert_int_equal(flat_cache_get(c, &k, 100000, &hit), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_int_equal(flat_cache_get(c, &k, 100499, &hit), FLAT_CACHE_FAIL);
	assert_int_equal(flat_cache_get(c, &k, 100500, &hit), FLAT_CACHE_STALE);
	flat_cache_free(c);
}

static void test_cache_failure_ttl_zero_keeps_stale(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 0);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key k2 = TKEY("\4dead\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 10);
	union flat_cache_value f = failure(22, "timeout");
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_put(c, &k, &f, 20000), 0);
	assert_int_equal(flat_cache_get(c, &k, 20000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(hit.value.result.n_addrs, 1);
	/* No value, failure-ttl 0: the claim still ends, nothing is kept. */
	assert_int_equal(flat_cache_claim(c, &k2, 0, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &k2, 0, waiter(2)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_put(c, &k2, &f, 0), 0);
	assert_int_equal(g_wakes.n, 1);
	assert_int_equal(flat_cache_get(c, &k2, 0, &hit), FLAT_CACHE_MISS);
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.claims, 0);
	flat_cache_free(c);
}

static void test_cache_prefetch_near_expiry_signalled_once(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 10);
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &k, 8999, &hit), FLAT_CACHE_HIT);
	/* 90 % of the TTL: the first caller owns the refresh ... */
	assert_int_equal(flat_cache_get(c, &k, 9000, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(hit.ttl_left, 1);
	/* ... and only that one. */
	assert_int_equal(flat_cache_get(c, &k, 9001, &hit), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k, 9500, NULL), FLAT_CACHE_HIT);
	/* Still fresh: nothing to claim. */
	assert_int_equal(flat_cache_claim(c, &k, 9500, waiter(1)), FLAT_CLAIM_READY);
	/* Expired while the refresh runs: queries wait for it. */
	assert_int_equal(flat_cache_get(c, &k, 10000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &k, 10000, waiter(2)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_put(c, &k, &v, 10100), 0);
	assert_int_equal(g_wakes.n, 1);
	assert_int_equal(g_wakes.tokens[0], 2);
	/* A new stored value may be prefetched once again. */
	assert_int_equal(flat_cache_get(c, &k, 10100 + 8999, &hit), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k, 10100 + 9000, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(flat_cache_get(c, &k, 10100 + 9001, &hit), FLAT_CACHE_HIT);
	/* A refresh that never ends is taken over once pending_ms passed. */
	assert_int_equal(flat_cache_get(c, &k, 10100 + 10000, NULL), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &k, 10100 + 9000 + FLAT_CACHE_PENDING_MS, NULL),
	                 FLAT_CLAIM_OWNER);
	flat_cache_free(c);
}

/* Writes the wire name "\5nNNNN\4test\0" (12 bytes) for i. */
static size_t numbered(uint8_t *out, unsigned i)
{
	char label[6];

	snprintf(label, sizeof(label), "n%04u", i % 10000);
	out[0] = 5;
	memcpy(out + 1, label, 5);
	memcpy(out + 6, "\4test", 6); /* with the root's zero byte */
	return 12;
}

static void test_cache_lru_full_evicts_least_recently_used(void **state)
{
	(void)state;
	const size_t max = 16 * 1024;
	struct flat_cache *c = make(max, 1, 60, 5);
	union flat_cache_value v = addrs(1, 1, 300);
	struct flat_cache_stats st;
	struct flat_cache_hit hit;
	uint8_t n0[16], n1[16], n[16];
	struct flat_cache_key k0 = key_of(n0, numbered(n0, 0), CODEC_TYPE_A, FLAT_KEY_TARGET);
	struct flat_cache_key k1 = key_of(n1, numbered(n1, 1), CODEC_TYPE_A, FLAT_KEY_TARGET);

	assert_int_equal(flat_cache_put(c, &k0, &v, 0), 0);
	assert_int_equal(flat_cache_put(c, &k1, &v, 0), 0);
	for (unsigned i = 2; i < 1000; i++) {
		struct flat_cache_key k = key_of(n, numbered(n, i), CODEC_TYPE_A, FLAT_KEY_TARGET);

		assert_int_equal(flat_cache_put(c, &k, &v, i), 0);
		/* Key 0 is used all the time, key 1 never again. */
		assert_int_equal(flat_cache_get(c, &k0, i, &hit), FLAT_CACHE_HIT);
		flat_cache_stats(c, &st);
		assert_true(st.bytes <= max);
	}
	flat_cache_stats(c, &st);
	assert_true(st.evictions > 0);
	assert_true(st.entries < 998);
	assert_int_equal(flat_cache_get(c, &k1, 1000, &hit), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &k0, 1000, &hit), FLAT_CACHE_HIT);
	/* The newest survive, the oldest of the rest went. */
	struct flat_cache_key last = key_of(n, numbered(n, 999), CODEC_TYPE_A, FLAT_KEY_TARGET);
	assert_int_equal(flat_cache_get(c, &last, 1000, &hit), FLAT_CACHE_HIT);
	struct flat_cache_key early = key_of(n, numbered(n, 2), CODEC_TYPE_A, FLAT_KEY_TARGET);
	assert_int_equal(flat_cache_get(c, &early, 1000, &hit), FLAT_CACHE_MISS);
	print_message("lru: %zu entries in %zu of %zu bytes after %llu evictions\n", st.entries,
	              st.bytes, max, (unsigned long long)st.evictions);
	flat_cache_free(c);
}

static void test_cache_entry_cost_small(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 1, 60, 5);
	/* 20 bytes of wire name. */
	struct flat_cache_key k = TKEY("\6target\7example\3com\0");
	union flat_cache_value v = addrs(1, 1, 300);
	struct flat_cache_stats before, after;

	assert_int_equal(k.len, 20);
	flat_cache_stats(c, &before);
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	flat_cache_stats(c, &after);
	size_t cost = after.bytes - before.bytes;
	print_message("entry cost: %zu bytes (1 A address, 20-byte name; "
	              "sizeof(union flat_cache_value) = %zu)\n",
	              cost, sizeof(union flat_cache_value));
	assert_int_equal(after.entry_bytes, cost);
	assert_true(cost <= 300);

	/* 64 AAAA addresses still cost far less than a struct flat_result. */
	struct flat_cache_key k6 =
	        KEY("\6target\7example\3com\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	union flat_cache_value v6 = addrs(FLAT_MAX_ADDRS, 0, 300);
	v6.result.qtype = CODEC_TYPE_AAAA;
	assert_int_equal(flat_cache_put(c, &k6, &v6, 0), 0);
	flat_cache_stats(c, &before);
	print_message("entry cost: %zu bytes (64 AAAA addresses)\n", before.bytes - after.bytes);
	assert_true(before.bytes - after.bytes <= 300 + FLAT_MAX_ADDRS * 16);
	flat_cache_free(c);
}

static void test_cache_claims_coalesced_put_wakes_all(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 300);
	struct flat_cache_stats st;
	int owners = 0, pending = 0;

	for (uint32_t i = 0; i < 100; i++) {
		int rc = flat_cache_claim(c, &k, 1000 + i, waiter(i));
		owners += rc == FLAT_CLAIM_OWNER;
		pending += rc == FLAT_CLAIM_PENDING;
	}
	assert_int_equal(owners, 1);
	assert_int_equal(pending, 99);
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 1);
	assert_int_equal(st.entries, 1);
	/* A claim alone is no answer. */
	assert_int_equal(flat_cache_get(c, &k, 1100, NULL), FLAT_CACHE_MISS);

	assert_int_equal(flat_cache_put(c, &k, &v, 1200), 0);
	assert_int_equal(g_wakes.calls, 1);
	assert_int_equal(g_wakes.n, 99);
	/* Each waiter exactly once, the owner (token 0) not at all. */
	bool seen[100] = {false};
	for (size_t i = 0; i < g_wakes.n; i++) {
		assert_true(g_wakes.tokens[i] >= 1 && g_wakes.tokens[i] < 100);
		assert_false(seen[g_wakes.tokens[i]]);
		seen[g_wakes.tokens[i]] = true;
	}
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 0);
	assert_int_equal(flat_cache_get(c, &k, 1200, NULL), FLAT_CACHE_HIT);
	/* The claim is over: a later put wakes nobody. */
	assert_int_equal(flat_cache_put(c, &k, &v, 1300), 0);
	assert_int_equal(g_wakes.calls, 1);
	flat_cache_free(c);
}

static void test_cache_claim_timeout_taken_over(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = addrs(1, 1, 300);

	assert_int_equal(flat_cache_claim(c, &k, 0, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &k, 1000, waiter(2)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_claim(c, &k, FLAT_CACHE_PENDING_MS - 1, waiter(3)),
	                 FLAT_CLAIM_PENDING);
	/* The first owner died: the next claimant takes over ... */
	assert_int_equal(flat_cache_claim(c, &k, FLAT_CACHE_PENDING_MS, waiter(4)),
	                 FLAT_CLAIM_OWNER);
	/* ... with a new timeout of its own. */
	assert_int_equal(flat_cache_claim(c, &k, FLAT_CACHE_PENDING_MS + 1, waiter(5)),
	                 FLAT_CLAIM_PENDING);
	/* The new owner's put wakes everybody who waited, old and new. */
	assert_int_equal(flat_cache_put(c, &k, &v, FLAT_CACHE_PENDING_MS + 100), 0);
	assert_int_equal(g_wakes.n, 3);
	assert_int_equal(g_wakes.tokens[0], 2);
	assert_int_equal(g_wakes.tokens[1], 3);
	assert_int_equal(g_wakes.tokens[2], 5);
	flat_cache_free(c);

	/* A configured timeout is honoured. */
	struct flat_cache_conf conf = {.max_bytes = 1 << 20, .pending_ms = 50};
	assert_int_equal(flat_cache_new(&c, &conf), 0);
	assert_int_equal(flat_cache_claim(c, &k, 0, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &k, 49, NULL), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_claim(c, &k, 50, NULL), FLAT_CLAIM_OWNER);
	flat_cache_free(c);
}

static void test_cache_abandon_wakes_waiters(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_stats st;

	assert_int_equal(flat_cache_abandon(c, &k), -ENOENT);
	assert_int_equal(flat_cache_claim(c, &k, 0, waiter(1)), FLAT_CLAIM_OWNER);
	for (uint32_t t = 2; t <= 4; t++)
		assert_int_equal(flat_cache_claim(c, &k, 10, waiter(t)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_abandon(c, &k), 0);
	assert_int_equal(g_wakes.calls, 1);
	assert_int_equal(g_wakes.n, 3);
	/* The placeholder is gone; the next one to claim owns the chase. */
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.claims, 0);
	assert_int_equal(st.entry_bytes, 0);
	assert_int_equal(flat_cache_get(c, &k, 20, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_claim(c, &k, 20, waiter(2)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_abandon(c, &k), 0);
	assert_int_equal(flat_cache_abandon(c, &k), -ENOENT);
	assert_int_equal(g_wakes.calls, 1);

	/* Abandoning a stale refresh leaves the stale value in place. */
	union flat_cache_value v = addrs(1, 1, 10);
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_claim(c, &k, 11000, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_abandon(c, &k), 0);
	assert_int_equal(flat_cache_get(c, &k, 11000, NULL), FLAT_CACHE_STALE);
	flat_cache_free(c);
}

static void test_cache_flush_suffix_removes_zone_only(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	union flat_cache_value v = addrs(1, 1, 300);
	union flat_cache_value f = failure(22, "timeout");
	union flat_cache_value p;
	struct flat_cache_key in[] = {
	        TKEY("\7example\3com\0"),
	        TKEY("\3www\7example\3com\0"),
	        TKEY("\1a\1B\7Example\3COM\0"),
	        KEY("\3www\7example\3com\0", ANAME_TYPE, FLAT_KEY_PRESENCE),
	};
	struct flat_cache_key out[] = {
	        TKEY("\12notexample\3com\0"),
	        TKEY("\7example\3net\0"),
	        TKEY("\3com\0"),
	        TKEY("\7example\3com\3org\0"),
	};
	struct flat_cache_stats st;

	memset(&p, 0, sizeof(p));
	p.presence.present = false;
	p.presence.ttl = 300;
	for (size_t i = 0; i < 4; i++) {
		if (in[i].kind == FLAT_KEY_PRESENCE)
			assert_int_equal(flat_cache_put(c, &in[i], &p, 0), 0);
		else
			assert_int_equal(flat_cache_put(c, &in[i], i == 2 ? &f : &v, 0), 0);
		assert_int_equal(flat_cache_put(c, &out[i], &v, 0), 0);
	}
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\7EXAMPLE\3com", 13), 4);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(flat_cache_get(c, &in[i], 1, NULL), FLAT_CACHE_MISS);
		assert_int_equal(flat_cache_get(c, &out[i], 1, NULL), FLAT_CACHE_HIT);
	}
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\7example\3com", 13), 0);
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\7example\3com", 12),
	                 -EINVAL);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 4);

	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.entry_bytes, 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(flat_cache_get(c, &out[i], 1, NULL), FLAT_CACHE_MISS);
	flat_cache_free(c);
}

static void test_cache_flush_name_removes_that_name_only(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	union flat_cache_value v = addrs(1, 1, 300);
	union flat_cache_value p;
	struct flat_cache_key a = TKEY("\3www\7example\3com\0");
	struct flat_cache_key aaaa = KEY("\3www\7example\3com\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	struct flat_cache_key pres = KEY("\3www\7example\3com\0", ANAME_TYPE, FLAT_KEY_PRESENCE);
	struct flat_cache_key below = TKEY("\1a\3www\7example\3com\0");
	struct flat_cache_key above = TKEY("\7example\3com\0");

	memset(&p, 0, sizeof(p));
	p.presence.ttl = 300;
	assert_int_equal(flat_cache_put(c, &a, &v, 0), 0);
	assert_int_equal(flat_cache_put(c, &pres, &p, 0), 0);
	assert_int_equal(flat_cache_put(c, &below, &v, 0), 0);
	assert_int_equal(flat_cache_put(c, &above, &v, 0), 0);
	/* The AAAA key only claimed: its placeholder survives the flush. */
	assert_int_equal(flat_cache_claim(c, &aaaa, 0, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_flush_name(c, (const uint8_t *)"\3WWW\7example\3com", 17), 2);
	assert_int_equal(flat_cache_get(c, &a, 1, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &pres, 1, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &below, 1, NULL), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &above, 1, NULL), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_claim(c, &aaaa, 1, NULL), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_flush_name(c, (const uint8_t *)"\3www", 4), -EINVAL);
	assert_int_equal(flat_cache_abandon(c, &aaaa), 0);
	flat_cache_free(c);
}

static void test_cache_peek_reports_without_side_effects(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	union flat_cache_value v = addrs(2, 7, 100);
	union flat_cache_value f = failure(22, "no resolver answered");
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_peek pk;
	struct flat_cache_hit hit;

	assert_int_equal(flat_cache_peek(c, &k, 0, &pk), 0);
	assert_false(pk.found);
	assert_int_equal(pk.status, FLAT_CACHE_MISS);

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	/* Past the prefetch threshold: peek must not take the refresh. */
	assert_int_equal(flat_cache_peek(c, &k, 95000, &pk), 0);
	assert_true(pk.found);
	assert_int_equal(pk.status, FLAT_CACHE_HIT);
	assert_true(pk.fresh);
	assert_int_equal(pk.ttl_s, 100);
	assert_int_equal(pk.ttl_left, 5);
	assert_int_equal(pk.value.result.n_addrs, 2);
	assert_int_equal(pk.value.result.addrs[1][3], 8);
	assert_int_equal(pk.value.result.hops, 2);
	assert_false(pk.claimed);
	assert_int_equal(flat_cache_get(c, &k, 95000, &hit), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(flat_cache_peek(c, &k, 95000, &pk), 0);
	assert_true(pk.claimed);
	assert_int_equal(pk.waiters, 0);

	/* Expired: stale within serve-stale, then a failure over it. */
	assert_int_equal(flat_cache_peek(c, &k, 130000, &pk), 0);
	assert_int_equal(pk.status, FLAT_CACHE_STALE);
	assert_true(pk.stale_ok);
	assert_false(pk.fresh);
	assert_int_equal(pk.stale_left, 30);
	assert_int_equal(pk.value.result.ttl, 0);
	assert_int_equal(flat_cache_put(c, &k, &f, 130000), 0);
	assert_int_equal(flat_cache_peek(c, &k, 131000, &pk), 0);
	assert_int_equal(pk.status, FLAT_CACHE_FAIL);
	assert_true(pk.failing);
	assert_true(pk.stale_ok);
	assert_int_equal(pk.fail_left, 4);
	assert_int_equal(pk.fail_ede, 22);
	assert_string_equal(pk.fail_why, "no resolver answered");
	assert_false(pk.claimed); /* the put ended the prefetch claim */

	/* Long dead: peek leaves the entry alone (get drops it). */
	assert_int_equal(flat_cache_peek(c, &k, 1000000, &pk), 0);
	assert_true(pk.found);
	assert_int_equal(pk.status, FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &k, 1000000, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_peek(c, &k, 1000000, &pk), 0);
	assert_false(pk.found);

	struct flat_cache_key bad =
	        key_of((const uint8_t *)"\3www", 4, CODEC_TYPE_A, FLAT_KEY_TARGET);
	assert_int_equal(flat_cache_peek(c, &bad, 0, &pk), -EINVAL);
	flat_cache_free(c);
}

static void test_cache_flush_keeps_claims_waiters_woken(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k = TKEY("\3www\7example\3com\0");
	union flat_cache_value v = addrs(1, 1, 10);
	struct flat_cache_stats st;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(flat_cache_claim(c, &k, 10000, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &k, 10000, waiter(2)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\7example\3com", 13), 1);
	/* The stale value is gone, the claim is not. */
	assert_int_equal(flat_cache_get(c, &k, 10000, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_claim(c, &k, 10000, waiter(3)), FLAT_CLAIM_PENDING);
	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 1);
	assert_int_equal(flat_cache_put(c, &k, &v, 10001), 0);
	assert_int_equal(g_wakes.n, 2);
	assert_int_equal(flat_cache_get(c, &k, 10001, NULL), FLAT_CACHE_HIT);
	flat_cache_free(c);
}

static void test_cache_presence_entries_separate_from_targets(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key pk = KEY("\7Example\3com\0", ANAME_TYPE, FLAT_KEY_PRESENCE);
	struct flat_cache_key pk2 = KEY("\7example\3com\0", 65305, FLAT_KEY_PRESENCE);
	struct flat_cache_key tk = KEY("\7example\3com\0", ANAME_TYPE, FLAT_KEY_TARGET);
	static const uint8_t target[] = "\3cdn\6target\4test";
	union flat_cache_value p;
	struct flat_cache_hit hit;

	memset(&p, 0, sizeof(p));
	p.presence.present = true;
	p.presence.n_targets = 1;
	p.presence.targets_len = sizeof(target);
	memcpy(p.presence.targets, target, sizeof(target));
	p.presence.ttl = 3600;
	assert_int_equal(flat_cache_put(c, &pk, &p, 0), 0);
	assert_int_equal(flat_cache_get(c, &tk, 1, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &pk2, 1, NULL), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_get(c, &pk, 60000, &hit), FLAT_CACHE_HIT);
	assert_true(hit.value.presence.present);
	assert_int_equal(hit.value.presence.n_targets, 1);
	assert_int_equal(hit.value.presence.targets_len, sizeof(target));
	assert_memory_equal(hit.value.presence.targets, target, sizeof(target));
	assert_int_equal(hit.value.presence.ttl, 3540);
	assert_int_equal(hit.ttl_left, 3540);

	/* A pool (issue 17): every target comes back, in the order stored;
	 * a count that does not match the names is refused. */
	static const uint8_t pool[] = "\1a\3net\0\1b\3net\0\1c\3org";
	struct flat_cache_key pk3 = KEY("\4shop\7example\3com\0", ANAME_TYPE, FLAT_KEY_PRESENCE);
	p.presence.n_targets = 3;
	p.presence.targets_len = sizeof(pool);
	memcpy(p.presence.targets, pool, sizeof(pool));
	assert_int_equal(flat_cache_put(c, &pk3, &p, 0), 0);
	assert_int_equal(flat_cache_get(c, &pk3, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.presence.n_targets, 3);
	assert_int_equal(hit.value.presence.targets_len, sizeof(pool));
	assert_memory_equal(hit.value.presence.targets, pool, sizeof(pool));
	p.presence.n_targets = 2;
	assert_int_equal(flat_cache_put(c, &pk3, &p, 0), -EINVAL);
	p.presence.n_targets = 1;

	/* A negative presence answer, cached for its (RFC 2308) TTL. */
	memset(&p, 0, sizeof(p));
	p.presence.ttl = 60;
	assert_int_equal(flat_cache_put(c, &pk2, &p, 0), 0);
	assert_int_equal(flat_cache_get(c, &pk2, 1000, &hit), FLAT_CACHE_HIT);
	assert_false(hit.value.presence.present);
	assert_int_equal(hit.value.presence.targets_len, 0);
	assert_int_equal(hit.ttl_left, 59);
	assert_int_equal(flat_cache_get(c, &pk2, 60000, &hit), FLAT_CACHE_STALE);

	/* Presence keys coalesce too. */
	assert_int_equal(flat_cache_claim(c, &pk2, 60000, waiter(1)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &pk2, 60000, waiter(2)), FLAT_CLAIM_PENDING);
	p.presence.present = true;
	p.presence.n_targets = 1;
	p.presence.targets_len = sizeof(target);
	memcpy(p.presence.targets, target, sizeof(target));
	assert_int_equal(flat_cache_put(c, &pk2, &p, 60001), 0);
	assert_int_equal(g_wakes.n, 1);
	assert_int_equal(flat_cache_get(c, &pk2, 60001, &hit), FLAT_CACHE_HIT);
	assert_true(hit.value.presence.present);
	flat_cache_free(c);
}

/* Writes the wire name "\11fNNNNNNNN\4test\0" (16 bytes) for i: more
 * unique names than numbered() has. */
static size_t flood_name(uint8_t *out, unsigned long i)
{
	char label[10];

	snprintf(label, sizeof(label), "f%08lu", i % 100000000UL);
	out[0] = 9;
	memcpy(out + 1, label, 9);
	memcpy(out + 10, "\4test", 6);
	return 16;
}

static union flat_cache_value presence_of(bool present, uint32_t ttl)
{
	static const uint8_t target[] = "\3www\3cdn\4test";
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.presence.present = present;
	if (present) {
		v.presence.n_targets = 1;
		v.presence.targets_len = sizeof(target);
		memcpy(v.presence.targets, target, sizeof(target));
	}
	v.presence.ttl = ttl;
	return v;
}

/*
 * A random-subdomain flood: every unique name in a configured zone that
 * BIND answers NODATA for (a wildcard of another type) leaves a negative
 * presence entry. 200 000 of them, in a cache that holds a few thousand
 * entries, must not evict the chased targets nor the owners known to
 * hold an ANAME, although nobody touches those during the flood.
 */
static void test_cache_presence_flood_keeps_targets_and_positives(void **state)
{
	(void)state;
	const size_t max = 256 * 1024;
	const unsigned keep = 32;
	struct flat_cache *c = make(max, 4, 86400, 5);
	union flat_cache_value tv = addrs(2, 1, 3600);
	union flat_cache_value pos = presence_of(true, 3600);
	union flat_cache_value neg = presence_of(false, 300);
	struct flat_cache_stats st;
	struct flat_cache_hit hit;
	uint8_t n[16];

	for (unsigned i = 0; i < keep; i++) {
		struct flat_cache_key tk = key_of(n, numbered(n, i), CODEC_TYPE_A, FLAT_KEY_TARGET);
		assert_int_equal(flat_cache_put(c, &tk, &tv, 0), 0);
		struct flat_cache_key pk =
		        key_of(n, numbered(n, 5000 + i), ANAME_TYPE, FLAT_KEY_PRESENCE);
		assert_int_equal(flat_cache_put(c, &pk, &pos, 0), 0);
	}
	const unsigned long flood = 200000;
	for (unsigned long i = 0; i < flood; i++) {
		struct flat_cache_key fk =
		        key_of(n, flood_name(n, i), ANAME_TYPE, FLAT_KEY_PRESENCE);
		assert_int_equal(flat_cache_put(c, &fk, &neg, 1000 + i / 100), 0);
		if (i % 4096 == 0) {
			flat_cache_stats(c, &st);
			assert_true(st.bytes <= max);
		}
	}
	uint64_t now = 1000 + flood / 100;
	flat_cache_stats(c, &st);
	print_message("presence flood: %lu negative entries put, %zu entries kept in %zu of %zu "
	              "bytes, %llu evictions\n",
	              flood, st.entries, st.bytes, max, (unsigned long long)st.evictions);
	assert_true(st.bytes <= max);
	assert_true(st.evictions > 0);
	/* The flood stayed in the presence store's share, and paid for itself. */
	assert_true(st.presence_bytes <= max / 100 * FLAT_CACHE_PRESENCE_PCT);
	assert_int_equal(st.presence_evictions, st.evictions);
	assert_true(st.presence_entries > keep);
	for (unsigned i = 0; i < keep; i++) {
		struct flat_cache_key tk = key_of(n, numbered(n, i), CODEC_TYPE_A, FLAT_KEY_TARGET);
		assert_int_equal(flat_cache_get(c, &tk, now, &hit), FLAT_CACHE_HIT);
		assert_int_equal(hit.value.result.n_addrs, 2);
		struct flat_cache_key pk =
		        key_of(n, numbered(n, 5000 + i), ANAME_TYPE, FLAT_KEY_PRESENCE);
		assert_int_equal(flat_cache_get(c, &pk, now, &hit), FLAT_CACHE_HIT);
		assert_true(hit.value.presence.present);
	}
	/* Negative entries are still kept (the newest), in their own share. */
	struct flat_cache_key last =
	        key_of(n, flood_name(n, flood - 1), ANAME_TYPE, FLAT_KEY_PRESENCE);
	assert_int_equal(flat_cache_get(c, &last, now, &hit), FLAT_CACHE_HIT);
	assert_false(hit.value.presence.present);
	flat_cache_free(c);
}

/* What get says for presence key i: flood_name(i) if flood, else
 * numbered(i). */
static int pres_get(struct flat_cache *c, bool flood, unsigned long i, uint64_t now)
{
	uint8_t n[16];
	size_t len = flood ? flood_name(n, i) : numbered(n, (unsigned)i);
	struct flat_cache_key k = key_of(n, len, ANAME_TYPE, FLAT_KEY_PRESENCE);

	return flat_cache_get(c, &k, now, NULL);
}

static void pres_put(struct flat_cache *c, bool flood, unsigned long i,
                     const union flat_cache_value *v, uint64_t now)
{
	uint8_t n[16];
	size_t len = flood ? flood_name(n, i) : numbered(n, (unsigned)i);
	struct flat_cache_key k = key_of(n, len, ANAME_TYPE, FLAT_KEY_PRESENCE);

	assert_int_equal(flat_cache_put(c, &k, v, now), 0);
}

/*
 * Inside the presence store: a positive entry evicts negative ones (the
 * least recently used first) before any positive; a negative entry never
 * evicts a positive one, and is simply not kept when positives fill the
 * share.
 */
static void test_cache_presence_negatives_never_evict_positives(void **state)
{
	(void)state;
	const size_t max = 64 * 1024;
	struct flat_cache *c = make(max, 1, 60, 5);
	union flat_cache_value pos = presence_of(true, 3600);
	union flat_cache_value neg = presence_of(false, 300);
	struct flat_cache_stats st;

	for (unsigned long i = 0; i < 2000; i++)
		pres_put(c, true, i, &neg, 0);
	flat_cache_stats(c, &st);
	const size_t full = st.presence_entries; /* negatives that fit */
	assert_true(full > 20 && full < 2000);

	/* Half as many positives: each displaces the oldest negatives. */
	const unsigned half = (unsigned)full / 2;
	for (unsigned i = 0; i < half; i++)
		pres_put(c, false, i, &pos, 1);
	assert_int_equal(pres_get(c, true, 2000 - full, 1), FLAT_CACHE_MISS);
	assert_int_equal(pres_get(c, true, 1999, 1), FLAT_CACHE_HIT);

	/* 10 000 more negatives: every positive stays, negatives still kept. */
	for (unsigned long i = 10000; i < 20000; i++)
		pres_put(c, true, i, &neg, 2);
	for (unsigned i = 0; i < half; i++)
		assert_int_equal(pres_get(c, false, i, 3), FLAT_CACHE_HIT);
	assert_int_equal(pres_get(c, true, 19999, 3), FLAT_CACHE_HIT);

	/* Positives beyond the share: they evict each other, oldest first. */
	for (unsigned i = half; i < 4 * full; i++)
		pres_put(c, false, i, &pos, 4);
	assert_int_equal(pres_get(c, false, 0, 5), FLAT_CACHE_MISS);
	assert_int_equal(pres_get(c, false, 4 * (unsigned)full - 1, 5), FLAT_CACHE_HIT);
	flat_cache_stats(c, &st);
	const size_t npos = st.presence_entries;
	const uint64_t ev = st.presence_evictions;
	/* A negative now finds no room, and takes none. */
	pres_put(c, true, 30000, &neg, 6);
	assert_int_equal(pres_get(c, true, 30000, 6), FLAT_CACHE_MISS);
	flat_cache_stats(c, &st);
	assert_int_equal(st.presence_entries, npos);
	assert_int_equal(st.presence_evictions, ev + 1);
	assert_int_equal(pres_get(c, false, 4 * (unsigned)full - (unsigned)npos, 6),
	                 FLAT_CACHE_HIT);
	assert_true(st.presence_bytes <= max / 100 * FLAT_CACHE_PRESENCE_PCT);
	print_message("presence share of a 64 KiB cache: %zu negative or %zu positive entries\n",
	              full, npos);
	flat_cache_free(c);
}

static void test_cache_aaaa_and_negative_round_trip(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 0, 60, 5);
	struct flat_cache_key k6 = KEY("\3cdn\7example\3net\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	struct flat_cache_key kn = TKEY("\5empty\7example\3net\0");
	union flat_cache_value v;
	struct flat_cache_hit hit;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_ADDRS;
	v.result.n_addrs = FLAT_MAX_ADDRS;
	for (int i = 0; i < FLAT_MAX_ADDRS; i++)
		for (int j = 0; j < 16; j++)
			v.result.addrs[i][j] = (uint8_t)(i * 16 + j);
	v.result.ttl = 30;
	assert_int_equal(flat_cache_put(c, &k6, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &k6, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.result.qtype, CODEC_TYPE_AAAA);
	assert_int_equal(hit.value.result.n_addrs, FLAT_MAX_ADDRS);
	assert_memory_equal(hit.value.result.addrs, v.result.addrs, sizeof(v.result.addrs));

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_NXDOMAIN;
	v.result.n_addrs = 5;       /* meaningless without addresses: not stored */
	v.result.ttl = 0xffffffffu; /* RFC 2181 8: counts as 0 */
	assert_int_equal(flat_cache_put(c, &kn, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &kn, 0, &hit), FLAT_CACHE_STALE);
	assert_int_equal(hit.value.result.kind, FLAT_RES_NXDOMAIN);
	assert_int_equal(hit.value.result.n_addrs, 0);
	v.result.kind = FLAT_RES_NODATA;
	v.result.ttl = 900000; /* capped at 7 days */
	assert_int_equal(flat_cache_put(c, &kn, &v, 0), 0);
	assert_int_equal(flat_cache_get(c, &kn, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.result.kind, FLAT_RES_NODATA);
	assert_int_equal(hit.ttl_left, FLAT_CACHE_MAX_TTL_S);
	flat_cache_free(c);
}

static void test_cache_bad_input_rejected(void **state)
{
	(void)state;
	struct flat_cache_conf conf = {.max_bytes = 0};
	struct flat_cache *c = NULL;

	assert_int_equal(flat_cache_new(&c, &conf), -EINVAL);
	conf.max_bytes = 1 << 20;
	conf.shards = 12;
	assert_int_equal(flat_cache_new(&c, &conf), -EINVAL);
	conf.shards = FLAT_CACHE_MAX_SHARDS * 2;
	assert_int_equal(flat_cache_new(&c, &conf), -EINVAL);
	flat_cache_free(NULL);

	c = make(1 << 20, 1, 60, 5);
	union flat_cache_value v = addrs(1, 1, 300);
	struct flat_cache_key bad[] = {
	        TKEY("\3www\7example\3com"),     /* no root label */
	        TKEY("\3www\7example\3com\0\0"), /* trailing byte */
	        TKEY("\100aaaa\0"),              /* label of 64 */
	        KEY("\3www\0", CODEC_TYPE_A, 7), /* no such kind */
	};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(flat_cache_put(c, &bad[i], &v, 0), -EINVAL);
		assert_int_equal(flat_cache_get(c, &bad[i], 0, NULL), -EINVAL);
		assert_int_equal(flat_cache_claim(c, &bad[i], 0, NULL), -EINVAL);
		assert_int_equal(flat_cache_abandon(c, &bad[i]), -EINVAL);
	}
	struct flat_cache_key k = TKEY("\3www\0");
	v.result.n_addrs = FLAT_MAX_ADDRS + 1;
	assert_int_equal(flat_cache_put(c, &k, &v, 0), -EINVAL);
	v.result.n_addrs = 1;
	v.result.kind = (enum flat_result_kind)9;
	assert_int_equal(flat_cache_put(c, &k, &v, 0), -EINVAL);
	struct flat_cache_key pk = KEY("\3www\0", ANAME_TYPE, FLAT_KEY_PRESENCE);
	union flat_cache_value p;
	memset(&p, 0, sizeof(p));
	p.presence.present = true; /* with no target */
	assert_int_equal(flat_cache_put(c, &pk, &p, 0), -EINVAL);
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\3com", 4), -EINVAL);
	/* The ECS scope is part of the key. */
	v = addrs(1, 1, 300);
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	k.ecs[0] = 1;
	k.ecs[1] = 24;
	assert_int_equal(flat_cache_get(c, &k, 0, NULL), FLAT_CACHE_MISS);

	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	flat_cache_free(c);
}

/* --- EDNS Client Subnet: scoped entries ---------------------------------- */

/* A client subnet as the proxy passes it (codec/ecs.h), address masked. */
static struct codec_ecs subnet4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, unsigned source)
{
	struct codec_ecs e;
	uint8_t full[4] = {a, b, c, d};

	memset(&e, 0, sizeof(e));
	e.family = CODEC_ECS_FAMILY_IP4;
	e.source = (uint8_t)source;
	for (unsigned i = 0; i < 4; i++) {
		unsigned keep = source >= 8 * (i + 1) ? 8 : source > 8 * i ? source - 8 * i : 0;
		e.addr[i] = (uint8_t)(full[i] & (0xff00u >> keep));
	}
	return e;
}

/* k with the scope family/prefix over the client's address. */
static struct flat_cache_key scoped(struct flat_cache_key k, const struct codec_ecs *at,
                                    unsigned prefix)
{
	flat_cache_key_scope(&k, at->family, prefix, at->addr);
	return k;
}

/* A value whose first address's last octet says which entry it came from. */
static union flat_cache_value tagged(uint8_t tag, uint32_t ttl)
{
	return addrs(1, tag, ttl);
}

static uint8_t tag_of(const struct flat_cache_hit *h)
{
	return h->value.result.addrs[0][3];
}

static void test_cache_scoped_most_specific_cover(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);    /* 198.51.100.0/24 */
	struct codec_ecs b = subnet4(198, 51, 7, 1, 24);      /* same /16, other /24 */
	struct codec_ecs wide = subnet4(198, 51, 100, 7, 20); /* reveals only /20 */
	struct codec_ecs far = subnet4(203, 0, 113, 1, 24);
	struct flat_cache_key a24 = scoped(k, &a, 24), a16 = scoped(k, &a, 16);
	union flat_cache_value v0 = tagged(100, 300), v16 = tagged(116, 300),
	                       v24 = tagged(124, 300);
	struct flat_cache_hit hit;
	struct flat_cache_key q;

	assert_int_equal(a24.ecs[0], FLAT_CACHE_ECS_IP4);
	assert_int_equal(a24.ecs[1], 24);
	assert_int_equal(flat_cache_put(c, &k, &v0, 0), 0);
	assert_int_equal(flat_cache_put(c, &a16, &v16, 0), 0);
	assert_int_equal(flat_cache_put(c, &a24, &v24, 0), 0);

	/* The /24 the client is in beats the /16 and /0 ... */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 124);
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);
	/* ... another /24 of the /16 gets the /16 ... */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &b, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 116);
	assert_int_equal(q.ecs[1], 16);
	/* ... a client that revealed only /20 cannot use a /24 answer ... */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &wide, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 116);
	/* ... and elsewhere it is the answer for everyone. */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &far, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 100);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	/* Any spelling of the name, one lock, the same answer. */
	struct flat_cache_key upper = TKEY("\3CDN\7Example\3NET\0");
	assert_int_equal(flat_cache_get_scoped(c, &upper, &a, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 124);

	/* A fresh wider answer wins over a narrower one that is only stale:
	 * the /24 expires at 300 s, the /16 is refreshed at 200 s for 150 s. */
	v16.result.ttl = 150;
	assert_int_equal(flat_cache_put(c, &a16, &v16, 200000), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 301000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 116);
	/* With nothing fresh, the most specific stale one is what to refresh. */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 355000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(tag_of(&hit), 124);
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);

	/* NULL client: exactly flat_cache_get of the key as given. */
	q = a16;
	assert_int_equal(flat_cache_get_scoped(c, &q, NULL, 355000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(tag_of(&hit), 116);
	flat_cache_free(c);
}

static void test_cache_scoped_fallback_and_miss_key(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	struct codec_ecs b = subnet4(198, 51, 101, 7, 24);
	struct flat_cache_key a24 = scoped(k, &a, 24), b24 = scoped(k, &b, 24);
	union flat_cache_value v0 = tagged(100, 300), v24 = tagged(124, 300);
	struct flat_cache_hit hit;
	struct flat_cache_key q = k;

	/* Nothing: MISS, and the key to claim is the client's own subnet. */
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, &hit), FLAT_CACHE_MISS);
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);
	/* The resolver says "scope 0": everyone falls back to it. */
	assert_int_equal(flat_cache_put(c, &k, &v0, 0), 0);
	assert_int_equal(flat_cache_put(c, &b24, &v24, 0), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 100);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	assert_int_equal(q.ecs[1], 0);
	/* A placeholder at a's /24 (its claim) has no value: still /0. */
	q = a24;
	assert_int_equal(flat_cache_claim(c, &q, 1000, NULL), FLAT_CLAIM_OWNER);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 100);
	/* A failure at the /24 counts (a remembered failure is an answer). */
	union flat_cache_value f = failure(22, "timeout");
	assert_int_equal(flat_cache_put_scoped(c, &a24, &a24, &f, 1000), 0);
	flat_cache_free(c);
	c = make(1 << 20, 4, 60, 5);
	assert_int_equal(flat_cache_claim(c, &a24, 0, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_put_scoped(c, &a24, &a24, &f, 0), 0);
	assert_int_equal(flat_cache_put(c, &k, &v0, 0), 0);
	q = k;
	/* Fresh /0 beats the failing /24; without it the failure shows. */
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 1000, &hit), FLAT_CACHE_HIT);
	flat_cache_flush_name(c, k.name, k.len);
	assert_int_equal(flat_cache_put_scoped(c, &a24, &a24, &f, 1000), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 1000, &hit), FLAT_CACHE_FAIL);
	assert_int_equal(hit.fail_ede, 22);
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);
	/* The scope-0 entry expired past serve-stale and unclaimed: a
	 * lookup drops it (the /24's failure ended at 6 s too). */
	assert_int_equal(flat_cache_put(c, &k, &v0, 1000), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 400000, &hit), FLAT_CACHE_MISS);
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.scoped, 0);
	assert_int_equal(st.entry_bytes, 0);
	/* Source prefix 0 claims scope 0. */
	struct codec_ecs none = subnet4(198, 51, 100, 7, 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &none, 400000, &hit), FLAT_CACHE_MISS);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	flat_cache_free(c);
}

static void test_cache_scoped_none_entry_separate(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key none = k;
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	union flat_cache_value vn = tagged(255, 300), v0 = tagged(100, 300);
	struct flat_cache_hit hit;
	struct flat_cache_key q;

	flat_cache_key_scope(&none, FLAT_CACHE_ECS_NONE, 0, NULL);
	assert_int_equal(none.ecs[0], FLAT_CACHE_ECS_NONE);
	for (int i = 1; i < FLAT_CACHE_ECS_LEN; i++)
		assert_int_equal(none.ecs[i], 0);
	assert_int_equal(flat_cache_put(c, &none, &vn, 0), 0);
	/* An answer nobody tailored never stands in for a subnet's ... */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, &hit), FLAT_CACHE_MISS);
	/* ... nor for scope 0, nor the other way round. */
	assert_int_equal(flat_cache_get(c, &k, 0, &hit), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_put(c, &k, &v0, 0), 0);
	assert_int_equal(flat_cache_get(c, &none, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 255);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 100);
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.scoped, 0);
	/* Family 0 or prefix 0 is scope 0. */
	q = none;
	flat_cache_key_scope(&q, 0, 24, a.addr);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	q = none;
	flat_cache_key_scope(&q, CODEC_ECS_FAMILY_IP4, 0, a.addr);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	/* Prefixes past the family's width are clamped, the address masked. */
	flat_cache_key_scope(&q, CODEC_ECS_FAMILY_IP4, 40, (const uint8_t *)"\xc6\x33\x64\x07");
	assert_int_equal(q.ecs[1], 32);
	flat_cache_key_scope(&q, CODEC_ECS_FAMILY_IP4, 23, (const uint8_t *)"\xc6\x33\x65\x07");
	assert_memory_equal(q.ecs, "\x01\x17\xc6\x33\x64\x00\x00", 7);
	flat_cache_free(c);
}

static void test_cache_scoped_ipv6(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = KEY("\3cdn\7example\3net\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	struct codec_ecs a;
	struct flat_cache_hit hit;
	struct flat_cache_key q;

	memset(&a, 0, sizeof(a));
	a.family = CODEC_ECS_FAMILY_IP6;
	a.source = 56;
	memcpy(a.addr, "\x20\x01\x0d\xb8\x12\x34\x56", 7); /* 2001:db8:1234:5600::/56 */
	struct codec_ecs b = a;                            /* other /56, same /48 */
	b.addr[6] = 0x57;
	struct codec_ecs v4 = subnet4(32, 1, 13, 184, 24); /* the same octets as IPv4 */
	struct flat_cache_key a56 = scoped(k, &a, 56), a48 = scoped(k, &a, 48);
	struct flat_cache_key a128 = scoped(k, &a, 200);
	union flat_cache_value v48 = tagged(48, 300), v56 = tagged(56, 300);
	v48.result.qtype = v56.result.qtype = CODEC_TYPE_AAAA;

	assert_int_equal(a56.ecs[0], FLAT_CACHE_ECS_IP6);
	assert_int_equal(a128.ecs[1], 128);
	assert_int_equal(flat_cache_put(c, &a48, &v48, 0), 0);
	assert_int_equal(flat_cache_put(c, &a56, &v56, 0), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 56);
	assert_memory_equal(q.ecs, a56.ecs, FLAT_CACHE_ECS_LEN);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &b, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 48);
	/* A /128 entry (longest IPv6 scope) for a client that sent /128. */
	struct codec_ecs full = a;
	full.source = 128;
	memcpy(full.addr, "\x20\x01\x0d\xb8\x12\x34\x56\x00\0\0\0\0\0\0\0\x01", 16);
	struct flat_cache_key f128 = scoped(k, &full, 128);
	union flat_cache_value v128 = tagged(128, 300);
	assert_int_equal(flat_cache_put(c, &f128, &v128, 0), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &full, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 128);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 56);
	/* IPv4 clients never match IPv6 scopes. */
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &v4, 0, &hit), FLAT_CACHE_MISS);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_IP4);
	/* Another family is refused. */
	struct codec_ecs bad = a;
	bad.family = 3;
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &bad, 0, &hit), -EINVAL);
	flat_cache_free(c);
}

static void test_cache_scoped_cap_evicts_lru_scope(void **state)
{
	(void)state;
	struct flat_cache *c = make((size_t)64 << 20, 1, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key other = TKEY("\5other\7example\3net\0");
	union flat_cache_value v = tagged(1, 300);
	struct flat_cache_stats st;
	struct flat_cache_hit hit;
	const unsigned extra = 10;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	for (unsigned i = 0; i < FLAT_CACHE_MAX_SCOPES + extra; i++) {
		struct codec_ecs a = subnet4(10, (uint8_t)(i >> 8), (uint8_t)i, 1, 24);
		struct flat_cache_key ki = scoped(k, &a, 24);
		struct flat_cache_key q = k;

		assert_int_equal(flat_cache_put(c, &ki, &v, i), 0);
		/* 10.0.0.0/24 is used all along, 10.0.1.0/24 never again. */
		struct codec_ecs first = subnet4(10, 0, 0, 1, 24);
		assert_int_equal(flat_cache_get_scoped(c, &q, &first, i, &hit), FLAT_CACHE_HIT);
		assert_int_equal(q.ecs[1], 24);
	}
	/* Another target's scopes are not this one's business. */
	struct codec_ecs o = subnet4(10, 0, 0, 1, 24);
	struct flat_cache_key ok = scoped(other, &o, 24);
	assert_int_equal(flat_cache_put(c, &ok, &v, 0), 0);
	flat_cache_stats(c, &st);
	assert_int_equal(st.scoped, FLAT_CACHE_MAX_SCOPES + 1);
	assert_int_equal(st.scope_evictions, extra);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.entries, FLAT_CACHE_MAX_SCOPES + 2);

	struct flat_cache_peek pk;
	assert_int_equal(flat_cache_peek(c, &k, 0, &pk), 0);
	assert_int_equal(pk.scopes, FLAT_CACHE_MAX_SCOPES);
	assert_int_equal(flat_cache_peek(c, &other, 0, &pk), 0);
	assert_int_equal(pk.scopes, 1);
	/* The least recently used went: 10.0.1.0/24 .. 10.0.10.0/24. */
	struct codec_ecs gone = subnet4(10, 0, 1, 1, 24), kept = subnet4(10, 0, 11, 1, 24);
	struct flat_cache_key q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &gone, 2000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &kept, 2000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(q.ecs[1], 24);
	/* Claimed scopes are never evicted by the cap: their waiters wait. */
	q = scoped(k, &gone, 24);
	assert_int_equal(flat_cache_claim(c, &q, 2000, waiter(7)), FLAT_CLAIM_OWNER);
	flat_cache_stats(c, &st);
	assert_int_equal(st.scoped, FLAT_CACHE_MAX_SCOPES + 1);
	assert_int_equal(st.scope_evictions, extra + 1);
	assert_int_equal(flat_cache_abandon(c, &q), 0);
	flat_cache_stats(c, &st);
	assert_int_equal(st.scoped, FLAT_CACHE_MAX_SCOPES);
	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.scoped, 0);
	assert_int_equal(st.entry_bytes, 0);
	flat_cache_free(c);
}

static void test_cache_put_scoped_wakes_both_claims(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	struct codec_ecs w16 = subnet4(198, 51, 100, 7, 16); /* a client that sent /16 */
	union flat_cache_value v16 = tagged(116, 300);
	struct flat_cache_stats st;
	struct flat_cache_hit hit;
	struct flat_cache_key qa = k, qw = k;

	/* Two misses in the same /16, each claims its own source subnet. */
	assert_int_equal(flat_cache_get_scoped(c, &qa, &a, 0, &hit), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_claim(c, &qa, 0, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &qa, 0, waiter(1)), FLAT_CLAIM_PENDING);
	assert_int_equal(flat_cache_get_scoped(c, &qw, &w16, 0, &hit), FLAT_CACHE_MISS);
	assert_int_equal(qw.ecs[1], 16);
	assert_int_equal(flat_cache_claim(c, &qw, 0, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &qw, 0, waiter(2)), FLAT_CLAIM_PENDING);
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 2);
	assert_int_equal(st.scoped, 2);

	/* a's chase comes back with scope /16: stored there, both claims
	 * end, both waiters are woken, a's placeholder goes. */
	struct flat_cache_key store = scoped(k, &a, 16);
	memset(&g_wakes, 0, sizeof(g_wakes));
	assert_int_equal(flat_cache_put_scoped(c, &qa, &store, &v16, 100), 0);
	assert_int_equal(g_wakes.calls, 2);
	assert_int_equal(g_wakes.n, 2);
	assert_true((g_wakes.tokens[0] == 1 && g_wakes.tokens[1] == 2) ||
	            (g_wakes.tokens[0] == 2 && g_wakes.tokens[1] == 1));
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 0);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.scoped, 1);
	/* What the woken find. */
	struct flat_cache_key q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 100, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 116);
	assert_memory_equal(q.ecs, store.ecs, FLAT_CACHE_ECS_LEN);
	/* The other's claim ended: its late put just stores. */
	assert_int_equal(flat_cache_put_scoped(c, &qw, &qw, &v16, 200), 0);
	assert_int_equal(g_wakes.calls, 2);

	/* Scope 0 from a claim on a stale /24: the /24 keeps its stale
	 * value (it has one), scope 0 gets the new one. */
	struct flat_cache_key a24 = scoped(k, &a, 24);
	union flat_cache_value v24 = tagged(124, 10), v0 = tagged(100, 300);
	assert_int_equal(flat_cache_put(c, &a24, &v24, 0), 0);
	flat_cache_flush_all(c);
	assert_int_equal(flat_cache_put(c, &a24, &v24, 0), 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 20000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &q, 20000, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_put_scoped(c, &q, &k, &v0, 20000), 0);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.claims, 0);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 20000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(tag_of(&hit), 100);
	/* Keys of different targets are refused. */
	struct flat_cache_key other = TKEY("\5other\7example\3net\0");
	assert_int_equal(flat_cache_put_scoped(c, &q, &other, &v0, 0), -EINVAL);
	struct flat_cache_key aaaa = KEY("\3cdn\7example\3net\0", CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	assert_int_equal(flat_cache_put_scoped(c, &q, &aaaa, &v0, 0), -EINVAL);
	flat_cache_free(c);
}

static void test_cache_put_scoped_fail_under_claimed_keeps_stale(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	struct flat_cache_key a24 = scoped(k, &a, 24), a16 = scoped(k, &a, 16);
	union flat_cache_value v24 = tagged(124, 10), f = failure(22, "resolver timed out");
	struct flat_cache_hit hit;
	struct flat_cache_key q = k;

	assert_int_equal(flat_cache_put(c, &a24, &v24, 0), 0);
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 11000, &hit), FLAT_CACHE_STALE);
	assert_int_equal(flat_cache_claim(c, &q, 11000, NULL), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &q, 11000, waiter(3)), FLAT_CLAIM_PENDING);
	memset(&g_wakes, 0, sizeof(g_wakes));
	/* Even handed another store key, a failure stays on the claimed. */
	assert_int_equal(flat_cache_put_scoped(c, &q, &a16, &f, 11000), 0);
	assert_int_equal(g_wakes.n, 1);
	assert_int_equal(g_wakes.tokens[0], 3);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 11000, &hit), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_int_equal(tag_of(&hit), 124);
	assert_int_equal(hit.fail_ede, 22);
	assert_string_equal(hit.fail_why, "resolver timed out");
	assert_memory_equal(q.ecs, a24.ecs, FLAT_CACHE_ECS_LEN);
	/* Nothing was stored at the /16. */
	assert_int_equal(flat_cache_get(c, &a16, 11000, &hit), FLAT_CACHE_MISS);
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.scoped, 1);
	flat_cache_free(c);
}

static void test_cache_peek_scoped(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 4, 60, 5);
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24), b = subnet4(203, 0, 113, 9, 24);
	struct flat_cache_key a16 = scoped(k, &a, 16), b24 = scoped(k, &b, 24);
	union flat_cache_value v16 = tagged(116, 10);
	struct flat_cache_peek pk;
	struct flat_cache_hit hit;
	struct flat_cache_key q = k;

	assert_int_equal(flat_cache_put(c, &a16, &v16, 0), 0);
	/* Past 90 % of the TTL: peek says HIT and takes no prefetch. */
	assert_int_equal(flat_cache_peek_scoped(c, &q, &a, 9500, &pk), 0);
	assert_int_equal(pk.status, FLAT_CACHE_HIT);
	assert_true(pk.found && pk.has_good && pk.fresh);
	assert_int_equal(pk.ttl_left, 1);
	assert_int_equal(pk.value.result.addrs[0][3], 116);
	assert_int_equal(pk.scopes, 1);
	assert_memory_equal(q.ecs, a16.ecs, FLAT_CACHE_ECS_LEN);
	q = k;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 9500, &hit), FLAT_CACHE_HIT_PREFETCH);
	/* None covers b: its own subnet, where a claim may be in flight. */
	q = k;
	assert_int_equal(flat_cache_peek_scoped(c, &q, &b, 9500, &pk), 0);
	assert_false(pk.found);
	assert_int_equal(pk.status, FLAT_CACHE_MISS);
	assert_memory_equal(q.ecs, b24.ecs, FLAT_CACHE_ECS_LEN);
	q = b24;
	assert_int_equal(flat_cache_claim(c, &q, 9000, waiter(4)), FLAT_CLAIM_OWNER);
	assert_int_equal(flat_cache_claim(c, &q, 9000, waiter(5)), FLAT_CLAIM_PENDING);
	q = k;
	assert_int_equal(flat_cache_peek_scoped(c, &q, &b, 9500, &pk), 0);
	assert_true(pk.found && pk.claimed);
	assert_false(pk.has_good);
	assert_int_equal(pk.waiters, 1);
	assert_int_equal(pk.claim_age_ms, 500);
	assert_int_equal(pk.scopes, 2);
	/* Expired past serve-stale: peek leaves the dead entry alone. */
	q = k;
	assert_int_equal(flat_cache_peek_scoped(c, &q, &a, 80000, &pk), 0);
	assert_false(pk.found);
	struct flat_cache_stats st;
	flat_cache_stats(c, &st);
	assert_int_equal(st.scoped, 2);
	/* NULL client: the key as given. */
	q = a16;
	assert_int_equal(flat_cache_peek_scoped(c, &q, NULL, 1000, &pk), 0);
	assert_true(pk.found && pk.claimed);
	assert_int_equal(pk.status, FLAT_CACHE_HIT);
	flat_cache_free(c);
}

static void test_cache_refresh_ms_ahead_of_expiry(void **state)
{
	(void)state;
	struct flat_cache_conf conf = {
	        .max_bytes = 1 << 20,
	        .serve_stale_s = 60,
	        .failure_ttl_s = 5,
	        .refresh_ms = 1500,
	};
	struct flat_cache *c = NULL;
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key k2 = TKEY("\3two\7example\3net\0");
	struct flat_cache_key k100 = TKEY("\3hun\7example\3net\0");
	union flat_cache_value v10 = tagged(1, 10), v2 = tagged(1, 2), v100 = tagged(1, 100);

	assert_int_equal(flat_cache_new(&c, &conf), 0);
	/* TTL 10 s: max(1 s, min(1.5 s, 5 s)) = 1.5 s before expiry. */
	assert_int_equal(flat_cache_put(c, &k, &v10, 0), 0);
	assert_int_equal(flat_cache_get(c, &k, 8500, NULL), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k, 8501, NULL), FLAT_CACHE_HIT_PREFETCH);
	/* TTL 2 s: half the TTL, not 1.5 s. */
	assert_int_equal(flat_cache_put(c, &k2, &v2, 0), 0);
	assert_int_equal(flat_cache_get(c, &k2, 1000, NULL), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k2, 1001, NULL), FLAT_CACHE_HIT_PREFETCH);
	/* TTL 100 s: the last 10 % (10 s) is more than 1.5 s. */
	assert_int_equal(flat_cache_put(c, &k100, &v100, 0), 0);
	assert_int_equal(flat_cache_get(c, &k100, 89999, NULL), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_get(c, &k100, 90000, NULL), FLAT_CACHE_HIT_PREFETCH);
	flat_cache_free(c);
}

/* An HTTPS RRset in result form: n RRs of rdlen octets each. */
static union flat_cache_value https_rrset(uint8_t n, uint16_t rdlen, uint32_t ttl)
{
	union flat_cache_value v;
	uint16_t pos = 0;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_ADDRS;
	v.result.qtype = 65;
	v.result.n_addrs = n;
	for (uint8_t i = 0; i < n; i++) {
		v.result.rdata[pos++] = (uint8_t)(rdlen >> 8);
		v.result.rdata[pos++] = (uint8_t)rdlen;
		for (uint16_t j = 0; j < rdlen; j++)
			v.result.rdata[pos++] = (uint8_t)(i * 31 + j);
	}
	v.result.rdata_len = pos;
	v.result.ttl = ttl;
	v.result.hops = 1;
	return v;
}

static void test_cache_https_rdata_round_trip(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 1, 60, 5);
	struct flat_cache_key k = KEY("\6target\7example\3com\0", 65, FLAT_KEY_TARGET);
	struct flat_cache_key svcb = KEY("\6target\7example\3com\0", 64, FLAT_KEY_TARGET);
	union flat_cache_value v = https_rrset(3, 150, 300); /* 456 octets */
	union flat_cache_value small = https_rrset(1, 20, 300);
	struct flat_cache_stats before, after;
	struct flat_cache_hit hit;

	flat_cache_stats(c, &before);
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	flat_cache_stats(c, &after);
	size_t cost = after.bytes - before.bytes;
	assert_int_equal(flat_cache_get(c, &k, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.result.qtype, 65);
	assert_int_equal(hit.value.result.n_addrs, 3);
	assert_int_equal(hit.value.result.rdata_len, 456);
	assert_memory_equal(hit.value.result.rdata, v.result.rdata, 456);
	assert_int_equal(hit.value.result.ttl, 299);

	/* The entry costs its RDATA, not FLAT_RDATA_MAX. */
	flat_cache_stats(c, &before);
	assert_int_equal(flat_cache_put(c, &svcb, &small, 0), 0);
	flat_cache_stats(c, &after);
	size_t small_cost = after.bytes - before.bytes;
	print_message("https entry cost: %zu bytes (456 octets of RDATA), %zu (22 octets)\n", cost,
	              small_cost);
	assert_true(cost < 300 + 456);
	assert_true(small_cost <= 300);
	assert_true(cost - small_cost >= 400);
	assert_int_equal(flat_cache_get(c, &svcb, 1000, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.result.rdata_len, 22);
	assert_memory_equal(hit.value.result.rdata, small.result.rdata, 22);

	/* A failure over it keeps the RRset for serve-stale, intact. */
	union flat_cache_value f = failure(22, "timeout");
	f.result.qtype = 65;
	assert_int_equal(flat_cache_put(c, &k, &f, 301000), 0);
	assert_int_equal(flat_cache_get(c, &k, 301000, &hit), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_int_equal(hit.value.result.rdata_len, 456);
	assert_memory_equal(hit.value.result.rdata, v.result.rdata, 456);
	assert_string_equal(hit.fail_why, "timeout");
	/* Scoped as well, and through peek. */
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	struct flat_cache_key a24 = scoped(k, &a, 24), q = k;
	struct flat_cache_peek pk;
	assert_int_equal(flat_cache_put(c, &a24, &v, 301000), 0);
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 302000, &hit), FLAT_CACHE_HIT);
	assert_memory_equal(hit.value.result.rdata, v.result.rdata, 456);
	q = k;
	assert_int_equal(flat_cache_peek_scoped(c, &q, &a, 302000, &pk), 0);
	assert_int_equal(pk.value.result.rdata_len, 456);
	assert_memory_equal(pk.value.result.rdata, v.result.rdata, 456);
	/* A NODATA keeps nothing; rdata_len past the buffer is refused. */
	union flat_cache_value nodata = https_rrset(0, 0, 300);
	nodata.result.kind = FLAT_RES_NODATA;
	assert_int_equal(flat_cache_put(c, &svcb, &nodata, 0), 0);
	assert_int_equal(flat_cache_get(c, &svcb, 0, &hit), FLAT_CACHE_HIT);
	assert_int_equal(hit.value.result.kind, FLAT_RES_NODATA);
	assert_int_equal(hit.value.result.rdata_len, 0);
	v.result.rdata_len = FLAT_RDATA_MAX + 1;
	assert_int_equal(flat_cache_put(c, &k, &v, 0), -EINVAL);
	flat_cache_free(c);
}

static void test_cache_scoped_memory_accounting(void **state)
{
	(void)state;
	struct flat_cache *c = make((size_t)64 << 20, 1, 60, 5);
	struct flat_cache_key k = TKEY("\6target\7example\3com\0");
	union flat_cache_value v = tagged(1, 300);
	struct flat_cache_stats empty, one, plain, st;

	flat_cache_stats(c, &empty);
	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	flat_cache_stats(c, &plain);
	size_t plain_cost = plain.bytes - empty.bytes;
	/* The first scope brings the directory, the others only themselves. */
	struct codec_ecs a = subnet4(10, 0, 0, 1, 24);
	struct flat_cache_key ka = scoped(k, &a, 24);
	assert_int_equal(flat_cache_put(c, &ka, &v, 0), 0);
	flat_cache_stats(c, &one);
	for (unsigned i = 1; i < 101; i++) {
		struct codec_ecs b = subnet4(10, 0, (uint8_t)i, 1, 24);
		struct flat_cache_key kb = scoped(k, &b, 24);
		assert_int_equal(flat_cache_put(c, &kb, &v, 0), 0);
	}
	flat_cache_stats(c, &st);
	/* entry_bytes: the bucket array doubled on the way. */
	size_t first = one.entry_bytes - plain.entry_bytes;
	size_t each = (st.entry_bytes - one.entry_bytes) / 100;
	print_message("scoped entry cost: %zu bytes (plain %zu), first with its directory %zu\n",
	              each, plain_cost, first);
	assert_true(each <= plain_cost + 32);
	assert_true(first > each);
	assert_true(first <= each + 200);
	assert_int_equal(st.entries, 102);
	assert_int_equal(st.scoped, 101);
	/* Dropping them (flush by name) gives every byte back. */
	assert_int_equal(flat_cache_flush_name(c, k.name, k.len), 102);
	flat_cache_stats(c, &st);
	assert_int_equal(st.bytes - st.entry_bytes,
	                 one.bytes - one.entry_bytes + 64 * sizeof(void *));
	assert_int_equal(st.entry_bytes, 0);
	assert_int_equal(st.scoped, 0);
	flat_cache_free(c);

	/* Under a small bound, scopes of many targets are evicted like any
	 * entry, directories with their last scope; the bound holds. */
	const size_t max = 32 * 1024;
	c = make(max, 1, 60, 5);
	uint8_t n[16];
	for (unsigned t = 0; t < 200; t++) {
		struct flat_cache_key kt = key_of(n, numbered(n, t), CODEC_TYPE_A, FLAT_KEY_TARGET);
		for (unsigned i = 0; i < 5; i++) {
			struct codec_ecs b = subnet4(10, 0, (uint8_t)i, 1, (unsigned)(16 + i));
			struct flat_cache_key kb = scoped(kt, &b, 16 + i);
			assert_int_equal(flat_cache_put(c, &kb, &v, t), 0);
			flat_cache_stats(c, &st);
			assert_true(st.bytes <= max);
		}
	}
	flat_cache_stats(c, &st);
	assert_true(st.evictions > 0);
	assert_int_equal(st.scope_evictions, 0);
	assert_int_equal(st.scoped, st.entries);
	struct flat_cache_key last = key_of(n, numbered(n, 199), CODEC_TYPE_A, FLAT_KEY_TARGET);
	struct codec_ecs b = subnet4(10, 0, 4, 1, 24);
	struct flat_cache_hit hit;
	assert_int_equal(flat_cache_get_scoped(c, &last, &b, 200, &hit), FLAT_CACHE_HIT);
	assert_int_equal(last.ecs[1], 20);
	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.entry_bytes, 0);
	flat_cache_free(c);
}

static void test_cache_scoped_bad_input(void **state)
{
	(void)state;
	struct flat_cache *c = make(1 << 20, 1, 60, 5);
	struct flat_cache_key k = TKEY("\3www\0");
	struct flat_cache_key pk = KEY("\3www\0", ANAME_TYPE, FLAT_KEY_PRESENCE);
	struct codec_ecs a = subnet4(198, 51, 100, 7, 24);
	union flat_cache_value v = addrs(1, 1, 300);
	struct flat_cache_key q;

	/* Presence keys never carry a scope. */
	q = scoped(pk, &a, 24);
	assert_int_equal(flat_cache_get(c, &q, 0, NULL), -EINVAL);
	assert_int_equal(flat_cache_claim(c, &q, 0, NULL), -EINVAL);
	q = pk;
	assert_int_equal(flat_cache_get_scoped(c, &q, &a, 0, NULL), -EINVAL);
	/* Bits past the scope's prefix, a prefix too long, unknown kinds. */
	q = scoped(k, &a, 24);
	q.ecs[5] = 1;
	assert_int_equal(flat_cache_put(c, &q, &v, 0), -EINVAL);
	q = scoped(k, &a, 24);
	q.ecs[1] = 33;
	assert_int_equal(flat_cache_put(c, &q, &v, 0), -EINVAL);
	q = k;
	q.ecs[0] = 0xfe;
	assert_int_equal(flat_cache_get(c, &q, 0, NULL), -EINVAL);
	q = k;
	q.ecs[0] = FLAT_CACHE_ECS_NONE;
	q.ecs[1] = 1;
	assert_int_equal(flat_cache_get(c, &q, 0, NULL), -EINVAL);
	/* The last octet counts as well, unscoped or scoped. */
	q = k;
	q.ecs[FLAT_CACHE_ECS_LEN - 1] = 1;
	assert_int_equal(flat_cache_get(c, &q, 0, NULL), -EINVAL);
	q = scoped(k, &a, 24);
	q.ecs[FLAT_CACHE_ECS_LEN - 1] = 1;
	assert_int_equal(flat_cache_put(c, &q, &v, 0), -EINVAL);
	flat_cache_free(c);
}

/*
 * Concurrency: 4 threads on 96 overlapping keys (A, AAAA and presence
 * under two zones) with gets, puts, claims held across other operations
 * (so others wait and claims time out and are taken over), failures,
 * abandons and flushes, in a cache small enough to evict all the time.
 * Time is a virtual clock shared by all threads. Pass or fail depends
 * only on invariants, never on how the threads interleave or how many
 * operations fit into the half second:
 *   - every value read belongs to its key and is not torn;
 *   - every registered waiter is woken exactly once overall;
 *   - with all claims ended, no claim is left, the bound holds, and after
 *     a flush the entry accounting returns to zero.
 */
#define MT_THREADS 4
#define MT_KEYS 96
#define MT_RUN_MS 500
#define MT_MIN_OPS 2000
#define MT_HELD 4

static _Atomic uint64_t mt_clock;
static _Atomic uint64_t mt_registered, mt_woken, mt_bad;
static _Atomic uint64_t mt_owner, mt_pending, mt_prefetch, mt_stale_served;

struct mt_thread {
	pthread_t tid;
	struct flat_cache *c;
	uint64_t rng;
	uint32_t token;
	unsigned held[MT_HELD];
	size_t n_held;
	uint64_t ops;
};

static struct mt_thread mt_threads[MT_THREADS];

static void mt_wake(void *arg, const struct flat_cache_waiter *w, size_t n)
{
	(void)arg;
	for (size_t i = 0; i < n; i++) {
		struct mt_thread *t = w[i].worker;
		if (t < &mt_threads[0] || t >= &mt_threads[MT_THREADS])
			atomic_fetch_add(&mt_bad, 1);
	}
	atomic_fetch_add(&mt_woken, n);
}

static uint64_t mt_rand(struct mt_thread *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

/* Key i: name "\4kNNN\4zone\3one|two\0", kind and type by i / 32. */
static struct flat_cache_key mt_key(unsigned i, uint8_t *buf)
{
	size_t len;

	buf[0] = 4;
	buf[1] = 'k';
	buf[2] = (uint8_t)('0' + (i % 32) / 10);
	buf[3] = (uint8_t)('0' + (i % 32) % 10);
	buf[4] = (uint8_t)((i & 1) ? 'X' : 'x'); /* case must not matter */
	memcpy(buf + 5, (i % 32) & 2 ? "\4zone\3one" : "\4zone\3two", 10);
	len = 15;
	if (i < 32)
		return key_of(buf, len, CODEC_TYPE_A, FLAT_KEY_TARGET);
	if (i < 64)
		return key_of(buf, len, CODEC_TYPE_AAAA, FLAT_KEY_TARGET);
	return key_of(buf, len, ANAME_TYPE, FLAT_KEY_PRESENCE);
}

/* A value that encodes its key and a version, so torn or misfiled
 * copies are noticed. */
static union flat_cache_value mt_value(unsigned i, uint8_t version, bool fail)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	if (i >= 64) {
		v.presence.present = (i & 1) != 0;
		if (v.presence.present) {
			v.presence.n_targets = 1;
			v.presence.targets_len = 4;
			memcpy(v.presence.targets, "\2aa\0", 4);
			v.presence.targets[1] = (uint8_t)('a' + i % 26);
		}
		v.presence.ttl = 2;
		return v;
	}
	if (fail) {
		v.result.kind = FLAT_RES_FAIL;
		v.result.ede = 22;
		snprintf(v.result.why, sizeof(v.result.why), "timeout %u", i);
		return v;
	}
	v.result.kind = FLAT_RES_ADDRS;
	v.result.n_addrs = (uint8_t)(1 + i % 3);
	for (uint8_t a = 0; a < v.result.n_addrs; a++) {
		v.result.addrs[a][0] = (uint8_t)i;
		v.result.addrs[a][1] = version;
		v.result.addrs[a][2] = version;
		v.result.addrs[a][3] = a;
	}
	v.result.ttl = 2;
	v.result.hops = (uint8_t)(i & 7);
	return v;
}

static bool mt_check(unsigned i, int st, const struct flat_cache_hit *h)
{
	if (i >= 64) {
		const struct flat_presence *p = &h->value.presence;
		if (st == FLAT_CACHE_FAIL)
			return false; /* presence values are never failures */
		if (p->present != ((i & 1) != 0))
			return false;
		return !p->present ||
		       (p->targets_len == 4 && p->targets[1] == (uint8_t)('a' + i % 26));
	}
	const struct flat_result *r = &h->value.result;
	if (st == FLAT_CACHE_FAIL) {
		char why[FLAT_WHY_MAX];
		snprintf(why, sizeof(why), "timeout %u", i);
		if (h->fail_ede != 22 || strcmp(h->fail_why, why) != 0)
			return false;
		if (!h->has_stale)
			return r->kind == FLAT_RES_FAIL && strcmp(r->why, why) == 0;
	}
	if (r->kind != FLAT_RES_ADDRS || r->n_addrs != 1 + i % 3 || r->hops != (i & 7) ||
	    r->qtype != (i < 32 ? CODEC_TYPE_A : CODEC_TYPE_AAAA) || h->ttl_left > 2)
		return false;
	for (uint8_t a = 0; a < r->n_addrs; a++)
		if (r->addrs[a][0] != (uint8_t)i || r->addrs[a][1] != r->addrs[0][1] ||
		    r->addrs[a][2] != r->addrs[0][1] || r->addrs[a][3] != a)
			return false;
	return true;
}

/* Ends the oldest claim this thread holds: mostly with a value,
 * sometimes with a failure or by giving up. */
static void mt_finish_one(struct mt_thread *t)
{
	uint8_t buf[32];
	unsigned i = t->held[0];
	struct flat_cache_key k = mt_key(i, buf);
	uint64_t now = atomic_fetch_add(&mt_clock, 1);
	unsigned r = (unsigned)(mt_rand(t) % 10);

	memmove(t->held, t->held + 1, (t->n_held - 1) * sizeof(t->held[0]));
	t->n_held--;
	if (r < 2) {
		/* The abandon may find the claim already ended by a late put
		 * of another owner: -ENOENT is fine. */
		(void)flat_cache_abandon(t->c, &k);
		return;
	}
	union flat_cache_value v = mt_value(i, (uint8_t)mt_rand(t), r < 4);
	if (flat_cache_put(t->c, &k, &v, now) != 0)
		atomic_fetch_add(&mt_bad, 1);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *mt_run(void *arg)
{
	struct mt_thread *t = arg;
	uint64_t start = mono_ms();
	uint8_t buf[32];

	while (t->ops < MT_MIN_OPS || mono_ms() - start < MT_RUN_MS) {
		unsigned i = (unsigned)(mt_rand(t) % MT_KEYS);
		struct flat_cache_key k = mt_key(i, buf);
		uint64_t now = atomic_fetch_add(&mt_clock, 1);
		unsigned op = (unsigned)(mt_rand(t) % 100);
		struct flat_cache_hit hit;

		t->ops++;
		if (op < 60) {
			int st = flat_cache_get(t->c, &k, now, &hit);
			if (st < 0) {
				atomic_fetch_add(&mt_bad, 1);
				continue;
			}
			if (st != FLAT_CACHE_MISS && !mt_check(i, st, &hit))
				atomic_fetch_add(&mt_bad, 1);
			if (st == FLAT_CACHE_FAIL && hit.has_stale)
				atomic_fetch_add(&mt_stale_served, 1);
			if (st == FLAT_CACHE_HIT_PREFETCH) {
				atomic_fetch_add(&mt_prefetch, 1);
				union flat_cache_value v = mt_value(i, (uint8_t)now, false);
				if (flat_cache_put(t->c, &k, &v, now) != 0)
					atomic_fetch_add(&mt_bad, 1);
			}
			if (st != FLAT_CACHE_MISS && st != FLAT_CACHE_STALE)
				continue;
			struct flat_cache_waiter w = {t, ++t->token};
			int rc = flat_cache_claim(t->c, &k, now, &w);
			if (rc == FLAT_CLAIM_OWNER) {
				atomic_fetch_add(&mt_owner, 1);
				if (t->n_held == MT_HELD)
					mt_finish_one(t);
				t->held[t->n_held++] = i;
			} else if (rc == FLAT_CLAIM_PENDING) {
				atomic_fetch_add(&mt_pending, 1);
				atomic_fetch_add(&mt_registered, 1);
			} else if (rc != FLAT_CLAIM_READY) {
				atomic_fetch_add(&mt_bad, 1);
			}
		} else if (op < 80) {
			if (t->n_held > 0)
				mt_finish_one(t);
		} else if (op < 98) {
			union flat_cache_value v = mt_value(i, (uint8_t)now, op < 84);
			if (flat_cache_put(t->c, &k, &v, now) != 0)
				atomic_fetch_add(&mt_bad, 1);
		} else if (op == 98) {
			ssize_t n =
			        flat_cache_flush_suffix(t->c, (const uint8_t *)"\4ZONE\3One", 10);
			if (n < 0)
				atomic_fetch_add(&mt_bad, 1);
		} else {
			struct flat_cache_stats st;
			flat_cache_stats(t->c, &st);
		}
	}
	while (t->n_held > 0)
		mt_finish_one(t);
	return NULL;
}

static void test_cache_threads_hammer_consistent(void **state)
{
	(void)state;
	const size_t max = 64 * 1024;
	struct flat_cache_conf conf = {
	        .max_bytes = max,
	        .shards = 8,
	        .serve_stale_s = 3,
	        .failure_ttl_s = 1,
	        .pending_ms = 50,
	        .wake = mt_wake,
	};
	struct flat_cache *c = NULL;
	struct flat_cache_stats st;
	uint64_t ops = 0;

	assert_int_equal(flat_cache_new(&c, &conf), 0);
	for (int i = 0; i < MT_THREADS; i++) {
		memset(&mt_threads[i], 0, sizeof(mt_threads[i]));
		mt_threads[i].c = c;
		mt_threads[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
		assert_int_equal(pthread_create(&mt_threads[i].tid, NULL, mt_run, &mt_threads[i]),
		                 0);
	}
	for (int i = 0; i < MT_THREADS; i++) {
		assert_int_equal(pthread_join(mt_threads[i].tid, NULL), 0);
		ops += mt_threads[i].ops;
	}
	print_message("threads: %llu ops, %llu owners, %llu waits, %llu prefetches, "
	              "%llu stale-after-failure\n",
	              (unsigned long long)ops, (unsigned long long)mt_owner,
	              (unsigned long long)mt_pending, (unsigned long long)mt_prefetch,
	              (unsigned long long)mt_stale_served);
	assert_int_equal(atomic_load(&mt_bad), 0);
	/* Every claim was ended by put or abandon, and it handed back every
	 * waiter registered on it. */
	assert_int_equal(atomic_load(&mt_woken), atomic_load(&mt_registered));
	flat_cache_stats(c, &st);
	assert_int_equal(st.claims, 0);
	assert_true(st.bytes <= max);
	assert_true(st.entries <= MT_KEYS);
	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.entry_bytes, 0);
	flat_cache_free(c);
}

/*
 * Concurrency with scopes: 4 threads on 8 targets looked up for clients
 * in 16 subnets, stored under scope 0, /16 or /24 at random, with
 * prefetches, claims held across other operations, failures, abandons,
 * flushes and peeks, in a cache small enough that scoped entries and
 * directories are evicted all the time. Invariants as above: values
 * belong to their target, every waiter is woken exactly once, and the
 * accounting returns to zero after a flush.
 */
#define MS_TARGETS 8
#define MS_SUBNETS 16

static _Atomic uint64_t ms_registered, ms_woken, ms_bad, ms_scoped_hits;

struct ms_held {
	unsigned t, sub;
	uint8_t ecs[FLAT_CACHE_ECS_LEN];
};

struct ms_thread {
	pthread_t tid;
	struct flat_cache *c;
	uint64_t rng;
	uint32_t token;
	struct ms_held held[MT_HELD];
	size_t n_held;
	uint64_t ops;
};

static void ms_wake(void *arg, const struct flat_cache_waiter *w, size_t n)
{
	(void)arg;
	(void)w;
	atomic_fetch_add(&ms_woken, n);
}

static uint64_t ms_rand(struct ms_thread *t)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return t->rng;
}

/* Target t: "\2tN\4zone\3one\0" in either case. */
static struct flat_cache_key ms_key(unsigned t, uint8_t *buf)
{
	memcpy(buf, "\2t0\4zone\3one", 13);
	buf[2] = (uint8_t)('0' + t);
	if (t & 1)
		buf[1] = 'T';
	return key_of(buf, 13, CODEC_TYPE_A, FLAT_KEY_TARGET);
}

/* Subnet i: 10.(i / 8).(i % 8).0/24. */
static struct codec_ecs ms_client(unsigned i)
{
	return subnet4(10, (uint8_t)(i / 8), (uint8_t)(i % 8), 1, 24);
}

/* Ends the oldest claim held: a value under a random scope of its
 * client, a failure, or nothing. */
static void ms_finish_one(struct ms_thread *t)
{
	uint8_t buf[16];
	struct ms_held h = t->held[0];
	struct flat_cache_key k = ms_key(h.t, buf), store;
	struct codec_ecs cl = ms_client(h.sub);
	uint64_t now = atomic_fetch_add(&mt_clock, 1);
	unsigned r = (unsigned)(ms_rand(t) % 10);
	static const unsigned scopes[3] = {0, 16, 24};

	memmove(t->held, t->held + 1, (t->n_held - 1) * sizeof(t->held[0]));
	t->n_held--;
	memcpy(k.ecs, h.ecs, sizeof(k.ecs));
	if (r < 2) {
		(void)flat_cache_abandon(t->c, &k);
		return;
	}
	union flat_cache_value v = r < 4 ? failure(22, "timeout") : tagged((uint8_t)h.t, 2);
	store = scoped(k, &cl, scopes[ms_rand(t) % 3]);
	if (flat_cache_put_scoped(t->c, &k, &store, &v, now) != 0)
		atomic_fetch_add(&ms_bad, 1);
}

static void ms_lookup(struct ms_thread *t, unsigned ti, unsigned sub, uint64_t now)
{
	uint8_t buf[16];
	struct flat_cache_key k = ms_key(ti, buf);
	struct codec_ecs cl = ms_client(sub);
	struct flat_cache_hit hit;
	int st = flat_cache_get_scoped(t->c, &k, &cl, now, &hit);

	if (st < 0 || (st != FLAT_CACHE_MISS && st != FLAT_CACHE_FAIL && tag_of(&hit) != ti) ||
	    (st == FLAT_CACHE_FAIL && hit.has_stale && tag_of(&hit) != ti)) {
		atomic_fetch_add(&ms_bad, 1);
		return;
	}
	/* The key found or to claim covers the client. */
	if (k.ecs[0] == FLAT_CACHE_ECS_IP4 &&
	    (k.ecs[1] > 24 || memcmp(k.ecs + 2, cl.addr, k.ecs[1] / 8) != 0))
		atomic_fetch_add(&ms_bad, 1);
	if (k.ecs[0] == FLAT_CACHE_ECS_IP4 && st != FLAT_CACHE_MISS)
		atomic_fetch_add(&ms_scoped_hits, 1);
	if (st == FLAT_CACHE_HIT || st == FLAT_CACHE_FAIL)
		return;
	struct flat_cache_waiter w = {t, ++t->token};
	int rc = st == FLAT_CACHE_HIT_PREFETCH ? FLAT_CLAIM_OWNER
	                                       : flat_cache_claim(t->c, &k, now, &w);
	if (rc == FLAT_CLAIM_OWNER) {
		if (t->n_held == MT_HELD)
			ms_finish_one(t);
		t->held[t->n_held].t = ti;
		t->held[t->n_held].sub = sub;
		memcpy(t->held[t->n_held].ecs, k.ecs, sizeof(k.ecs));
		t->n_held++;
	} else if (rc == FLAT_CLAIM_PENDING) {
		atomic_fetch_add(&ms_registered, 1);
	} else if (rc != FLAT_CLAIM_READY) {
		atomic_fetch_add(&ms_bad, 1);
	}
}

static void *ms_run(void *arg)
{
	struct ms_thread *t = arg;
	uint64_t start = mono_ms();

	while (t->ops < MT_MIN_OPS || mono_ms() - start < MT_RUN_MS) {
		unsigned ti = (unsigned)(ms_rand(t) % MS_TARGETS);
		unsigned sub = (unsigned)(ms_rand(t) % MS_SUBNETS);
		uint64_t now = atomic_fetch_add(&mt_clock, 1);
		unsigned op = (unsigned)(ms_rand(t) % 100);

		t->ops++;
		if (op < 70) {
			ms_lookup(t, ti, sub, now);
		} else if (op < 95) {
			if (t->n_held > 0)
				ms_finish_one(t);
		} else if (op < 97) {
			uint8_t buf[16];
			struct flat_cache_key k = ms_key(ti, buf);
			if (flat_cache_flush_name(t->c, k.name, k.len) < 0)
				atomic_fetch_add(&ms_bad, 1);
		} else {
			uint8_t buf[16];
			struct flat_cache_key k = ms_key(ti, buf);
			struct codec_ecs cl = ms_client(sub);
			struct flat_cache_peek pk;
			if (flat_cache_peek_scoped(t->c, &k, &cl, now, &pk) != 0 ||
			    (pk.has_good && pk.value.result.addrs[0][3] != ti))
				atomic_fetch_add(&ms_bad, 1);
		}
	}
	while (t->n_held > 0)
		ms_finish_one(t);
	return NULL;
}

static void test_cache_threads_scoped_consistent(void **state)
{
	(void)state;
	const size_t max = 6 * 1024;
	struct flat_cache_conf conf = {
	        .max_bytes = max,
	        .shards = 2,
	        .serve_stale_s = 3,
	        .failure_ttl_s = 1,
	        .pending_ms = 50,
	        .refresh_ms = 1,
	        .wake = ms_wake,
	};
	struct ms_thread th[MT_THREADS];
	struct flat_cache *c = NULL;
	struct flat_cache_stats st;
	uint64_t ops = 0;

	assert_int_equal(flat_cache_new(&c, &conf), 0);
	for (int i = 0; i < MT_THREADS; i++) {
		memset(&th[i], 0, sizeof(th[i]));
		th[i].c = c;
		th[i].rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 7);
		assert_int_equal(pthread_create(&th[i].tid, NULL, ms_run, &th[i]), 0);
	}
	for (int i = 0; i < MT_THREADS; i++) {
		assert_int_equal(pthread_join(th[i].tid, NULL), 0);
		ops += th[i].ops;
	}
	flat_cache_stats(c, &st);
	print_message("scoped threads: %llu ops, %llu scoped hits, %llu waits, %llu evictions\n",
	              (unsigned long long)ops, (unsigned long long)ms_scoped_hits,
	              (unsigned long long)ms_registered, (unsigned long long)st.evictions);
	assert_int_equal(atomic_load(&ms_bad), 0);
	assert_int_equal(atomic_load(&ms_woken), atomic_load(&ms_registered));
	assert_true(ms_scoped_hits > 0);
	assert_true(st.evictions > 0);
	assert_int_equal(st.claims, 0);
	assert_true(st.bytes <= max);
	assert_true(st.scoped <= st.entries);
	flat_cache_flush_all(c);
	flat_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.scoped, 0);
	assert_int_equal(st.entry_bytes, 0);
	flat_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cache_put_fresh_hit_remaining_ttl),
	        cmocka_unit_test(test_cache_flush_name_removes_that_name_only),
	        cmocka_unit_test(test_cache_peek_reports_without_side_effects),
	        cmocka_unit_test(test_cache_expired_stale_then_gone),
	        cmocka_unit_test(test_cache_serve_stale_zero_expires_to_miss),
	        cmocka_unit_test(test_cache_failure_remembered_then_miss),
	        cmocka_unit_test(test_cache_failure_over_stale_keeps_stale),
	        cmocka_unit_test(test_cache_failure_over_fresh_still_hit),
	        cmocka_unit_test(test_cache_failure_ttl_zero_keeps_stale),
	        cmocka_unit_test(test_cache_prefetch_near_expiry_signalled_once),
	        cmocka_unit_test(test_cache_lru_full_evicts_least_recently_used),
	        cmocka_unit_test(test_cache_entry_cost_small),
	        cmocka_unit_test(test_cache_claims_coalesced_put_wakes_all),
	        cmocka_unit_test(test_cache_claim_timeout_taken_over),
	        cmocka_unit_test(test_cache_abandon_wakes_waiters),
	        cmocka_unit_test(test_cache_flush_suffix_removes_zone_only),
	        cmocka_unit_test(test_cache_flush_keeps_claims_waiters_woken),
	        cmocka_unit_test(test_cache_presence_entries_separate_from_targets),
	        cmocka_unit_test(test_cache_presence_flood_keeps_targets_and_positives),
	        cmocka_unit_test(test_cache_presence_negatives_never_evict_positives),
	        cmocka_unit_test(test_cache_aaaa_and_negative_round_trip),
	        cmocka_unit_test(test_cache_bad_input_rejected),
	        cmocka_unit_test(test_cache_scoped_most_specific_cover),
	        cmocka_unit_test(test_cache_scoped_fallback_and_miss_key),
	        cmocka_unit_test(test_cache_scoped_none_entry_separate),
	        cmocka_unit_test(test_cache_scoped_ipv6),
	        cmocka_unit_test(test_cache_scoped_cap_evicts_lru_scope),
	        cmocka_unit_test(test_cache_put_scoped_wakes_both_claims),
	        cmocka_unit_test(test_cache_put_scoped_fail_under_claimed_keeps_stale),
	        cmocka_unit_test(test_cache_peek_scoped),
	        cmocka_unit_test(test_cache_refresh_ms_ahead_of_expiry),
	        cmocka_unit_test(test_cache_https_rdata_round_trip),
	        cmocka_unit_test(test_cache_scoped_memory_accounting),
	        cmocka_unit_test(test_cache_scoped_bad_input),
	        cmocka_unit_test(test_cache_threads_hammer_consistent),
	        cmocka_unit_test(test_cache_threads_scoped_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
