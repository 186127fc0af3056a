/* proxy/ops/metrics.c - [listen] metrics: Prometheus text at GET /metrics.
 *
 * libmicrohttpd does the HTTP/1.1 side on a thread of its own (its
 * internal polling thread, epoll), so a slow scraper never touches the
 * workers' loops. apexd binds the listening socket itself (no
 * SO_REUSEPORT: a second apexd on the same address fails to start with
 * "Address already in use" rather than sharing it) and hands it over.
 * Each request sums the workers' counters (relaxed loads) and the target
 * cache's (its locks), as apexctl stats does.
 * Threads: start/stop on the main thread; the handler on MHD's thread.
 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/ops/metrics.h"
#include "proxy/daemon/server.h"
#include "proxy/ops/log.h"
#include "proxy/ops/statsfmt.h"

/* Scrapers at once, and how long one may sit idle: Prometheus keeps
 * one connection per target; the rest is for curl and friends. */
#define PX_METRICS_MAX_CONNS 64
#define PX_METRICS_IDLE_S 10
#define PX_METRICS_BACKLOG 64
#define PX_METRICS_PATH "/metrics"
/* The text exposition format, as Prometheus asks for it. */
#define PX_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

struct px_metrics {
	struct MHD_Daemon *d;
};

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	px_log(CFG_LOG_WARNING, CTL, "metrics: %s", line);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *r =
	        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	struct px_server *srv = cls;
	char *text = NULL;

	(void)version;
	(void)upload_data;
	(void)upload_data_size;
	(void)con_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
		                 "method not allowed: use GET " PX_METRICS_PATH "\n");
	if (strcmp(url, PX_METRICS_PATH) != 0)
		return send_text(conn, MHD_HTTP_NOT_FOUND,
		                 "not found: apexd serves its metrics at " PX_METRICS_PATH "\n");
	ssize_t n = px_stats_render(srv, PX_STATS_PROMETHEUS, &text);
	if (n < 0)
		return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	struct MHD_Response *r =
	        MHD_create_response_from_buffer((size_t)n, text, MHD_RESPMEM_MUST_FREE);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PX_METRICS_CTYPE);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static int listen_socket(const struct cfg_addr *a, int *out)
{
	int one = 1;
	int fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	/* A restart must not wait for TIME_WAIT connections of the last run. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->sa.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->sa, a->salen) != 0 ||
	    listen(fd, PX_METRICS_BACKLOG) != 0) {
		int err = errno;
		close(fd);
		return -err;
	}
	*out = fd;
	return 0;
}

int px_metrics_start(struct px_server *srv)
{
	const struct cfg_addr *a = &srv->cfg->listen.metrics;
	struct px_metrics *m;
	int fd = -1, rc;

	if (a->salen == 0)
		return 0;
	rc = listen_socket(a, &fd);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, CTL, "cannot serve metrics on %s: %s", a->text,
		       strerror(-rc));
		return rc;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		close(fd);
		return -ENOMEM;
	}
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	if (a->sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The logger goes first, so that MHD reports problems with the
	 * options after it through px_log too. */
	m->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, srv, MHD_OPTION_EXTERNAL_LOGGER,
	                        mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)PX_METRICS_MAX_CONNS,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PX_METRICS_IDLE_S,
	                        MHD_OPTION_END);
	if (m->d == NULL) {
		px_log(CFG_LOG_ERROR, CTL,
		       "cannot serve metrics on %s: libmicrohttpd did not start", a->text);
		close(fd);
		free(m);
		return -EIO;
	}
	srv->metrics = m;
	px_log(CFG_LOG_INFO, CTL, "metrics at http://%s" PX_METRICS_PATH, a->text);
	return 0;
}

void px_metrics_stop(struct px_server *srv)
{
	if (srv->metrics == NULL)
		return;
	/* Joins MHD's thread and closes the listening socket. */
	MHD_stop_daemon(srv->metrics->d);
	free(srv->metrics);
	srv->metrics = NULL;
}
