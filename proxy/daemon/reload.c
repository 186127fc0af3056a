/* proxy/daemon/reload.c - configuration generations and reload.
 *
 * A generation (struct px_gen, internal.h) bundles one validated cfg with
 * what is built from it: zones, aliases, the target cache, the TLS
 * contexts. Reload builds a whole new generation next to the running
 * one; only when everything in it loaded (the file, [tls], every new
 * listening address) is it published, so a bad file changes nothing.
 * Publishing posts the generation to each worker with the sockets of the
 * listeners it adds; each worker adopts it between two loop turns, and
 * queries already in flight finish under the generation they started
 * with, which lives until the last of them ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/ctx.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/io/sock.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"
#include "proxy/ops/qlog.h"

/* --- generations ------------------------------------------------------ */

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

/* Builds a generation from cfg (owned by it, freed on failure too); the
 * TLS contexts keep prev's session ticket keys, so tickets issued before
 * a reload still resume. */
static int gen_new(struct px_server *srv, struct cfg *cfg, const struct px_gen *prev,
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

/* The main thread's mirrors of the current generation. */
static void publish(struct px_server *srv, struct px_gen *g)
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
	int rc = gen_new(srv, cfg, NULL, &g, err, sizeof(err));

	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s", err);
		return rc;
	}
	publish(srv, g);
	return 0;
}

/* --- reload ------------------------------------------------------------ */

/* Listener kinds in the order they are compared and logged. */
static const struct {
	const char *name;
	int type;
	enum px_conn_kind kind; /* stream kinds */
	size_t off;
} lkinds[] = {
        {"udp", SOCK_DGRAM, PX_CONN_TCP, offsetof(struct cfg, listen.udp)},
        {"tcp", SOCK_STREAM, PX_CONN_TCP, offsetof(struct cfg, listen.tcp)},
        {"dot", SOCK_STREAM, PX_CONN_DOT, offsetof(struct cfg, listen.dot)},
        {"doh", SOCK_STREAM, PX_CONN_DOH, offsetof(struct cfg, listen.doh)},
};
#define N_LKINDS (sizeof(lkinds) / sizeof(lkinds[0]))

static const struct cfg_addr_list *kind_list(const struct cfg *cfg, size_t k)
{
	return (const struct cfg_addr_list *)((const char *)cfg + lkinds[k].off);
}

static bool addr_listed(const struct cfg_addr_list *l, const struct cfg_addr *a)
{
	/* The text is normalised by config/ ("[::1]:53"), so equal text is
	 * the same address and port. */
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].text, a->text) == 0)
			return true;
	return false;
}

bool px_listen_has(const struct cfg *cfg, bool udp, enum px_conn_kind kind,
                   const struct cfg_addr *a)
{
	for (size_t k = 0; k < N_LKINDS; k++)
		if ((lkinds[k].type == SOCK_DGRAM) == udp && (udp || lkinds[k].kind == kind))
			return addr_listed(kind_list(cfg, k), a);
	return false;
}

static void posts_free(struct px_reload_post **posts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (posts[i] == NULL)
			continue;
		for (size_t j = 0; j < posts[i]->n_udp; j++)
			px_udp_discard(posts[i]->udp[j]);
		for (size_t j = 0; j < posts[i]->n_tcp; j++)
			px_tcp_discard(posts[i]->tcp[j]);
		free(posts[i]->udp);
		free(posts[i]->tcp);
		free(posts[i]);
	}
	free(posts);
}

/* Binds one socket per worker for every address the new file adds.
 * Fills posts[n_workers] (gen left NULL). On failure everything bound
 * is closed and err says which address failed. */
static int bind_added(struct px_server *srv, const struct cfg *old, const struct cfg *nc,
                      struct px_reload_post ***out, char *err, size_t errlen)
{
	struct px_reload_post **posts = calloc(srv->n_workers, sizeof(*posts));
	size_t n_udp = 0, n_tcp = 0;

