/* proxy/main.c - apexd: command line, startup, signals, shutdown.
 *
 * The main thread loads the configuration, binds every listening socket
 * (one per worker and address, SO_REUSEPORT), starts the workers, then
 * runs a small loop of its own that only waits for signals.
 */
#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/internal.h"
#include "tls/ctx.h"

static struct px_server srv;
static uv_signal_t sig_term, sig_int, sig_hup;

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
	/* The control socket goes too, so the main loop can end. */
	px__control_stop(&srv);
}

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

/* SIGHUP and `apexctl reload`: today the certificate, key and OCSP
 * response are re-read (renewals land without a restart). A set that
 * does not load keeps the old one. */
int px__server_reload(struct px_server *s, char *msg, size_t msglen)
{
	const struct cfg *cfg = s->cfg;
	char err[512];
	struct tls_ctx *fresh[2] = {NULL, NULL};
	struct tls_ctx *old[2] = {s->tls_dot, s->tls_doh};

	if (old[0] == NULL && old[1] == NULL) {
		snprintf(msg, msglen,
		         "nothing reloaded: this version reloads only TLS certificates, and no dot "
		         "or doh listener is configured; other changes to %s need a restart",
		         cfg->path);
		return 0;
	}
	for (int i = 0; i < 2; i++) {
		if (old[i] == NULL)
			continue;
		/* Tickets issued before the reload still resume. */
		if (tls_ctx_from_cfg(cfg, i == 1, old[i], &fresh[i], err, sizeof(err)) < 0) {
			snprintf(msg, msglen, "keeping the current certificate: %s", err);
			tls_ctx_unref(fresh[0]);
			return -1;
		}
	}
	for (unsigned i = 0; i < s->n_workers; i++)
		px__worker_post_tls(&s->workers[i], fresh[0], fresh[1]);
	for (int i = 0; i < 2; i++) {
		if (fresh[i] == NULL)
			continue;
		tls_ctx_unref(old[i]);
		if (i == 0)
			s->tls_dot = fresh[0];
		else
			s->tls_doh = fresh[1];
	}
	snprintf(msg, msglen,
	         "certificate, key%s reloaded from %s; only certificates are reloaded by this "
	         "version, other changes to %s need a restart",
	         cfg->tls.ocsp_response[0] ? " and OCSP response" : "", cfg->tls.certificate,
	         cfg->path);
	return 0;
}

static void on_hup(uv_signal_t *h, int signum)
{
	char msg[1024];

	(void)h;
	(void)signum;
	int rc = px__server_reload(&srv, msg, sizeof(msg));
	px_log(rc < 0 ? CFG_LOG_ERROR : CFG_LOG_INFO, MAIN, "SIGHUP: %s", msg);
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

/* One context per TLS listener kind: the ALPN decides what a client may
 * speak (RFC 7858 "dot", RFC 8484 over "h2" only). */
static int tls_setup(const struct cfg *cfg)
{
	char err[512];

	for (int doh = 0; doh < 2; doh++) {
		const struct cfg_addr_list *l = doh ? &cfg->listen.doh : &cfg->listen.dot;
		if (l->n == 0)
			continue;
		int rc = tls_ctx_from_cfg(cfg, doh, NULL, doh ? &srv.tls_doh : &srv.tls_dot, err,
		                          sizeof(err));
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "[tls] in %s: %s", cfg->path, err);
			return rc;
		}
	}
	return 0;
}

