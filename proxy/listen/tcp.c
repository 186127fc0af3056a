/* proxy/listen/tcp.c - the TCP, DoT and DoH listeners of a worker:
 * accepting client connections within the limits (max-connections,
 * descriptors kept for the backend); the connection itself is conn.c.
 */
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "proxy/engine/steer.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/internal.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"
#include "proxy/daemon/server.h"

/* Descriptors kept free for everything but client connections: backend
 * sockets, apexd's own queries to BIND and the resolvers, TLS reloads.
 * A client connection whose descriptor lands this close to the limit
 * (ulimit -n) is closed at once, so clients cannot starve the backend
 * side of sockets. */
#define PX_FD_HEADROOM 64

static void accept_cb(uv_stream_t *server, int status)
{
	struct px_tcp_listener *l = server->data;
	struct px_worker *w = l->w;

	if (status < 0) {
		/* EMFILE/ENFILE: libuv has already accepted and closed the
		 * waiting connections with its reserve descriptor, so the
		 * clients are refused at once and the loop does not spin. */
		PX_STAT_INC(&w->stats, tcp_fd_refused);
		px_log_rl(CFG_LOG_WARNING, TCP, "accept on %s: %s", l->addr.text,
		          uv_strerror(status));
		return;
	}
	struct px_conn *c = px_conn_new(w);
	if (c == NULL)
		return;
	if (uv_accept(server, (uv_stream_t *)&c->h) < 0) {
		px_conn_close(c);
		return;
	}
	/* Descriptors are handed out lowest first, so the new one's number
	 * says how many are open. */
	uv_os_fd_t fd;
	if (l->fd_limit > 0 && uv_fileno((uv_handle_t *)&c->h, &fd) == 0 &&
	    (uint64_t)fd + PX_FD_HEADROOM >= l->fd_limit) {
		PX_STAT_INC(&w->stats, tcp_fd_refused);
		px_log_rl(CFG_LOG_WARNING, TCP,
		          "accept on %s: out of file descriptors (ulimit -n %llu, %d kept "
		          "for the backend); refusing new connections",
		          l->addr.text, (unsigned long long)l->fd_limit, PX_FD_HEADROOM);
		px_conn_close(c);
		return;
	}
	unsigned total = atomic_load_explicit(&w->srv->tcp_conns, memory_order_relaxed);
	if (total > w->cfg->listen.max_connections) {
		/* Accept and close at once: the kernel backlog drains and the
		 * client learns right away instead of waiting on a SYN queue. */
		PX_STAT_INC(&w->stats, tcp_refused);
		px_conn_close(c);
		return;
	}
	c->kind = l->kind;
	if (c->kind != PX_CONN_TCP && px_conn_tls_start(c) < 0) {
		px_conn_close(c);
		return;
	}
	px_pp2_conn_accepted(c);
	px_conn_start(c);
}

int px_tcp_start(struct px_tcp_listener *l, struct px_worker *w)
{
	int rc;

	l->w = w;
	struct rlimit rl;
	l->fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
	                      ? (uint64_t)rl.rlim_cur
	                      : 0;
	rc = uv_tcp_init(&w->loop, &l->h);
	if (rc < 0)
		return rc;
	l->started = true;
	l->h.data = l;
	rc = uv_tcp_open(&l->h, l->fd);
	if (rc < 0)
		return rc;
	rc = uv_listen((uv_stream_t *)&l->h, PX_TCP_BACKLOG, accept_cb);
	if (rc == 0)
		px_steer_listener(w, l->fd); /* new connections follow the steering too */
	l->fd = -1;
	return rc;
}

void px_tcp_discard(struct px_tcp_listener *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

static void listener_closed_cb(uv_handle_t *h)
{
	px_tcp_discard(h->data);
}

void px_tcp_remove(struct px_tcp_listener *l)
{
	/* Connections it accepted do not point back to it: they go on. */
	if (!l->started)
		px_tcp_discard(l);
	else if (!uv_is_closing((uv_handle_t *)&l->h))
		uv_close((uv_handle_t *)&l->h, listener_closed_cb);
}
