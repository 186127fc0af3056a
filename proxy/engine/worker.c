/* proxy/engine/worker.c - one event loop per thread.
 *
 * A worker owns its listeners (sockets bound by main with SO_REUSEPORT),
 * its backend sockets, its transaction slots and its counters; no lock
 * is taken on the query path. The main thread talks to a worker only by
 * setting srv->stopping, posting reloads and query-log files under
 * post_mu, and waking it through an async handle.
 *
 * Reload: the async callback adopts each posted generation in turn, at a
 * loop-turn boundary: listeners gone from the new file stop reading (a
 * UDP socket stays open until the queries it must answer are done, a TCP
 * listener closes at once; its connections carry on), the sockets main
 * bound for new addresses start, and new queries take the new
 * generation while queries in flight keep theirs (reload.c).
 *
 * Shutdown (SIGTERM/SIGINT): stop reading from clients, close the TCP
 * listeners, let every query in flight finish (each has a deadline, so
 * this is bounded by [backend] timeout), then close all handles and let
 * uv_run() return.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls/ctx.h"
#include "proxy/engine/worker.h"
#include "proxy/backend/backend.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/anscache.h"
#include "proxy/engine/rrl.h"
#include "proxy/engine/txn.h"
#include "proxy/flat/flat.h"
#include "proxy/flat/upstream.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/doh.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/qlog.h"

static void close_cb_noop(uv_handle_t *h)
{
	(void)h;
}

static void begin_drain(struct px_worker *w)
{
	if (w->draining)
		return;
	w->draining = true;
	for (size_t i = 0; i < w->lis.n_udp; i++)
		px_udp_stop_reading(w->lis.udp[i]);
	/* Closing frees them (listen/tcp.c): the array forgets them at once. */
	for (size_t i = 0; i < w->lis.n_tcp; i++)
		px_tcp_remove(w->lis.tcp[i]);
	w->lis.n_tcp = 0;
	for (struct px_conn *c = w->lis.conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->h);
			c->reading = false;
		}
		px_doh_goaway(c);
		if (c->inflight == 0 && uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0)
			px_conn_close(c);
	}
	px_worker_maybe_finish(w);
}

/* Room for one more pointer in a vector of *cap; the vector, moved or
 * not, or NULL when out of memory (v is then unchanged). */
static void *vec_room(void *v, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return v;
	size_t ncap = *cap ? *cap * 2 : 4;
	void *nv = realloc(v, ncap * elem);
	if (nv != NULL)
		*cap = ncap;
	return nv;
}

int px_worker_add_udp(struct px_worker *w, struct px_udp_listener *l)
{
	struct px_udp_listener **v =
	        vec_room(w->lis.udp, w->lis.n_udp, &w->lis.cap_udp, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	w->lis.udp = v;
	l->w = w;
	v[w->lis.n_udp++] = l;
	return 0;
}

int px_worker_add_tcp(struct px_worker *w, struct px_tcp_listener *l)
{
	struct px_tcp_listener **v =
	        vec_room(w->lis.tcp, w->lis.n_tcp, &w->lis.cap_tcp, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	w->lis.tcp = v;
	l->w = w;
	v[w->lis.n_tcp++] = l;
	return 0;
}

static const char *const kind_names[] = {
        [PX_CONN_TCP] = "tcp", [PX_CONN_DOT] = "dot", [PX_CONN_DOH] = "doh"};

/* Starts the listener at the end of the array; one that fails is logged
 * and dropped (the others serve on). */
static void start_last_udp(struct px_worker *w)
{
	struct px_udp_listener *l = w->lis.udp[w->lis.n_udp - 1];
	int rc = px_udp_start(l, w);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, UDP, "worker %u: cannot serve udp %s: %s", w->idx,
		       l->addr.text, uv_strerror(rc));
		w->lis.n_udp--;
		px_udp_remove(l);
	}
}

static void start_last_tcp(struct px_worker *w)
{
	struct px_tcp_listener *l = w->lis.tcp[w->lis.n_tcp - 1];
	int rc = px_tcp_start(l, w);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, TCP, "worker %u: cannot serve %s %s: %s", w->idx,
		       kind_names[l->kind], l->addr.text, uv_strerror(rc));
		w->lis.n_tcp--;
		px_tcp_remove(l);
	}
}

