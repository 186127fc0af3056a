/* proxy/worker.c - one event loop per thread.
 *
 * A worker owns its listeners (sockets bound by main with SO_REUSEPORT),
 * its backend sockets, its transaction slots and its counters; no lock
 * is taken on the query path. The main thread talks to a worker only by
 * setting srv->stopping and waking it through an async handle.
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

#include "proxy/internal.h"
#include "proxy/anscache.h"
#include "proxy/upstream.h"
#include "tls/ctx.h"

static void close_cb_noop(uv_handle_t *h)
{
	(void)h;
}

static void begin_drain(struct px_worker *w)
{
	if (w->draining)
		return;
	w->draining = true;
	for (size_t i = 0; i < w->n_udp; i++)
		uv_udp_recv_stop(&w->udp[i].h);
	for (size_t i = 0; i < w->n_tcp; i++)
		if (!uv_is_closing((uv_handle_t *)&w->tcp[i].h))
			uv_close((uv_handle_t *)&w->tcp[i].h, close_cb_noop);
	for (struct px_conn *c = w->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->reading) {
			uv_read_stop((uv_stream_t *)&c->h);
			c->reading = false;
		}
		px__doh_goaway(c);
		if (c->inflight == 0 && uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0)
			px__conn_close(c);
	}
	px__worker_maybe_finish(w);
}

static void swap_tls(struct px_worker *w)
{
	struct tls_ctx *dot = NULL, *doh = NULL;

	uv_mutex_lock(&w->post_mu);
	if (w->tls_posted) {
		dot = w->new_tls_dot;
		doh = w->new_tls_doh;
		w->new_tls_dot = w->new_tls_doh = NULL;
		w->tls_posted = false;
	}
	uv_mutex_unlock(&w->post_mu);
	/* Connections made with the old context hold their own reference
	 * and finish on the old certificate. */
	if (dot != NULL) {
		tls_ctx_unref(w->tls_dot);
		w->tls_dot = dot;
	}
	if (doh != NULL) {
		tls_ctx_unref(w->tls_doh);
		w->tls_doh = doh;
	}
}

void px__worker_post_tls(struct px_worker *w, struct tls_ctx *dot, struct tls_ctx *doh)
{
	if (dot != NULL)
		tls_ctx_ref(dot);
	if (doh != NULL)
		tls_ctx_ref(doh);
	uv_mutex_lock(&w->post_mu);
	if (dot != NULL) {
		tls_ctx_unref(w->new_tls_dot);
		w->new_tls_dot = dot;
	}
	if (doh != NULL) {
		tls_ctx_unref(w->new_tls_doh);
		w->new_tls_doh = doh;
	}
	w->tls_posted = true;
	uv_mutex_unlock(&w->post_mu);
	uv_async_send(&w->wake);
}

int px__worker_post_flush(struct px_worker *w, struct px_flush_op *op)
{
	uv_mutex_lock(&w->post_mu);
	if (w->n_flush == w->cap_flush) {
		size_t ncap = w->cap_flush ? w->cap_flush * 2 : 4;
		struct px_flush_op **np = realloc(w->flush_posts, ncap * sizeof(*np));
		if (np == NULL) {
			uv_mutex_unlock(&w->post_mu);
			return -ENOMEM;
		}
		w->flush_posts = np;
		w->cap_flush = ncap;
	}
	atomic_fetch_add(&op->refs, 1);
	w->flush_posts[w->n_flush++] = op;
	uv_mutex_unlock(&w->post_mu);
	uv_async_send(&w->wake);
	return 0;
}

static void run_flushes(struct px_worker *w)
{
	for (;;) {
		struct px_flush_op *op = NULL;
		uv_mutex_lock(&w->post_mu);
		if (w->n_flush > 0)
			op = w->flush_posts[--w->n_flush];
		uv_mutex_unlock(&w->post_mu);
		if (op == NULL)
			return;
		size_t n = px__acache_drop_name(w->acache, op->name, op->len);
		atomic_fetch_add(&op->dropped, n);
		atomic_fetch_sub(&op->left, 1);
		px__flush_op_release(op);
	}
}

static void wake_cb(uv_async_t *h)
{
	struct px_worker *w = h->data;

	swap_tls(w);
	run_flushes(w);
	px__flat_run_posts(w);
	if (atomic_load(&w->srv->stopping))
		begin_drain(w);
}

static bool udp_sends_pending(const struct px_worker *w)
{
	for (size_t i = 0; i < w->n_udp; i++)
		if (uv_udp_get_send_queue_count(&w->udp[i].h) > 0)
			return true;
	return false;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, close_cb_noop);
}

void px__worker_maybe_finish(struct px_worker *w)
{
	if (w->closed || !w->draining || w->inflight > 0 || w->conns != NULL ||
	    udp_sends_pending(w))
		return;
	w->closed = true;
	px__up_cancel_all(w);
	px__backend_close(w);
	for (size_t i = 0; i < w->n_udp; i++)
		uv_close((uv_handle_t *)&w->udp[i].h, close_cb_noop);
	uv_close((uv_handle_t *)&w->deadline_timer, close_cb_noop);
	uv_close((uv_handle_t *)&w->flush_check, close_cb_noop);
	uv_close((uv_handle_t *)&w->flush_prepare, close_cb_noop);
	uv_close((uv_handle_t *)&w->wake, close_cb_noop);
}

