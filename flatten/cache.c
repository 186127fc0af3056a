#include "flatten/cache.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "codec/khash.h"
#include "codec/name.h"

/* Buckets a shard's table starts with; it doubles when entries outnumber
 * buckets, so chains stay about one long. */
#define SHARD_BUCKETS_MIN 64
/* Shards are cache-line aligned so two workers on neighbouring shards do
 * not bounce one line between their locks. */
#define CACHE_LINE 64

/* Entry flags. */
#define E_GOOD 0x01       /* holds a good value (stored_ms, ttl_s, payload) */
#define E_FAIL 0x02       /* holds a failure mark (fail_until_ms, ede, why) */
#define E_PREFETCHED 0x04 /* HIT_PREFETCH already given for this good value */

/* A shard's LRU lists. Targets and positive presence entries are on the
 * main list; negative presence entries (a name without an ANAME: any name
 * in a configured zone, as many as clients care to invent) on their own,
 * which eviction empties first, and which alone pays for a new negative
 * entry: a flood of them only turns itself over. */
#define LRU_MAIN 0
#define LRU_NEG 1

struct lru_link {
	struct lru_link *prev, *next;
};

/* A claim: the chase in flight for a key and the queries waiting for it. */
struct claim {
	uint64_t since_ms;
	uint32_t n, cap;
	size_t cost; /* bytes accounted for this allocation */
	struct flat_cache_waiter w[];
};

/*
 * One key. Allocated with its variable-length parts in tail, so a
 * one-address entry costs a header and a few dozen bytes rather than a
 * whole struct flat_result (1.1 KiB):
 *   tail = name (name_len, lowercase) | good payload | failure text
 * where the good payload is good_n addresses of addr_len(type) bytes
 * (TARGET) or the good_n-byte ANAME target (PRESENCE), present only with
 * E_GOOD, and the failure text (why_len, no NUL) only with E_FAIL.
 * An entry is on its shard's LRU list exactly when it has no claim: a
 * claimed entry holds waiters that nobody else could wake, so eviction
 * must not reach it.
 */
struct entry {
	struct lru_link lru; /* first member; next == NULL when not listed */
	struct entry *hnext;
	struct claim *claim;
	uint64_t hash;
	uint64_t stored_ms;     /* E_GOOD: when it was put */
	uint64_t fail_until_ms; /* E_FAIL: remembered until */
	uint32_t ttl_s;         /* E_GOOD */
	uint32_t cost;          /* bytes accounted for this allocation */
	uint16_t type;
	uint16_t fail_ede;
	uint8_t kind;
	uint8_t name_len;
	uint8_t flags;
	uint8_t good_kind; /* TARGET: enum flat_result_kind; PRESENCE: present */
	uint8_t good_n;    /* TARGET: n_addrs; PRESENCE: target_len */
	uint8_t hops;
	uint8_t fail_hops;
	uint8_t why_len;
	uint8_t ecs[FLAT_CACHE_ECS_LEN];
	uint8_t tail[];
};

struct shard {
	alignas(CACHE_LINE) pthread_mutex_t lock;
	struct entry **buckets;
	size_t mask; /* buckets - 1 */
	size_t count;
	size_t claims;
	size_t bytes;       /* everything, the bucket array included */
	size_t entry_bytes; /* entries and claims */
	size_t max_bytes;
	uint64_t evictions;
	struct lru_link lru[2]; /* LRU_*; next: most recently used; prev: least */
};

/* Two stores of nshards shards each, in one array: targets first, then
 * presence, each with its own share of max_bytes, so that presence churn
 * never evicts a target. */
struct flat_cache {
	struct shard *shards;
	unsigned nshards; /* per store */
	uint64_t seed;
	uint32_t serve_stale_s;
	uint32_t failure_ttl_s;
	uint32_t pending_ms;
	flat_cache_wake_fn *wake;
	void *wake_arg;
};

/* What the allocator really spends on p: the usable size plus glibc's
 * chunk header, so the bound holds for the process, not just for the
 * bytes we asked for. */
static size_t alloc_cost(void *p)
{
	return malloc_usable_size(p) + sizeof(size_t);
}