/* Applies one reload: listeners first (those gone stop, new ones start),
 * then the answer cache's settings, then the generation itself. */
static void apply_reload(struct px_worker *w, struct px_reload_post *p)
{
	const struct cfg *nc = p->gen->cfg, *oc = w->cfg;

	for (size_t i = 0; i < w->lis.n_udp;) {
		struct px_udp_listener *l = w->lis.udp[i];
		if (px_listen_has(nc, true, PX_CONN_TCP, &l->addr)) {
			i++;
			continue;
		}
		w->lis.udp[i] = w->lis.udp[--w->lis.n_udp];
		px_udp_remove(l);
	}
	for (size_t i = 0; i < w->lis.n_tcp;) {
		struct px_tcp_listener *l = w->lis.tcp[i];
		if (px_listen_has(nc, false, l->kind, &l->addr)) {
			i++;
			continue;
		}
		w->lis.tcp[i] = w->lis.tcp[--w->lis.n_tcp];
		px_tcp_remove(l);
	}
	for (size_t i = 0; i < p->n_udp; i++) {
		if (w->draining || px_worker_add_udp(w, p->udp[i]) < 0)
			px_udp_discard(p->udp[i]);
		else
			start_last_udp(w);
	}
	for (size_t i = 0; i < p->n_tcp; i++) {
		if (w->draining || px_worker_add_tcp(w, p->tcp[i]) < 0)
			px_tcp_discard(p->tcp[i]);
		else
			start_last_tcp(w);
	}
	if (nc->cache.answers != oc->cache.answers || nc->cache.size != oc->cache.size) {
		/* A new bound means a new cache; its entries are lost, which
		 * the bump of anscache_gen by the reload did anyway. */
		px_anscache_free(w->anscache);
		w->anscache = NULL;
		if (nc->cache.answers &&
		    px_anscache_new(&w->anscache, (size_t)(nc->cache.size / nc->server.threads)) <
		            0)
			px_log(CFG_LOG_ERROR, CACHE,
			       "worker %u: no memory for the answer cache: off", w->idx);
	}
	if (nc->limits.responses_per_second != oc->limits.responses_per_second ||
	    nc->limits.slip != oc->limits.slip) {
		/* New limits start every prefix with a full bucket. */
		px_rrl_free(w->rrl);
		w->rrl = NULL;
		if (nc->limits.responses_per_second > 0 &&
		    px_rrl_new_random(&w->rrl, nc->limits.responses_per_second, nc->limits.slip) <
		            0)
			px_log(CFG_LOG_ERROR, MAIN,
			       "worker %u: no memory for the rate limit table: limiting off",
			       w->idx);
	}
	px_gen_adopt(w, p->gen);
	free(p->udp);
	free(p->tcp);
	free(p);
}

static void run_reloads(struct px_worker *w)
{
	for (;;) {
		uv_mutex_lock(&w->posts.mu);
		struct px_reload_post *p = w->posts.reload_head;
		if (p != NULL) {
			w->posts.reload_head = p->next;
			if (w->posts.reload_head == NULL)
				w->posts.reload_tail = NULL;
			w->posts.reloads_pending--;
		}
		uv_mutex_unlock(&w->posts.mu);
		if (p == NULL)
			return;
		apply_reload(w, p);
	}
}

void px_worker_post_reload(struct px_worker *w, struct px_reload_post *p)
{
	p->next = NULL;
	uv_mutex_lock(&w->posts.mu);
	if (w->posts.reload_tail != NULL)
		w->posts.reload_tail->next = p;
	else
		w->posts.reload_head = p;
	w->posts.reload_tail = p;
	w->posts.reloads_pending++;
	uv_mutex_unlock(&w->posts.mu);
	uv_async_send(&w->wake);
}

void px_worker_nudge(struct px_worker *w)
{
	/* Under the lock: a worker that finished closed its wake handle,
	 * and a send to it would write to a loop that is gone. */
	uv_mutex_lock(&w->posts.mu);
	if (!w->posts.closed)
		uv_async_send(&w->wake);
	uv_mutex_unlock(&w->posts.mu);
}

