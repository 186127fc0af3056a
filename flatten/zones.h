/* flatten/zones.h - the zones apexd may flatten in.
 *
 * Only names inside a configured [zone] are ever flattened (DESIGN.md:
 * apexd must never become an open resolver). This is the lookup from a
 * query name to the closest enclosing configured zone: an open-addressing
 * table of lowercase apex names, probed for each suffix of the name from
 * the longest down, so nested zones resolve to the deepest one. Only
 * suffixes as long as some apex are probed, and one hash pass from the
 * right end of the name gives the hash of every suffix.
 * Owns: copies of the apex names. Threads: built once, then read-only
 * from any thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct flat_zones;

/**
 * Builds the set from n uncompressed wire names (any case; duplicates
 * are an error).
 * @return 0, -ENOMEM, -EINVAL (a malformed name) or -EEXIST (a duplicate).
 */
int flat_zones_new(struct flat_zones **out, const uint8_t *const *apex, const size_t *len,
                   size_t n);

/** Frees the set; NULL is fine. */
void flat_zones_free(struct flat_zones *z);

/**
 * Finds the deepest configured zone containing name (uncompressed wire
 * form, any case).
 * @param index   set to the zone's position in the list given to _new
 * @param is_apex set to whether name is that zone's apex
 * @return 0 when found, -ENOENT when name is in no configured zone,
 *         -EINVAL when name is malformed.
 */
int flat_zones_find(const struct flat_zones *z, const uint8_t *name, size_t len, size_t *index,
                    bool *is_apex);

/**
 * Is name (uncompressed wire form, any case) exactly one of the names in
 * the set? One probe, for sets of owners rather than zones ([alias]).
 * @param index set to its position in the list given to _new
 * @return 0 when found, -ENOENT when not, -EINVAL when name is malformed.
 */
int flat_zones_get(const struct flat_zones *z, const uint8_t *name, size_t len, size_t *index);
