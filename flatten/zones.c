#include "flatten/zones.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "codec/wire.h"

struct zone_slot {
	uint8_t name[CODEC_MAX_NAME]; /* lowercase wire form */
	uint8_t len;                  /* 0 = empty slot */
	size_t index;
};

struct flat_zones {
	struct zone_slot *slots;
	size_t mask; /* capacity - 1, capacity a power of two */
	/* Bit n set: some name in the set is n octets long. A suffix of
	 * another length cannot be in the set, so it is neither hashed nor
	 * probed: most query names are longer than every zone apex. */
	uint64_t lens[(CODEC_MAX_NAME + 1 + 63) / 64];
};

#define HASH_BASIS 2166136261u

/*
 * The hash of a name goes over its lowercased octets from the last to
 * the first, eight at a time, in words cut from the end: [len-8, len),
 * [len-16, len-8), ..., and what is left at the front as a shorter word.
 * The hash of a suffix is then a step on the way to the hash of the whole
 * name (the words of a suffix are cut at the same places), so one pass
 * from the right serves every suffix of a query name (flat_zones_find)
 * instead of one pass per suffix, at a word per step rather than an
 * octet: this runs for every query name in a configured zone.
 */
static uint32_t hash_step(uint32_t h, uint64_t w)
{
	/* The high half of a product depends on every bit multiplied. */
	return (uint32_t)(((h ^ w) * 0x9e3779b97f4a7c15ull) >> 32);
}

/* The lowercased octets name[end-8, end) as a word (end >= 8). */
static uint64_t word_at(const uint8_t *name, size_t end)
{
	uint64_t x;

	memcpy(&x, name + end - 8, 8);
	return codec_ascii_lower8(x);
}

/* The lowercased octets name[start, end), fewer than eight, as a word
 * with name[start] lowest: what word_at gives for them once the octets
 * before start are shifted out. */
static uint64_t word_part(const uint8_t *name, size_t start, size_t end)
{
	uint64_t x = 0;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (end >= 8)
		return word_at(name, end) >> (64 - 8 * (end - start));
#endif
	for (size_t i = end; i-- > start;)
		x = x << 8 | name[i];
	return codec_ascii_lower8(x);
}

static uint32_t name_hash(const uint8_t *name, size_t len)
{
	uint32_t h = HASH_BASIS;
	size_t end = len;

	for (; end >= 8; end -= 8)
		h = hash_step(h, word_at(name, end));
	return end > 0 ? hash_step(h, word_part(name, 0, end)) : h;
}

static bool has_len(const struct flat_zones *z, size_t len)
{
	return (z->lens[len / 64] >> (len % 64) & 1) != 0;
}

static bool name_eq(const uint8_t *a, const uint8_t *lower_b, size_t len)
{
	/* Names are mostly asked in lowercase: the octet compare settles
	 * those, the folding loop the rest. */
	if (memcmp(a, lower_b, len) == 0)
		return true;
	for (size_t i = 0; i < len; i++)
		if (codec_ascii_lower_tab[a[i]] != lower_b[i])
			return false;
	return true;
}

/* Probes for name, whose name_hash() is h. */
static const struct zone_slot *lookup(const struct flat_zones *z, const uint8_t *name, size_t len,
                                      uint32_t h)
{
	for (size_t i = h & z->mask;; i = (i + 1) & z->mask) {
		const struct zone_slot *s = &z->slots[i];
		if (s->len == 0)
			return NULL;
		if (s->len == len && name_eq(name, s->name, len))
			return s;
	}
}

int flat_zones_new(struct flat_zones **out, const uint8_t *const *apex, const size_t *len, size_t n)
{
	struct flat_zones *z = calloc(1, sizeof(*z));
	size_t cap = 8;

	if (z == NULL)
		return -ENOMEM;
	/* Keep the load under one half so probes stay short. */
	while (cap < n * 2)
		cap *= 2;
	z->slots = calloc(cap, sizeof(*z->slots));
	if (z->slots == NULL) {
		free(z);
		return -ENOMEM;
	}
	z->mask = cap - 1;
	for (size_t k = 0; k < n; k++) {
		if (!codec_name_valid(apex[k], len[k])) {
			flat_zones_free(z);
			return -EINVAL;
		}
		uint32_t h = name_hash(apex[k], len[k]);
		if (lookup(z, apex[k], len[k], h) != NULL) {
			flat_zones_free(z);
			return -EEXIST;
		}
		size_t i = h & z->mask;
		while (z->slots[i].len != 0)
			i = (i + 1) & z->mask;
		for (size_t j = 0; j < len[k]; j++)
			z->slots[i].name[j] = codec_ascii_lower(apex[k][j]);
		z->slots[i].len = (uint8_t)len[k];
		z->slots[i].index = k;
		z->lens[len[k] / 64] |= (uint64_t)1 << (len[k] % 64);
	}
	*out = z;
	return 0;
}

void flat_zones_free(struct flat_zones *z)
{
	if (z == NULL)
		return;
	free(z->slots);
	free(z);
}

int flat_zones_find(const struct flat_zones *z, const uint8_t *name, size_t len, size_t *index,
                    bool *is_apex)
{
	/* Where each suffix of a length in the set starts, and its hash: a
	 * valid name has at most 128 labels (one octet each, and the root). */
	uint8_t start[CODEC_MAX_NAME / 2 + 1];
	uint32_t hash[CODEC_MAX_NAME / 2 + 1];
	size_t n = 0;

	/* The checks of codec_name_valid(), made on the walk that finds the
	 * label starts rather than on a walk of their own. */
	if (name == NULL || len == 0 || len > CODEC_MAX_NAME)
		return -EINVAL;
	for (size_t pos = 0;; pos += 1 + (size_t)name[pos]) {
		if (pos >= len || name[pos] > CODEC_MAX_LABEL)
			return -EINVAL;
		if (has_len(z, len - pos))
			start[n++] = (uint8_t)pos;
		if (name[pos] == 0) {
			if (pos + 1 != len)
				return -EINVAL;
			break;
		}
	}
	/* One pass from the right over whole words, keeping the hash at
	 * each start (with its front part word, if any). */
	uint32_t h = HASH_BASIS;
	size_t end = len;
	for (size_t k = n; k-- > 0;) {
		for (; end - start[k] >= 8; end -= 8)
			h = hash_step(h, word_at(name, end));
		hash[k] = end > start[k] ? hash_step(h, word_part(name, start[k], end)) : h;
	}
	/* Longest suffix first: the deepest zone wins (a child zone listed
	 * beside its parent owns its own names). */
	for (size_t k = 0; k < n; k++) {
		const struct zone_slot *s = lookup(z, name + start[k], len - start[k], hash[k]);
		if (s != NULL) {
			*index = s->index;
			*is_apex = start[k] == 0;
			return 0;
		}
	}
	return -ENOENT;
}

int flat_zones_get(const struct flat_zones *z, const uint8_t *name, size_t len, size_t *index)
{
	if (!codec_name_valid(name, len))
		return -EINVAL;
	if (!has_len(z, len))
		return -ENOENT;
	const struct zone_slot *s = lookup(z, name, len, name_hash(name, len));
	if (s == NULL)
		return -ENOENT;
	*index = s->index;
	return 0;
}