int px_worker_post_flush(struct px_worker *w, struct px_flush_op *op)
{
	uv_mutex_lock(&w->posts.mu);
	struct px_flush_op **v =
	        vec_room(w->posts.flush, w->posts.n_flush, &w->posts.cap_flush, sizeof(*v));
	if (v == NULL) {
		uv_mutex_unlock(&w->posts.mu);
		return -ENOMEM;
	}
	w->posts.flush = v;
	atomic_fetch_add(&op->refs, 1);
	v[w->posts.n_flush++] = op;
	uv_mutex_unlock(&w->posts.mu);
	uv_async_send(&w->wake);
	return 0;
}

static void run_flushes(struct px_worker *w)
{
	for (;;) {
		struct px_flush_op *op = NULL;
		uv_mutex_lock(&w->posts.mu);
		if (w->posts.n_flush > 0)
			op = w->posts.flush[--w->posts.n_flush];
		uv_mutex_unlock(&w->posts.mu);
		if (op == NULL)
			return;
		size_t n = px_anscache_drop_name(w->anscache, op->name, op->len);
		atomic_fetch_add(&op->dropped, n);
		atomic_fetch_sub(&op->left, 1);
		px_flush_op_release(op);
	}
}

static void wake_cb(uv_async_t *h)
{
	struct px_worker *w = h->data;

	run_reloads(w);
	px_steer_follow_pin(w);
	px_conn_adopt(w);
	px_conn_rebalance(w);
	px_qlog_adopt(w);
	px_dnstap_adopt(w);
	run_flushes(w);
	px_flat_run_posts(w);
	if (atomic_load(&w->srv->stopping))
		begin_drain(w);
}

static bool udp_sends_pending(const struct px_worker *w)
{
	for (size_t i = 0; i < w->lis.n_udp; i++)
		if (px_udp_sends_pending(w->lis.udp[i]))
			return true;
	return false;
}

/* Backend first: a query it cannot send fails into the client queue. A
 * failed send ends its txn, which may queue a TCP client's next query on
 * the backend queue (px_udp_tx_flush sends it in a further round) or end
 * the worker's drain and come back here: the outer flush finishes the
 * job. */
static void udp_tx_flush(struct px_worker *w)
{
	if (w->tx.flushing)
		return;
	w->tx.flushing = true;
	px_udp_tx_flush(w->tx.backend);
	px_udp_tx_flush(w->tx.client);
	w->tx.flushing = false;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, close_cb_noop);
}

void px_worker_maybe_finish(struct px_worker *w)
{
	if (w->closed || !w->draining || w->slots.inflight > 0 || w->lis.conns != NULL)
		return;
	/* A connection another worker is handing over arrives first. */
	uv_mutex_lock(&w->posts.mu);
	bool incoming = w->posts.conns_incoming > 0;
	if (!incoming)
		w->posts.closed = true;
	uv_mutex_unlock(&w->posts.mu);
	if (incoming)
		return;
	/* Answers still queued for sendmmsg go out before the sockets close. */
	udp_tx_flush(w);
	if (px_udp_tx_pending(w->tx.backend) || px_udp_tx_pending(w->tx.client) ||
	    udp_sends_pending(w))
		return;
	w->closed = true;
	px_up_cancel_all(w);
	px_backend_close(w);
	/* Closing frees them (udp.c): the array forgets them at once. */
	for (size_t i = 0; i < w->lis.n_udp; i++)
		px_udp_remove(w->lis.udp[i]);
	w->lis.n_udp = 0;
	uv_close((uv_handle_t *)&w->deadline_timer, close_cb_noop);
	uv_close((uv_handle_t *)&w->flush_check, close_cb_noop);
	uv_close((uv_handle_t *)&w->flush_prepare, close_cb_noop);
	uv_close((uv_handle_t *)&w->wake, close_cb_noop);
}

/* What a loop turn produced leaves together: connections' answers, the
 * query log's lines, the UDP queues. A drain that a flush in progress
 * held back finishes here. */
static void flush_turn(struct px_worker *w)
{
	px_conn_flush_all(w);
	if (w->ql.len > 0)
		px_qlog_flush(w);
	udp_tx_flush(w);
	if (w->draining && !w->closed)
		px_worker_maybe_finish(w);
}

/* After poll: answers from I/O callbacks. */
static void flush_check_cb(uv_check_t *h)
{
	flush_turn(h->data);
}

/* Before poll: answers from timers (deadlines). */
static void flush_prepare_cb(uv_prepare_t *h)
{
	flush_turn(h->data);
}