/* Binds one socket per worker for each listen address. */
static int bind_all(const struct cfg *cfg)
{
	size_t n_tcp = 0;

	for (size_t k = 0; k < sizeof(tcp_kinds) / sizeof(tcp_kinds[0]); k++) {
		const struct cfg_addr_list *l = tcp_kind_list(cfg, k);
		n_tcp += l->n;
		for (size_t i = 0; i < l->n; i++) {
			int rc = px__sock_probe(&l->v[i], SOCK_STREAM);
			if (rc < 0) {
				px_log(CFG_LOG_ERROR, MAIN, "cannot listen on %s %s: %s",
				       tcp_kinds[k].name, l->v[i].text, strerror(-rc));
				return rc;
			}
		}
	}
	for (size_t i = 0; i < cfg->listen.udp.n; i++) {
		int rc = px__sock_probe(&cfg->listen.udp.v[i], SOCK_DGRAM);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "cannot listen on udp %s: %s",
			       cfg->listen.udp.v[i].text, strerror(-rc));
			return rc;
		}
	}
	for (unsigned wi = 0; wi < srv.n_workers; wi++) {
		struct px_worker *w = &srv.workers[wi];
		w->udp = calloc(cfg->listen.udp.n + 1, sizeof(*w->udp));
		w->tcp = calloc(n_tcp + 1, sizeof(*w->tcp));
		if (w->udp == NULL || w->tcp == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < cfg->listen.udp.n; i++) {
			struct px_udp_listener *l = &w->udp[w->n_udp];
			l->addr = &cfg->listen.udp.v[i];
			int rc = px__sock_bind(l->addr, SOCK_DGRAM, &l->fd);
			if (rc < 0) {
				px_log(CFG_LOG_ERROR, MAIN, "cannot listen on udp %s: %s",
				       l->addr->text, strerror(-rc));
				return rc;
			}
			w->n_udp++;
		}
		for (size_t k = 0; k < sizeof(tcp_kinds) / sizeof(tcp_kinds[0]); k++) {
			const struct cfg_addr_list *al = tcp_kind_list(cfg, k);
			for (size_t i = 0; i < al->n; i++) {
				struct px_tcp_listener *l = &w->tcp[w->n_tcp];
				l->addr = &al->v[i];
				l->kind = tcp_kinds[k].kind;
				int rc = px__sock_bind(l->addr, SOCK_STREAM, &l->fd);
				if (rc < 0) {
					px_log(CFG_LOG_ERROR, MAIN, "cannot listen on %s %s: %s",
					       tcp_kinds[k].name, l->addr->text, strerror(-rc));
					return rc;
				}
				w->n_tcp++;
			}
		}
	}
	return 0;
}

static int run(const struct cfg *cfg)
{
	uv_loop_t *loop = uv_default_loop();
	int rc = 0;
	unsigned started = 0;

	srv.cfg = cfg;
	srv.started_ms = uv_hrtime() / 1000000;
	rc = px__flat_server_init(&srv);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, MAIN, "cannot set up flattening: %s", strerror(-rc));
		px__flat_server_deinit(&srv);
		return 1;
	}
	rc = tls_setup(cfg);
	if (rc < 0) {
		px__flat_server_deinit(&srv);
		tls_ctx_unref(srv.tls_dot);
		return 1;
	}
	srv.n_workers = cfg->server.threads;
	srv.workers = calloc(srv.n_workers, sizeof(*srv.workers));
	if (srv.workers == NULL)
		return 1;
	for (unsigned i = 0; i < srv.n_workers; i++) {
		rc = px__worker_init(&srv.workers[i], &srv, i);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "worker %u: %s", i, uv_strerror(rc));
			goto out;
		}
	}
	rc = bind_all(cfg);
	if (rc < 0)
		goto out;
	for (unsigned i = 0; i < srv.n_workers; i++) {
		if (srv.tls_dot != NULL)
			tls_ctx_ref(srv.tls_dot);
		if (srv.tls_doh != NULL)
			tls_ctx_ref(srv.tls_doh);
		srv.workers[i].tls_dot = srv.tls_dot;
		srv.workers[i].tls_doh = srv.tls_doh;
	}

	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&sig_hup, on_hup, SIGHUP);

	rc = px__control_start(&srv, loop);
	if (rc == 0)
		rc = px__metrics_start(&srv);
	if (rc < 0) {
		uv_close((uv_handle_t *)&sig_term, NULL);
		uv_close((uv_handle_t *)&sig_int, NULL);
		uv_close((uv_handle_t *)&sig_hup, NULL);
		px__control_stop(&srv);
		uv_run(loop, UV_RUN_DEFAULT);
		goto out;
	}

	for (; started < srv.n_workers; started++) {
		rc = px__worker_start(&srv.workers[started]);
		if (rc < 0) {
			px_log(CFG_LOG_ERROR, MAIN, "cannot start worker thread: %s",
			       uv_strerror(rc));
			atomic_store(&srv.stopping, true);
			for (unsigned i = 0; i < started; i++)
				uv_async_send(&srv.workers[i].wake);
			uv_close((uv_handle_t *)&sig_term, NULL);
			uv_close((uv_handle_t *)&sig_int, NULL);
			uv_close((uv_handle_t *)&sig_hup, NULL);
			px__control_stop(&srv);
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
	px__metrics_stop(&srv);
	uv_loop_close(loop);
	for (unsigned i = 0; i < srv.n_workers; i++)
		px__worker_deinit(&srv.workers[i]);
	free(srv.workers);
	px__flat_server_deinit(&srv);
	tls_ctx_unref(srv.tls_dot);
	tls_ctx_unref(srv.tls_doh);
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
	rc = run(cfg);
	cfg_free(cfg);
	return rc;
}
