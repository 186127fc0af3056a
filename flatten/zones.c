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
};

/* FNV-1a over the lowercased name: the table is small and built once. */
static uint32_t name_hash(const uint8_t *name, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ codec_ascii_lower(name[i])) * 16777619u;
	return h;
}

static bool name_eq(const uint8_t *a, const uint8_t *lower_b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (codec_ascii_lower(a[i]) != lower_b[i])
			return false;
	return true;
}

static const struct zone_slot *lookup(const struct flat_zones *z, const uint8_t *name, size_t len)
{
	for (size_t i = name_hash(name, len) & z->mask;; i = (i + 1) & z->mask) {
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
		if (lookup(z, apex[k], len[k]) != NULL) {
			flat_zones_free(z);
			return -EEXIST;
		}
		size_t i = name_hash(apex[k], len[k]) & z->mask;
		while (z->slots[i].len != 0)
			i = (i + 1) & z->mask;
		for (size_t j = 0; j < len[k]; j++)
			z->slots[i].name[j] = codec_ascii_lower(apex[k][j]);
		z->slots[i].len = (uint8_t)len[k];
		z->slots[i].index = k;
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
	if (!codec_name_valid(name, len))
		return -EINVAL;
	/* Longest suffix first: the deepest zone wins (a child zone listed
	 * beside its parent owns its own names). */
	for (size_t pos = 0; pos < len; pos += 1 + (size_t)name[pos]) {
		const struct zone_slot *s = lookup(z, name + pos, len - pos);
		if (s != NULL) {
			*index = s->index;
			*is_apex = pos == 0;
			return 0;
		}
		if (name[pos] == 0)
			break;
	}
	return -ENOENT;
}

int flat_zones_get(const struct flat_zones *z, const uint8_t *name, size_t len, size_t *index)
{
	if (!codec_name_valid(name, len))
		return -EINVAL;
	const struct zone_slot *s = lookup(z, name, len);
	if (s == NULL)
		return -ENOENT;
	*index = s->index;
	return 0;
}
