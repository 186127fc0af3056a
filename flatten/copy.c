#include "flatten/copy.h"

#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/khash.h"
#include "codec/name.h"

/* Ways per set. The tags of a set share one cache line, so a lookup
 * reads that line and, on a tag match, the one slot. */
#define WAYS 4

/* The tags and use stamps of one set. hash 0 marks a way never filled. */
struct set_head {
	alignas(64) uint64_t hash[WAYS]; /* of the lookup: name, type, kind, scoped, ecs_in */
	uint32_t used[WAYS];             /* clock at the way's last use: the least goes */
	uint32_t clock;
};

/*
 * What a lookup asks, as words compared with ==. head: the name's length,
 * the type, the kind, whether it was for a client (HEAD_CLIENT) and
 * whether ecs[] is not all zero (HEAD_ECS; else ecs[] is not compared,
 * nor even written); ecs: key->ecs, or the client's subnet
 * (flat_cache_key_scope()), zero-padded; name: the name, eight octets a
 * word, the last one zero-padded (lowercase in a slot, as asked in a
 * probe).
 */
#define HEAD_CLIENT (1ull << 32)
#define HEAD_ECS (1ull << 33)
#define NAME_WORDS (FLAT_COPY_NAME_MAX / 8)

struct key_words {
	uint64_t head;
	uint64_t ecs[3];
	uint64_t name[NAME_WORDS];
};

/*
 * One copied lookup. The value follows the header in the same slot (struct
 * pslot, struct tslot), copied whole, so the slot does not care what a
 * value holds.
 */
struct slot {
	uint64_t gen;            /* flat_cache_gen() read before the get that filled it */
	uint64_t until_ms;       /* answers while now_ms < until_ms */
	uint64_t fresh_until_ms; /* for ttl_left */
	uint32_t ttl_fill;       /* ttl_left when filled: never more later */
	uint8_t ecs_out[FLAT_CACHE_ECS_LEN]; /* key->ecs on return: the entry's scope */
	struct key_words key;
};

/* Octets of a pool's names a presence slot keeps: one target (most
 * owners) or a small pool. A larger pool is read from the shared cache
 * each time. Whole (1 KiB of names), a presence slot was as large as a
 * target's and the copy held a quarter as many owners: with the bench's
 * 6 000 names it thrashed (bench/profile.sh plain callgrind: 3 301
 * instructions per relayed answer, 2 805 with this). */
#define COPY_PRESENCE_NAMES 256
#define COPY_PRESENCE_SIZE (offsetof(struct flat_presence, targets) + COPY_PRESENCE_NAMES)
_Static_assert(sizeof(struct flat_presence) - offsetof(struct flat_presence, targets) -
                               FLAT_POOL_NAMES_MAX <
                       alignof(struct flat_presence),
               "the names are the last member of struct flat_presence");

struct pslot {
	struct slot h;
	/* A struct flat_presence cut after COPY_PRESENCE_NAMES octets of
	 * names: only targets_len of them are ever read. */
	_Alignas(struct flat_presence) unsigned char v[COPY_PRESENCE_SIZE];
};

struct tslot {
	struct slot h;
	struct flat_result v;
};

/* A WAYS-way set-associative table of slots of one kind. */
struct table {
	struct set_head *heads;
	unsigned char *mem;
	size_t stride; /* bytes per slot */
	size_t voff;   /* offset of the value in a slot */
	size_t vsize;  /* bytes of the value */
	size_t mask;   /* sets - 1 */
};

struct flat_copy {
	struct table presence;
	struct table target;
	uint64_t seed;
	struct flat_copy_stats st;
};

static int table_init(struct table *t, size_t slots, size_t stride, size_t voff, size_t vsize)
{
	t->heads = aligned_alloc(alignof(struct set_head), slots / WAYS * sizeof(*t->heads));
	if (t->heads != NULL)
		memset(t->heads, 0, slots / WAYS * sizeof(*t->heads));
	t->mem = calloc(slots, stride);
	t->stride = stride;
	t->voff = voff;
	t->vsize = vsize;
	t->mask = slots / WAYS - 1;
	return t->heads != NULL && t->mem != NULL ? 0 : -ENOMEM;
}

