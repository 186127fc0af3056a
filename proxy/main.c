/* proxy/main.c - apexd: command line and signals.
 *
 * The main thread loads the configuration and hands it to the server
 * (daemon/server.c), which binds the listeners and starts the workers;
 * then main's own loop waits for signals and the control socket:
 * SIGHUP reloads the configuration (daemon/reload.c), SIGUSR1 reopens
 * the query log, SIGTERM and SIGINT end apexd.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/daemon/server.h"
#include "proxy/ops/control.h"
#include "proxy/ops/log.h"
#include "proxy/ops/qlog.h"

static struct px_server srv;
static uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;

static void usage(FILE *f)
{
	fprintf(f, "usage: apexd -c FILE            run in the foreground, log to stderr\n"
	           "       apexd --check-config -c FILE   validate FILE and exit 0 or 1\n"
	           "       apexd --version\n");
}

static void signals_stop(void)
{
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
	uv_close((uv_handle_t *)&sig_usr1, NULL);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
	(void)h;
	px_log(CFG_LOG_INFO, MAIN, "%s: finishing queries in flight, then exiting",
	       signum == SIGINT ? "SIGINT" : "SIGTERM");
	px_server_stopping(&srv);
	/* Closing the signal handles restores the default action, so a
	 * second signal ends the process at once. */
	signals_stop();
	/* The control socket and sibling upkeep go too, so the main loop
	 * can end. */
	px_sib_stop(&srv);
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

static void signals_start(uv_loop_t *loop)
{
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_signal_init(loop, &sig_usr1);
	uv_signal_start(&sig_term, on_stop_signal, SIGTERM);
	uv_signal_start(&sig_int, on_stop_signal, SIGINT);
	uv_signal_start(&sig_hup, on_hup, SIGHUP);
	uv_signal_start(&sig_usr1, on_usr1, SIGUSR1);
}

static int run(struct cfg *cfg)
{
	uv_loop_t *loop = uv_default_loop();
	int rc = px_server_start(&srv, cfg);

	if (rc == 0) {
		signals_start(loop);
		rc = px_server_open(&srv, loop);
		if (rc < 0)
			signals_stop();
		px_server_run(&srv, loop);
	}
	px_server_stop(&srv, loop);
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
	/* run() owns cfg from here (the server's first generation frees it). */
	return run(cfg);
}
