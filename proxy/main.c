/* proxy/main.c - apexd: command line, startup, signals, shutdown.
 *
 * The main thread loads the configuration, binds every listening socket
 * (one per worker and address, SO_REUSEPORT), starts the workers, then
 * runs a small loop of its own that only waits for signals: SIGHUP
 * reloads the configuration (reload.c), SIGUSR1 reopens the query log.
 */
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/ctx.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/priv.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/io/sock.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/control.h"
#include "proxy/ops/log.h"
#include "proxy/ops/metrics.h"
#include "proxy/ops/qlog.h"
#include "proxy/ops/stats.h"

static struct px_server srv;
static uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;

static void usage(FILE *f)
{
	fprintf(f, "usage: apexd -c FILE            run in the foreground, log to stderr\n"
	           "       apexd --check-config -c FILE   validate FILE and exit 0 or 1\n"
	           "       apexd --version\n");
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)h;
	px_log(CFG_LOG_INFO, MAIN, "%s: finishing queries in flight, then exiting",
	       signum == SIGINT ? "SIGINT" : "SIGTERM");
	atomic_store(&srv.stopping, true);
	for (unsigned i = 0; i < srv.n_workers; i++)
		uv_async_send(&srv.workers[i].wake);
	/* Closing the signal handles restores the default action, so a
	 * second signal ends the process at once. */
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
	uv_close((uv_handle_t *)&sig_usr1, NULL);
	/* The control socket goes too, so the main loop can end. */
	px_control_stop(&srv);
}

/* SIGHUP: the whole file again (px_server_reload logs what it did). */
static void on_hup(uv_signal_t *h, int signum)
{
	char msg[512];

	(void)h;
	(void)signum;
	px_log(CFG_LOG_INFO, MAIN, "SIGHUP: reloading %s", srv.cfg->path);
	(void)px_server_reload(&srv, msg, sizeof(msg));
}

/* SIGUSR1: logrotate moved the query log away; open the path again. */
static void on_usr1(uv_signal_t *h, int signum)
{
	struct px_qlog_file *f;
	const char *path = srv.cfg->server.query_log;

	(void)h;
	(void)signum;
	if (path[0] == '\0') {
		px_log(CFG_LOG_INFO, MAIN, "SIGUSR1: no query log configured, nothing to reopen");
		return;
	}
	int rc = px_qlog_open(path, &f);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN,
		       "SIGUSR1: cannot reopen the query log %s: %s; "
		       "still writing to the old file",
		       path, strerror(-rc));
		return;
	}
	px_qlog_file_unref(srv.qlog);
	srv.qlog = f;
	px_qlog_post(&srv, f);
	px_log(CFG_LOG_INFO, MAIN, "SIGUSR1: query log %s reopened", path);
}

static void log_stats(void)
{
	size_t n = px_stats_count();
	uint64_t *sum = calloc(n, sizeof(*sum));
	char line[3800];
	size_t len = 0;

	if (sum == NULL)
		return;
	for (unsigned i = 0; i < srv.n_workers; i++)
		px_stats_add(sum, &srv.workers[i].stats);
	len += (size_t)snprintf(line, sizeof(line), "stats:");
	for (size_t i = 0; i < n && len < sizeof(line); i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " %s=%llu",
		                        px_stats_name(i), (unsigned long long)sum[i]);
	px_log(CFG_LOG_INFO, MAIN, "%s", line);
	free(sum);
}

/* The TCP-based listeners: plain TCP, DoT, DoH. */
static const struct {
	enum px_conn_kind kind;
	const char *name;
	size_t off;
} tcp_kinds[] = {
        {PX_CONN_TCP, "tcp", offsetof(struct cfg, listen.tcp)},
        {PX_CONN_DOT, "dot", offsetof(struct cfg, listen.dot)},
        {PX_CONN_DOH, "doh", offsetof(struct cfg, listen.doh)},
};

static const struct cfg_addr_list *tcp_kind_list(const struct cfg *cfg, size_t k)
{
	return (const struct cfg_addr_list *)((const char *)cfg + tcp_kinds[k].off);
}