int px_worker_init(struct px_worker *w, struct px_server *srv, unsigned idx)
{
	int rc;

	w->idx = idx;
	w->lis.seen_active = 1; /* steering starts with worker 0 alone */
	w->rng = 2463534242u ^ (idx * 0x9e3779b9u) ^ (uint32_t)getpid();
	if (w->rng == 0)
		w->rng = 1;
	w->srv = srv;
	/* The first generation; main's reference is not the worker's. */
	px_gen_ref(srv->gen);
	w->gen = srv->gen;
	w->cfg = srv->gen->cfg;
	rc = uv_loop_init(&w->loop);
	if (rc < 0) {
		px_gen_unref(w->gen);
		w->gen = NULL;
		return rc;
	}
	w->loop.data = w;
	rc = -ENOMEM;
	w->udp_rx = malloc((size_t)PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX);
	w->own.rx = malloc(PX_UDP_DGRAM_MAX);
	w->own.keep_spare = true; /* px_worker_deinit() runs after the loop closed */
	w->ac_out = malloc(CODEC_MAX_MSG);
	w->slots.txns = calloc(PX_TXN_SLOTS, sizeof(*w->slots.txns));
	w->tx.client = malloc(sizeof(*w->tx.client));
	w->tx.backend = malloc(sizeof(*w->tx.backend));
	if (w->udp_rx == NULL || w->own.rx == NULL || w->ac_out == NULL || w->slots.txns == NULL ||
	    w->tx.client == NULL || w->tx.backend == NULL || px_backend_init(w) < 0)
		goto fail;
	px_udp_tx_init(w->tx.client, px_udp_send_failed);
	px_udp_tx_init(w->tx.backend, px_backend_tx_failed);
	for (uint32_t i = PX_TXN_SLOTS; i-- > 0;) {
		w->slots.txns[i].idx = i;
		w->slots.txns[i].free_next = w->slots.free;
		w->slots.free = &w->slots.txns[i];
	}
	if (w->cfg->cache.answers) {
		/* The bound is for all workers together. */
		rc = px_anscache_new(&w->anscache,
		                     (size_t)(w->cfg->cache.size / w->cfg->server.threads));
		if (rc < 0)
			goto fail;
	}
	if (w->cfg->limits.responses_per_second > 0) {
		rc = px_rrl_new_random(&w->rrl, w->cfg->limits.responses_per_second,
		                       w->cfg->limits.slip);
		if (rc < 0)
			goto fail;
	}
	rc = uv_mutex_init(&w->posts.mu);
	if (rc < 0)
		goto fail;
	rc = uv_async_init(&w->loop, &w->wake, wake_cb);
	if (rc < 0)
		goto fail;
	w->wake.data = w;
	uv_timer_init(&w->loop, &w->deadline_timer);
	w->deadline_timer.data = w;
	/* Queued answers go out after each poll phase (those of I/O
	 * callbacks) and before the next (those of timers, which run before
	 * poll and would otherwise wait for the next I/O). Unreferenced: they
	 * never keep the loop alive by themselves. */
	uv_check_init(&w->loop, &w->flush_check);
	w->flush_check.data = w;
	uv_check_start(&w->flush_check, flush_check_cb);
	uv_unref((uv_handle_t *)&w->flush_check);
	uv_prepare_init(&w->loop, &w->flush_prepare);
	w->flush_prepare.data = w;
	uv_prepare_start(&w->flush_prepare, flush_prepare_cb);
	uv_unref((uv_handle_t *)&w->flush_prepare);
	return 0;
fail:
	free(w->tx.client);
	free(w->tx.backend);
	w->tx.client = w->tx.backend = NULL;
	free(w->slots.txns);
	free(w->own.rx);
	free(w->ac_out);
	free(w->udp_rx);
	w->ac_out = NULL;
	w->slots.txns = NULL;
	w->own.rx = w->udp_rx = NULL;
	uv_loop_close(&w->loop);
	px_gen_unref(w->gen);
	w->gen = NULL;
	return rc;
}

