/* proxy/daemon/server.c - the server's life on the main thread: set up,
 * run, tear down.
 *
 * Order matters: every socket is bound and every key read while apexd
 * may still be root; privileges go before the first worker thread
 * starts, so no thread ever runs as root with a client connected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/daemon/bind.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/priv.h"
#include "proxy/daemon/server.h"
#include "proxy/health/health.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/ops/control.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/log.h"
#include "proxy/ops/metrics.h"
#include "proxy/ops/qlog.h"
#include "proxy/ops/stats.h"

/* Moves the listeners of p to w, in order; those that do not fit stay in
 * p (the caller frees it). */
static int take_listeners(struct px_worker *w, struct px_reload_post *p)
{
	size_t u = 0, t = 0;
	int rc = 0;

	while (rc == 0 && u < p->n_udp)
		if ((rc = px_worker_add_udp(w, p->udp[u])) == 0)
			u++;
	while (rc == 0 && t < p->n_tcp)
		if ((rc = px_worker_add_tcp(w, p->tcp[t])) == 0)
			t++;
	p->n_udp -= u;
	memmove(p->udp, p->udp + u, p->n_udp * sizeof(*p->udp));
	p->n_tcp -= t;
	memmove(p->tcp, p->tcp + t, p->n_tcp * sizeof(*p->tcp));
	return rc;
}

/* One socket per worker and listen address. */
static int bind_listeners(struct px_server *srv)
{
	struct px_reload_post **posts;
	char err[700];
	int rc = px_bind(srv, NULL, srv->cfg, &posts, err, sizeof(err));

	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s", err);
		return rc;
	}
	for (unsigned i = 0; i < srv->n_workers && rc == 0; i++)
		rc = take_listeners(&srv->workers[i], posts[i]);
	if (rc < 0)
		px_log(CFG_LOG_ERROR, MAIN, "out of memory binding listeners");
	px_bind_free(posts, srv->n_workers);
	return rc;
}

/* The first generation, the query log and the workers' tables. */
static int server_init(struct px_server *srv, struct cfg *ncfg)
{
	srv->started_ms = uv_hrtime() / 1000000;
	if (uv_mutex_init(&srv->gen_mu) < 0) {
		cfg_free(ncfg);
		return -1;
	}
	srv->n_workers = ncfg->server.threads;
	/* UDP queries start on worker 0 alone (engine/steer.c). */
	atomic_init(&srv->active, 1);
	/* From here on the first generation owns the cfg. */
	int rc = px_gen_first(srv, ncfg);
	if (rc < 0)
		return rc;
	const char *qlog = srv->cfg->server.query_log;
	if (qlog[0] != '\0') {
		rc = px_qlog_open(qlog, &srv->qlog);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "[server] query-log %s: cannot open: %s", qlog,
			       strerror(-rc));
			return rc;
		}
	}
	srv->workers = calloc(srv->n_workers, sizeof(*srv->workers));
	if (srv->workers == NULL)
		return -1;
	for (unsigned i = 0; i < srv->n_workers; i++) {
		rc = px_worker_init(&srv->workers[i], srv, i);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "worker %u: %s", i, uv_strerror(rc));
			return rc;
		}
	}
	atomic_store(&srv->workers[0].stats.udp_workers_active, 1);
	return 0;
}

/* After the privilege drop: the writer thread reconnects as the user
 * apexd runs as, so the first connection had better be made as it too. */
static int dnstap_start(struct px_server *srv)
{
	char err[400];
	const char *dest = srv->cfg->server.dnstap;

	if (dest[0] == '\0')
		return 0;
	int rc = px_dnstap_open(dest, srv->n_workers, &srv->tap, err, sizeof(err));
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN, "%s", err);
		return rc;
	}
	px_dnstap_post(srv, srv->tap);
	return 0;
}

int px_server_start(struct px_server *srv, struct cfg *cfg)
{
	int rc = server_init(srv, cfg);

	if (rc < 0)
		return rc;
	/* Before the workers, which read it; its thread starts only when
	 * some zone has a check. */
	srv->health = px_health_new(srv->cfg);
	px_fd_limit(srv->cfg);
	rc = bind_listeners(srv);
	if (rc < 0)
		return rc;
	/* Every socket is bound and every key read: root is no longer
	 * needed, and no worker thread has started yet. */
	rc = px_priv_drop(srv->cfg);
	if (rc < 0)
		return rc;
	if (srv->qlog != NULL)
		px_qlog_post(srv, srv->qlog);
	return dnstap_start(srv);
}

int px_server_open(struct px_server *srv, uv_loop_t *loop)
{
	int rc = px_control_start(srv, loop);

	if (rc == 0)
		rc = px_metrics_start(srv);
	/* Before the workers: their NOTIFYs post to it. */
	if (rc == 0)
		rc = px_sib_start(srv, loop);
	if (rc < 0) {
		px_sib_stop(srv);
		px_control_stop(srv);
		return rc;
	}
	for (; srv->n_started < srv->n_workers; srv->n_started++) {
		rc = px_worker_start(&srv->workers[srv->n_started]);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "cannot start worker thread: %s",
			       uv_strerror(rc));
			px_server_stopping(srv);
			px_sib_stop(srv);
			px_control_stop(srv);
			return rc;
		}
	}
	char lis[512];
	px_bind_describe(srv->cfg, lis, sizeof(lis));
	px_log(CFG_LOG_INFO, MAIN, "apexd %s: %u workers, listening on%s, backend %s", APEX_VERSION,
	       srv->n_workers, lis, srv->cfg->backend.address.text);
	px_pp2_log_config(NULL, srv->cfg);
	return 0;
}

void px_server_stopping(struct px_server *srv)
{
	atomic_store(&srv->stopping, true);
	for (unsigned i = 0; i < srv->n_started; i++)
		uv_async_send(&srv->workers[i].wake);
}

static void log_stats(const struct px_server *srv)
{
	size_t n = px_stats_count();
	uint64_t *sum = calloc(n, sizeof(*sum));
	char line[3800];
	size_t len = 0;

	if (sum == NULL)
		return;
	for (unsigned i = 0; i < srv->n_workers; i++)
		px_stats_add(sum, &srv->workers[i].stats);
	len += (size_t)snprintf(line, sizeof(line), "stats:");
	for (size_t i = 0; i < n && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%llu",
		                        px_stats_name(i), (unsigned long long)sum[i]);
	px_log(CFG_LOG_INFO, MAIN, "%s", line);
	free(sum);
}

void px_server_run(struct px_server *srv, uv_loop_t *loop)
{
	uv_run(loop, UV_RUN_DEFAULT);
	if (srv->n_started == 0)
		return;
	for (unsigned i = 0; i < srv->n_started; i++)
		uv_thread_join(&srv->workers[i].thread);
	log_stats(srv);
}

void px_server_stop(struct px_server *srv, uv_loop_t *loop)
{
	px_metrics_stop(srv);
	/* The workers have ended: nobody reads the table any more. */
	px_health_free(srv->health);
	srv->health = NULL;
	uv_loop_close(loop);
	px_sib_free(srv);
	if (srv->workers != NULL)
		for (unsigned i = 0; i < srv->n_workers; i++)
			px_worker_deinit(&srv->workers[i]);
	free(srv->workers);
	srv->workers = NULL;
	px_qlog_file_unref(srv->qlog);
	srv->qlog = NULL;
	/* Last, and waited for: what the workers queued is written. */
	px_dnstap_unref(srv->tap);
	srv->tap = NULL;
	px_dnstap_wait_retired();
	px_gen_unref(srv->gen);
	srv->gen = NULL;
}
