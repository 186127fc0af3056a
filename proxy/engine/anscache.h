/* proxy/engine/anscache.h - per-worker cache of BIND's answers ([cache] answers).
 *
 * Threads: one cache per worker, used only by its loop; the generation
 * number that flushes every worker's cache is read by the caller.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/scan.h"

struct px_anscache;

/** A cache bounded by max_bytes (entries with their answers). */
int px_anscache_new(struct px_anscache **out, size_t max_bytes);
void px_anscache_free(struct px_anscache *c); /* NULL is fine */

/**
 * Looks up the answer to query q (scanned into v) and writes it, ready to
 * send, into out (CODEC_MAX_MSG bytes).
 * @return its length; -ENOENT on a miss (or a query that is not kept);
 *         -EMSGSIZE when the kept answer exceeds max_size (the client's
 *         UDP size): ask BIND, which truncates.
 */
ssize_t px_anscache_get(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                        uint64_t now_ms, uint32_t gen, size_t max_size, uint8_t *out);

/**
 * Drops every kept answer for name (uncompressed wire form, any case),
 * whatever its type, class or flags (`apexctl flush NAME`).
 * @return how many answers were dropped.
 */
size_t px_anscache_drop_name(struct px_anscache *c, const uint8_t *name, size_t len);

/** Keeps BIND's answer resp to query q, if both are of the kind kept. */
void px_anscache_put(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                     const uint8_t *resp, size_t rlen, uint64_t now_ms, uint32_t gen);
/** px_anscache_put, kept for max_ttl seconds at most (0: not kept). */
void px_anscache_put_max(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                         const uint8_t *resp, size_t rlen, uint64_t now_ms, uint32_t gen,
                         uint32_t max_ttl);

/** The longest hash chain: what the slowest lookup walks (tests). */
size_t px_anscache_longest_chain(const struct px_anscache *c);

struct px_worker;
struct px_txn;
/* Keeps BIND's answer to t in the answer cache when both are kept and,
 * at a name in a flattened zone, flattening said it does not apply. */
void px_anscache_offer(struct px_worker *w, const struct px_txn *t, const uint8_t *msg, size_t len);