	if (posts == NULL)
		goto oom;
	for (size_t k = 0; k < N_LKINDS; k++) {
		const struct cfg_addr_list *l = kind_list(nc, k);
		for (size_t i = 0; i < l->n; i++) {
			if (addr_listed(kind_list(old, k), &l->v[i]))
				continue;
			/* Without SO_REUSEPORT: someone else (another apexd)
			 * holding the address is an error, not a share. */
			int rc = px_sock_probe(&l->v[i], lkinds[k].type);
			if (rc < 0) {
				snprintf(err, errlen, "cannot listen on %s %s: %s", lkinds[k].name,
				         l->v[i].text, strerror(-rc));
				posts_free(posts, srv->n_workers);
				return rc;
			}
			if (lkinds[k].type == SOCK_DGRAM)
				n_udp++;
			else
				n_tcp++;
		}
	}
	for (unsigned wi = 0; wi < srv->n_workers; wi++) {
		struct px_reload_post *p = posts[wi] = calloc(1, sizeof(*p));
		if (p == NULL)
			goto oom;
		p->udp = calloc(n_udp + 1, sizeof(*p->udp));
		p->tcp = calloc(n_tcp + 1, sizeof(*p->tcp));
		if (p->udp == NULL || p->tcp == NULL)
			goto oom;
		for (size_t k = 0; k < N_LKINDS; k++) {
			const struct cfg_addr_list *l = kind_list(nc, k);
			for (size_t i = 0; i < l->n; i++) {
				if (addr_listed(kind_list(old, k), &l->v[i]))
					continue;
				uv_os_sock_t fd;
				int rc = px_sock_bind(&l->v[i], lkinds[k].type, &fd);
				if (rc < 0) {
					snprintf(err, errlen, "cannot listen on %s %s: %s",
					         lkinds[k].name, l->v[i].text, strerror(-rc));
					posts_free(posts, srv->n_workers);
					return rc;
				}
				if (lkinds[k].type == SOCK_DGRAM) {
					struct px_udp_listener *u = calloc(1, sizeof(*u));
					if (u == NULL) {
						close(fd);
						goto oom;
					}
					u->addr = l->v[i];
					u->fd = fd;
					p->udp[p->n_udp++] = u;
				} else {
					struct px_tcp_listener *t = calloc(1, sizeof(*t));
					if (t == NULL) {
						close(fd);
						goto oom;
					}
					t->addr = l->v[i];
					t->kind = lkinds[k].kind;
					t->fd = fd;
					p->tcp[p->n_tcp++] = t;
				}
			}
		}
	}
	*out = posts;
	return 0;
oom:
	snprintf(err, errlen, "out of memory binding new listeners");
	if (posts != NULL)
		posts_free(posts, srv->n_workers);
	return -ENOMEM;
}

/* Keys a running apexd cannot change: the worker count sizes every
 * per-worker table and socket group, and the backend address is where
 * in-flight queries wait for answers. Their old values are put back in
 * the new cfg (not yet shared) and the change is logged. */
static unsigned keep_restart_only(const struct cfg *old, struct cfg *nc)
{
	unsigned n = 0;

	if (nc->server.threads != old->server.threads) {
		px_log(CFG_LOG_WARNING, CFG,
		       "reload: [server] threads changed from %u to %u in %s: not applied, "
		       "restart apexd to apply it",
		       old->server.threads, nc->server.threads, nc->path);
		nc->server.threads = old->server.threads;
		n++;
	}
	if (strcmp(nc->backend.address.text, old->backend.address.text) != 0) {
		px_log(CFG_LOG_WARNING, CFG,
		       "reload: [backend] address changed from %s to %s in %s: not applied, "
		       "restart apexd to apply it",
		       old->backend.address.text, nc->backend.address.text, nc->path);
		nc->backend.address = old->backend.address;
		n++;
	}
	/* The control socket and the metrics endpoint are bound once, at
	 * startup (control.c, metrics.c). */
	if (strcmp(nc->server.control, old->server.control) != 0) {
		px_log(CFG_LOG_WARNING, CFG,
		       "reload: [server] control changed from \"%s\" to \"%s\" in %s: not applied, "
		       "restart apexd to apply it",
		       old->server.control, nc->server.control, nc->path);
		memcpy(nc->server.control, old->server.control, sizeof(nc->server.control));
		n++;
	}
	if (strcmp(nc->listen.metrics.text, old->listen.metrics.text) != 0 ||
	    nc->listen.metrics.salen != old->listen.metrics.salen) {
		px_log(CFG_LOG_WARNING, CFG,
		       "reload: [listen] metrics changed from \"%s\" to \"%s\" in %s: not applied, "
		       "restart apexd to apply it",
		       old->listen.metrics.salen ? old->listen.metrics.text : "",
		       nc->listen.metrics.salen ? nc->listen.metrics.text : "", nc->path);
		nc->listen.metrics = old->listen.metrics;
		n++;
	}
	return n;
}

static bool addr_lists_equal(const struct cfg_addr_list *a, const struct cfg_addr_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].text, b->v[i].text) != 0)
			return false;
	return true;
}