static void worker_main(void *arg)
{
	struct px_worker *w = arg;

	/* Start them in order; a failed one is dropped from the array, so
	 * rotate through it as start_last_*() expects. */
	size_t n = w->lis.n_udp;
	struct px_udp_listener **u = w->lis.udp;
	w->lis.udp = NULL;
	w->lis.n_udp = w->lis.cap_udp = 0;
	for (size_t i = 0; i < n; i++) {
		if (px_worker_add_udp(w, u[i]) < 0)
			px_udp_discard(u[i]);
		else
			start_last_udp(w);
	}
	free(u);
	n = w->lis.n_tcp;
	struct px_tcp_listener **t = w->lis.tcp;
	w->lis.tcp = NULL;
	w->lis.n_tcp = w->lis.cap_tcp = 0;
	for (size_t i = 0; i < n; i++) {
		if (px_worker_add_tcp(w, t[i]) < 0)
			px_tcp_discard(t[i]);
		else
			start_last_tcp(w);
	}
	free(t);
	/* A stop requested before this loop ran must not be missed. */
	if (atomic_load(&w->srv->stopping))
		begin_drain(w);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* Anything left (a handle that failed to start) closes here. */
	uv_walk(&w->loop, close_walk_cb, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

int px_worker_start(struct px_worker *w)
{
	return uv_thread_create(&w->thread, worker_main, w);
}

void px_worker_deinit(struct px_worker *w)
{
	px_steer_close(w);
	if (w->slots.txns != NULL) {
		/* A worker that never ran (startup failed) still has its
		 * async and timer handles: close them so the loop can close. */
		uv_walk(&w->loop, close_walk_cb, NULL);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		int rc = uv_loop_close(&w->loop);
		if (rc < 0)
			px_log(CFG_LOG_WARNING, MAIN, "worker %u: loop not empty at exit", w->idx);
	}
	/* Listeners still here never started (the worker did not run);
	 * those that ran were closed and freed by their handles. */
	for (size_t i = 0; i < w->lis.n_udp; i++)
		px_udp_discard(w->lis.udp[i]);
	for (size_t i = 0; i < w->lis.n_tcp; i++)
		px_tcp_discard(w->lis.tcp[i]);
	free(w->lis.udp);
	free(w->lis.tcp);
	px_rrl_free(w->rrl);
	px_backend_free(w);
	w->lis.udp = NULL;
	w->lis.tcp = NULL;
	w->lis.n_udp = w->lis.n_tcp = 0;
	/* Reloads posted after the worker stopped reading its async handle. */
	for (struct px_reload_post *p = w->posts.reload_head, *next; p != NULL; p = next) {
		next = p->next;
		px_reload_post_free(p);
	}
	w->posts.reload_head = w->posts.reload_tail = NULL;
	px_qlog_worker_deinit(w);
	px_dnstap_worker_deinit(w);
	px_gen_unref(w->gen);
	w->gen = NULL;
	if (w->slots.txns != NULL)
		uv_mutex_destroy(&w->posts.mu);
	free(w->posts.wake);
	/* Flushes posted while the worker was closing: the control side
	 * has stopped waiting, drop the references. */
	for (size_t i = 0; i < w->posts.n_flush; i++)
		px_flush_op_release(w->posts.flush[i]);
	free(w->posts.flush);
	px_anscache_free(w->anscache);
	free(w->tx.client);
	free(w->tx.backend);
	free(w->slots.txns);
	free(w->own.rx);
	free(w->ac_out);
	free(w->udp_rx);
	px_up_spare_free(&w->own);
	px_flat_pool_free(w);
	for (unsigned i = 0; i < PX_OUTBUF_DEPTH; i++)
		free(w->outbufs.buf[i]);
	memset(&w->outbufs, 0, sizeof(w->outbufs));
}

uint8_t *px_outbuf_get(struct px_worker *w)
{
	struct px_outbufs *o = &w->outbufs;

	if (o->depth >= PX_OUTBUF_DEPTH)
		return malloc(CODEC_MAX_MSG); /* nested deeper than ever seen */
	if (o->buf[o->depth] == NULL)
		o->buf[o->depth] = malloc(CODEC_MAX_MSG);
	if (o->buf[o->depth] == NULL)
		return NULL;
	return o->buf[o->depth++];
}

void px_outbuf_put(struct px_worker *w, uint8_t *buf)
{
	struct px_outbufs *o = &w->outbufs;

	if (buf == NULL)
		return;
	if (o->depth > 0 && buf == o->buf[o->depth - 1])
		o->depth--;
	else
		free(buf); /* one from past the last level */
}

void px_flush_op_release(struct px_flush_op *op)
{
	if (op != NULL && atomic_fetch_sub(&op->refs, 1) == 1)
		free(op);
}
