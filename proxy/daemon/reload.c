/* proxy/daemon/reload.c - reload: the file again, applied as a whole.
 *
 * Reload builds a whole new generation (gen.c) next to the running
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

#include "proxy/daemon/bind.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/health/health.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/ops/log.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/qlog.h"

/* Keys a running apexd cannot change: the worker count sizes every
 * per-worker table and socket group, the backend address is where
 * in-flight queries wait for answers, and the control socket, the user
 * and the metrics endpoint are taken once at startup. Their old values are put back in
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
	/* Privileges are dropped once, after the first bind (priv.c); a
	 * reload runs as whoever apexd already is. */
	if (strcmp(nc->server.user, old->server.user) != 0) {
		px_log(CFG_LOG_WARNING, CFG,
		       "reload: [server] user changed from \"%s\" to \"%s\" in %s: not applied, "
		       "restart apexd to apply it",
		       old->server.user, nc->server.user, nc->path);
		memcpy(nc->server.user, old->server.user, sizeof(nc->server.user));
		nc->server.user_line = old->server.user_line;
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

/* The update key is re-read on every reload; a new key (or secret) is
 * said, never the secret itself. */
static void log_key_change(const struct cfg_tsig_key *ok, const struct cfg_tsig_key *nk)
{
	if (ok->present == nk->present && strcmp(ok->path, nk->path) == 0 &&
	    strcmp(ok->name.text, nk->name.text) == 0 &&
	    strcmp(ok->algorithm, nk->algorithm) == 0 && ok->secret_len == nk->secret_len &&
	    memcmp(ok->secret, nk->secret, ok->secret_len) == 0)
		return;
	if (!nk->present)
		px_log(CFG_LOG_INFO, CFG, "reload: [backend] update-key removed");
	else
		px_log(CFG_LOG_INFO, CFG, "reload: [backend] update-key now %s (key %s, %s)",
		       nk->path, nk->name.text, nk->algorithm);
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
		char now[512], was[512];
		cfg_alias_targets_text(&nc->aliases[i], now, sizeof(now));
		if (o == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s -> %s added",
			       nc->aliases[i].owner.text, now);
			a_add++;
			continue;
		}
		cfg_alias_targets_text(o, was, sizeof(was));
		if (strcmp(was, now) != 0) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s now -> %s (was %s)",
			       nc->aliases[i].owner.text, now, was);
			a_chg++;
		}
	}
	for (size_t i = 0; i < old->n_aliases; i++)
		if (alias_find(nc, &old->aliases[i].owner) == NULL) {
			px_log(CFG_LOG_INFO, CFG, "reload: alias %s removed",
			       old->aliases[i].owner.text);
			a_del++;
		}
	px_bind_log_changes(old, nc, &l_add, &l_del);
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
	log_key_change(&old->backend.update_key, &nc->backend.update_key);
	px_pp2_log_config(old, nc);
	if (strcmp(old->server.query_log, nc->server.query_log) != 0)
		px_log(CFG_LOG_INFO, CFG, "reload: query-log %s -> %s",
		       old->server.query_log[0] ? old->server.query_log : "(off)",
		       nc->server.query_log[0] ? nc->server.query_log : "(off)");
	if (strcmp(old->server.dnstap, nc->server.dnstap) != 0)
		px_log(CFG_LOG_INFO, CFG, "reload: dnstap %s -> %s",
		       old->server.dnstap[0] ? old->server.dnstap : "(off)",
		       nc->server.dnstap[0] ? nc->server.dnstap : "(off)");
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

/* A reload is refused while apexd stops, and while a worker is so far
 * behind that it would pile up configurations. */
static bool reload_refused(struct px_server *srv, char *msg, size_t msglen)
{
	if (atomic_load(&srv->stopping)) {
		snprintf(msg, msglen, "reload refused: apexd is shutting down");
		px_log(CFG_LOG_WARNING, CFG, "%s", msg);
		return true;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_worker *w = &srv->workers[i];
		uv_mutex_lock(&w->posts.mu);
		unsigned pending = w->posts.reloads_pending;
		uv_mutex_unlock(&w->posts.mu);
		if (pending >= PX_RELOAD_MAX_PENDING) {
			snprintf(
			        msg, msglen,
			        "reload refused: worker %u has not adopted the last %u reloads yet",
			        i, pending);
			px_log(CFG_LOG_ERROR, CFG, "%s", msg);
			return true;
		}
	}
	return false;
}

static int load_file(const struct cfg *old, struct cfg **nc, char *msg, size_t msglen)
{
	struct cfg_error cerr;

	px_log(CFG_LOG_INFO, CFG, "reload: reading %s", old->path);
	int rc = cfg_load(old->path, nc, &cerr);
	if (rc < 0) {
		log_cfg_errors(&cerr, old->path);
		snprintf(msg, msglen,
		         "reload failed: %u error%s in %s (see the log); the running "
		         "configuration is kept",
		         cerr.count ? cerr.count : 1, cerr.count == 1 ? "" : "s", old->path);
		px_log(CFG_LOG_ERROR, CFG, "%s", msg);
	}
	return rc;
}