static const struct cfg_zone *zone_find(const struct cfg *cfg, const struct cfg_name *n)
{
	for (size_t i = 0; i < cfg->n_zones; i++)
		if (strcmp(cfg->zones[i].name.text, n->text) == 0)
			return &cfg->zones[i];
	return NULL;
}

static const struct cfg_alias *alias_find(const struct cfg *cfg, const struct cfg_name *owner)
{
	for (size_t i = 0; i < cfg->n_aliases; i++)
		if (strcmp(cfg->aliases[i].owner.text, owner->text) == 0)
			return &cfg->aliases[i];
	return NULL;
}

/* Logs what the new file changes, one line per item an operator may
 * look for, and a summary into sum. */
static void log_changes(const struct cfg *old, const struct cfg *nc, char *sum, size_t sumlen)
{
	unsigned z_add = 0, z_del = 0, a_add = 0, a_del = 0, a_chg = 0, l_add = 0, l_del = 0;

	for (size_t i = 0; i < nc->n_zones; i++)
		if (zone_find(old, &nc->zones[i].name) == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: zone %s added", nc->zones[i].name.text);
			z_add++;
		}
	for (size_t i = 0; i < old->n_zones; i++)
		if (zone_find(nc, &old->zones[i].name) == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: zone %s removed",
			       old->zones[i].name.text);
			z_del++;
		}
	for (size_t i = 0; i < nc->n_aliases; i++) {
		const struct cfg_alias *o = alias_find(old, &nc->aliases[i].owner);
		if (o == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s -> %s added",
			       nc->aliases[i].owner.text, nc->aliases[i].target.text);
			a_add++;
		} else if (strcmp(o->target.text, nc->aliases[i].target.text) != 0) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s now -> %s (was %s)",
			       nc->aliases[i].owner.text, nc->aliases[i].target.text,
			       o->target.text);
			a_chg++;
		}
	}
	for (size_t i = 0; i < old->n_aliases; i++)
		if (alias_find(nc, &old->aliases[i].owner) == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s removed",
			       old->aliases[i].owner.text);
			a_del++;
		}
	for (size_t k = 0; k < N_LKINDS; k++) {
		const struct cfg_addr_list *lo = kind_list(old, k), *ln = kind_list(nc, k);
		for (size_t i = 0; i < ln->n; i++)
			if (!addr_listed(lo, &ln->v[i])) {
				px_log(CFG_LOG_INFO, CFG, "reload: now listening on %s %s",
				       lkinds[k].name, ln->v[i].text);
				l_add++;
			}
		for (size_t i = 0; i < lo->n; i++)
			if (!addr_listed(ln, &lo->v[i])) {
				px_log(CFG_LOG_INFO, CFG, "reload: no longer listening on %s %s",
				       lkinds[k].name, lo->v[i].text);
				l_del++;
			}
	}
	bool resolvers = !addr_lists_equal(&old->resolver.addresses, &nc->resolver.addresses);
	if (resolvers) {
		char list[512];
		size_t len = 0;
		list[0] = '\0';
		for (size_t i = 0; i < nc->resolver.addresses.n && len < sizeof(list); i++)
			len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
			                        i ? ", " : "", nc->resolver.addresses.v[i].text);
		px_log(CFG_LOG_INFO, CFG, "reload: resolvers now %s", len ? list : "(none)");
	}
	if (old->server.log_level != nc->server.log_level)
		px_log(CFG_LOG_INFO, CFG, "reload: log-level %s -> %s",
		       cfg_log_level_name(old->server.log_level),
		       cfg_log_level_name(nc->server.log_level));
	if (strcmp(old->server.query_log, nc->server.query_log) != 0)
		px_log(CFG_LOG_INFO, CFG, "reload: query-log %s -> %s",
		       old->server.query_log[0] ? old->server.query_log : "(off)",
		       nc->server.query_log[0] ? nc->server.query_log : "(off)");
	snprintf(sum, sumlen,
	         "zones +%u -%u, aliases +%u -%u ~%u, listeners +%u -%u, resolvers %s, "
	         "log-level %s",
	         z_add, z_del, a_add, a_del, a_chg, l_add, l_del,
	         resolvers ? "changed" : "unchanged", cfg_log_level_name(nc->server.log_level));
}

/* Logs every line of a cfg_error at error level. */
static void log_cfg_errors(const struct cfg_error *err, const char *path)
{
	const char *s = err->msg;
	unsigned lines = 0;

	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		int len = nl != NULL ? (int)(nl - s) : (int)strlen(s);
		px_log(CFG_LOG_ERROR, CFG, "reload: %.*s", len, s);
		lines++;
		s += len;
		if (*s == '\n')
			s++;
	}
	if (err->count > lines)
		px_log(CFG_LOG_ERROR, CFG, "reload: %s: %u more error%s not shown", path,
		       err->count - lines, err->count - lines == 1 ? "" : "s");
}

