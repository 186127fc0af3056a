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

/* ecs[0] of a target's directory (struct dir): an internal key that no
 * caller can spell (key_valid refuses it). */
#define ECS_DIR 0xfe

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
 * where the good payload is good_n addresses of addr_len(type) bytes or
 * rdata_len octets of RDATA (TARGET; SVCB/HTTPS: flat_qtype_is_rdata),
 * or the rdata_len-byte names blob of good_n ANAME targets (PRESENCE),
 * present only with E_GOOD,
 * and the failure text (why_len, no NUL) only with E_FAIL.
 * An entry is on its shard's LRU list exactly when it has no claim: a
 * claimed entry holds waiters that nobody else could wake, so eviction
 * must not reach it.
 * Scoped entries (ecs[0] IP4 or IP6) and directories (ECS_DIR) carry a
 * header in front of the struct, in the same allocation (struct
 * scope_link, struct dir): plain entries, the vast majority, do not pay
 * for it.
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
	uint16_t rdata_len; /* E_GOOD, SVCB/HTTPS and PRESENCE: payload octets */
	uint8_t kind;
	uint8_t name_len;
	uint8_t flags;
	uint8_t good_kind; /* TARGET: enum flat_result_kind; PRESENCE: present */
	uint8_t good_n;    /* TARGET: n_addrs; PRESENCE: n_targets */
	uint8_t hops;
	uint8_t fail_hops;
	uint8_t why_len;
	uint8_t ecs[FLAT_CACHE_ECS_LEN];
	uint8_t tail[];
};

/* In front of a scoped entry: its place on its target's directory. */
struct scope_link {
	struct lru_link link; /* on dir->scopes; first member */
	struct entry *dir;    /* the directory's entry */
};

/*
 * In front of a directory entry (ecs[0] ECS_DIR, same name, type and
 * kind as its scoped entries, so found with one probe): the scoped
 * entries of one target, so that a lookup probes only the prefix lengths
 * the target holds, and the cap on scopes evicts the target's own least
 * recently used one. It lives while it lists an entry; it has no value,
 * no claim and is on no LRU list, and it is accounted like an entry.
 */
struct dir {
	struct lru_link scopes; /* most recently used first */
	uint32_t n;
	/* Prefix lengths in use: bit L of used[0] for IPv4 /L, bit L % 64
	 * of used[1 + L / 64] for IPv6 /L. */
	uint64_t used[4];
};

struct shard {
	alignas(CACHE_LINE) pthread_mutex_t lock;
	struct entry **buckets;
	size_t mask;  /* buckets - 1 */
	size_t count; /* in the table, directories included */
	size_t dirs;
	size_t scoped;
	size_t claims;
	size_t bytes;       /* everything, the bucket array included */
	size_t entry_bytes; /* entries, directories and claims */
	size_t max_bytes;
	uint64_t evictions;
	uint64_t scope_evictions;
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
	uint32_t refresh_ms;
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

static bool is_scoped_ecs(const uint8_t *ecs)
{
	return ecs[0] == FLAT_CACHE_ECS_IP4 || ecs[0] == FLAT_CACHE_ECS_IP6;
}

static bool is_scoped(const struct entry *e)
{
	return is_scoped_ecs(e->ecs);
}

static bool is_dir(const struct entry *e)
{
	return e->ecs[0] == ECS_DIR;
}

/* Bytes of the header allocated in front of an entry with this ecs[0]. */
static size_t head_len(uint8_t ecs0)
{
	if (ecs0 == FLAT_CACHE_ECS_IP4 || ecs0 == FLAT_CACHE_ECS_IP6)
		return sizeof(struct scope_link);
	return ecs0 == ECS_DIR ? sizeof(struct dir) : 0;
}

static struct scope_link *link_of(struct entry *e)
{
	return (struct scope_link *)((char *)e - sizeof(struct scope_link));
}

static struct entry *entry_of_link(struct lru_link *l)
{
	return (struct entry *)((char *)l + sizeof(struct scope_link));
}

static struct dir *dir_of(struct entry *d)
{
	return (struct dir *)((char *)d - sizeof(struct dir));
}

static void entry_free(struct entry *e)
{
	free((char *)e - head_len(e->ecs[0]));
}

static unsigned family_bits(uint8_t fam)
{
	return fam == FLAT_CACHE_ECS_IP4 ? 32 : 128;
}

/* A scope's ecs[] is well formed: a known kind, a prefix that fits the
 * family, nothing set past the prefix (else it would never be found by
 * a lookup, which masks), nothing at all with scope 0 or NONE. */
static bool ecs_valid(const uint8_t *ecs)
{
	size_t from = 2;

	if (is_scoped_ecs(ecs)) {
		unsigned p = ecs[1];

		if (p == 0 || p > family_bits(ecs[0]))
			return false;
		from = 2 + p / 8;
		if (p % 8 != 0 && (ecs[from++] & (0xffu >> (p % 8))) != 0)
			return false;
	} else if (ecs[0] != FLAT_CACHE_ECS_ANY && ecs[0] != FLAT_CACHE_ECS_NONE) {
		return false;
	} else {
		from = 1;
	}
	/* One compare rather than a loop over up to 17 octets: every lookup
	 * checks its key. */
	static const uint8_t zero[FLAT_CACHE_ECS_LEN];
	return from >= FLAT_CACHE_ECS_LEN ||
	       memcmp(ecs + from, zero, FLAT_CACHE_ECS_LEN - from) == 0;
}

static bool key_valid(const struct flat_cache_key *k)
{
	return k != NULL && codec_name_valid(k->name, k->len) &&
	       (k->kind == FLAT_KEY_TARGET ||
	        (k->kind == FLAT_KEY_PRESENCE && k->ecs[0] == FLAT_CACHE_ECS_ANY)) &&
	       ecs_valid(k->ecs);
}

static size_t addr_len(uint16_t type)
{
	return type == CODEC_TYPE_A ? 4 : 16;
}

static size_t good_len(const struct entry *e)
{
	if (!(e->flags & E_GOOD))
		return 0;
	if (e->kind != FLAT_KEY_TARGET)
		return e->rdata_len;
	return flat_qtype_is_rdata(e->type) ? e->rdata_len : e->good_n * addr_len(e->type);
}

static uint64_t mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* FNV-1a over the lowercased name, type and kind, seeded per cache and
 * finished with a 64-bit mixer: the names come from other people's CNAME
 * chains, and a chained table degrades to long chains under a lock if
 * they can aim at one bucket. The scope is left out: it picks the shard,
 * so all scopes of a target share one lock. Also makes lk, k with its
 * name lowercased into buf: entries keep their names lowercase, so the
 * probes that follow compare names with memcmp. */
static uint64_t target_hash(uint64_t seed, const struct flat_cache_key *k,
                            struct flat_cache_key *lk, uint8_t *buf)
{
	uint64_t h = 14695981039346656037ull ^ seed;