/* The most slots, a power of two, whose table fits in bytes. */
static size_t slots_for(size_t bytes, size_t stride)
{
	size_t per = stride + sizeof(struct set_head) / WAYS, n = FLAT_COPY_MIN_SLOTS;

	if (bytes / per < n)
		return 0;
	while (n * 2 <= bytes / per)
		n *= 2;
	return n;
}

int flat_copy_new(struct flat_copy **out, size_t max_bytes)
{
	/* Half each: a presence slot is about a third of a target's, so
	 * there are about three times as many, as there are more owners
	 * than targets. */
	size_t np = slots_for(max_bytes / 2, sizeof(struct pslot));
	size_t nt = slots_for(max_bytes / 2, sizeof(struct tslot));
	struct codec_hkey k;

	if (np == 0 || nt == 0)
		return -EINVAL;
	struct flat_copy *cp = calloc(1, sizeof(*cp));
	if (cp == NULL)
		return -ENOMEM;
	if (table_init(&cp->presence, np, sizeof(struct pslot), offsetof(struct pslot, v),
	               COPY_PRESENCE_SIZE) != 0 ||
	    table_init(&cp->target, nt, sizeof(struct tslot), offsetof(struct tslot, v),
	               sizeof(struct flat_result)) != 0) {
		flat_copy_free(cp);
		return -ENOMEM;
	}
	cp->st.presence_slots = np;
	cp->st.target_slots = nt;
	cp->st.bytes = np * (sizeof(struct pslot) + sizeof(struct set_head) / WAYS) +
	               nt * (sizeof(struct tslot) + sizeof(struct set_head) / WAYS);
	/* The sets are few and bounded: a seed only keeps clients from
	 * choosing names that evict each other's copies. */
	codec_hkey_random(&k);
	cp->seed = k.k0 ^ k.k1;
	*out = cp;
	return 0;
}

void flat_copy_free(struct flat_copy *cp)
{
	if (cp == NULL)
		return;
	free(cp->presence.heads);
	free(cp->presence.mem);
	free(cp->target.heads);
	free(cp->target.mem);
	free(cp);
}

void flat_copy_stats(const struct flat_copy *cp, struct flat_copy_stats *st)
{
	if (cp == NULL)
		memset(st, 0, sizeof(*st));
	else
		*st = cp->st;
}

static struct slot *slot_at(const struct table *t, size_t i)
{
	return (struct slot *)(void *)(t->mem + i * t->stride);
}

static void *value_of(const struct table *t, struct slot *s)
{
	return (unsigned char *)s + t->voff;
}

/* Points ref at value v of kind with ttl_left. */
static void ref_set(struct flat_copy_ref *ref, enum flat_key_kind kind, void *v, uint32_t ttl_left)
{
	ref->result = kind == FLAT_KEY_TARGET ? v : NULL;
	ref->presence = kind == FLAT_KEY_PRESENCE ? v : NULL;
	ref->ttl_left = ttl_left;
}

/* The shared cache's answer, with ref pointing into hit. Out of line, as
 * fill(): the answer from the copy is the path to keep short. */
__attribute__((noinline)) static int shared_get(struct flat_cache *c, struct flat_cache_key *key,
                                                const struct codec_ecs *client, uint64_t now_ms,
                                                struct flat_cache_hit *hit,
                                                struct flat_copy_ref *ref)
{
	int st = flat_cache_get_scoped(c, key, client, now_ms, hit);

	if (st > FLAT_CACHE_MISS)
		ref_set(ref, key->kind,
		        key->kind == FLAT_KEY_TARGET ? (void *)&hit->value.result
		                                     : (void *)&hit->value.presence,
		        hit->ttl_left);
	else
		memset(ref, 0, sizeof(*ref));
	return st;
}

/* What one lookup is, in words, and their hash. */
struct probe {
	uint64_t hash;
	unsigned nwords; /* of key.name */
	struct key_words key;
};

/* One word into the hash: a multiply per word, and the full finaliser
 * at the end (probe_make). Collisions only cost a copy its slot: a set
 * holds four and is compared word for word. */
static uint64_t hash_word(uint64_t h, uint64_t w)
{
	return (h ^ w) * 0x9e3779b97f4a7c15ull;
}

/* FOLD | x maps both cases of a letter to one octet (and a few other
 * octets together, e.g. '@' and '`'): a hash of the words folded so is
 * the same for every spelling of a name, for one OR per word. Only the
 * compare needs the exact lowercase (slot_match). */
