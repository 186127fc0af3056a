/* proxy/listen/move.c - handing client connections between workers.
 *
 * Why: steering (engine/steer.c) puts UDP queries and new connections on
 * as few workers as carry the load, because on a small machine the
 * wake-ups of a second worker cost more than its answers (bench/README.md,
 * issue 16: TCP and DoT at a light rate cost about 30 % more CPU per
 * answer with two workers than with one). A DoT or DoH client keeps its
 * connection for minutes, so steering new connections alone would leave
 * the old ones where they were: on a worker that should sleep after a
 * step down, or all on worker 0 after a step up. So when the number of
 * active workers changes, each worker picks the connections that should
 * live elsewhere and hands each over at its next quiet moment.
 *
 * Quiet: no query in flight (a transaction points at the connection and
 * answers on its worker's loop), no answer queued or in the kernel's
 * hands through libuv, the TLS handshake and a PROXY v2 header done.
 * Until then the connection reads nothing new, so that the queries in
 * flight end (one round trip to the backend, at most its timeout) and
 * no new one starts. What is buffered moves along: a partial frame, TLS
 * records, an HTTP/2 session with streams half received.
 *
 * The move: the socket is dup'ed, both libuv handles are closed (closing
 * takes the descriptor out of this loop's epoll), and once their close
 * callbacks ran the connection is posted to the other worker, which opens
 * the duplicate in its loop with fresh handles and goes on reading. The
 * struct keeps its address, so the TLS stream and nghttp2 session, whose
 * callbacks point at it, need not know.
 *
 * Threads: a connection belongs to one worker at a time; between the two
 * it belongs to the post list, under the receiver's posts.mu.
 */
#include <fcntl.h>
#include <unistd.h>

#include "tls/stream.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/doh.h"
#include "proxy/listen/internal.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

static unsigned active_workers(const struct px_worker *w)
{
	unsigned n = atomic_load_explicit(&w->srv->active, memory_order_relaxed);

	return n >= 1 && n <= w->srv->n_workers ? n : w->srv->n_workers;
}

/* Past the TLS handshake and the PROXY v2 header: what remains of the
 * connection is its queries. Before that it must go on reading. */
static bool conn_settled(const struct px_conn *c)
{
	return !c->pp2_wait && (c->tls == NULL || tls_stream_ready(c->tls)) &&
	       (c->kind != PX_CONN_DOH || c->doh != NULL);
}

bool px_conn_move_paused(const struct px_conn *c)
{
	return c->move && conn_settled(c);
}

static bool conn_quiet(const struct px_conn *c)
{
	/* refs 1: only the handles; no transaction, no write, no flush. */
	return !c->closing && !c->eof && c->refs == 1 && c->inflight == 0 && !c->flush_queued &&
	       c->out.end == 0 && uv_stream_get_write_queue_size((const uv_stream_t *)&c->h) == 0 &&
	       conn_settled(c);
}

static void moved_closed(uv_handle_t *h)
{
	struct px_conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	struct px_worker *to = &c->w->srv->workers[c->move_to];
	c->post_next = NULL;
	uv_mutex_lock(&to->posts.mu);
	if (to->posts.conn_tail != NULL)
		to->posts.conn_tail->post_next = c;
	else
		to->posts.conn_head = c;
	to->posts.conn_tail = c;
	uv_mutex_unlock(&to->posts.mu);
	uv_async_send(&to->wake);
}

/* Gives up a move: the connection stays and reads again. */
static void move_cancel(struct px_conn *c)
{
	c->move = false;
	px_conn_resume(c);
}

static void conn_move(struct px_conn *c)
{
	struct px_worker *w = c->w;
	struct px_worker *to = &w->srv->workers[c->move_to];
	uv_os_fd_t fd;

	int nfd = uv_fileno((uv_handle_t *)&c->h, &fd) == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (nfd < 0) {
		move_cancel(c); /* out of descriptors: it stays, that is all */
		return;
	}
	uv_mutex_lock(&to->posts.mu);
	bool open = !to->posts.closed;
	if (open)
		to->posts.conns_incoming++;
	uv_mutex_unlock(&to->posts.mu);
	if (!open) {
		close(nfd);
		move_cancel(c);
		return;
	}
	px_conn_stop_reading(c);
	px_conn_unlink(c);
	px_conn_gauge(c, -1);
	PX_STAT_INC(&w->stats, conns_moved);
	c->moved_fd = nfd;
	uv_close((uv_handle_t *)&c->idle, moved_closed);
	uv_close((uv_handle_t *)&c->h, moved_closed);
}

