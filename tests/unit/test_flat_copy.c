/* Unit tests for flatten/copy: a per-thread read-through copy of the
 * shared cache answers fresh values only, never past their TTL, lets the
 * shared entry hand out its refresh once, follows flushes and a new
 * cache, keys scoped lookups by the client's subnet, and stays within its
 * fixed tables. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "flatten/copy.h"
#include "tests/unit/helpers.h"

#define KEY(s, t, k) key_of((const uint8_t *)(s), sizeof(s) - 1, (t), (k))
#define TKEY(s) KEY(s, CODEC_TYPE_A, FLAT_KEY_TARGET)
#define PKEY(s) KEY(s, ANAME_TYPE, FLAT_KEY_PRESENCE)
#define ANAME_TYPE 65401
/* Target slots of a 4 MiB copy: 2 MiB of slots of about 1.3 KiB. */
#define TSLOTS 1024

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

static struct flat_cache *make(uint32_t stale_s, uint32_t refresh_ms)
{
	struct flat_cache_conf conf = {
	        .max_bytes = 1 << 20,
	        .serve_stale_s = stale_s,
	        .failure_ttl_s = 5,
	        .refresh_ms = refresh_ms,
	};
	struct flat_cache *c = NULL;

	assert_int_equal(flat_cache_new(&c, &conf), 0);
	return c;
}

static struct flat_copy *copy_make(void)
{
	struct flat_copy *cp = NULL;

	assert_int_equal(flat_copy_new(&cp, 4 << 20), 0);
	return cp;
}

/* A one-address A value whose last octet is tag. */
static union flat_cache_value tagged(uint8_t tag, uint32_t ttl)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.result.kind = FLAT_RES_ADDRS;
	v.result.qtype = CODEC_TYPE_A;
	v.result.n_addrs = 1;
	v.result.addrs[0][0] = 192;
	v.result.addrs[0][2] = 2;
	v.result.addrs[0][3] = tag;
	v.result.ttl = ttl;
	v.result.hops = 1;
	return v;
}

static union flat_cache_value presence(const char *target, size_t len, uint32_t ttl)
{
	union flat_cache_value v;

	memset(&v, 0, sizeof(v));
	v.presence.present = target != NULL;
	if (target != NULL) {
		v.presence.n_targets = 1;
		v.presence.targets_len = (uint16_t)len;
		memcpy(v.presence.targets, target, len);
	}
	v.presence.ttl = ttl;
	return v;
}

static struct codec_ecs subnet4(uint8_t a, uint8_t b, uint8_t c, unsigned source)
{
	struct codec_ecs e;

	memset(&e, 0, sizeof(e));
	e.family = CODEC_ECS_FAMILY_IP4;
	e.source = (uint8_t)source;
	e.addr[0] = a;
	e.addr[1] = b;
	e.addr[2] = source >= 24 ? c : 0;
	return e;
}

/* A lookup through cp; the tag of what it found (0 for none). */
static int get(struct flat_copy *cp, struct flat_cache *c, struct flat_cache_key *k,
               const struct codec_ecs *client, uint64_t now, uint32_t *ttl, uint8_t *tag)
{
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	int st = flat_copy_get(cp, c, k, client, now, &hit, &ref);

	*tag = 0;
	if (st > FLAT_CACHE_MISS && ref.result != NULL) {
		*tag = ref.result->addrs[0][3];
		*ttl = ref.ttl_left;
		/* The value's ttl field agrees, as from the shared cache. */
		if (st == FLAT_CACHE_HIT || st == FLAT_CACHE_HIT_PREFETCH)
			assert_int_equal(ref.result->ttl, ref.ttl_left);
	}
	return st;
}

