/* proxy/daemon/gen.h - configuration generations (gen.c). */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "config/config.h"

struct flat_cache;
struct flat_zones;
struct px_server;
struct px_tcache;
struct px_worker;
struct tls_ctx;

/* Reloads posted to a worker but not yet adopted, at most; one more
 * SIGHUP while a worker is this far behind is refused (the worker is
 * stuck, and every post holds a whole configuration). */
#define PX_RELOAD_MAX_PENDING 16

/** Per-worker use count of a generation, alone on its cache line so
 *  workers never write to a line another one writes to. */
struct px_gen_use {
	_Alignas(64) unsigned n;
};

/**
 * A configuration generation: one validated cfg and everything built
 * from it that workers read while answering. Immutable once published.
 * The main thread owns the current one (srv->gen) and posts a reference
 * to each worker on reload; a worker adopts it at a loop-turn boundary
 * (its async callback) and keeps the old one while its own queries and
 * chases still use it: each px_txn and chase records the generation it
 * started under (px_gen_hold), counted per worker without atomics in
 * use[w->idx]. A worker holds one reference for its current generation
 * and one for each older one with a non-zero use count; the last
 * reference frees it (from whichever thread drops it).
 */
struct px_gen {
	atomic_uint refs;
	uint64_t id;                     /**< 1 at startup, +1 per applied reload */
	struct cfg *cfg;                 /**< owned */
	struct px_tcache *tcache;        /**< the target cache, shared by generations */
	struct flat_cache *cache;        /**< tcache's cache */
	struct flat_zones *zones;        /**< [zone] sections, by cfg->zones index */
	struct flat_zones *alias_owners; /**< [alias] owners, by cfg->aliases index */
	struct tls_ctx *tls_dot;         /**< [tls] with ALPN "dot", NULL without DoT */
	struct tls_ctx *tls_doh;         /**< [tls] with ALPN "h2", NULL without DoH */
	struct px_gen_use *use;          /**< n_workers entries */
	unsigned n_use;
};

/* gen.c, main thread. Builds a generation from cfg (owned by it from
 * then on, freed on failure too); the TLS contexts keep prev's session
 * ticket keys, so tickets issued before a reload still resume. 0, or a
 * negative errno with err saying why. */
int px_gen_new(struct px_server *srv, struct cfg *cfg, const struct px_gen *prev,
               struct px_gen **out, char *err, size_t errlen);
/* Makes g (the caller's reference) srv's current generation and updates
 * the main thread's mirrors of its parts; the previous one's reference
 * stays with the caller. */
void px_gen_publish(struct px_server *srv, struct px_gen *g);
/* Builds the first generation from cfg (owned by it from then on). */
int px_gen_first(struct px_server *srv, struct cfg *cfg);
void px_gen_ref(struct px_gen *g);
/* Any thread; the last reference frees the generation. NULL is fine. */
void px_gen_unref(struct px_gen *g);
/* Worker thread: g (w->gen, or one a query of w already holds), counted
 * as used by a query or chase of w until px_gen_release. */
struct px_gen *px_gen_hold(struct px_worker *w, struct px_gen *g);
void px_gen_release(struct px_worker *w, struct px_gen *g);
/* Worker thread: makes g (a reference for w) the worker's current one. */
void px_gen_adopt(struct px_worker *w, struct px_gen *g);
