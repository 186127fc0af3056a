#include "flatten/copy.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codec/khash.h"
#include "codec/name.h"

/*
 * One copied lookup. The value follows the header in the same slot (struct
 * pslot, struct tslot), copied whole, so the slot does not care what a
 * value holds. hash 0 marks a slot never filled.
 */
struct slot {
	uint64_t hash;           /* of the lookup: name, type, kind, scoped, ecs_in */
	uint64_t gen;            /* flat_cache_gen() read before the get that filled it */
	uint64_t until_ms;       /* answers while now_ms < until_ms */
	uint64_t fresh_until_ms; /* for ttl_left */
	uint32_t ttl_fill;       /* ttl_left when filled: never more later */
	uint16_t type;
	uint8_t name_len;
	uint8_t scoped;                     /* looked up for a client: ecs_in is its subnet */
	uint8_t victim;                     /* way 0 only: the way the next fill of the set takes */
	uint8_t ecs_in[FLAT_CACHE_ECS_LEN]; /* key->ecs, or the client's subnet */
	uint8_t ecs_out[FLAT_CACHE_ECS_LEN]; /* key->ecs on return: the entry's scope */
	uint8_t name[FLAT_COPY_NAME_MAX];    /* lowercase */
};

struct pslot {
	struct slot h;
	struct flat_presence v;
};

struct tslot {
	struct slot h;
	struct flat_result v;
};

/* A two-way set-associative table of slots of one kind. */
struct table {
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
	t->mem = calloc(slots, stride);
	t->stride = stride;
	t->voff = voff;
	t->vsize = vsize;
	t->mask = slots / 2 - 1;
	return t->mem != NULL ? 0 : -ENOMEM;
}

int flat_copy_new(struct flat_copy **out)
{
	struct flat_copy *cp = calloc(1, sizeof(*cp));
	struct codec_hkey k;

	if (cp == NULL)
		return -ENOMEM;
	if (table_init(&cp->presence, FLAT_COPY_PRESENCE_SLOTS, sizeof(struct pslot),
	               offsetof(struct pslot, v), sizeof(struct flat_presence)) != 0 ||
	    table_init(&cp->target, FLAT_COPY_TARGET_SLOTS, sizeof(struct tslot),
	               offsetof(struct tslot, v), sizeof(struct flat_result)) != 0) {
		flat_copy_free(cp);
		return -ENOMEM;
	}
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
	free(cp->presence.mem);
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

/* The shared cache's answer, with ref pointing into hit. */
static int shared_get(struct flat_cache *c, struct flat_cache_key *key,
                      const struct codec_ecs *client, uint64_t now_ms, struct flat_cache_hit *hit,
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

/* What one lookup is, lowercased and hashed. */
struct probe {
	uint64_t hash;
	uint8_t scoped;
	uint8_t ecs_in[FLAT_CACHE_ECS_LEN];
	uint8_t name[FLAT_COPY_NAME_MAX];
};

static void probe_make(const struct flat_copy *cp, const struct flat_cache_key *key,
                       const struct codec_ecs *client, struct probe *p)
{
	uint64_t h = codec_name_lower_hash(key->name, key->len, p->name, cp->seed);

	p->scoped = client != NULL;
	if (client != NULL) {
		struct flat_cache_key sk;

		flat_cache_key_scope(&sk, client->family, client->source, client->addr);
		memcpy(p->ecs_in, sk.ecs, sizeof(p->ecs_in));
	} else {
		memcpy(p->ecs_in, key->ecs, sizeof(p->ecs_in));
	}
	h ^= (uint64_t)key->type | (uint64_t)key->kind << 16 | (uint64_t)p->scoped << 24;
	if (p->ecs_in[0] != 0) {
		uint64_t w[3] = {0, 0, 0};

		memcpy(w, p->ecs_in, sizeof(p->ecs_in));
		h = (h ^ w[0]) * 0x9e3779b97f4a7c15ull;
		h = (h ^ w[1] ^ (h >> 31)) * 0x9e3779b97f4a7c15ull;
		h = (h ^ w[2] ^ (h >> 31)) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	/* Never 0, which marks an empty slot; the set comes from low bits. */
	p->hash = h | 1ull << 63;
}

static bool slot_match(const struct slot *s, const struct probe *p,
                       const struct flat_cache_key *key)
{
	return s->hash == p->hash && s->name_len == key->len && s->type == key->type &&
	       s->scoped == p->scoped && memcmp(s->ecs_in, p->ecs_in, sizeof(s->ecs_in)) == 0 &&
	       memcmp(s->name, p->name, key->len) == 0;
}

/* Copies the shared cache's fresh value in hit into a slot of set: the
 * way that held the lookup, else one that can no longer answer, else the
 * set's victim. */
static void fill(struct flat_copy *cp, struct table *t, struct slot *set[2], int way,
                 const struct probe *p, const struct flat_cache_key *key,
                 const struct flat_cache_hit *hit, uint64_t gen, uint64_t now_ms)
{
	struct slot *s;
	const void *v = key->kind == FLAT_KEY_TARGET ? (const void *)&hit->value.result
	                                             : (const void *)&hit->value.presence;
	uint64_t until = now_ms + FLAT_COPY_RECHECK_MS;

	if (way < 0) {
		way = set[0]->victim;
		for (int i = 0; i < 2; i++)
			if (set[i]->hash == 0 || set[i]->gen != gen || set[i]->until_ms <= now_ms)
				way = i;
	}
	s = set[way];
	s->hash = p->hash;
	s->gen = gen;
	s->until_ms = hit->copy_until_ms < until ? hit->copy_until_ms : until;
	s->fresh_until_ms = hit->fresh_until_ms;
	s->ttl_fill = hit->ttl_left;
	s->type = key->type;
	s->name_len = (uint8_t)key->len;
	s->scoped = p->scoped;
	memcpy(s->ecs_in, p->ecs_in, sizeof(s->ecs_in));
	memcpy(s->ecs_out, key->ecs, sizeof(s->ecs_out));
	memcpy(s->name, p->name, key->len);
	memcpy(value_of(t, s), v, t->vsize);
	set[0]->victim = (uint8_t)(1 - way);
	cp->st.fills++;
}

/* Answers from slot s (a fresh copy of generation gen). */
static int serve(struct flat_copy *cp, struct table *t, struct slot *set[2], int way,
                 struct flat_cache_key *key, uint64_t now_ms, struct flat_copy_ref *ref)
{
	struct slot *s = set[way];
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
	set[0]->victim = (uint8_t)(1 - way);
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
	size_t i = (size_t)(p.hash & t->mask) * 2;
	struct slot *set[2] = {slot_at(t, i), slot_at(t, i + 1)};
	uint64_t gen = flat_cache_gen(c);

	for (int w = 0; w < 2 && way < 0; w++)
		if (slot_match(set[w], &p, key))
			way = w;
	if (way >= 0 && set[way]->gen == gen && now_ms < set[way]->until_ms)
		return serve(cp, t, set, way, key, now_ms, ref);
	cp->st.misses++;
	int st = shared_get(c, key, client, now_ms, hit, ref);
	if ((st == FLAT_CACHE_HIT || st == FLAT_CACHE_HIT_PREFETCH) && hit->copy_until_ms > now_ms)
		fill(cp, t, set, way, &p, key, hit, gen, now_ms);
	return st;
}