	for (size_t i = 0; i < k->len; i++) {
		buf[i] = codec_ascii_lower(k->name[i]);
		h = (h ^ buf[i]) * 1099511628211ull;
	}
	h = (h ^ k->type) * 1099511628211ull;
	h = (h ^ (uint64_t)k->kind) * 1099511628211ull;
	*lk = *k;
	lk->name = buf;
	return mix64(h);
}

/* The hash of the key with scope ecs of the target hashed h0: h0 itself
 * for scope 0, so an unscoped key costs nothing more. Each word goes
 * through the mixer after the seeded h0, so clients cannot pick subnets
 * that meet in one bucket either. IPv4 scopes fit in the first word. */
static uint64_t scope_hash(uint64_t h0, const uint8_t *ecs)
{
	uint64_t w[3] = {0, 0, 0};
	uint64_t h;

	if (ecs[0] == FLAT_CACHE_ECS_ANY)
		return h0;
	memcpy(w, ecs, FLAT_CACHE_ECS_LEN);
	h = mix64(h0 ^ w[0]);
	if (ecs[0] == FLAT_CACHE_ECS_IP6)
		h = mix64(mix64(h ^ w[1]) ^ w[2]);
	return h;
}

static struct shard *shard_of(struct flat_cache *c, uint64_t h0, enum flat_key_kind kind)
{
	unsigned store = kind == FLAT_KEY_PRESENCE ? c->nshards : 0;

	/* High bits pick the shard, low bits the bucket inside it. */
	return &c->shards[store + ((h0 >> 48) & (c->nshards - 1))];
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
	/* k's name is lowercase (target_hash). */
	return memcmp(e->ecs, k->ecs, FLAT_CACHE_ECS_LEN) == 0 &&
	       memcmp(e->tail, k->name, k->len) == 0;
}

static struct entry *find(struct shard *s, uint64_t h, const struct flat_cache_key *k)
{
	struct entry *e = s->buckets[h & s->mask];

	while (e != NULL && !key_match(e, h, k))
		e = e->hnext;
	return e;
}

static struct entry **slot_of(struct shard *s, const struct entry *e)
{
	struct entry **slot = &s->buckets[e->hash & s->mask];