/* What a reload builds before it changes anything. */
struct staged {
	struct px_gen *g;
	struct px_reload_post **posts;
	struct px_qlog_file *qf; /* the new query log; NULL: off or unchanged */
	bool qlog_changed;
	struct px_dnstap *tap; /* the new dnstap sink; NULL: off or unchanged */
	bool tap_changed;
	unsigned kept; /* changes that need a restart */
};

/* Opens, binds and builds all that nc needs, owning nc from here; on
 * failure err says what did not load and nothing is left over. */
static int stage(struct px_server *srv, const struct cfg *old, struct cfg *nc, struct staged *st,
                 char *err, size_t errlen)
{
	int rc;

	st->kept = keep_restart_only(old, nc);
	st->qlog_changed = strcmp(old->server.query_log, nc->server.query_log) != 0;
	if (st->qlog_changed && nc->server.query_log[0] != '\0') {
		rc = px_qlog_open(nc->server.query_log, &st->qf);
		if (rc < 0) {
			snprintf(err, errlen, "[server] query-log %.400s: cannot open: %s",
			         nc->server.query_log, strerror(-rc));
			cfg_free(nc);
			return rc;
		}
	}
	/* A new destination only: the same one keeps its connection. */
	st->tap_changed = strcmp(old->server.dnstap, nc->server.dnstap) != 0;
	if (st->tap_changed && nc->server.dnstap[0] != '\0') {
		rc = px_dnstap_open(nc->server.dnstap, srv->n_workers, &st->tap, err, errlen);
		if (rc < 0) {
			cfg_free(nc);
			goto fail;
		}
	}
	rc = px_bind(srv, old, nc, &st->posts, err, errlen);
	if (rc < 0) {
		cfg_free(nc);
		goto fail;
	}
	rc = px_gen_new(srv, nc, srv->gen, &st->g, err, errlen);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	px_bind_free(st->posts, srv->n_workers);
	st->posts = NULL;
	px_qlog_file_unref(st->qf);
	st->qf = NULL;
	px_dnstap_unref(st->tap);
	st->tap = NULL;
	return rc;
}

/* Makes the staged generation current, on main and in every worker.
 * Nothing here fails. */
static void apply(struct px_server *srv, const struct cfg *old, struct staged *st, char *sum,
                  size_t sumlen)
{
	struct px_gen *g = st->g, *prev = srv->gen;

	log_changes(old, g->cfg, sum, sumlen);
	/* Before the workers adopt g: a zone whose check they see has its
	 * checker running. */
	px_health_reload(srv->health, g->cfg);
	px_flat_gen_flush_removed(g, old);
	px_gen_publish(srv, g);
	px_sib_reload(srv);
	/* Answers kept by the answer caches were relayed under the old
	 * zones and aliases; a name that now flattens must not be served
	 * from them. */
	atomic_fetch_add_explicit(&srv->anscache_gen, 1, memory_order_relaxed);
	if (st->qlog_changed) {
		px_qlog_file_unref(srv->qlog);
		srv->qlog = st->qf;
		px_qlog_post(srv, st->qf);
		st->qf = NULL;
	}
	if (st->tap_changed) {
		px_dnstap_unref(srv->tap);
		srv->tap = st->tap;
		px_dnstap_post(srv, st->tap);
		st->tap = NULL;
	}
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_reload_post *p = st->posts[i];
		px_gen_ref(g);
		p->gen = g;
		px_worker_post_reload(&srv->workers[i], p);
	}
	free(st->posts);
	st->posts = NULL;
	px_gen_unref(prev);
}

int px_server_reload(struct px_server *srv, char *msg, size_t msglen)
{
	const struct cfg *old = srv->cfg;
	struct cfg *nc = NULL;
	struct staged st = {0};
	char err[700], sum[256];

	if (reload_refused(srv, msg, msglen) || load_file(old, &nc, msg, msglen) < 0)
		return -1;
	if (stage(srv, old, nc, &st, err, sizeof(err)) < 0) {
		px_log(CFG_LOG_ERROR, CFG,
		       "reload failed: %s; keeping the current certificate and the running "
		       "configuration",
		       err);
		snprintf(msg, msglen, "reload failed: %s; the running configuration is kept", err);
		return -1;
	}
	/* What changed is logged at the more verbose of the two levels, so
	 * a reload that turns logging down or up still says what it did. */
	int level = (int)st.g->cfg->server.log_level;
	if (level > atomic_load(&px_log_level))
		atomic_store(&px_log_level, level);
	apply(srv, old, &st, sum, sizeof(sum));
	px_log(CFG_LOG_INFO, CFG, "reload: configuration reloaded from %s (generation %llu): %s%s",
	       st.g->cfg->path, (unsigned long long)st.g->id, sum,
	       st.kept ? "; some changes need a restart (see above)" : "");
	snprintf(msg, msglen, "reloaded %s (generation %llu): %s%s", st.g->cfg->path,
	         (unsigned long long)st.g->id, sum, st.kept ? "; some changes need a restart" : "");
	atomic_store(&px_log_level, level);
	return 0;
}