static void test_copy_answers_fresh_without_shared(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key upper = TKEY("\3CDN\7ExAmPlE\3NET\0");
	union flat_cache_value v = tagged(7, 300);
	struct flat_copy_stats st;
	uint32_t ttl = 0;
	uint8_t tag;

	assert_int_equal(get(cp, c, &k, NULL, 0, &ttl, &tag), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_put(c, &k, &v, 1000), 0);
	assert_int_equal(get(cp, c, &k, NULL, 1000, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 7);
	assert_int_equal(ttl, 300);
	/* From the copy now: any case, the TTL counted down as the shared
	 * cache counts it (whole seconds of age). */
	assert_int_equal(get(cp, c, &upper, NULL, 1500, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 7);
	assert_int_equal(ttl, 300);
	assert_int_equal(get(cp, c, &k, NULL, 10999, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(ttl, 291);
	flat_copy_stats(cp, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.fills, 1);
	/* FLAT_COPY_RECHECK_MS later the shared cache is asked again. */
	assert_int_equal(get(cp, c, &k, NULL, 1000 + FLAT_COPY_RECHECK_MS, &ttl, &tag),
	                 FLAT_CACHE_HIT);
	assert_int_equal(ttl, 290);
	flat_copy_stats(cp, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.fills, 2);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* The copy never answers at or past the value's expiry; stale values and
 * failures come from the shared cache, every time. */
static void test_copy_never_past_expiry_nor_stale(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = tagged(7, 1);
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	struct flat_copy_stats st;
	uint32_t ttl = 0;
	uint8_t tag;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(get(cp, c, &k, NULL, 0, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(get(cp, c, &k, NULL, 899, &ttl, &tag), FLAT_CACHE_HIT);
	flat_copy_stats(cp, &st);
	assert_int_equal(st.hits, 1);
	/* 90 % of the TTL: the shared entry hands out its refresh. */
	assert_int_equal(get(cp, c, &k, NULL, 900, &ttl, &tag), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(flat_cache_abandon(c, &k), 0);
	assert_int_equal(get(cp, c, &k, NULL, 999, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(ttl, 1);
	/* Expired: STALE from the shared cache, not a HIT from the copy. */
	assert_int_equal(get(cp, c, &k, NULL, 1000, &ttl, &tag), FLAT_CACHE_STALE);
	assert_int_equal(get(cp, c, &k, NULL, 1001, &ttl, &tag), FLAT_CACHE_STALE);
	/* A failure over it: FAIL with the stale value, from the shared. */
	union flat_cache_value f;
	memset(&f, 0, sizeof(f));
	f.result.kind = FLAT_RES_FAIL;
	f.result.ede = 22;
	snprintf(f.result.why, sizeof(f.result.why), "timeout");
	assert_int_equal(flat_cache_put(c, &k, &f, 1002), 0);
	assert_int_equal(flat_copy_get(cp, c, &k, NULL, 1003, &hit, &ref), FLAT_CACHE_FAIL);
	assert_true(hit.has_stale);
	assert_ptr_equal(ref.result, &hit.value.result);
	assert_int_equal(ref.result->addrs[0][3], 7);
	flat_copy_stats(cp, &st);
	assert_int_equal(st.fills, 2);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* Two workers' copies in front of one entry: the refresh ahead is handed
 * out exactly once, at the instant it is without copies, and no copy
 * answers past expiry. */
static void test_copy_refresh_ahead_fires_once(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 1500);
	struct flat_copy *a = copy_make(), *b = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = tagged(9, 100);
	unsigned prefetches = 0;
	uint64_t at = 0;
	uint32_t ttl;
	uint8_t tag;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	for (uint64_t now = 0; now < 100000; now += 7) {
		struct flat_copy *cp = now % 2 == 0 ? a : b;
		int st = get(cp, c, &k, NULL, now, &ttl, &tag);

		assert_true(st == FLAT_CACHE_HIT || st == FLAT_CACHE_HIT_PREFETCH);
		assert_int_equal(tag, 9);
		assert_int_equal(ttl, (100000 - now + 999) / 1000);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			prefetches++;
			at = now;
		}
	}
	assert_int_equal(prefetches, 1);
	/* The last 10 % of 100 s: the first lookup at or past 90 s. */
	assert_true(at >= 90000 && at < 90007);
	/* Expired: nobody answers from a copy. */
	assert_int_equal(get(a, c, &k, NULL, 100000, &ttl, &tag), FLAT_CACHE_STALE);
	assert_int_equal(get(b, c, &k, NULL, 100001, &ttl, &tag), FLAT_CACHE_STALE);

	struct flat_copy_stats sa, sb;
	flat_copy_stats(a, &sa);
	flat_copy_stats(b, &sb);
	/* A shared lookup per copy every 10 s, every second once the
	 * refresh is under way. */
	assert_true(sa.fills <= 25 && sb.fills <= 25);
	assert_true(sa.hits > 6000 && sb.hits > 6000);
	flat_copy_free(a);
	flat_copy_free(b);
	flat_cache_free(c);
}

/* Once the refresh is under way, its new value reaches every copy within
 * FLAT_COPY_RECHECK_REFRESH_MS: answers do not count the old value's TTL
 * down to its end. */
static void test_copy_takes_refreshed_value(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *a = copy_make(), *b = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = tagged(1, 100), w = tagged(2, 100);
	uint32_t ttl;
	uint8_t tag;

	assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	assert_int_equal(get(a, c, &k, NULL, 85000, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(get(b, c, &k, NULL, 85000, &ttl, &tag), FLAT_CACHE_HIT);
	/* a's copy stops at the refresh instant, where a takes the refresh. */
	assert_int_equal(get(a, c, &k, NULL, 90000, &ttl, &tag), FLAT_CACHE_HIT_PREFETCH);
	assert_int_equal(get(b, c, &k, NULL, 90001, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(flat_cache_put(c, &k, &w, 90500), 0);
	assert_int_equal(get(b, c, &k, NULL, 90999, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 1);
	assert_int_equal(get(a, c, &k, NULL, 91000, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 2);
	assert_int_equal(ttl, 100);
	assert_int_equal(get(b, c, &k, NULL, 91001, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 2);
	flat_copy_free(a);
	flat_copy_free(b);
	flat_cache_free(c);
}

/* A pool whose names do not fit a presence slot is served from the
 * shared cache, whole, every time; a small one is copied. */
static void test_copy_large_pool_presence(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key big = PKEY("\4pool\7example\3com\0");
	struct flat_cache_key small = PKEY("\3www\7example\3com\0");
	union flat_cache_value pv = presence("\3cdn\7example\3net", 17, 300), bv;
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	struct flat_copy_stats st;
	size_t off = 0;

	memset(&bv, 0, sizeof(bv));
	bv.presence.present = true;
	bv.presence.ttl = 300;
	for (int i = 0; i < 6; i++) { /* six 57-octet names: 342 octets */
		bv.presence.targets[off++] = 50;
		memset(bv.presence.targets + off, 'a' + i, 50);
		off += 50;
		memcpy(bv.presence.targets + off, "\4test", 6);
		off += 6;
	}
	bv.presence.n_targets = 6;
	bv.presence.targets_len = (uint16_t)off;
	assert_int_equal(flat_cache_put(c, &big, &bv, 0), 0);
	assert_int_equal(flat_cache_put(c, &small, &pv, 0), 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(flat_copy_get(cp, c, &big, NULL, 10 + round, &hit, &ref),
		                 FLAT_CACHE_HIT);
		assert_int_equal(ref.presence->n_targets, 6);
		assert_int_equal(ref.presence->targets_len, off);
		assert_memory_equal(ref.presence->targets, bv.presence.targets, off);
	}
	flat_copy_stats(cp, &st);
	assert_int_equal(st.fills, 0);
	assert_int_equal(st.hits, 0);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(flat_copy_get(cp, c, &small, NULL, 10 + round, &hit, &ref),
		                 FLAT_CACHE_HIT);
		assert_memory_equal(ref.presence->targets, "\3cdn\7example\3net", 17);
	}
	flat_copy_stats(cp, &st);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.hits, 2);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* Every flush, of any kind, is seen by the next lookup. */
static void test_copy_follows_flushes(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct flat_cache_key o = PKEY("\3www\7example\3com\0");
	union flat_cache_value v = tagged(5, 300), w = tagged(6, 300);
	union flat_cache_value pv = presence("\3cdn\7example\3net", 17, 300);
	const uint8_t zone[] = "\7example\3net";
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	uint32_t ttl;
	uint8_t tag;

	for (int kind = 0; kind < 3; kind++) {
		assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
		assert_int_equal(get(cp, c, &k, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(get(cp, c, &k, NULL, 20, &ttl, &tag), FLAT_CACHE_HIT);
		if (kind == 0)
			flat_cache_flush_all(c);
		else if (kind == 1)
			assert_int_equal(flat_cache_flush_name(c, k.name, k.len), 1);
		else
			assert_int_equal(flat_cache_flush_suffix(c, zone, sizeof(zone)), 1);
		assert_int_equal(get(cp, c, &k, NULL, 30, &ttl, &tag), FLAT_CACHE_MISS);
		/* A new value after the flush is what the copy then holds. */
		assert_int_equal(flat_cache_put(c, &k, &w, 40), 0);
		assert_int_equal(get(cp, c, &k, NULL, 40, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(get(cp, c, &k, NULL, 50, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 6);
		flat_cache_flush_all(c);
	}
	/* Presence facts likewise (NOTIFY for the owner's zone). */
	assert_int_equal(flat_cache_put(c, &o, &pv, 0), 0);
	assert_int_equal(flat_copy_get(cp, c, &o, NULL, 10, &hit, &ref), FLAT_CACHE_HIT);
	assert_int_equal(flat_copy_get(cp, c, &o, NULL, 20, &hit, &ref), FLAT_CACHE_HIT);
	assert_non_null(ref.presence);
	assert_true(ref.presence->present);
	assert_memory_equal(ref.presence->targets, "\3cdn\7example\3net", 17);
	assert_int_equal(flat_cache_flush_suffix(c, (const uint8_t *)"\7example\3com", 13), 1);
	assert_int_equal(flat_copy_get(cp, c, &o, NULL, 30, &hit, &ref), FLAT_CACHE_MISS);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* A copy made from one cache never answers for another (a reload that
 * replaces the cache). */
static void test_copy_new_cache_not_mistaken(void **state)
{
	(void)state;
	struct flat_cache *c1 = make(60, 0), *c2 = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	union flat_cache_value v = tagged(1, 300), w = tagged(2, 300);
	uint32_t ttl;
	uint8_t tag;

	assert_int_equal(flat_cache_put(c1, &k, &v, 0), 0);
	assert_int_equal(get(cp, c1, &k, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(get(cp, c2, &k, NULL, 20, &ttl, &tag), FLAT_CACHE_MISS);
	assert_int_equal(flat_cache_put(c2, &k, &w, 0), 0);
	assert_int_equal(get(cp, c2, &k, NULL, 30, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 2);
	flat_copy_free(cp);
	flat_cache_free(c1);
	flat_cache_free(c2);
}

/* Scoped lookups are copied per client subnet, with the scope of the
 * entry the shared cache chose. */
static void test_copy_scopes(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	struct flat_cache_key k = TKEY("\3cdn\7example\3net\0");
	struct codec_ecs a = subnet4(198, 51, 100, 24), b = subnet4(198, 51, 7, 24);
	struct codec_ecs far = subnet4(203, 0, 113, 24);
	struct flat_cache_key k16 = k, q;
	union flat_cache_value v0 = tagged(100, 300), v16 = tagged(116, 300),
	                       v24 = tagged(124, 300);
	uint32_t ttl;
	uint8_t tag;

	flat_cache_key_scope(&k16, CODEC_ECS_FAMILY_IP4, 16, a.addr);
	assert_int_equal(flat_cache_put(c, &k, &v0, 0), 0);
	assert_int_equal(flat_cache_put(c, &k16, &v16, 0), 0);
	for (int round = 0; round < 2; round++) {
		q = k;
		assert_int_equal(get(cp, c, &q, &a, 10 + round, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 116);
		assert_memory_equal(q.ecs, k16.ecs, FLAT_CACHE_ECS_LEN);
		q = k;
		assert_int_equal(get(cp, c, &q, &b, 10 + round, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 116);
		q = k;
		assert_int_equal(get(cp, c, &q, &far, 10 + round, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 100);
		assert_int_equal(q.ecs[0], FLAT_CACHE_ECS_ANY);
		/* Without a client: the scope-0 entry itself. */
		q = k;
		assert_int_equal(get(cp, c, &q, NULL, 10 + round, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 100);
	}
	struct flat_copy_stats st;
	flat_copy_stats(cp, &st);
	assert_int_equal(st.fills, 4);
	assert_int_equal(st.hits, 4);
	/* A more specific entry put meanwhile is seen within
	 * FLAT_COPY_RECHECK_MS (the /16 answer covers the client until
	 * then, within its TTL). */
	struct flat_cache_key k24 = k;
	flat_cache_key_scope(&k24, CODEC_ECS_FAMILY_IP4, 24, a.addr);
	assert_int_equal(flat_cache_put(c, &k24, &v24, 20), 0);
	q = k;
	assert_int_equal(get(cp, c, &q, &a, 10 + FLAT_COPY_RECHECK_MS, &ttl, &tag), FLAT_CACHE_HIT);
	assert_int_equal(tag, 124);
	assert_int_equal(q.ecs[1], 24);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* More keys than slots: every answer is still the key's own, names too
 * long for a slot go to the shared cache, negative presence facts are
 * copied like positive ones. */
static void test_copy_bounded_and_exact(void **state)
{
	(void)state;
	struct flat_cache_conf conf = {.max_bytes = 64 << 20};
	struct flat_cache *c = NULL;
	struct flat_copy *cp = copy_make();
	uint8_t names[3 * TSLOTS][16];
	struct flat_copy_stats st;
	uint32_t ttl;
	uint8_t tag;

	assert_int_equal(flat_cache_new(&c, &conf), 0);
	for (size_t i = 0; i < 3 * TSLOTS; i++) {
		memcpy(names[i], "\4h000\4test\0", 11);
		names[i][2] = (uint8_t)('a' + i % 26);
		names[i][3] = (uint8_t)('a' + i / 26 % 26);
		names[i][4] = (uint8_t)('a' + i / 676);
		struct flat_cache_key k = key_of(names[i], 11, CODEC_TYPE_A, FLAT_KEY_TARGET);
		union flat_cache_value v = tagged((uint8_t)i, 300);
		assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
	}
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 3 * TSLOTS; i++) {
			struct flat_cache_key k =
			        key_of(names[i], 11, CODEC_TYPE_A, FLAT_KEY_TARGET);
			assert_int_equal(get(cp, c, &k, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
			assert_int_equal(tag, (uint8_t)i);
		}
	flat_copy_stats(cp, &st);
	assert_true(st.fills > 3 * TSLOTS);
	/* A few keys fit (a cyclic walk over three times the slots may
	 * well have found none): read twice, they come from the copy. */
	struct flat_copy_stats few;
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < 16; i++) {
			struct flat_cache_key k =
			        key_of(names[i], 11, CODEC_TYPE_A, FLAT_KEY_TARGET);
			assert_int_equal(get(cp, c, &k, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
			assert_int_equal(tag, (uint8_t)i);
		}
	flat_copy_stats(cp, &few);
	assert_true(few.hits >= st.hits + 16);

	/* A name longer than FLAT_COPY_NAME_MAX. */
	uint8_t lng[80];
	memset(lng, 'a', sizeof(lng));
	lng[0] = 63;
	lng[64] = 14;
	lng[79] = 0;
	struct flat_cache_key kl = key_of(lng, sizeof(lng), CODEC_TYPE_A, FLAT_KEY_TARGET);
	union flat_cache_value vl = tagged(77, 300);
	assert_int_equal(flat_cache_put(c, &kl, &vl, 0), 0);
	struct flat_copy_stats before;
	flat_copy_stats(cp, &before);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(get(cp, c, &kl, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, 77);
	}
	flat_copy_stats(cp, &st);
	assert_int_equal(st.hits, before.hits);
	assert_int_equal(st.fills, before.fills);

	/* A negative presence fact, and a malformed key still refused. */
	struct flat_cache_key o = PKEY("\3www\7example\3com\0");
	union flat_cache_value neg = presence(NULL, 0, 60);
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	assert_int_equal(flat_cache_put(c, &o, &neg, 0), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(flat_copy_get(cp, c, &o, NULL, 10, &hit, &ref), FLAT_CACHE_HIT);
		assert_false(ref.presence->present);
		assert_int_equal(ref.ttl_left, 60);
		assert_int_equal(ref.presence->ttl, 60);
	}
	struct flat_cache_key bad = PKEY("\3www\7example\3com");
	assert_int_equal(flat_copy_get(cp, c, &bad, NULL, 10, &hit, &ref), -EINVAL);
	/* Without a copy: the shared cache as is. */
	assert_int_equal(flat_copy_get(NULL, c, &o, NULL, 10, &hit, &ref), FLAT_CACHE_HIT);
	assert_ptr_equal(ref.presence, &hit.value.presence);
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* Names of every length a slot holds: any case finds the copy, a name
 * that differs in any one octet does not. */
static void test_copy_name_lengths(void **state)
{
	(void)state;
	struct flat_cache *c = make(60, 0);
	struct flat_copy *cp = copy_make();
	uint8_t name[FLAT_COPY_NAME_MAX], other[FLAT_COPY_NAME_MAX], upper[FLAT_COPY_NAME_MAX];
	struct flat_copy_stats st, before;
	uint32_t ttl;
	uint8_t tag;

	for (size_t len = 3; len <= FLAT_COPY_NAME_MAX; len++) {
		/* One label of len - 2 octets (at most 62) and the root. */
		name[0] = (uint8_t)(len - 2);
		for (size_t i = 1; i < len - 1; i++)
			name[i] = (uint8_t)('a' + (i * 7 + len) % 26);
		name[len - 1] = 0;
		memcpy(upper, name, len);
		for (size_t i = 1; i < len - 1; i += 2)
			upper[i] = (uint8_t)(upper[i] - 'a' + 'A');
		struct flat_cache_key k = key_of(name, len, CODEC_TYPE_A, FLAT_KEY_TARGET);
		struct flat_cache_key ku = key_of(upper, len, CODEC_TYPE_A, FLAT_KEY_TARGET);
		union flat_cache_value v = tagged((uint8_t)len, 300);
		assert_int_equal(flat_cache_put(c, &k, &v, 0), 0);
		assert_int_equal(get(cp, c, &k, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
		flat_copy_stats(cp, &before);
		assert_int_equal(get(cp, c, &ku, NULL, 10, &ttl, &tag), FLAT_CACHE_HIT);
		assert_int_equal(tag, (uint8_t)len);
		flat_copy_stats(cp, &st);
		assert_int_equal(st.hits, before.hits + 1);
		for (size_t i = 1; i < len - 1; i++) {
			memcpy(other, name, len);
			other[i] = '0';
			struct flat_cache_key ko =
			        key_of(other, len, CODEC_TYPE_A, FLAT_KEY_TARGET);
			assert_int_equal(get(cp, c, &ko, NULL, 10, &ttl, &tag), FLAT_CACHE_MISS);
		}
		flat_copy_stats(cp, &st);
		assert_int_equal(st.hits, before.hits + 1);
	}
	flat_copy_free(cp);
	flat_cache_free(c);
}

/* The tables take at most the bytes asked for, powers of two of slots. */
static void test_copy_sizes(void **state)
{
	(void)state;
	struct flat_copy *cp = NULL;
	struct flat_copy_stats st;

	for (size_t mb = 1; mb <= 64; mb *= 4) {
		assert_int_equal(flat_copy_new(&cp, mb << 20), 0);
		flat_copy_stats(cp, &st);
		assert_true(st.bytes <= mb << 20);
		assert_true(st.bytes > (mb << 20) / 4);
		assert_int_equal(st.presence_slots & (st.presence_slots - 1), 0);
		assert_int_equal(st.target_slots & (st.target_slots - 1), 0);
		assert_true(st.presence_slots > 2 * st.target_slots);
		if (mb == 4)
			assert_int_equal(st.target_slots, TSLOTS);
		flat_copy_free(cp);
	}
	cp = NULL;
	assert_int_equal(flat_copy_new(&cp, 16 * 1024), -EINVAL);
	assert_null(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_copy_answers_fresh_without_shared),
	        cmocka_unit_test(test_copy_never_past_expiry_nor_stale),
	        cmocka_unit_test(test_copy_refresh_ahead_fires_once),
	        cmocka_unit_test(test_copy_takes_refreshed_value),
	        cmocka_unit_test(test_copy_follows_flushes),
	        cmocka_unit_test(test_copy_large_pool_presence),
	        cmocka_unit_test(test_copy_new_cache_not_mistaken),
	        cmocka_unit_test(test_copy_scopes),
	        cmocka_unit_test(test_copy_bounded_and_exact),
	        cmocka_unit_test(test_copy_name_lengths),
	        cmocka_unit_test(test_copy_sizes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
