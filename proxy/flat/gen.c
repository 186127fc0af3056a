/* proxy/flat/gen.c - flattening's part of a configuration generation:
 * zone and [alias] tables, and the target cache shared across reloads
 * that leave its settings alone.
 * Threads: the main thread (startup, reload).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "flatten/zones.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat_int.h"
#include "proxy/ops/log.h"

/* --- per generation ---------------------------------------------------- */

/* The target cache, shared by the generations whose settings for it are
 * the same: a reload that leaves them alone keeps every entry. */
struct px_tcache {
	atomic_uint refs;
	struct flat_cache *c;
	struct flat_cache_conf conf;
};

static void tcache_unref(struct px_tcache *tc)
{
	if (tc != NULL && atomic_fetch_sub_explicit(&tc->refs, 1, memory_order_acq_rel) == 1) {
		flat_cache_free(tc->c);
		free(tc);
	}
}

static bool cache_conf_equal(const struct flat_cache_conf *a, const struct flat_cache_conf *b)
{
	return a->max_bytes == b->max_bytes && a->shards == b->shards &&
	       a->serve_stale_s == b->serve_stale_s && a->failure_ttl_s == b->failure_ttl_s &&
	       a->pending_ms == b->pending_ms && a->refresh_ms == b->refresh_ms;
}

int px_flat_gen_init(struct px_server *srv, struct px_gen *g, const struct px_gen *prev)
{
	const struct cfg *cfg = g->cfg;
	struct flat_cache_conf cc = {
	        .max_bytes = (size_t)cfg->flatten.cache_size,
	        .serve_stale_s = (uint32_t)cfg->flatten.serve_stale_s,
	        .failure_ttl_s = (uint32_t)cfg->flatten.failure_ttl_s,
	        /* A claim outlives every deadline that may wait on it. */
	        .pending_ms =
	                (uint32_t)(cfg->flatten.deadline_ms +
	                           cfg->resolver.timeout_ms * (cfg->resolver.addresses.n + 1)),
	        /* A chase ends by the deadline: refreshing that long before
	         * expiry has the new value in before the old one goes. */
	        .refresh_ms = (uint32_t)cfg->flatten.deadline_ms,
	        .wake = px_flat_cache_wake,
	        .wake_arg = srv,
	};
	int rc;

	if (prev != NULL && cache_conf_equal(&prev->tcache->conf, &cc)) {
		atomic_fetch_add_explicit(&prev->tcache->refs, 1, memory_order_relaxed);
		g->tcache = prev->tcache;
	} else {
		struct px_tcache *tc = calloc(1, sizeof(*tc));
		if (tc == NULL)
			return -ENOMEM;
		rc = flat_cache_new(&tc->c, &cc);
		if (rc < 0) {
			free(tc);
			return rc;
		}
		atomic_init(&tc->refs, 1);
		tc->conf = cc;
		g->tcache = tc;
		if (prev != NULL)
			px_log(CFG_LOG_INFO, CACHE,
			       "reload: cache-size, serve-stale, failure-ttl or the chase "
			       "timeouts changed: a new, empty target cache");
	}
	g->cache = g->tcache->c;
	if (cfg->n_zones == 0)
		return 0;

	const uint8_t **names = calloc(cfg->n_zones + cfg->n_aliases, sizeof(*names));
	size_t *lens = calloc(cfg->n_zones + cfg->n_aliases, sizeof(*lens));
	if (names == NULL || lens == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_zones; i++) {
		names[i] = cfg->zones[i].name.wire;
		lens[i] = cfg->zones[i].name.wire_len;
	}
	rc = flat_zones_new(&g->zones, names, lens, cfg->n_zones);
	if (rc < 0 || cfg->n_aliases == 0)
		goto out;
	for (size_t i = 0; i < cfg->n_aliases; i++) {
		names[i] = cfg->aliases[i].owner.wire;
		lens[i] = cfg->aliases[i].owner.wire_len;
	}
	rc = flat_zones_new(&g->alias_owners, names, lens, cfg->n_aliases);
out:
	free(names);
	free(lens);
	return rc;
}

void px_flat_gen_deinit(struct px_gen *g)
{
	tcache_unref(g->tcache);
	flat_zones_free(g->zones);
	flat_zones_free(g->alias_owners);
	g->tcache = NULL;
	g->cache = NULL;
	g->zones = g->alias_owners = NULL;
}

void px_flat_gen_flush_removed(struct px_gen *g, const struct cfg *old)
{
	const struct cfg *nc = g->cfg;

	/* A zone no longer configured: its presence facts must not outlive
	 * it (targets inside it were asked of BIND as our own). */
	for (size_t i = 0; i < old->n_zones; i++) {
		bool kept = false;
		for (size_t j = 0; j < nc->n_zones && !kept; j++)
			kept = strcmp(old->zones[i].name.text, nc->zones[j].name.text) == 0;
		if (!kept)
			flat_cache_flush_suffix(g->cache, old->zones[i].name.wire,
			                        old->zones[i].name.wire_len);
	}
	/* An alias removed or pointed elsewhere: what was learnt at its
	 * owner goes (the target's addresses stay: they are facts about the
	 * target, good for anyone else who points there). */
	for (size_t i = 0; i < old->n_aliases; i++) {
		const struct cfg_alias *a = &old->aliases[i];
		bool same = false;
		for (size_t j = 0; j < nc->n_aliases && !same; j++)
			same = strcmp(a->owner.text, nc->aliases[j].owner.text) == 0 &&
			       a->pool_wire_len == nc->aliases[j].pool_wire_len &&
			       memcmp(a->pool_wire, nc->aliases[j].pool_wire, a->pool_wire_len) ==
			               0;
		if (same)
			continue;
		flat_cache_flush_suffix(g->cache, a->owner.wire, a->owner.wire_len);
	}
}