#define FOLD 0x2020202020202020ull

/* The words of name (1..FLAT_COPY_NAME_MAX octets) as asked into w, their
 * folded hash into *h; returns how many. Eight octets at a time; the last
 * word is loaded as the name's last eight octets and the ones already
 * taken shifted out, so no octet past the name is read. */
static unsigned name_words(const uint8_t *name, size_t len, uint64_t *w, uint64_t *h)
{
	unsigned n = 0;
	size_t i = 0;
	uint64_t x;

	for (; i + 8 <= len; i += 8) {
		memcpy(&x, name + i, 8);
		w[n++] = x;
		*h = hash_word(*h, x | FOLD);
	}
	if (i == len)
		return n;
	if (len >= 8) {
		unsigned keep = (unsigned)(len - i) * 8;

		memcpy(&x, name + len - 8, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		x >>= 64 - keep;
#else
		x &= (1ull << keep) - 1;
#endif
	} else {
		x = 0;
		for (size_t j = len; j-- > 0;)
			x = x << 8 | name[j];
	}
	w[n++] = x;
	*h = hash_word(*h, x | FOLD);
	return n;
}

static void probe_make(const struct flat_copy *cp, const struct flat_cache_key *key,
                       const struct codec_ecs *client, struct probe *p)
{
	const uint8_t *ecs = key->ecs;
	struct flat_cache_key sk;
	uint64_t h;

	p->key.head = (uint64_t)key->len | (uint64_t)key->type << 8 | (uint64_t)key->kind << 24;
	if (client != NULL) {
		flat_cache_key_scope(&sk, client->family, client->source, client->addr);
		ecs = sk.ecs;
		p->key.head |= HEAD_CLIENT;
	}
	h = hash_word(cp->seed, p->key.head);
	/* ecs[0] is 0 exactly when the scope is all zero (ANY). */
	if (ecs[0] != 0) {
		p->key.head |= HEAD_ECS;
		p->key.ecs[2] = 0;
		memcpy(p->key.ecs, ecs, FLAT_CACHE_ECS_LEN);
		h = hash_word(hash_word(hash_word(h, p->key.ecs[0]), p->key.ecs[1]), p->key.ecs[2]);
	}
	p->nwords = name_words(key->name, key->len, p->key.name, &h);
	/* The finaliser of MurmurHash3, so that the low bits that pick the
	 * set depend on every word. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	/* Never 0, which marks an empty way. */
	p->hash = h | 1ull << 63;
}

/* head holds the name's length, so equal heads mean as many words. The
 * slot's name is lowercase: a word asked in lowercase (most are) equals
 * it as is, any other once folded. */
static bool slot_match(const struct slot *s, const struct probe *p)
{
	if (s->key.head != p->key.head)
		return false;
	if ((p->key.head & HEAD_ECS) &&
	    (s->key.ecs[0] != p->key.ecs[0] || s->key.ecs[1] != p->key.ecs[1] ||
	     s->key.ecs[2] != p->key.ecs[2]))
		return false;
	for (unsigned i = 0; i < p->nwords; i++)
		if (s->key.name[i] != p->key.name[i] &&
		    s->key.name[i] != codec_ascii_lower8(p->key.name[i]))
			return false;
	return true;
}

/* Copies the shared cache's fresh value in hit into way of set si (-1:
 * a way that can no longer answer, else the least recently used one). */
__attribute__((noinline)) static void fill(struct flat_copy *cp, struct table *t, size_t si,
                                           int way, const struct probe *p,
                                           const struct flat_cache_key *key,
                                           const struct flat_cache_hit *hit, uint64_t gen,
                                           uint64_t now_ms)
{
	struct set_head *h = &t->heads[si];
	const void *v = key->kind == FLAT_KEY_TARGET ? (const void *)&hit->value.result
	                                             : (const void *)&hit->value.presence;
	uint64_t until =
	        now_ms + (hit->refreshing ? FLAT_COPY_RECHECK_REFRESH_MS : FLAT_COPY_RECHECK_MS);

	for (int w = 0; w < WAYS && way < 0; w++) {
		const struct slot *o = slot_at(t, si * WAYS + (size_t)w);
		if (h->hash[w] == 0 || o->gen != gen || o->until_ms <= now_ms)
			way = w;
	}
	if (way < 0) {
		/* The least recently used; the clock wraps, ages do not. */
		way = 0;
		for (int w = 1; w < WAYS; w++)
			if (h->clock - h->used[w] > h->clock - h->used[way])
				way = w;
	}
	struct slot *s = slot_at(t, si * WAYS + (size_t)way);
	h->hash[way] = p->hash;
	h->used[way] = ++h->clock;
	s->gen = gen;
	s->until_ms = hit->copy_until_ms < until ? hit->copy_until_ms : until;
	s->fresh_until_ms = hit->fresh_until_ms;
	s->ttl_fill = hit->ttl_left;
	s->key.head = p->key.head;
	if (p->key.head & HEAD_ECS)
		memcpy(s->key.ecs, p->key.ecs, sizeof(s->key.ecs));
	for (unsigned i = 0; i < p->nwords; i++)
		s->key.name[i] = codec_ascii_lower8(p->key.name[i]);
	memcpy(s->ecs_out, key->ecs, sizeof(s->ecs_out));
	memcpy(value_of(t, s), v, t->vsize);
	cp->st.fills++;
}

/* Answers from way of set si (a fresh copy of the cache's generation). */
static int serve(struct flat_copy *cp, struct table *t, size_t si, int way,
                 struct flat_cache_key *key, uint64_t now_ms, struct flat_copy_ref *ref)
{
	struct set_head *h = &t->heads[si];
	struct slot *s = slot_at(t, si * WAYS + (size_t)way);
	void *v = value_of(t, s);
	/* now_ms < until_ms <= fresh_until_ms. The ttl_fill bound holds
	 * when this worker's clock runs behind the one that stored the
	 * value. */
	uint64_t secs = (s->fresh_until_ms - now_ms + 999) / 1000;
	uint32_t ttl = secs < s->ttl_fill ? (uint32_t)secs : s->ttl_fill;

	/* The value's own ttl field says what the shared cache would. */
	if (key->kind == FLAT_KEY_TARGET)
		((struct flat_result *)v)->ttl = ttl;
	else
		((struct flat_presence *)v)->ttl = ttl;
	memcpy(key->ecs, s->ecs_out, sizeof(key->ecs));
	ref_set(ref, key->kind, v, ttl);
	h->used[way] = ++h->clock;
	cp->st.hits++;
	return FLAT_CACHE_HIT;
}

int flat_copy_get(struct flat_copy *cp, struct flat_cache *c, struct flat_cache_key *key,
                  const struct codec_ecs *client, uint64_t now_ms, struct flat_cache_hit *hit,
                  struct flat_copy_ref *ref)
{
	/* A malformed key never matches a slot (slots hold keys the shared
	 * cache accepted), so it reaches the shared cache's checks. */
	if (cp == NULL || key == NULL || key->name == NULL || key->len == 0 ||
	    key->len > FLAT_COPY_NAME_MAX ||
	    (client != NULL && client->family != CODEC_ECS_FAMILY_IP4 &&
	     client->family != CODEC_ECS_FAMILY_IP6))
		return shared_get(c, key, client, now_ms, hit, ref);

	struct table *t = key->kind == FLAT_KEY_PRESENCE ? &cp->presence : &cp->target;
	struct probe p;
	int way = -1;

	probe_make(cp, key, client, &p);
	size_t si = (size_t)(p.hash & t->mask);
	const struct set_head *h = &t->heads[si];
	uint64_t gen = flat_cache_gen(c);

	for (int w = 0; w < WAYS && way < 0; w++)
		if (h->hash[w] == p.hash && slot_match(slot_at(t, si * WAYS + (size_t)w), &p))
			way = w;
	if (way >= 0) {
		const struct slot *s = slot_at(t, si * WAYS + (size_t)way);
		if (s->gen == gen && now_ms < s->until_ms)
			return serve(cp, t, si, way, key, now_ms, ref);
	}
	cp->st.misses++;
	int st = shared_get(c, key, client, now_ms, hit, ref);
	if ((st == FLAT_CACHE_HIT || st == FLAT_CACHE_HIT_PREFETCH) &&
	    hit->copy_until_ms > now_ms &&
	    (key->kind != FLAT_KEY_PRESENCE ||
	     hit->value.presence.targets_len <= COPY_PRESENCE_NAMES))
		fill(cp, t, si, way, &p, key, hit, gen, now_ms);
	return st;
}