/* Binds one socket per worker for each listen address. */
static int bind_all(const struct cfg *cfg)
{
	size_t n_tcp = 0;

	for (size_t k = 0; k < sizeof(tcp_kinds) / sizeof(tcp_kinds[0]); k++) {
		const struct cfg_addr_list *l = tcp_kind_list(cfg, k);
		n_tcp += l->n;
		for (size_t i = 0; i < l->n; i++) {
			int rc = px_sock_probe(&l->v[i], SOCK_STREAM);
			if (rc < 0) {
				px_log(CFG_LOG_ERROR, MAIN, "cannot listen on %s %s: %s",
				       tcp_kinds[k].name, l->v[i].text, strerror(-rc));
				return rc;
			}
		}
	}
	for (size_t i = 0; i < cfg->listen.udp.n; i++) {
		int rc = px_sock_probe(&cfg->listen.udp.v[i], SOCK_DGRAM);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "cannot listen on udp %s: %s",
			       cfg->listen.udp.v[i].text, strerror(-rc));
			return rc;
		}
	}
	(void)n_tcp;
	for (unsigned wi = 0; wi < srv.n_workers; wi++) {
		struct px_worker *w = &srv.workers[wi];
		for (size_t i = 0; i < cfg->listen.udp.n; i++) {
			struct px_udp_listener *l = calloc(1, sizeof(*l));
			if (l == NULL)
				return -ENOMEM;
			l->addr = cfg->listen.udp.v[i];
			int rc = px_sock_bind(&l->addr, SOCK_DGRAM, &l->fd);
			if (rc == 0 && (rc = px_worker_add_udp(w, l)) < 0)
				close(l->fd);
			if (rc < 0) {
				px_log(CFG_LOG_ERROR, MAIN, "cannot listen on udp %s: %s",
				       l->addr.text, strerror(-rc));
				free(l);
				return rc;
			}
		}
		for (size_t k = 0; k < sizeof(tcp_kinds) / sizeof(tcp_kinds[0]); k++) {
			const struct cfg_addr_list *al = tcp_kind_list(cfg, k);
			for (size_t i = 0; i < al->n; i++) {
				struct px_tcp_listener *l = calloc(1, sizeof(*l));
				if (l == NULL)
					return -ENOMEM;
				l->addr = al->v[i];
				l->kind = tcp_kinds[k].kind;
				int rc = px_sock_bind(&l->addr, SOCK_STREAM, &l->fd);
				if (rc == 0 && (rc = px_worker_add_tcp(w, l)) < 0)
					close(l->fd);
				if (rc < 0) {
					px_log(CFG_LOG_ERROR, MAIN, "cannot listen on %s %s: %s",
					       tcp_kinds[k].name, l->addr.text, strerror(-rc));
					free(l);
					return rc;
				}
			}
		}
	}
	return 0;
}

