/* proxy/daemon/gen.c - configuration generations (struct px_gen, gen.h).
 *
 * A generation bundles one validated cfg with what is built from it:
 * zones, aliases, the target cache, the TLS contexts. The main thread
 * builds one at startup and one per reload (reload.c); workers count the
 * queries that use each one, so an old generation lives until the last
 * query that started under it ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/ctx.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/ops/log.h"

/* A server context from [tls], with the ALPN of a DoH ("h2") or DoT
 * ("dot") port, so a client speaks what the port serves. */
static int tls_ctx_from_cfg(const struct cfg *cfg, bool doh, const struct tls_ctx *tickets_from,
                            struct tls_ctx **out, char *err, size_t errlen)
{
	struct tls_ctx_opts o = {
	        .cert_file = cfg->tls.certificate,
	        .key_file = cfg->tls.private_key,
	        .min_version = (int)cfg->tls.min_version,
	        .alpn = doh ? "h2" : "dot",
	        .ocsp_file = cfg->tls.ocsp_response,
	        .tickets_from = tickets_from,
	};
	return tls_ctx_new(out, &o, err, errlen);
}

static void gen_free(struct px_gen *g)
{
	px_flat_gen_deinit(g);
	tls_ctx_unref(g->tls_dot);
	tls_ctx_unref(g->tls_doh);
	cfg_free(g->cfg);
	free(g->use);
	free(g);
}

void px_gen_ref(struct px_gen *g)
{
	atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
}

void px_gen_unref(struct px_gen *g)
{
	if (g == NULL)
		return;
	/* acq_rel: whatever a thread did with g happens before the free. */
	if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
		gen_free(g);
}

struct px_gen *px_gen_hold(struct px_worker *w, struct px_gen *g)
{
	g->use[w->idx].n++;
	return g;
}

void px_gen_release(struct px_worker *w, struct px_gen *g)
{
	if (g == NULL || px_fails_assert(g->use[w->idx].n > 0))
		return;
	/* The worker's reference on an older generation goes with the
	 * last of its queries that used it. */
	if (--g->use[w->idx].n == 0 && g != w->gen)
		px_gen_unref(g);
}

void px_gen_adopt(struct px_worker *w, struct px_gen *g)
{
	struct px_gen *old = w->gen;

	w->gen = g;
	w->cfg = g->cfg;
	if (old != NULL && old->use[w->idx].n == 0)
		px_gen_unref(old);
}

int px_gen_new(struct px_server *srv, struct cfg *cfg, const struct px_gen *prev,
               struct px_gen **out, char *err, size_t errlen)
{
	struct px_gen *g = calloc(1, sizeof(*g));
	int rc = -ENOMEM;

	err[0] = '\0';
	if (g == NULL) {
		cfg_free(cfg);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	atomic_init(&g->refs, 1);
	g->id = prev != NULL ? prev->id + 1 : 1;
	g->cfg = cfg;
	g->n_use = srv->n_workers;
	g->use = aligned_alloc(_Alignof(struct px_gen_use),
	                       (g->n_use ? g->n_use : 1) * sizeof(struct px_gen_use));
	if (g->use == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(g->use, 0, (g->n_use ? g->n_use : 1) * sizeof(struct px_gen_use));
	rc = px_flat_gen_init(srv, g, prev);
	if (rc < 0) {
		snprintf(err, errlen, "cannot set up flattening: %s", strerror(-rc));
		goto fail;
	}
	for (int doh = 0; doh < 2; doh++) {
		const struct cfg_addr_list *l = doh ? &cfg->listen.doh : &cfg->listen.dot;
		struct tls_ctx **dst = doh ? &g->tls_doh : &g->tls_dot;
		const struct tls_ctx *from = prev == NULL ? NULL
		                             : doh        ? prev->tls_doh
		                                          : prev->tls_dot;
		if (l->n == 0)
			continue;
		char terr[512];
		rc = tls_ctx_from_cfg(cfg, doh, from, dst, terr, sizeof(terr));
		if (rc < 0) {
			snprintf(err, errlen, "[tls] in %s: %s", cfg->path, terr);
			goto fail;
		}
	}
	*out = g;
	return 0;
fail:
	gen_free(g);
	return rc < 0 ? rc : -ENOMEM;
}

void px_gen_publish(struct px_server *srv, struct px_gen *g)
{
	/* The metrics thread takes a reference to srv->gen under gen_mu. */
	uv_mutex_lock(&srv->gen_mu);
	srv->gen = g;
	uv_mutex_unlock(&srv->gen_mu);
	srv->cfg = g->cfg;
	srv->cache = g->cache;
	srv->zones = g->zones;
	srv->alias_owners = g->alias_owners;
	srv->tls_dot = g->tls_dot;
	srv->tls_doh = g->tls_doh;
}

int px_gen_first(struct px_server *srv, struct cfg *cfg)
{
	struct px_gen *g;
	char err[700];
	int rc = px_gen_new(srv, cfg, NULL, &g, err, sizeof(err));

	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s", err);
		return rc;
	}
	px_gen_publish(srv, g);
	return 0;
}