int px_server_reload(struct px_server *srv, char *msg, size_t msglen)
{
	const struct cfg *old = srv->cfg;
	struct cfg *nc = NULL;
	struct cfg_error cerr;
	struct px_gen *g = NULL;
	struct px_reload_post **posts = NULL;
	struct px_qlog_file *qf = NULL;
	bool qlog_changed;
	char err[700], sum[256];
	unsigned kept;

	if (atomic_load(&srv->stopping)) {
		snprintf(msg, msglen, "reload refused: apexd is shutting down");
		px_log(CFG_LOG_WARNING, CFG, "%s", msg);
		return -1;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_worker *w = &srv->workers[i];
		uv_mutex_lock(&w->post_mu);
		unsigned pending = w->reloads_pending;
		uv_mutex_unlock(&w->post_mu);
		if (pending >= PX_RELOAD_MAX_PENDING) {
			snprintf(
			        msg, msglen,
			        "reload refused: worker %u has not adopted the last %u reloads yet",
			        i, pending);
			px_log(CFG_LOG_ERROR, CFG, "%s", msg);
			return -1;
		}
	}
	px_log(CFG_LOG_INFO, CFG, "reload: reading %s", old->path);
	int rc = cfg_load(old->path, &nc, &cerr);
	if (rc < 0) {
		log_cfg_errors(&cerr, old->path);
		snprintf(msg, msglen,
		         "reload failed: %u error%s in %s (see the log); the running "
		         "configuration is kept",
		         cerr.count ? cerr.count : 1, cerr.count == 1 ? "" : "s", old->path);
		px_log(CFG_LOG_ERROR, CFG, "%s", msg);
		return -1;
	}
	kept = keep_restart_only(old, nc);
	qlog_changed = strcmp(old->server.query_log, nc->server.query_log) != 0;
	if (qlog_changed && nc->server.query_log[0] != '\0') {
		rc = px_qlog_open(nc->server.query_log, &qf);
		if (rc < 0) {
			snprintf(err, sizeof(err), "[server] query-log %.400s: cannot open: %s",
			         nc->server.query_log, strerror(-rc));
			cfg_free(nc);
			goto fail;
		}
	}
	rc = bind_added(srv, old, nc, &posts, err, sizeof(err));
	if (rc < 0) {
		cfg_free(nc);
		goto fail;
	}
	rc = gen_new(srv, nc, srv->gen, &g, err, sizeof(err));
	if (rc < 0)
		goto fail;

	/* Everything loaded: from here on nothing fails. What changed is
	 * logged at the more verbose of the two levels, so a reload that
	 * turns logging down or up still says what it did. */
	int level = (int)g->cfg->server.log_level;
	if (level > atomic_load(&px_log_level))
		atomic_store(&px_log_level, level);
	log_changes(old, g->cfg, sum, sizeof(sum));
	px_flat_gen_flush_removed(g, old);
	struct px_gen *prev = srv->gen;
	publish(srv, g);
	/* Answers kept by the answer caches were relayed under the old
	 * zones and aliases; a name that now flattens must not be served
	 * from them. */
	atomic_fetch_add_explicit(&srv->anscache_gen, 1, memory_order_relaxed);
	if (qlog_changed) {
		px_qlog_file_unref(srv->qlog);
		srv->qlog = qf;
		px_qlog_post(srv, qf);
		qf = NULL;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_reload_post *p = posts[i];
		px_gen_ref(g);
		p->gen = g;
		px_worker_post_reload(&srv->workers[i], p);
	}
	free(posts);
	px_gen_unref(prev);
	px_log(CFG_LOG_INFO, CFG, "reload: configuration reloaded from %s (generation %llu): %s%s",
	       g->cfg->path, (unsigned long long)g->id, sum,
	       kept ? "; some changes need a restart (see above)" : "");
	snprintf(msg, msglen, "reloaded %s (generation %llu): %s%s", g->cfg->path,
	         (unsigned long long)g->id, sum, kept ? "; some changes need a restart" : "");
	atomic_store(&px_log_level, level);
	return 0;
fail:
	if (posts != NULL)
		posts_free(posts, srv->n_workers);
	px_qlog_file_unref(qf);
	px_log(CFG_LOG_ERROR, CFG,
	       "reload failed: %s; keeping the current certificate and the running configuration",
	       err);
	snprintf(msg, msglen, "reload failed: %s; the running configuration is kept", err);
	return -1;
}