	while (*slot != e)
		slot = &(*slot)->hnext;
	return slot;
}

static void list_unlink(struct lru_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l->next = NULL;
}

static void list_push(struct lru_link *head, struct lru_link *l)
{
	l->prev = head;
	l->next = head->next;
	head->next->prev = l;
	head->next = l;
}

static void lru_unlink(struct entry *e)
{
	if (e->lru.next != NULL)
		list_unlink(&e->lru);
}

static void lru_push_front(struct shard *s, struct entry *e)
{
	list_push(&s->lru[lru_class(e)], &e->lru);
}

/* Marks e as just used, on its shard's list and, if scoped, on its
 * target's; claimed entries are not on the shard's list and stay so. */
static void lru_touch(struct shard *s, struct entry *e)
{
	if (e->lru.next != NULL) {
		lru_unlink(e);
		lru_push_front(s, e);
	}
	if (is_scoped(e)) {
		struct scope_link *sl = link_of(e);

		list_unlink(&sl->link);
		list_push(&dir_of(sl->dir)->scopes, &sl->link);
	}
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

/* A fresh entry for key k (scope ecs) with room for payload and why
 * bytes, and the header its scope needs in front. */
static struct entry *entry_alloc(const struct flat_cache_key *k, const uint8_t *ecs, uint64_t h,
                                 size_t payload, size_t why)
{
	size_t head = head_len(ecs[0]);
	char *base = malloc(head + sizeof(struct entry) + k->len + payload + why);
	struct entry *e;

	if (base == NULL)
		return NULL;
	memset(base, 0, head + sizeof(*e));
	e = (struct entry *)(base + head);
	e->hash = h;
	e->type = k->type;
	e->kind = (uint8_t)k->kind;
	e->name_len = (uint8_t)k->len;
	memcpy(e->ecs, ecs, FLAT_CACHE_ECS_LEN);
	for (size_t i = 0; i < k->len; i++)
		e->tail[i] = codec_ascii_lower(k->name[i]);
	e->cost = (uint32_t)alloc_cost(base);
	return e;
}

/* Into the table at the head of its bucket (the key is known absent). */
static void table_add(struct shard *s, struct entry *e)
{
	struct entry **slot = &s->buckets[e->hash & s->mask];

	e->hnext = *slot;
	*slot = e;
	s->count++;
	account(s, e->cost, 0);
	if (s->count > s->mask + 1)
		table_grow(s);
}

static void table_del(struct shard *s, struct entry *e)
{
	struct entry **slot = slot_of(s, e);

	*slot = e->hnext;
	s->count--;
	account(s, 0, e->cost);
}

/* --- a target's directory of scopes ------------------------------------ */

static bool used_test(const struct dir *d, uint8_t fam, unsigned len)
{
	unsigned i = fam == FLAT_CACHE_ECS_IP4 ? 0 : 1 + len / 64;

	return (d->used[i] >> (len % 64)) & 1;
}

static void used_flip(struct dir *d, uint8_t fam, unsigned len)
{
	unsigned i = fam == FLAT_CACHE_ECS_IP4 ? 0 : 1 + len / 64;

	d->used[i] ^= 1ull << (len % 64);
}

/* The key of the directory of k's target, in dk (name borrowed). */
static void dir_key(const struct flat_cache_key *k, struct flat_cache_key *dk)
{
	*dk = *k;
	memset(dk->ecs, 0, sizeof(dk->ecs));
	dk->ecs[0] = ECS_DIR;
}

static struct entry *dir_find(struct shard *s, uint64_t h0, const struct flat_cache_key *k)
{
	struct flat_cache_key dk;

	dir_key(k, &dk);
	return find(s, scope_hash(h0, dk.ecs), &dk);
}

/* The directory of scoped entry e's target, made if it has none yet. */
static struct entry *dir_get(struct shard *s, uint64_t h0, const struct entry *e)
{
	struct flat_cache_key k = {
	        .name = e->tail,
	        .len = e->name_len,
	        .type = e->type,
	        .kind = (enum flat_key_kind)e->kind,
	};
	struct flat_cache_key dk;
	struct entry *d;

	dir_key(&k, &dk);
	d = find(s, scope_hash(h0, dk.ecs), &dk);
	if (d != NULL)
		return d;
	d = entry_alloc(&dk, dk.ecs, scope_hash(h0, dk.ecs), 0, 0);
	if (d == NULL)
		return NULL;
	struct dir *di = dir_of(d);
	di->scopes.prev = di->scopes.next = &di->scopes;
	table_add(s, d);
	s->dirs++;
	return d;
}

/* Takes scoped entry e off its directory, and the directory away with
 * its last entry. */
static void scope_detach(struct shard *s, struct entry *e)
{
	struct scope_link *sl = link_of(e);
	struct entry *d = sl->dir;
	struct dir *di = dir_of(d);

	list_unlink(&sl->link);
	s->scoped--;
	if (--di->n == 0) {
		table_del(s, d);
		s->dirs--;
		entry_free(d);
		return;
	}
	/* Still used if another entry has the same family and length; the
	 * walk usually stops at once, entries of a target sharing a few. */
	for (struct lru_link *l = di->scopes.next; l != &di->scopes; l = l->next)
		if (memcmp(entry_of_link(l)->ecs, e->ecs, 2) == 0)
			return;
	used_flip(di, e->ecs[0], e->ecs[1]);
}

static void entry_drop(struct shard *s, struct entry *e);

/* Makes room on directory d for one more entry: FLAT_CACHE_MAX_SCOPES
 * reached, its least recently used unclaimed entry goes. Claimed ones
 * hold waiters: with all of them claimed the directory goes over, by at
 * most the chases in flight. */
static void scope_make_room(struct shard *s, struct entry *d)
{
	struct dir *di = dir_of(d);
	struct lru_link *l = di->scopes.prev;

	while (di->n >= FLAT_CACHE_MAX_SCOPES && l != &di->scopes) {
		struct entry *v = entry_of_link(l);

		l = l->prev;
		if (v->claim != NULL)
			continue;
		entry_drop(s, v);
		s->scope_evictions++;
	}
}

/* Lists scoped entry e on directory d, as its most recently used. */
static void scope_attach(struct shard *s, struct entry *d, struct entry *e)
{
	struct dir *di = dir_of(d);
	struct scope_link *sl = link_of(e);

	if (!used_test(di, e->ecs[0], e->ecs[1]))
		used_flip(di, e->ecs[0], e->ecs[1]);
	sl->dir = d;
	list_push(&di->scopes, &sl->link);
	di->n++;
	s->scoped++;
}

/* Puts the new entry e in the table: on its shard's LRU list unless
 * claimed, and, if scoped, on its target's directory (made on first use,
 * then kept to FLAT_CACHE_MAX_SCOPES).
 * @return 0 or -ENOMEM (no directory: e is not inserted). */
static int entry_insert(struct shard *s, struct entry *e, uint64_t h0)
{
	if (is_scoped(e)) {
		struct entry *d = dir_get(s, h0, e);

		if (d == NULL)
			return -ENOMEM;
		scope_make_room(s, d);
		scope_attach(s, d, e);
	}
	table_add(s, e);
	if (e->claim == NULL)
		lru_push_front(s, e);
	return 0;
}

/* Takes e out of the table and frees it; its claim must be gone. */
static void entry_drop(struct shard *s, struct entry *e)
{
	table_del(s, e);
	lru_unlink(e);
	if (is_scoped(e))
		scope_detach(s, e);
	entry_free(e);
}

/* Puts n where old was (same key); old's claim must be gone. */
static void entry_replace(struct shard *s, struct entry *old, struct entry *n)
{
	struct entry **slot = slot_of(s, old);

	n->hnext = old->hnext;
	*slot = n;
	lru_unlink(old);
	lru_push_front(s, n);
	if (is_scoped(old)) {
		struct scope_link *ol = link_of(old), *nl = link_of(n);
		struct entry *d = ol->dir;

		list_unlink(&ol->link);
		nl->dir = d;
		list_push(&dir_of(d)->scopes, &nl->link);
	}
	account(s, n->cost, old->cost);
	entry_free(old);
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

/* Would get serve anything from e (HIT, FAIL or STALE)? */
static bool is_usable(const struct flat_cache *c, const struct entry *e, uint64_t now_ms)
{
	return is_stale_ok(c, e, now_ms) || is_failing(e, now_ms);
}

static uint32_t norm_ttl(uint32_t ttl)
{
	if (ttl >= 0x80000000u)
		return 0;
	return ttl < FLAT_CACHE_MAX_TTL_S ? ttl : FLAT_CACHE_MAX_TTL_S;
}

/* Copies e's target value out of payload p. */
static void copy_result(const struct entry *e, const uint8_t *p, struct flat_result *r)
{
	r->kind = (enum flat_result_kind)e->good_kind;
	r->qtype = e->type;
	r->n_addrs = e->good_n;
	if (flat_qtype_is_rdata(e->type)) {
		memcpy(r->rdata, p, e->rdata_len);
		r->rdata_len = e->rdata_len;
	} else {
		size_t alen = addr_len(e->type);

		for (size_t i = 0; i < e->good_n; i++) {
			memcpy(r->addrs[i], p + i * alen, alen);
			memset(r->addrs[i] + alen, 0, sizeof(r->addrs[i]) - alen);
		}
		r->rdata_len = 0;
	}
	r->ede = 0;
	r->why[0] = '\0';
	r->hops = e->hops;
}

/* Copies e's good value out with the given TTL. */
static void copy_good(const struct entry *e, struct flat_cache_hit *hit, uint32_t ttl)
{
	const uint8_t *p = e->tail + e->name_len;

	if (e->kind == FLAT_KEY_TARGET) {
		copy_result(e, p, &hit->value.result);
		hit->value.result.ttl = ttl;
	} else {
		struct flat_presence *pr = &hit->value.presence;

		pr->present = e->good_kind != 0;
		pr->n_targets = e->good_n;
		pr->targets_len = e->rdata_len;
		memcpy(pr->targets, p, e->rdata_len);
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
		r->rdata_len = 0;
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
	c->refresh_ms = conf->refresh_ms;
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
				entry_free(e);
				e = next;
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(c->shards);
	free(c);
}

/* Is it time to refresh fresh entry e, age ms old? Within the last
 * 100 - FLAT_CACHE_PREFETCH_PCT percent of its TTL, or closer to expiry
 * than a refresh may take (refresh_ms, at most half the TTL, so that a
 * short TTL is not refreshed on every hit). */
static bool wants_refresh(const struct flat_cache *c, const struct entry *e, uint64_t age)
{
	uint64_t ttl_ms = (uint64_t)e->ttl_s * 1000;
	uint64_t left = ttl_ms - age;
	uint64_t ahead = c->refresh_ms < ttl_ms / 2 ? c->refresh_ms : ttl_ms / 2;

	return left * 100 <= ttl_ms * (100 - FLAT_CACHE_PREFETCH_PCT) || left < ahead;
}

/* What get says of entry e (see flat_cache_get); drops it if nothing in
 * it can ever be served again. */
static int entry_serve(struct flat_cache *c, struct shard *s, struct entry *e, uint64_t now_ms,
                       struct flat_cache_hit *hit)
{
	int st = FLAT_CACHE_MISS;

	if (is_fresh(e, now_ms)) {
		uint64_t age = age_ms(now_ms, e->stored_ms);

		st = FLAT_CACHE_HIT;
		if (hit != NULL)
			copy_good(e, hit, e->ttl_s - (uint32_t)(age / 1000));
		/* The first caller past the threshold becomes the refresh
		 * owner, so that exactly one chase refreshes the entry. */
		if (!(e->flags & E_PREFETCHED) && e->claim == NULL && wants_refresh(c, e, age)) {
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
	return st;
}

int flat_cache_get(struct flat_cache *c, const struct flat_cache_key *ukey, uint64_t now_ms,
                   struct flat_cache_hit *hit)
{
	if (!key_valid(ukey))
		return -EINVAL;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);
	int st = FLAT_CACHE_MISS;

	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, scope_hash(h0, key->ecs), key);
	if (e != NULL)
		st = entry_serve(c, s, e, now_ms, hit);
	pthread_mutex_unlock(&s->lock);
	return st;
}

/* A placeholder holding a new claim until the owner's put. */
static int claim_placeholder(struct shard *s, const struct flat_cache_key *key, uint64_t h0,
                             uint64_t now_ms)
{
	struct entry *e = entry_alloc(key, key->ecs, scope_hash(h0, key->ecs), 0, 0);

	if (e == NULL)
		return -ENOMEM;
	e->claim = claim_new(s, now_ms);
	if (e->claim == NULL || entry_insert(s, e, h0) != 0) {
		free(claim_detach(s, e));
		entry_free(e);
		return -ENOMEM;
	}
	evict(s, key->kind == FLAT_KEY_PRESENCE);
	return FLAT_CLAIM_OWNER;
}

int flat_cache_claim(struct flat_cache *c, const struct flat_cache_key *ukey, uint64_t now_ms,
                     const struct flat_cache_waiter *waiter)
{
	if (!key_valid(ukey))
		return -EINVAL;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);
	int rc;

	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, scope_hash(h0, key->ecs), key);
	if (e == NULL) {
		rc = claim_placeholder(s, key, h0, now_ms);
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
	if (k->kind == FLAT_KEY_TARGET) {
		const struct flat_result *r = &v->result;

		if (r->kind > FLAT_RES_FAIL)
			return false;
		return r->kind != FLAT_RES_ADDRS ||
		       (r->n_addrs <= FLAT_MAX_ADDRS &&
		        (!flat_qtype_is_rdata(k->type) || r->rdata_len <= FLAT_RDATA_MAX));
	}
	return !v->presence.present ||
	       (v->presence.n_targets > 0 &&
	        flat_pool_count(v->presence.targets, v->presence.targets_len) ==
	                v->presence.n_targets);
}

/* Payload octets a good value takes in an entry of key k. */
static size_t value_bytes(const struct flat_cache_key *k, const union flat_cache_value *v)
{
	if (k->kind == FLAT_KEY_PRESENCE)
		return v->presence.present ? v->presence.targets_len : 0;
	if (v->result.kind != FLAT_RES_ADDRS)
		return 0;
	if (flat_qtype_is_rdata(k->type))
		return v->result.rdata_len;
	return v->result.n_addrs * addr_len(k->type);
}

/* Writes value v as e's good value, stored at now_ms. */
static void set_good(struct entry *e, const union flat_cache_value *v, uint64_t now_ms)
{
	uint8_t *p = e->tail + e->name_len;

	e->flags = E_GOOD;
	e->stored_ms = now_ms;
	if (e->kind == FLAT_KEY_TARGET) {
		const struct flat_result *r = &v->result;
		bool addrs = r->kind == FLAT_RES_ADDRS;

		e->good_kind = (uint8_t)r->kind;
		e->good_n = addrs ? r->n_addrs : 0;
		e->hops = r->hops;
		e->ttl_s = norm_ttl(r->ttl);
		if (flat_qtype_is_rdata(e->type)) {
			e->rdata_len = addrs ? r->rdata_len : 0;
			memcpy(p, r->rdata, e->rdata_len);
		} else {
			size_t alen = addr_len(e->type);

			for (size_t i = 0; i < e->good_n; i++)
				memcpy(p + i * alen, r->addrs[i], alen);
		}
	} else {
		const struct flat_presence *pr = &v->presence;

		e->good_kind = pr->present;
		e->good_n = pr->present ? pr->n_targets : 0;
		e->rdata_len = pr->present ? pr->targets_len : 0;
		e->ttl_s = norm_ttl(pr->ttl);
		memcpy(p, pr->targets, e->rdata_len);
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
	n->rdata_len = old->rdata_len;
	n->hops = old->hops;
	memcpy(n->tail + n->name_len, old->tail + old->name_len, good_len(old));
}

/* The entry a FAIL at key leaves in place of old (maybe NULL): RFC 8767,
 * after a failed refresh the last good answer is what we serve while it
 * is within serve-stale, so it must outlive the failure mark put over
 * it. Sets *none when nothing is to be kept at all. */
static struct entry *fail_entry(const struct flat_cache *c, const struct flat_cache_key *key,
                                uint64_t h, const struct entry *old, const struct flat_result *r,
                                uint64_t now_ms, bool *none)
{
	bool keep = old != NULL && is_stale_ok(c, old, now_ms);
	bool mark = c->failure_ttl_s > 0;
	size_t why = mark ? strnlen(r->why, FLAT_WHY_MAX - 1) : 0;
	struct entry *e;

	*none = !keep && !mark;
	if (*none)
		return NULL;
	e = entry_alloc(key, key->ecs, h, keep ? good_len(old) : 0, why);
	if (e != NULL && keep)
		keep_good(e, old);
	if (e != NULL && mark) {
		e->flags |= E_FAIL;
		e->fail_until_ms = now_ms + (uint64_t)c->failure_ttl_s * 1000;
		e->fail_ede = r->ede;
		e->fail_hops = r->hops;
		e->why_len = (uint8_t)why;
		memcpy(e->tail + e->name_len + good_len(e), r->why, why);
	}
	return e;
}

/* flat_cache_put under the shard lock: *cl gets the key's claim, to end
 * after the unlock; *neg_only says how to evict afterwards. */
static int put_locked(struct flat_cache *c, struct shard *s, const struct flat_cache_key *key,
                      uint64_t h0, const union flat_cache_value *value, uint64_t now_ms,
                      struct claim **cl, bool *neg_only)
{
	uint64_t h = scope_hash(h0, key->ecs);
	struct entry *old = find(s, h, key);
	struct entry *e;

	*neg_only = key->kind == FLAT_KEY_PRESENCE;
	*cl = old != NULL ? claim_detach(s, old) : NULL;
	if (key->kind == FLAT_KEY_TARGET && value->result.kind == FLAT_RES_FAIL) {
		bool none;

		e = fail_entry(c, key, h, old, &value->result, now_ms, &none);
		if (none) {
			if (old != NULL)
				entry_drop(s, old);
			return 0;
		}
	} else {
		e = entry_alloc(key, key->ecs, h, value_bytes(key, value), 0);
		if (e != NULL)
			set_good(e, value, now_ms);
	}
	if (e == NULL) {
		if (old != NULL)
			entry_settle(s, old);
		return -ENOMEM;
	}
	if (old != NULL) {
		entry_replace(s, old, e);
	} else if (entry_insert(s, e, h0) != 0) {
		entry_free(e);
		return -ENOMEM;
	}
	*neg_only = lru_class(e) == LRU_NEG;
	return 0;
}

int flat_cache_put(struct flat_cache *c, const struct flat_cache_key *ukey,
                   const union flat_cache_value *value, uint64_t now_ms)
{
	if (!key_valid(ukey) || !value_valid(ukey, value))
		return -EINVAL;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);
	struct claim *cl;
	bool neg_only;
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = put_locked(c, s, key, h0, value, now_ms, &cl, &neg_only);
	evict(s, neg_only);
	pthread_mutex_unlock(&s->lock);
	claim_end(c, cl);
	return rc;
}

int flat_cache_abandon(struct flat_cache *c, const struct flat_cache_key *ukey)
{
	if (!key_valid(ukey))
		return -EINVAL;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);
	struct claim *cl = NULL;

	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, scope_hash(h0, key->ecs), key);
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

/* Drops e's value for a flush (a claim keeps its placeholder so its
 * waiters are woken by the owner's put); *next, the walk's next entry,
 * moves on if it was e's directory and goes with it. */
static void flush_one(struct shard *s, struct entry *e, struct entry **next)
{
	if (e->claim != NULL) {
		e->flags = 0;
		return;
	}
	if (is_scoped(e) && link_of(e)->dir == *next && dir_of(*next)->n == 1)
		*next = (*next)->hnext;
	entry_drop(s, e);
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

				/* Directories go with their last entry. */
				bool hit = !is_dir(e) &&
				           (zone == NULL ||
				            (exact ? e->name_len == zlen &&
				                             memcmp(e->tail, zone, zlen) == 0
				                   : name_under(e->tail, e->name_len, zone, zlen)));
				if (hit) {
					if (e->flags & (E_GOOD | E_FAIL))
						dropped++;
					flush_one(s, e, &next);
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

/* Fills out from entry e (out zeroed, status MISS). */
static void peek_entry(const struct flat_cache *c, struct entry *e, uint64_t now_ms,
                       struct flat_cache_peek *out)
{
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
}

/* Scoped entries of key's target. */
static uint32_t scopes_of(struct shard *s, uint64_t h0, const struct flat_cache_key *key)
{
	struct entry *d;

	if (key->kind != FLAT_KEY_TARGET)
		return 0;
	d = dir_find(s, h0, key);
	return d != NULL ? dir_of(d)->n : 0;
}

int flat_cache_peek(struct flat_cache *c, const struct flat_cache_key *ukey, uint64_t now_ms,
                    struct flat_cache_peek *out)
{
	struct flat_cache_key k = *ukey;

	return flat_cache_peek_scoped(c, &k, NULL, now_ms, out);
}

/* --- EDNS Client Subnet ------------------------------------------------ */

/* ecs[] of scope fam/len over addr (len within the family's width). */
static void scope_fill(uint8_t *ecs, uint8_t fam, unsigned len, const uint8_t *addr)
{
	unsigned full = len / 8;

	memset(ecs, 0, FLAT_CACHE_ECS_LEN);
	ecs[0] = fam;
	ecs[1] = (uint8_t)len;
	memcpy(ecs + 2, addr, full);
	if (len % 8 != 0)
		ecs[2 + full] = addr[full] & (uint8_t)(0xff00u >> (len % 8));
}

void flat_cache_key_scope(struct flat_cache_key *key, unsigned family, unsigned prefix,
                          const uint8_t *addr)
{
	memset(key->ecs, 0, sizeof(key->ecs));
	if (family == FLAT_CACHE_ECS_NONE) {
		key->ecs[0] = FLAT_CACHE_ECS_NONE;
		return;
	}
	if (prefix == 0 || addr == NULL ||
	    (family != CODEC_ECS_FAMILY_IP4 && family != CODEC_ECS_FAMILY_IP6))
		return;

	uint8_t fam = family == CODEC_ECS_FAMILY_IP4 ? FLAT_CACHE_ECS_IP4 : FLAT_CACHE_ECS_IP6;
	unsigned bits = family_bits(fam);

	scope_fill(key->ecs, fam, prefix < bits ? prefix : bits, addr);
}

/*
 * The scoped entries of directory d that cover a client of family fam
 * with source prefix src and address addr, most specific first, probed
 * at the prefix lengths d holds: the first fresh one, else the first one
 * get would serve anything from (FAIL or STALE), else NULL. Unless ro,
 * drops the dead entries it meets, as get does.
 * Probing costs one hash lookup per length in use (a target's resolver
 * uses one or two), whatever the number of scopes; walking d's list
 * instead was cheaper only up to about 4 entries, by at most 10 %, and
 * 33 times dearer at 1000 (bench/cache_scoped.c, bench/README.md).
 */
static struct entry *scope_probe(struct flat_cache *c, struct shard *s,
                                 const struct flat_cache_key *key, uint64_t h0, struct entry *d,
                                 uint8_t fam, unsigned src, const uint8_t *addr, uint64_t now_ms,
                                 bool ro)
{
	struct dir *di = dir_of(d);
	struct flat_cache_key pk = *key;
	struct entry *best = NULL;
	int words = fam == FLAT_CACHE_ECS_IP4 ? 1 : 3;
	uint64_t used[3];

	/* A copy: dropping dead entries may change the bitmap. */
	memcpy(used, &di->used[fam == FLAT_CACHE_ECS_IP4 ? 0 : 1], (size_t)words * sizeof(used[0]));
	for (int w = words - 1; w >= 0; w--) {
		uint64_t bits = used[w];

		while (bits != 0) {
			unsigned b = 63u - (unsigned)__builtin_clzll(bits);
			unsigned len = (unsigned)w * 64 + b;
			struct entry *e;

			bits &= ~(1ull << b);
			if (len > src)
				continue;
			scope_fill(pk.ecs, fam, len, addr);
			e = find(s, scope_hash(h0, pk.ecs), &pk);
			if (e == NULL)
				continue;
			if (is_fresh(e, now_ms))
				return e;
			if (is_usable(c, e, now_ms)) {
				if (best == NULL)
					best = e;
			} else if (!ro && e->claim == NULL) {
				bool last = di->n == 1;

				entry_drop(s, e);
				if (last)
					return best;
			}
		}
	}
	return best;
}

/*
 * The entry a client's lookup takes, or NULL; sets key->ecs to it, or to
 * the client's own subnet. A fresh entry wins over a more specific one
 * that is only stale or failing: the resolver's newer word for a wider
 * subnet is an answer, and serve-stale is for when there is none (this
 * is also what the waiters of a claim on a /24 find when the answer came
 * back for the /16).
 */
static struct entry *scope_pick(struct flat_cache *c, struct shard *s, struct flat_cache_key *key,
                                uint64_t h0, const struct codec_ecs *cl, uint64_t now_ms, bool ro)
{
	uint8_t fam = cl->family == CODEC_ECS_FAMILY_IP4 ? FLAT_CACHE_ECS_IP4 : FLAT_CACHE_ECS_IP6;
	unsigned src = cl->source < family_bits(fam) ? cl->source : family_bits(fam);
	struct entry *best = NULL, *d = dir_find(s, h0, key), *e;

	if (d != NULL)
		best = scope_probe(c, s, key, h0, d, fam, src, cl->addr, now_ms, ro);
	if (best == NULL || !is_fresh(best, now_ms)) {
		memset(key->ecs, 0, sizeof(key->ecs));
		e = find(s, h0, key);
		if (e != NULL && (is_fresh(e, now_ms) || (best == NULL && is_usable(c, e, now_ms))))
			best = e;
		else if (e != NULL && !ro && e->claim == NULL && !is_usable(c, e, now_ms))
			entry_drop(s, e);
	}
	if (best == NULL) {
		scope_fill(key->ecs, fam, src, cl->addr);
		if (src == 0)
			memset(key->ecs, 0, sizeof(key->ecs));
		return NULL;
	}
	memcpy(key->ecs, best->ecs, sizeof(key->ecs));
	return best;
}

/* A key and client fit for a scoped call (key->ecs is ignored). */
static bool scoped_valid(const struct flat_cache_key *key, const struct codec_ecs *client)
{
	return key != NULL && codec_name_valid(key->name, key->len) &&
	       key->kind == FLAT_KEY_TARGET &&
	       (client->family == CODEC_ECS_FAMILY_IP4 || client->family == CODEC_ECS_FAMILY_IP6);
}

int flat_cache_get_scoped(struct flat_cache *c, struct flat_cache_key *ukey,
                          const struct codec_ecs *client, uint64_t now_ms,
                          struct flat_cache_hit *hit)
{
	if (client == NULL)
		return flat_cache_get(c, ukey, now_ms, hit);
	if (!scoped_valid(ukey, client))
		return -EINVAL;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);
	int st = FLAT_CACHE_MISS;

	pthread_mutex_lock(&s->lock);
	struct entry *e = scope_pick(c, s, key, h0, client, now_ms, false);
	if (e != NULL)
		st = entry_serve(c, s, e, now_ms, hit);
	pthread_mutex_unlock(&s->lock);
	memcpy(ukey->ecs, lk.ecs, sizeof(lk.ecs));
	return st;
}

/* Same (name, type, kind): two keys of one target. */
static bool same_target(const struct flat_cache_key *a, const struct flat_cache_key *b)
{
	if (a->len != b->len || a->type != b->type || a->kind != b->kind)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (codec_ascii_lower(a->name[i]) != codec_ascii_lower(b->name[i]))
			return false;
	return true;
}

int flat_cache_put_scoped(struct flat_cache *c, const struct flat_cache_key *claimed,
                          const struct flat_cache_key *store, const union flat_cache_value *value,
                          uint64_t now_ms)
{
	if (!key_valid(claimed) || !key_valid(store) || !value_valid(claimed, value) ||
	    !same_target(claimed, store))
		return -EINVAL;
	/* A failure has no scope: it stays on the key claimed. */
	if ((claimed->kind == FLAT_KEY_TARGET && value->result.kind == FLAT_RES_FAIL) ||
	    memcmp(claimed->ecs, store->ecs, FLAT_CACHE_ECS_LEN) == 0)
		return flat_cache_put(c, claimed, value, now_ms);

	struct flat_cache_key lc, ls;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, claimed, &lc, buf);
	struct shard *s = shard_of(c, h0, claimed->kind);
	struct claim *cl1 = NULL, *cl2;
	bool neg_only;
	int rc;

	pthread_mutex_lock(&s->lock);
	/* First the claimed entry: once its claim is off, it is fair game
	 * for the cap on scopes that storing may apply. */
	struct entry *e = find(s, scope_hash(h0, lc.ecs), &lc);
	if (e != NULL) {
		cl1 = claim_detach(s, e);
		entry_settle(s, e);
	}
	/* Of the same target: the same name in lowercase. */
	ls = *store;
	ls.name = buf;
	rc = put_locked(c, s, &ls, h0, value, now_ms, &cl2, &neg_only);
	evict(s, neg_only);
	pthread_mutex_unlock(&s->lock);
	claim_end(c, cl1);
	claim_end(c, cl2);
	return rc;
}

int flat_cache_peek_scoped(struct flat_cache *c, struct flat_cache_key *ukey,
                           const struct codec_ecs *client, uint64_t now_ms,
                           struct flat_cache_peek *out)
{
	if (client != NULL ? !scoped_valid(ukey, client) : !key_valid(ukey))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->status = FLAT_CACHE_MISS;

	struct flat_cache_key lk;
	uint8_t buf[CODEC_MAX_NAME];
	uint64_t h0 = target_hash(c->seed, ukey, &lk, buf);
	struct flat_cache_key *key = &lk;
	struct shard *s = shard_of(c, h0, key->kind);

	pthread_mutex_lock(&s->lock);
	struct entry *e = NULL;
	if (client != NULL)
		e = scope_pick(c, s, key, h0, client, now_ms, true);
	/* Without a client, the key's own entry; with one that no entry
	 * covers, a chase claimed at its own subnet may be in flight. */
	if (e == NULL)
		e = find(s, scope_hash(h0, key->ecs), key);
	if (e != NULL)
		peek_entry(c, e, now_ms, out);
	out->scopes = scopes_of(s, h0, key);
	pthread_mutex_unlock(&s->lock);
	memcpy(ukey->ecs, lk.ecs, sizeof(lk.ecs));
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
		st->entries += s->count - s->dirs;
		st->claims += s->claims;
		st->evictions += s->evictions;
		st->scoped += s->scoped;
		st->scope_evictions += s->scope_evictions;
		if (is_presence_shard(c, s)) {
			st->presence_bytes += s->bytes;
			st->presence_entries += s->count - s->dirs;
			st->presence_evictions += s->evictions;
		}
		pthread_mutex_unlock(&s->lock);
	}
}