static int run(struct cfg *ncfg)
{
	uv_loop_t *loop = uv_default_loop();
	int rc = 0;
	unsigned started = 0;

	srv.started_ms = uv_hrtime() / 1000000;
	rc = uv_mutex_init(&srv.gen_mu);
	if (rc < 0)
		return 1;
	srv.n_workers = ncfg->server.threads;
	/* From here on the first generation owns the cfg. */
	rc = px_gen_first(&srv, ncfg);
	if (rc < 0)
		return 1;
	const struct cfg *cfg = srv.cfg;
	if (cfg->server.query_log[0] != '\0') {
		rc = px_qlog_open(cfg->server.query_log, &srv.qlog);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "[server] query-log %s: cannot open: %s",
			       cfg->server.query_log, strerror(-rc));
			px_gen_unref(srv.gen);
			return 1;
		}
	}
	srv.workers = calloc(srv.n_workers, sizeof(*srv.workers));
	if (srv.workers == NULL) {
		px_qlog_file_unref(srv.qlog);
		px_gen_unref(srv.gen);
		return 1;
	}
	for (unsigned i = 0; i < srv.n_workers; i++) {
		rc = px_worker_init(&srv.workers[i], &srv, i);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "worker %u: %s", i, uv_strerror(rc));
			goto out;
		}
	}
	px_fd_limit(cfg);
	rc = bind_all(cfg);
	if (rc < 0)
		goto out;
	/* Every socket is bound and every key read: root is no longer
	 * needed, and no worker thread has started yet. */
	rc = px_priv_drop(cfg);
	if (rc < 0)
		goto out;
	if (srv.qlog != NULL)
		px_qlog_post(&srv, srv.qlog);

	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_signal_init(loop, &sig_usr1);
	uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&sig_hup, on_hup, SIGHUP);
	uv_signal_start(&sig_usr1, on_usr1, SIGUSR1);

	rc = px_control_start(&srv, loop);
	if (rc == 0)
		rc = px_metrics_start(&srv);
	if (rc < 0) {
		uv_close((uv_handle_t *)&sig_term, NULL);
		uv_close((uv_handle_t *)&sig_int, NULL);
		uv_close((uv_handle_t *)&sig_hup, NULL);
		uv_close((uv_handle_t *)&sig_usr1, NULL);
		px_control_stop(&srv);
		uv_run(loop, UV_RUN_DEFAULT);
		goto out;
	}

	for (; started < srv.n_workers; started++) {
		rc = px_worker_start(&srv.workers[started]);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "cannot start worker thread: %s",
			       uv_strerror(rc));
			atomic_store(&srv.stopping, true);
			for (unsigned i = 0; i < started; i++)
				uv_async_send(&srv.workers[i].wake);
			uv_close((uv_handle_t *)&sig_term, NULL);
			uv_close((uv_handle_t *)&sig_int, NULL);
			uv_close((uv_handle_t *)&sig_hup, NULL);
			uv_close((uv_handle_t *)&sig_usr1, NULL);
			px_control_stop(&srv);
			break;
		}
	}
	if (started == srv.n_workers) {
		char lis[512];
		size_t len = 0;
		lis[0] = '\0';
		for (size_t i = 0; i < cfg->listen.udp.n && len < sizeof(lis); i++)
			len += (size_t)snprintf(lis + len, sizeof(lis) - len, " udp %s",
			                        cfg->listen.udp.v[i].text);
		for (size_t k = 0; k < sizeof(tcp_kinds) / sizeof(tcp_kinds[0]); k++) {
			const struct cfg_addr_list *al = tcp_kind_list(cfg, k);
			for (size_t i = 0; i < al->n && len < sizeof(lis); i++)
				len += (size_t)snprintf(lis + len, sizeof(lis) - len, " %s %s",
				                        tcp_kinds[k].name, al->v[i].text);
		}
		px_log(CFG_LOG_INFO, MAIN, "apexd %s: %u workers, listening on%s, backend %s",
		       APEX_VERSION, srv.n_workers, lis, cfg->backend.address.text);
	}
	uv_run(loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < started; i++)
		uv_thread_join(&srv.workers[i].thread);
	log_stats();
out:
	px_metrics_stop(&srv);
	uv_loop_close(loop);
	for (unsigned i = 0; i < srv.n_workers; i++)
		px_worker_deinit(&srv.workers[i]);
	free(srv.workers);
	px_qlog_file_unref(srv.qlog);
	px_gen_unref(srv.gen);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"check-config", no_argument, NULL, 'C'},
	        {"version", no_argument, NULL, 'V'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *path = NULL;
	bool check = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'V':
			printf("apexd %s\n", APEX_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}

	struct cfg *cfg = NULL;
	struct cfg_error err;
	int rc = cfg_load(path, &cfg, &err);
	if (rc < 0) {
		fputs(err.msg, stderr);
		if (err.count > 0 && strchr(err.msg, '\n') != NULL && err.count > (unsigned)0) {
			/* cfg_error keeps the first errors; say how many there were. */
			fprintf(stderr, "%s: %u error%s\n", path, err.count,
			        err.count == 1 ? "" : "s");
		}
		return 1;
	}
	if (check) {
		printf("%s: configuration is valid\n", path);
		cfg_free(cfg);
		return 0;
	}
	atomic_store(&px_log_level, (int)cfg->server.log_level);
	signal(SIGPIPE, SIG_IGN);
	/* run() owns cfg from here (its first generation frees it). */
	return run(cfg);
}