static void flush_check_cb(uv_check_t *h)
{
	px__worker_flush(h->data);
}

static void flush_prepare_cb(uv_prepare_t *h)
{
	px__worker_flush(h->data);
}

int px__worker_init(struct px_worker *w, struct px_server *srv, unsigned idx)
{
	int rc;

	w->idx = idx;
	w->rng = 2463534242u ^ (idx * 0x9e3779b9u) ^ (uint32_t)getpid();
	if (w->rng == 0)
		w->rng = 1;
	w->srv = srv;
	w->cfg = srv->cfg;
	rc = uv_loop_init(&w->loop);
	if (rc < 0)
		return rc;
	w->loop.data = w;
	rc = -ENOMEM;
	w->udp_rx = malloc((size_t)PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX);
	w->up_rx = malloc(PX_UDP_DGRAM_MAX);
	w->ac_out = malloc(CODEC_MAX_MSG);
	w->txns = calloc(PX_TXN_SLOTS, sizeof(*w->txns));
	if (w->udp_rx == NULL || w->up_rx == NULL || w->ac_out == NULL || w->txns == NULL)
		goto fail;
	for (uint32_t i = PX_TXN_SLOTS; i-- > 0;) {
		w->txns[i].idx = i;
		w->txns[i].free_next = w->txn_free;
		w->txn_free = &w->txns[i];
	}
	if (w->cfg->cache.answers) {
		/* The bound is for all workers together. */
		rc = px__acache_new(&w->acache,
		                    (size_t)(w->cfg->cache.size / w->cfg->server.threads));
		if (rc < 0)
			goto fail;
	}
	rc = uv_mutex_init(&w->post_mu);
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
	free(w->txns);
	free(w->up_rx);
	free(w->ac_out);
	free(w->udp_rx);
	w->ac_out = NULL;
	w->txns = NULL;
	w->up_rx = w->udp_rx = NULL;
	uv_loop_close(&w->loop);
	return rc;
}

static void worker_main(void *arg)
{
	struct px_worker *w = arg;
	int rc;

	for (size_t i = 0; i < w->n_udp; i++) {
		rc = px__udp_start(&w->udp[i], w);
		if (rc < 0)
			px_log(CFG_LOG_ERROR, UDP, "worker %u: cannot serve %s: %s", w->idx,
			       w->udp[i].addr->text, uv_strerror(rc));
	}
	for (size_t i = 0; i < w->n_tcp; i++) {
		rc = px__tcp_start(&w->tcp[i], w);
		if (rc < 0)
			px_log(CFG_LOG_ERROR, TCP, "worker %u: cannot serve %s: %s", w->idx,
			       w->tcp[i].addr->text, uv_strerror(rc));
	}
	/* A stop requested before this loop ran must not be missed. */
	if (atomic_load(&w->srv->stopping))
		begin_drain(w);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	/* Anything left (a handle that failed to start) closes here. */
	uv_walk(&w->loop, close_walk_cb, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

int px__worker_start(struct px_worker *w)
{
	return uv_thread_create(&w->thread, worker_main, w);
}

void px__worker_deinit(struct px_worker *w)
{
	if (w->txns != NULL) {
		/* A worker that never ran (startup failed) still has its
		 * async and timer handles: close them so the loop can close. */
		uv_walk(&w->loop, close_walk_cb, NULL);
		uv_run(&w->loop, UV_RUN_DEFAULT);
		int rc = uv_loop_close(&w->loop);
		if (rc < 0)
			px_log(CFG_LOG_WARNING, MAIN, "worker %u: loop not empty at exit", w->idx);
	}
	for (size_t i = 0; i < w->n_udp; i++)
		if (w->udp[i].fd >= 0)
			close(w->udp[i].fd);
	for (size_t i = 0; i < w->n_tcp; i++)
		if (w->tcp[i].fd >= 0)
			close(w->tcp[i].fd);
	free(w->udp);
	free(w->tcp);
	tls_ctx_unref(w->tls_dot);
	tls_ctx_unref(w->tls_doh);
	tls_ctx_unref(w->new_tls_dot);
	tls_ctx_unref(w->new_tls_doh);
	if (w->txns != NULL)
		uv_mutex_destroy(&w->post_mu);
	free(w->post);
	/* Flushes posted while the worker was closing: the control side
	 * has stopped waiting, drop the references. */
	for (size_t i = 0; i < w->n_flush; i++)
		px__flush_op_release(w->flush_posts[i]);
	free(w->flush_posts);
	px__acache_free(w->acache);
	free(w->txns);
	free(w->up_rx);
	free(w->ac_out);
	free(w->udp_rx);
}