static bool key_valid(const struct flat_cache_key *k)
{
	return k != NULL && codec_name_valid(k->name, k->len) &&
	       (k->kind == FLAT_KEY_TARGET || k->kind == FLAT_KEY_PRESENCE);
}

static size_t addr_len(uint16_t type)
{
	return type == CODEC_TYPE_A ? 4 : 16;
}

static size_t good_len(const struct entry *e)
{
	if (!(e->flags & E_GOOD))
		return 0;
	return e->kind == FLAT_KEY_TARGET ? e->good_n * addr_len(e->type) : e->good_n;
}

/* FNV-1a over the lowercased key, seeded per cache and finished with a
 * 64-bit mixer: the names come from other people's CNAME chains, and a
 * chained table degrades to long chains under a lock if they can aim at
 * one bucket. */
static uint64_t key_hash(uint64_t seed, const struct flat_cache_key *k)
{
	uint64_t h = 14695981039346656037ull ^ seed;

	for (size_t i = 0; i < k->len; i++)
		h = (h ^ codec_ascii_lower(k->name[i])) * 1099511628211ull;
	h = (h ^ k->type) * 1099511628211ull;
	h = (h ^ (uint64_t)k->kind) * 1099511628211ull;
	for (size_t i = 0; i < FLAT_CACHE_ECS_LEN; i++)
		h = (h ^ k->ecs[i]) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static struct shard *shard_of(struct flat_cache *c, uint64_t h, enum flat_key_kind kind)
{
	unsigned store = kind == FLAT_KEY_PRESENCE ? c->nshards : 0;

	/* High bits pick the shard, low bits the bucket inside it. */
	return &c->shards[store + ((h >> 48) & (c->nshards - 1))];
}

static bool is_presence_shard(const struct flat_cache *c, const struct shard *s)
{
	return s >= c->shards + c->nshards;
}

/* The list an entry with a value belongs on. */
static unsigned lru_class(const struct entry *e)
{
	return e->kind == FLAT_KEY_PRESENCE && (e->flags & E_GOOD) && e->good_kind == 0 ? LRU_NEG
	                                                                                : LRU_MAIN;
}

static bool key_match(const struct entry *e, uint64_t h, const struct flat_cache_key *k)
{
	if (e->hash != h || e->name_len != k->len || e->type != k->type || e->kind != k->kind)
		return false;
	if (memcmp(e->ecs, k->ecs, FLAT_CACHE_ECS_LEN) != 0)
		return false;
	for (size_t i = 0; i < k->len; i++)
		if (codec_ascii_lower(k->name[i]) != e->tail[i])
			return false;
	return true;
}

static struct entry **find_slot(struct shard *s, uint64_t h, const struct flat_cache_key *k)
{
	struct entry **slot = &s->buckets[h & s->mask];

	while (*slot != NULL && !key_match(*slot, h, k))
		slot = &(*slot)->hnext;
	return slot;
}

static struct entry **slot_of(struct shard *s, const struct entry *e)
{
	struct entry **slot = &s->buckets[e->hash & s->mask];

	while (*slot != e)
		slot = &(*slot)->hnext;
	return slot;
}

static void lru_unlink(struct entry *e)
{
	if (e->lru.next == NULL)
		return;
	e->lru.prev->next = e->lru.next;
	e->lru.next->prev = e->lru.prev;
	e->lru.prev = e->lru.next = NULL;
}

static void lru_push_front(struct shard *s, struct entry *e)
{
	struct lru_link *head = &s->lru[lru_class(e)];

	e->lru.prev = head;
	e->lru.next = head->next;
	head->next->prev = &e->lru;
	head->next = &e->lru;
}

/* Marks e as just used; claimed entries are not listed and stay so. */
static void lru_touch(struct shard *s, struct entry *e)
{
	if (e->lru.next == NULL)
		return;
	lru_unlink(e);
	lru_push_front(s, e);
}

static void account(struct shard *s, size_t add, size_t sub)
{
	s->bytes = s->bytes + add - sub;
	s->entry_bytes = s->entry_bytes + add - sub;
}

/* Doubles the bucket array; on ENOMEM the old one stays (longer chains,
 * still correct). */
static void table_grow(struct shard *s)
{
	size_t n = (s->mask + 1) * 2;
	struct entry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;
	for (size_t i = 0; i <= s->mask; i++) {
		struct entry *e = s->buckets[i];
		while (e != NULL) {
			struct entry *next = e->hnext;
			e->hnext = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	s->bytes -= alloc_cost(s->buckets);
	free(s->buckets);
	s->buckets = b;
	s->mask = n - 1;
	s->bytes += alloc_cost(b);
}

/* A fresh entry for key k with room for payload and why bytes. */
static struct entry *entry_alloc(const struct flat_cache_key *k, uint64_t h, size_t payload,
                                 size_t why)
{
	struct entry *e = malloc(sizeof(*e) + k->len + payload + why);

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	e->type = k->type;
	e->kind = (uint8_t)k->kind;
	e->name_len = (uint8_t)k->len;
	memcpy(e->ecs, k->ecs, FLAT_CACHE_ECS_LEN);
	for (size_t i = 0; i < k->len; i++)
		e->tail[i] = codec_ascii_lower(k->name[i]);
	e->cost = (uint32_t)alloc_cost(e);
	return e;
}

static void entry_insert(struct shard *s, struct entry **slot, struct entry *e)
{
	e->hnext = *slot;
	*slot = e;
	s->count++;
	account(s, e->cost, 0);
	if (e->claim == NULL)
		lru_push_front(s, e);
	if (s->count > s->mask + 1)
		table_grow(s);
}

/* Takes e out of the table and frees it; its claim must be gone. */
static void entry_drop(struct shard *s, struct entry *e)
{
	struct entry **slot = slot_of(s, e);

	*slot = e->hnext;
	lru_unlink(e);
	s->count--;
	account(s, 0, e->cost);
	free(e);
}

/* Puts n where old was (same key); old's claim must be gone. */
static void entry_replace(struct shard *s, struct entry *old, struct entry *n)
{
	struct entry **slot = slot_of(s, old);

	n->hnext = old->hnext;
	*slot = n;
	lru_unlink(old);
	lru_push_front(s, n);
	account(s, n->cost, old->cost);
	free(old);
}

static struct claim *claim_new(struct shard *s, uint64_t now_ms)
{
	struct claim *cl = malloc(sizeof(*cl));

	if (cl == NULL)
		return NULL;
	cl->since_ms = now_ms;
	cl->n = 0;
	cl->cap = 0;
	cl->cost = alloc_cost(cl);
	s->claims++;
	account(s, cl->cost, 0);
	return cl;
}

static int claim_add(struct shard *s, struct entry *e, const struct flat_cache_waiter *w)
{
	struct claim *cl = e->claim;

	if (cl->n == cl->cap) {
		if (cl->cap >= FLAT_CACHE_MAX_WAITERS)
			return -ENOBUFS;
		uint32_t cap = cl->cap != 0 ? cl->cap * 2 : 4;
		struct claim *ncl = realloc(cl, sizeof(*cl) + cap * sizeof(cl->w[0]));
		if (ncl == NULL)
			return -ENOMEM;
		account(s, 0, ncl->cost);
		ncl->cost = alloc_cost(ncl);
		account(s, ncl->cost, 0);
		ncl->cap = cap;
		e->claim = cl = ncl;
	}
	cl->w[cl->n++] = *w;
	return 0;
}

/* Takes e's claim off it for waking after the unlock. */
static struct claim *claim_detach(struct shard *s, struct entry *e)
{
	struct claim *cl = e->claim;

	if (cl == NULL)
		return NULL;
	e->claim = NULL;
	s->claims--;
	account(s, 0, cl->cost);
	return cl;
}

/* Called without any lock held. */
static void claim_end(struct flat_cache *c, struct claim *cl)
{
	if (cl == NULL)
		return;
	if (cl->n > 0 && c->wake != NULL)
		c->wake(c->wake_arg, cl->w, cl->n);
	free(cl);
}

/* After its claim ended: an entry with nothing in it goes, one with a
 * value rejoins the LRU list. */
static void entry_settle(struct shard *s, struct entry *e)
{
	if (!(e->flags & (E_GOOD | E_FAIL)))
		entry_drop(s, e);
	else if (e->lru.next == NULL)
		lru_push_front(s, e);
}

/* Evicts least recently used entries until the shard fits its share:
 * negative presence entries first, then, unless neg_only (what caused
 * the eviction is itself negative, or a presence claim that may turn out
 * negative), the main list. A negative entry thus never evicts a positive
 * one; it may evict itself when positives fill the share. Claimed entries
 * are not listed, so they can hold the shard above its share, by at most
 * the chases in flight. */
static void evict(struct shard *s, bool neg_only)
{
	while (s->bytes > s->max_bytes) {
		struct lru_link *l = s->lru[LRU_NEG].prev;

		if (l == &s->lru[LRU_NEG]) {
			l = s->lru[LRU_MAIN].prev;
			if (neg_only || l == &s->lru[LRU_MAIN])
				break;
		}
		entry_drop(s, (struct entry *)l);
		s->evictions++;
	}
}

static uint64_t age_ms(uint64_t now_ms, uint64_t since_ms)
{
	/* Workers read the clock at slightly different instants; a put
	 * from "the future" is simply of age 0. */
	return now_ms > since_ms ? now_ms - since_ms : 0;
}

static uint64_t fresh_until(const struct entry *e)
{
	return e->stored_ms + (uint64_t)e->ttl_s * 1000;
}

static uint64_t stale_until(const struct flat_cache *c, const struct entry *e)
{
	return fresh_until(e) + (uint64_t)c->serve_stale_s * 1000;
}

static bool is_fresh(const struct entry *e, uint64_t now_ms)
{
	return (e->flags & E_GOOD) && now_ms < fresh_until(e);
}

static bool is_stale_ok(const struct flat_cache *c, const struct entry *e, uint64_t now_ms)
{
	return (e->flags & E_GOOD) && now_ms < stale_until(c, e);
}

static bool is_failing(const struct entry *e, uint64_t now_ms)
{
	return (e->flags & E_FAIL) && now_ms < e->fail_until_ms;
}

static uint32_t norm_ttl(uint32_t ttl)
{
	if (ttl >= 0x80000000u)
		return 0;
	return ttl < FLAT_CACHE_MAX_TTL_S ? ttl : FLAT_CACHE_MAX_TTL_S;
}

/* Copies e's good value out with the given TTL. */
static void copy_good(const struct entry *e, struct flat_cache_hit *hit, uint32_t ttl)
{
	const uint8_t *p = e->tail + e->name_len;

	if (e->kind == FLAT_KEY_TARGET) {
		struct flat_result *r = &hit->value.result;
		size_t alen = addr_len(e->type);

		r->kind = (enum flat_result_kind)e->good_kind;
		r->qtype = e->type;
		r->n_addrs = e->good_n;
		for (size_t i = 0; i < e->good_n; i++) {
			memcpy(r->addrs[i], p + i * alen, alen);
			memset(r->addrs[i] + alen, 0, sizeof(r->addrs[i]) - alen);
		}
		r->ttl = ttl;
		r->ede = 0;
		r->why[0] = '\0';
		r->hops = e->hops;
	} else {
		struct flat_presence *pr = &hit->value.presence;

		pr->present = e->good_kind != 0;
		pr->target_len = e->good_n;
		memcpy(pr->target, p, e->good_n);
		pr->ttl = ttl;
	}
	hit->ttl_left = ttl;
	hit->has_stale = false;
	hit->fail_ede = 0;
	hit->fail_why[0] = '\0';
}

static void copy_fail(const struct entry *e, struct flat_cache_hit *hit, bool has_stale)
{
	const char *why = (const char *)e->tail + e->name_len + good_len(e);

	if (has_stale) {
		copy_good(e, hit, 0);
	} else {
		/* Only TARGET entries carry failure marks. */
		struct flat_result *r = &hit->value.result;

		r->kind = FLAT_RES_FAIL;
		r->qtype = e->type;
		r->n_addrs = 0;
		r->ttl = 0;
		r->ede = e->fail_ede;
		memcpy(r->why, why, e->why_len);
		r->why[e->why_len] = '\0';
		r->hops = e->fail_hops;
		hit->ttl_left = 0;
	}
	hit->has_stale = has_stale;
	hit->fail_ede = e->fail_ede;
	memcpy(hit->fail_why, why, e->why_len);
	hit->fail_why[e->why_len] = '\0';
}

int flat_cache_new(struct flat_cache **out, const struct flat_cache_conf *conf)
{
	unsigned n = conf != NULL && conf->shards != 0 ? conf->shards : FLAT_CACHE_SHARDS;
	struct flat_cache *c;

	if (conf == NULL || conf->max_bytes == 0 || n > FLAT_CACHE_MAX_SHARDS || (n & (n - 1)) != 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->shards = aligned_alloc(CACHE_LINE, 2 * n * sizeof(*c->shards));
	if (c->shards == NULL) {
		free(c);
		return -ENOMEM;
	}
	memset(c->shards, 0, 2 * n * sizeof(*c->shards));
	c->nshards = n;
	c->serve_stale_s = conf->serve_stale_s;
	c->failure_ttl_s = conf->failure_ttl_s;
	c->pending_ms = conf->pending_ms != 0 ? conf->pending_ms : FLAT_CACHE_PENDING_MS;
	c->wake = conf->wake;
	c->wake_arg = conf->wake_arg;
	/* A seed nobody outside can guess (codec_hkey_random falls back to
	 * the clock and addresses without the entropy pool). */
	struct codec_hkey key;
	codec_hkey_random(&key);
	c->seed = key.k0 ^ key.k1;

	size_t presence = conf->max_bytes / 100 * FLAT_CACHE_PRESENCE_PCT +
	                  conf->max_bytes % 100 * FLAT_CACHE_PRESENCE_PCT / 100;

	for (unsigned i = 0; i < 2 * n; i++) {
		struct shard *s = &c->shards[i];

		for (unsigned l = 0; l < 2; l++)
			s->lru[l].prev = s->lru[l].next = &s->lru[l];
		s->max_bytes = (i < n ? conf->max_bytes - presence : presence) / n;
		s->buckets = calloc(SHARD_BUCKETS_MIN, sizeof(*s->buckets));
		if (s->buckets == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
			free(s->buckets);
			for (unsigned j = 0; j < i; j++) {
				pthread_mutex_destroy(&c->shards[j].lock);
				free(c->shards[j].buckets);
			}
			free(c->shards);
			free(c);
			return -ENOMEM;
		}
		s->mask = SHARD_BUCKETS_MIN - 1;
		s->bytes = alloc_cost(s->buckets);
	}
	*out = c;
	return 0;
}

void flat_cache_free(struct flat_cache *c)
{
	if (c == NULL)
		return;
	for (unsigned i = 0; i < 2 * c->nshards; i++) {
		struct shard *s = &c->shards[i];

		for (size_t b = 0; b <= s->mask; b++) {
			struct entry *e = s->buckets[b];
			while (e != NULL) {
				struct entry *next = e->hnext;
				free(e->claim);
				free(e);
				e = next;
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c->shards);
	free(c);
}

int flat_cache_get(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                   struct flat_cache_hit *hit)
{
	if (!key_valid(key))
		return -EINVAL;

	uint64_t h = key_hash(c->seed, key);
	struct shard *s = shard_of(c, h, key->kind);
	int st = FLAT_CACHE_MISS;

	pthread_mutex_lock(&s->lock);
	struct entry *e = *find_slot(s, h, key);
	if (e == NULL)
		goto out;
	if (is_fresh(e, now_ms)) {
		uint64_t age = age_ms(now_ms, e->stored_ms);
		uint64_t ttl_ms = (uint64_t)e->ttl_s * 1000;

		st = FLAT_CACHE_HIT;
		if (hit != NULL)
			copy_good(e, hit, e->ttl_s - (uint32_t)(age / 1000));
		/* The first caller past the threshold becomes the refresh
		 * owner, so that exactly one chase refreshes the entry. */
		if (!(e->flags & E_PREFETCHED) && e->claim == NULL &&
		    age * 100 >= ttl_ms * FLAT_CACHE_PREFETCH_PCT) {
			e->claim = claim_new(s, now_ms);
			if (e->claim != NULL) {
				e->flags |= E_PREFETCHED;
				lru_unlink(e);
				st = FLAT_CACHE_HIT_PREFETCH;
			}
		}
		lru_touch(s, e);
	} else if (is_failing(e, now_ms)) {
		st = FLAT_CACHE_FAIL;
		if (hit != NULL)
			copy_fail(e, hit, is_stale_ok(c, e, now_ms));
		lru_touch(s, e);
	} else if (is_stale_ok(c, e, now_ms)) {
		st = FLAT_CACHE_STALE;
		if (hit != NULL)
			copy_good(e, hit, 0);
		lru_touch(s, e);
	} else if (e->claim == NULL) {
		/* Nothing in it can ever be served again. */
		entry_drop(s, e);
	}
out:
	pthread_mutex_unlock(&s->lock);
	return st;
}

int flat_cache_claim(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                     const struct flat_cache_waiter *waiter)
{
	if (!key_valid(key))
		return -EINVAL;

	uint64_t h = key_hash(c->seed, key);
	struct shard *s = shard_of(c, h, key->kind);
	int rc;

	pthread_mutex_lock(&s->lock);
	struct entry **slot = find_slot(s, h, key);
	struct entry *e = *slot;
	if (e == NULL) {
		/* A placeholder holds the claim until the owner's put. */
		e = entry_alloc(key, h, 0, 0);
		if (e == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		e->claim = claim_new(s, now_ms);
		if (e->claim == NULL) {
			free(e);
			rc = -ENOMEM;
			goto out;
		}
		entry_insert(s, slot, e);
		evict(s, key->kind == FLAT_KEY_PRESENCE);
		rc = FLAT_CLAIM_OWNER;
	} else if (is_fresh(e, now_ms) || is_failing(e, now_ms)) {
		rc = FLAT_CLAIM_READY;
	} else if (e->claim == NULL) {
		e->claim = claim_new(s, now_ms);
		if (e->claim == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		lru_unlink(e);
		rc = FLAT_CLAIM_OWNER;
	} else if (age_ms(now_ms, e->claim->since_ms) >= c->pending_ms) {
		/* The owner is presumed dead: the caller takes over, and
		 * the waiters already registered wait for its put. */
		e->claim->since_ms = now_ms;
		rc = FLAT_CLAIM_OWNER;
	} else {
		rc = waiter != NULL ? claim_add(s, e, waiter) : 0;
		if (rc == 0)
			rc = FLAT_CLAIM_PENDING;
	}
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static bool value_valid(const struct flat_cache_key *k, const union flat_cache_value *v)
{
	if (v == NULL)
		return false;
	if (k->kind == FLAT_KEY_TARGET)
		return v->result.kind <= FLAT_RES_FAIL &&
		       (v->result.kind != FLAT_RES_ADDRS || v->result.n_addrs <= FLAT_MAX_ADDRS);
	return !v->presence.present || codec_name_valid(v->presence.target, v->presence.target_len);
}

/* Writes value v as e's good value, stored at now_ms. */
static void set_good(struct entry *e, const union flat_cache_value *v, uint64_t now_ms)
{
	uint8_t *p = e->tail + e->name_len;

	e->flags = E_GOOD;
	e->stored_ms = now_ms;
	if (e->kind == FLAT_KEY_TARGET) {
		const struct flat_result *r = &v->result;
		size_t alen = addr_len(e->type);

		e->good_kind = (uint8_t)r->kind;
		e->good_n = r->kind == FLAT_RES_ADDRS ? r->n_addrs : 0;
		e->hops = r->hops;
		e->ttl_s = norm_ttl(r->ttl);
		for (size_t i = 0; i < e->good_n; i++)
			memcpy(p + i * alen, r->addrs[i], alen);
	} else {
		const struct flat_presence *pr = &v->presence;

		e->good_kind = pr->present;
		e->good_n = pr->present ? pr->target_len : 0;
		e->ttl_s = norm_ttl(pr->ttl);
		memcpy(p, pr->target, e->good_n);
	}
}

/* Carries old's good value (and its prefetch mark) over into n. */
static void keep_good(struct entry *n, const struct entry *old)
{
	n->flags = old->flags & (E_GOOD | E_PREFETCHED);
	n->stored_ms = old->stored_ms;
	n->ttl_s = old->ttl_s;
	n->good_kind = old->good_kind;
	n->good_n = old->good_n;
	n->hops = old->hops;
	memcpy(n->tail + n->name_len, old->tail + old->name_len, good_len(old));
}

int flat_cache_put(struct flat_cache *c, const struct flat_cache_key *key,
                   const union flat_cache_value *value, uint64_t now_ms)
{
	if (!key_valid(key) || !value_valid(key, value))
		return -EINVAL;

	uint64_t h = key_hash(c->seed, key);
	struct shard *s = shard_of(c, h, key->kind);
	bool fail = key->kind == FLAT_KEY_TARGET && value->result.kind == FLAT_RES_FAIL;
	struct claim *cl = NULL;
	struct entry *e = NULL;
	bool neg_only = key->kind == FLAT_KEY_PRESENCE;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	struct entry **slot = find_slot(s, h, key);
	struct entry *old = *slot;
	if (old != NULL)
		cl = claim_detach(s, old);

	if (!fail) {
		size_t payload;

		if (key->kind == FLAT_KEY_PRESENCE)
			payload = value->presence.present ? value->presence.target_len : 0;
		else if (value->result.kind == FLAT_RES_ADDRS)
			payload = value->result.n_addrs * addr_len(key->type);
		else
			payload = 0;
		e = entry_alloc(key, h, payload, 0);
		if (e != NULL)
			set_good(e, value, now_ms);
	} else {
		/* RFC 8767: after a failed refresh the last good answer
		 * is what we serve while it is within serve-stale, so it
		 * must outlive the failure mark put over it. */
		bool keep = old != NULL && is_stale_ok(c, old, now_ms);
		bool mark = c->failure_ttl_s > 0;
		size_t why = mark ? strnlen(value->result.why, FLAT_WHY_MAX - 1) : 0;

		if (!keep && !mark) {
			if (old != NULL)
				entry_drop(s, old);
			goto out;
		}
		e = entry_alloc(key, h, keep ? good_len(old) : 0, why);
		if (e != NULL && keep)
			keep_good(e, old);
		if (e != NULL && mark) {
			e->flags |= E_FAIL;
			e->fail_until_ms = now_ms + (uint64_t)c->failure_ttl_s * 1000;
			e->fail_ede = value->result.ede;
			e->fail_hops = value->result.hops;
			e->why_len = (uint8_t)why;
			memcpy(e->tail + e->name_len + good_len(e), value->result.why, why);
		}
	}
	if (e == NULL) {
		rc = -ENOMEM;
		if (old != NULL)
			entry_settle(s, old);
		goto out;
	}
	if (old != NULL)
		entry_replace(s, old, e);
	else
		entry_insert(s, slot, e);
	neg_only = lru_class(e) == LRU_NEG;
out:
	evict(s, neg_only);
	pthread_mutex_unlock(&s->lock);
	claim_end(c, cl);
	return rc;
}

int flat_cache_abandon(struct flat_cache *c, const struct flat_cache_key *key)
{
	if (!key_valid(key))
		return -EINVAL;

	uint64_t h = key_hash(c->seed, key);
	struct shard *s = shard_of(c, h, key->kind);
	struct claim *cl = NULL;

	pthread_mutex_lock(&s->lock);
	struct entry *e = *find_slot(s, h, key);
	if (e != NULL && e->claim != NULL) {
		cl = claim_detach(s, e);
		entry_settle(s, e);
		evict(s, key->kind == FLAT_KEY_PRESENCE);
	}
	pthread_mutex_unlock(&s->lock);
	if (cl == NULL)
		return -ENOENT;
	claim_end(c, cl);
	return 0;
}

/* Whether the lowercase name is zone (lowercase) or below it. */
static bool name_under(const uint8_t *name, size_t len, const uint8_t *zone, size_t zlen)
{
	for (size_t pos = 0; pos < len; pos += 1 + (size_t)name[pos]) {
		if (len - pos == zlen && memcmp(name + pos, zone, zlen) == 0)
			return true;
		if (name[pos] == 0)
			break;
	}
	return false;
}

/* Drops the values of every entry under zone (all when zone is NULL),
 * or, when exact, of the entries named zone itself. */
static size_t flush(struct flat_cache *c, const uint8_t *zone, size_t zlen, bool exact)
{
	size_t dropped = 0;

	for (unsigned i = 0; i < 2 * c->nshards; i++) {
		struct shard *s = &c->shards[i];

		pthread_mutex_lock(&s->lock);
		for (size_t b = 0; b <= s->mask; b++) {
			struct entry *e = s->buckets[b];
			while (e != NULL) {
				struct entry *next = e->hnext;

				bool hit = zone == NULL ||
				           (exact ? e->name_len == zlen &&
				                            memcmp(e->tail, zone, zlen) == 0
				                  : name_under(e->tail, e->name_len, zone, zlen));
				if (hit) {
					if (e->flags & (E_GOOD | E_FAIL))
						dropped++;
					/* A claim keeps its placeholder so its
					 * waiters are woken by the owner's put. */
					if (e->claim != NULL)
						e->flags = 0;
					else
						entry_drop(s, e);
				}
				e = next;
			}
		}
		pthread_mutex_unlock(&s->lock);
	}
	return dropped;
}

void flat_cache_flush_all(struct flat_cache *c)
{
	flush(c, NULL, 0, false);
}

/* The flushes take a name in any case; entries are keyed lowercase. */
static ssize_t flush_lowered(struct flat_cache *c, const uint8_t *name, size_t len, bool exact)
{
	uint8_t z[CODEC_MAX_NAME];

	if (!codec_name_valid(name, len))
		return -EINVAL;
	memcpy(z, name, len);
	codec_name_lower(z, len);
	return (ssize_t)flush(c, z, len, exact);
}

ssize_t flat_cache_flush_suffix(struct flat_cache *c, const uint8_t *zone, size_t len)
{
	return flush_lowered(c, zone, len, false);
}

ssize_t flat_cache_flush_name(struct flat_cache *c, const uint8_t *name, size_t len)
{
	return flush_lowered(c, name, len, true);
}

int flat_cache_peek(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                    struct flat_cache_peek *out)
{
	if (!key_valid(key))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->status = FLAT_CACHE_MISS;

	uint64_t h = key_hash(c->seed, key);
	struct shard *s = shard_of(c, h, key->kind);

	pthread_mutex_lock(&s->lock);
	struct entry *e = *find_slot(s, h, key);
	if (e == NULL)
		goto out;
	out->found = true;
	if (e->claim != NULL) {
		out->claimed = true;
		out->waiters = e->claim->n;
		out->claim_age_ms = age_ms(now_ms, e->claim->since_ms);
	}
	if (e->flags & E_GOOD) {
		struct flat_cache_hit hit;
		uint64_t age = age_ms(now_ms, e->stored_ms);

		out->has_good = true;
		out->ttl_s = e->ttl_s;
		out->fresh = is_fresh(e, now_ms);
		out->stale_ok = !out->fresh && is_stale_ok(c, e, now_ms);
		if (out->fresh)
			out->ttl_left = e->ttl_s - (uint32_t)(age / 1000);
		else if (out->stale_ok)
			out->stale_left = (uint32_t)((stale_until(c, e) - now_ms) / 1000);
		copy_good(e, &hit, out->ttl_left);
		out->value = hit.value;
	}
	if (is_failing(e, now_ms)) {
		const char *why = (const char *)e->tail + e->name_len + good_len(e);

		out->failing = true;
		out->fail_left = (uint32_t)((e->fail_until_ms - now_ms + 999) / 1000);
		out->fail_ede = e->fail_ede;
		memcpy(out->fail_why, why, e->why_len);
		out->fail_why[e->why_len] = '\0';
	}
	/* The order flat_cache_get decides in. */
	if (out->fresh)
		out->status = FLAT_CACHE_HIT;
	else if (out->failing)
		out->status = FLAT_CACHE_FAIL;
	else if (out->stale_ok)
		out->status = FLAT_CACHE_STALE;
out:
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void flat_cache_stats(struct flat_cache *c, struct flat_cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (unsigned i = 0; i < 2 * c->nshards; i++) {
		struct shard *s = &c->shards[i];

		pthread_mutex_lock(&s->lock);
		st->bytes += s->bytes;
		st->entry_bytes += s->entry_bytes;
		st->entries += s->count;
		st->claims += s->claims;
		st->evictions += s->evictions;
		if (is_presence_shard(c, s)) {
			st->presence_bytes += s->bytes;
			st->presence_entries += s->count;
			st->presence_evictions += s->evictions;
		}
		pthread_mutex_unlock(&s->lock);
	}
}
