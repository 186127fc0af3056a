/* flatten/copy.h - a per-thread read-through copy of the shared cache.
 *
 * Every warm flattened or relayed answer in a configured zone reads the
 * shared cache (flatten/cache.h) once or twice: a shard mutex, and an LRU
 * move that writes the shard's lines, which then bounce between the
 * workers' cores. A worker keeps its own small copy of the values it
 * read lately and answers from it with no lock and no write to anything
 * shared; it asks the shared cache again when the copy may no longer
 * stand for it:
 *  - the value's TTL ran out (the copy serves fresh values only: stale
 *    values, failures and misses always go to the shared cache, whose
 *    serve-stale, failure and claim logic stays the only one);
 *  - the entry's refresh-ahead instant came (flat_cache_hit.copy_until_ms):
 *    the shared get then hands HIT_PREFETCH to exactly one caller, as
 *    without copies;
 *  - FLAT_COPY_RECHECK_MS passed since the copy was made (1 s once the
 *    entry's refresh is under way): a value the shared cache replaced
 *    while still fresh (by that refresh, a sibling update) is served for
 *    at most that long after, within its own TTL, and the shared LRU
 *    position of an entry in use is refreshed that often per worker;
 *  - the cache was flushed (apexctl flush, NOTIFY, reload) or replaced:
 *    flat_cache_gen() changed, which one atomic load checks per answer.
 * Scoped lookups (EDNS Client Subnet) are copied per (name, type, the
 * client's subnet as sent): the same question the shared cache answers
 * with its most specific covering entry; key->ecs is set on return to
 * that entry's scope as flat_cache_get_scoped() does.
 * Memory is fixed per copy, at most the max_bytes it was made with: two
 * four-way set-associative tables (presence facts, targets), each of a
 * power-of-two number of slots in half of it, each slot holding the value
 * struct whole (struct flat_presence, struct flat_result). Names longer
 * than FLAT_COPY_NAME_MAX octets are not copied (they go to the shared
 * cache).
 * Threads: one copy per thread; the shared cache as its own header says.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "codec/ecs.h"
#include "flatten/cache.h"

/* How long a copy answers before the shared cache is asked again: the
 * longest a value the shared cache replaced while still fresh is served
 * after (within its own TTL), and how often the shared LRU hears of an
 * entry in use. Once the entry handed out its refresh (the last 10 % of
 * its TTL, flat_cache_hit.refreshing), the new value is due any moment:
 * then FLAT_COPY_RECHECK_REFRESH_MS. */
#define FLAT_COPY_RECHECK_MS 10000
#define FLAT_COPY_RECHECK_REFRESH_MS 1000
/* Longest name copied (wire octets); a multiple of 8. */
#define FLAT_COPY_NAME_MAX 64
/* Smallest table: below it (max_bytes too small), flat_copy_new fails. */
#define FLAT_COPY_MIN_SLOTS 16

struct flat_copy;

/** Counters of one copy (read by its own thread, or racy from others). */
struct flat_copy_stats {
	uint64_t hits;         /**< answered from the copy */
	uint64_t misses;       /**< asked the shared cache */
	uint64_t fills;        /**< copies made (or made again) */
	size_t presence_slots; /**< presence facts the copy can hold */
	size_t target_slots;   /**< target values the copy can hold */
	size_t bytes;          /**< what its tables take (<= max_bytes) */
};

/** Where a lookup's value is: the member of the key's kind. */
struct flat_copy_ref {
	const struct flat_result *result;     /**< FLAT_KEY_TARGET */
	const struct flat_presence *presence; /**< FLAT_KEY_PRESENCE */
	uint32_t ttl_left;                    /**< as flat_cache_hit.ttl_left */
};

/** A new, empty copy of at most max_bytes; -EINVAL when that does not
 *  hold FLAT_COPY_MIN_SLOTS of each kind, -ENOMEM. The tables are
 *  allocated zeroed, so their pages are only touched as slots fill. */
int flat_copy_new(struct flat_copy **out, size_t max_bytes);

/** Frees cp; NULL is fine. */
void flat_copy_free(struct flat_copy *cp);

/**
 * flat_cache_get_scoped(c, key, client, now_ms, hit) through cp (cp NULL:
 * exactly that call). Same statuses and the same key->ecs on return.
 * On a status with a value (HIT*, STALE, FAIL) ref points to it: into cp
 * when the copy answered (HIT only; valid until the next flat_copy_get
 * of a key of the same kind on cp: the value's ttl field says ttl_left),
 * else into hit->value, and hit's other fields are those of the shared
 * get (has_stale, fail_*: FAIL always comes from the shared cache).
 * A HIT_PREFETCH comes from the shared cache too, once, and obliges the
 * caller exactly as there.
 */
int flat_copy_get(struct flat_copy *cp, struct flat_cache *c, struct flat_cache_key *key,
                  const struct codec_ecs *client, uint64_t now_ms, struct flat_cache_hit *hit,
                  struct flat_copy_ref *ref);

/** Fills st with cp's counters (all zero for NULL). */
void flat_copy_stats(const struct flat_copy *cp, struct flat_copy_stats *st);