void px_conn_try_move(struct px_conn *c)
{
	if (!c->move || c->closing)
		return;
	unsigned active = active_workers(c->w);
	if (c->w->draining || c->move_to == c->w->idx ||
	    (c->move_to >= active && c->w->idx < active)) {
		move_cancel(c); /* the steering changed its mind */
		return;
	}
	if (c->move_to >= active)
		c->move_to %= active;
	if (!conn_quiet(c)) {
		/* Retried when the last query ends or the writes drain
		 * (conn.c); meanwhile nothing new is read. */
		if (conn_settled(c))
			px_conn_stop_reading(c);
		return;
	}
	conn_move(c);
}

static void mark(struct px_conn *c, unsigned to)
{
	c->move = true;
	c->move_to = to;
	/* The check phase tries: a flush keeps c alive until then. */
	px_conn_queue_flush(c);
}

int px_move_target(unsigned idx, unsigned active, unsigned before, unsigned k)
{
	if (active == 0)
		return -1;
	if (idx >= active)
		return (int)(k % active); /* this worker is left: all go */
	if (active > before && idx < before && k % active >= before)
		return (int)(k % active); /* the joiners' share */
	return -1;
}

void px_conn_rebalance(struct px_worker *w)
{
	unsigned active = active_workers(w);
	unsigned before = w->lis.seen_active;
	/* Counted by kind, so that each transport's connections spread
	 * evenly, whatever order they came in. */
	unsigned k[PX_CONN_DOH + 1] = {0};

	if (active == before)
		return;
	w->lis.seen_active = active;
	if (w->draining || w->srv->n_workers <= 1)
		return;
	for (struct px_conn *c = w->lis.conns; c != NULL; c = c->next) {
		if (c->closing)
			continue;
		int to = px_move_target(w->idx, active, before, k[c->kind]++);
		if (to >= 0)
			mark(c, (unsigned)to);
		else if (c->move)
			move_cancel(c); /* a move the last change asked for is off */
	}
}

void px_conn_move_new(struct px_conn *c)
{
	struct px_worker *w = c->w;
	unsigned active = active_workers(w);

	/* A connection the kernel gave this worker under a program just
	 * replaced: it goes where the new one would have sent it. */
	if (w->idx >= active && w->srv->n_workers > 1)
		mark(c, (unsigned)px_rand16(w) % active);
}

static void adopt_one(struct px_worker *w, struct px_conn *c)
{
	px_conn_link(c, w);
	c->move = false;
	uv_tcp_init(&w->loop, &c->h);
	uv_timer_init(&w->loop, &c->idle);
	c->h.data = c;
	c->idle.data = c;
	c->handles_open = 2;
	px_conn_gauge(c, +1);
	int rc = uv_tcp_open(&c->h, c->moved_fd);
	if (rc < 0) {
		close(c->moved_fd);
		px_log_rl(CFG_LOG_WARNING, TCP, "a connection handed to worker %u: %s", w->idx,
		          uv_strerror(rc));
		px_conn_close(c);
		return;
	}
	if (w->draining) {
		px_conn_close(c);
		return;
	}
	px_conn_idle_restart(c);
	px_conn_resume(c);
	if (c->kind == PX_CONN_DOH)
		px_conn_queue_flush(c); /* what nghttp2 still had to say */
}

void px_conn_adopt(struct px_worker *w)
{
	for (;;) {
		uv_mutex_lock(&w->posts.mu);
		struct px_conn *c = w->posts.conn_head;
		if (c != NULL) {
			w->posts.conn_head = c->post_next;
			if (w->posts.conn_head == NULL)
				w->posts.conn_tail = NULL;
			w->posts.conns_incoming--;
		}
		uv_mutex_unlock(&w->posts.mu);
		if (c == NULL)
			return;
		adopt_one(w, c);
	}
}
