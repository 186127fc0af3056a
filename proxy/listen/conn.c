/* proxy/listen/conn.c - a client's TCP connection (RFC 7766): reading,
 * frames, write batching and back-pressure; DoT and DoH ride on it.
 *
 * Frames are a 2-byte length and a message. libuv reads straight into
 * the free tail of the connection's buffer; every complete frame is handed
 * to px_query_handle() at once, so pipelined queries run concurrently and
 * are answered in the order they complete. A frame split across reads
 * waits in the buffer; the buffer grows to one whole frame at most.
 *
 * Lifetime: refs counts the open handles (as one), each query in flight
 * and each pending write. The connection is freed when refs drops to 0,
 * which can only happen after both handles' close callbacks ran.
 * The idle timer runs while no query is in flight (RFC 7766 6.2.3).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tls/stream.h"
#include "proxy/engine/query.h"
#include "proxy/engine/steer.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/io/frame.h"
#include "proxy/io/rbuf.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/doh.h"
#include "proxy/listen/internal.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"
#include "proxy/daemon/server.h"

void px_conn_gauge(struct px_conn *c, int d)
{
	struct px_stats *st = &c->w->stats;
	uint64_t n = d > 0 ? 1 : (uint64_t)-1;

	if (!c->gauged)
		return;
	if (c->kind == PX_CONN_TCP)
		PX_STAT_ADD(st, open_tcp, n);
	else if (c->kind == PX_CONN_DOT)
		PX_STAT_ADD(st, open_dot, n);
	else
		PX_STAT_ADD(st, open_doh, n);
}

void px_conn_link(struct px_conn *c, struct px_worker *w)
{
	c->w = w;
	c->prev = NULL;
	c->next = w->lis.conns;
	if (w->lis.conns != NULL)
		w->lis.conns->prev = c;
	w->lis.conns = c;
}

void px_conn_unlink(struct px_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->w->lis.conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void conn_free(struct px_conn *c)
{
	struct px_worker *w = c->w;

	px_conn_unlink(c);
	free(c->in.buf);
	free(c->plain.buf);
	free(c->out.buf);
	if (c->doh != NULL)
		px_doh_free(c);
	tls_stream_free(c->tls);
	px_conn_gauge(c, -1);
	free(c);
	atomic_fetch_sub_explicit(&w->srv->tcp_conns, 1, memory_order_relaxed);
	if (w->draining)
		px_worker_maybe_finish(w);
}

void px_conn_unref(struct px_conn *c)
{
	if (px_fails_assert(c->refs > 0))
		return;
	if (--c->refs == 0)
		conn_free(c);
}

static void conn_handle_closed(uv_handle_t *h)
{
	struct px_conn *c = h->data;

	if (--c->handles_open == 0)
		px_conn_unref(c);
}

static int conn_write_out(struct px_conn *c);

void px_conn_close(struct px_conn *c)
{
	if (c->closing)
		return;
	px_pp2_conn_closing(c);
	/* Answers still queued go first (unless the client is not reading
	 * them anyway); then a clean TLS close tells the client no answer
	 * was cut off. */
	if (c->kind != PX_CONN_DOH && !px_conn_backlogged(c))
		conn_write_out(c);
	if (c->tls != NULL)
		tls_stream_shutdown(c->tls);
	c->closing = true;
	uv_close((uv_handle_t *)&c->idle, conn_handle_closed);
	uv_close((uv_handle_t *)&c->h, conn_handle_closed);
}

static void idle_cb(uv_timer_t *h)
{
	struct px_conn *c = h->data;

	PX_STAT_INC(&c->w->stats, tcp_idle_closed);
	px_conn_close(c);
}

void px_conn_idle_restart(struct px_conn *c)
{
	uv_timer_start(&c->idle, idle_cb, c->w->cfg->listen.tcp_idle_timeout_ms, 0);
}

/* Bytes queued in libuv for the client, not yet taken by the kernel. */
static size_t conn_wq(const struct px_conn *c)
{
	return uv_stream_get_write_queue_size((const uv_stream_t *)&c->h);
}

bool px_conn_backlogged(const struct px_conn *c)
{
	return conn_wq(c) >= PX_CONN_WQ_HIGH;
}

/* May the connection's next query be read? Not while the pipeline is
 * full, nor while the client leaves its answers unread (counted once
 * per episode). */
static bool conn_may_read(struct px_conn *c)
{
	if (px_conn_backlogged(c)) {
		if (!c->backlogged) {
			c->backlogged = true;
			PX_STAT_INC(&c->w->stats, tcp_slow_reader_paused);
		}
		return false;
	}
	return c->inflight < PX_CONN_MAX_INFLIGHT && !px_conn_move_paused(c);
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_conn *c = h->data;
	(void)suggested;
	px_rbuf_alloc(&c->in, buf);
}

void px_conn_stop_reading(struct px_conn *c)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->h);
		c->reading = false;
	}
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void conn_start_reading(struct px_conn *c)
{
	if (!c->reading && !c->closing && !c->eof && !c->w->draining) {
		if (uv_read_start((uv_stream_t *)&c->h, conn_alloc_cb, conn_read_cb) == 0)
			c->reading = true;
	}
}

void px_conn_resume(struct px_conn *c)
{
	if (c->closing || c->eof || c->w->draining || c->reading || !conn_may_read(c))
		return;
	conn_start_reading(c);
	/* Frames that arrived while reading was paused, or moved along. */
	px_conn_process(c);
}

/* The buffer frames are peeled from: the socket's bytes for TCP, the
 * decrypted bytes for DoT. */
static struct px_rbuf *conn_frames(struct px_conn *c)
{
	return c->kind == PX_CONN_DOT ? &c->plain : &c->in;
}

/* Peels complete frames off the buffer and submits them. */
void px_conn_process(struct px_conn *c)
{
	struct px_rbuf *in = conn_frames(c);

	if (c->kind == PX_CONN_DOH)
		return;
	while (!c->closing && in->end - in->start >= PX_FRAME_PREFIX_LEN) {
		if (!conn_may_read(c)) {
			/* Back-pressure: resume reading when answers drain
			 * (px_conn_query_done, conn_write_cb). */
			px_conn_stop_reading(c);
			return;
		}
		size_t off, flen;
		if (px_frame_next(in->buf + in->start, in->end - in->start, &off, &flen) == 0)
			break;
		const uint8_t *msg = in->buf + in->start + off;
		in->start += off + flen;
		uv_timer_stop(&c->idle);
		/* refs keeps c alive should the query fail synchronously. */
		c->refs++;
		if (c->kind == PX_CONN_DOT)
			PX_STAT_INC(&c->w->stats, queries_dot);
		px_query_handle(c->w, msg, flen, PX_ORIGIN_TCP, NULL, NULL, NULL, NULL, c);
		if (c->inflight == 0 && !c->closing)
			px_conn_idle_restart(c);
		px_conn_unref(c);
	}
	if (in->start == in->end)
		in->start = in->end = 0;
}

/* Bytes the kernel did not take at once are copied and queued. */
struct conn_write_req {
	uv_write_t req;
	struct px_conn *c;
	uint8_t data[];
};

static void conn_write_cb(uv_write_t *req, int status);

int px_conn_raw_write(struct px_conn *c, const uv_buf_t *b, unsigned nb)
{
	size_t total = 0, done = 0;

	for (unsigned i = 0; i < nb; i++)
		total += b[i].len;
	int rc = uv_try_write((uv_stream_t *)&c->h, b, nb);
	if (rc >= 0)
		done = (size_t)rc;
	else if (rc != UV_EAGAIN)
		return rc;
	if (done == total)
		return 0;
	if (conn_wq(c) + (total - done) > PX_CONN_WQ_HARD) {
		/* The client reads nothing back: stop holding its answers. */
		PX_STAT_INC(&c->w->stats, tcp_slow_reader_closed);
		return -ENOBUFS;
	}
	struct conn_write_req *r = malloc(sizeof(*r) + (total - done));
	if (r == NULL)
		return -ENOMEM;
	size_t pos = 0, out = 0;
	for (unsigned i = 0; i < nb; i++) {
		for (size_t k = 0; k < b[i].len; k++, pos++)
			if (pos >= done)
				r->data[out++] = (uint8_t)b[i].base[k];
	}
	r->c = c;
	uv_buf_t rb = uv_buf_init((char *)r->data, (unsigned)out);
	rc = uv_write(&r->req, (uv_stream_t *)&c->h, &rb, 1, conn_write_cb);
	if (rc < 0) {
		free(r);
		return rc;
	}
	c->refs++;
	return 0;
}

static void conn_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct px_conn *c = s->data;
	(void)buf;

	if (n == 0)
		return;
	px_steer_window(c->w);
	if (n < 0) {
		px_conn_stop_reading(c);
		if (n == UV_EOF && (c->inflight > 0 || uv_stream_get_write_queue_size(s) > 0)) {
			/* Half-close: answer what is in flight, then close. */
			c->eof = true;
			return;
		}
		px_conn_close(c);
		return;
	}
	c->in.end += (size_t)n;
	c->refs++;
	/* From a load balancer, a PROXY v2 header comes first, before DNS
	 * and before TLS. */
	if (c->pp2_wait && (px_pp2_conn_read(c) <= 0 || c->in.start == c->in.end)) {
		px_conn_unref(c);
		return;
	}
	if (c->tls != NULL) {
		if (px_conn_tls_feed(c) == 0 && c->kind == PX_CONN_DOH && !c->closing &&
		    !conn_may_read(c)) {
			/* DoH requests are not framed here: pause on the
			 * backlog alone; conn_write_cb resumes. */
			px_conn_stop_reading(c);
		}
	} else {
		px_conn_process(c);
	}
	/* A handshake or a PROXY header just ended: a move may go now. */
	if (c->move && !c->closing)
		px_conn_queue_flush(c);
	px_conn_unref(c);
}

void px_conn_query_done(struct px_conn *c)
{
	if (c->closing)
		return;
	if (c->inflight == 0 && (c->eof || c->w->draining) && !c->flush_queued &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0) {
		px_conn_close(c);
		return;
	}
	if (c->eof || c->w->draining)
		return;
	if (!c->reading && conn_may_read(c)) {
		conn_start_reading(c);
		/* Frames that arrived while reading was paused. */
		px_conn_process(c);
	}
	if (c->inflight == 0 && !c->closing) {
		px_conn_idle_restart(c);
		if (c->move)
			px_conn_queue_flush(c); /* the check phase moves it */
	}
}

static void conn_write_cb(uv_write_t *req, int status)
{
	struct conn_write_req *r = (struct conn_write_req *)req;
	struct px_conn *c = r->c;

	free(r);
	if (status < 0 && !c->closing)
		px_conn_close(c);
	else if (!c->closing && c->inflight == 0 && (c->eof || c->w->draining) &&
	         uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0)
		px_conn_close(c);
	else if (!c->closing && c->backlogged && conn_wq(c) <= PX_CONN_WQ_LOW) {
		/* The client took its answers: what nghttp2 held back goes
		 * out, and its queries are read again. */
		c->backlogged = false;
		c->refs++;
		if (c->kind == PX_CONN_DOH)
			px_doh_flush(c);
		if (!c->closing && !c->reading && !c->eof && !c->w->draining && conn_may_read(c)) {
			conn_start_reading(c);
			px_conn_process(c);
		}
		px_conn_unref(c);
	}
	if (!c->closing && c->move && conn_wq(c) == 0)
		px_conn_queue_flush(c); /* the writes drained: a move may go */
	px_conn_unref(c);
}

/* Past this much queued output a connection is written at once rather
 * than at the end of the loop turn. */
#define PX_CONN_OUT_FLUSH (256 * 1024)

/* Writes the queued frames: one TLS write (DoT) or one socket write. */
static int conn_write_out(struct px_conn *c)
{
	struct px_rbuf *o = &c->out;
	int rc = 0;

	if (o->end == 0 || uv_is_closing((uv_handle_t *)&c->h))
		return 0;
	if (c->kind == PX_CONN_DOT) {
		rc = tls_stream_write(c->tls, o->buf, o->end);
	} else {
		uv_buf_t b = uv_buf_init((char *)o->buf, (unsigned)o->end);
		rc = px_conn_raw_write(c, &b, 1);
	}
	o->end = 0;
	return rc;
}

void px_conn_queue_flush(struct px_conn *c)
{
	if (c->flush_queued)
		return;
	c->flush_queued = true;
	c->refs++;
	c->flush_next = c->w->lis.flush_head;
	c->w->lis.flush_head = c;
}

void px_conn_flush_all(struct px_worker *w)
{
	while (w->lis.flush_head != NULL) {
		struct px_conn *c = w->lis.flush_head;
		w->lis.flush_head = c->flush_next;
		c->flush_queued = false;
		if (!c->closing) {
			if (c->kind == PX_CONN_DOH)
				px_doh_flush(c);
			else if (conn_write_out(c) < 0)
				px_conn_close(c);
		}
		if (!c->closing && c->inflight == 0 && (c->eof || w->draining) &&
		    uv_stream_get_write_queue_size((uv_stream_t *)&c->h) == 0)
			px_conn_close(c);
		/* Not closing: the handles' reference outlives the unref. */
		bool move = c->move && !c->closing;
		px_conn_unref(c);
		if (move)
			px_conn_try_move(c);
	}
}

void px_conn_send(struct px_conn *c, const uint8_t *msg, size_t len)
{
	struct px_rbuf *o = &c->out;

	if (c->closing)
		return;
	if (c->kind == PX_CONN_DOH) {
		px_doh_reply(c, c->cur_stream, msg, len);
		return;
	}
	if (o->end + len + 2 > o->cap) {
		size_t ncap = o->cap ? o->cap : PX_TCP_RBUF_INITIAL;
		while (ncap < o->end + len + 2)
			ncap *= 2;
		uint8_t *nb = realloc(o->buf, ncap);
		if (nb == NULL) {
			px_conn_close(c);
			return;
		}
		o->buf = nb;
		o->cap = ncap;
	}
	codec_put_u16(o->buf + o->end, (uint16_t)len);
	memcpy(o->buf + o->end + 2, msg, len);
	o->end += len + 2;
	if (o->end >= PX_CONN_OUT_FLUSH) {
		if (conn_write_out(c) < 0)
			px_conn_close(c);
		return;
	}
	px_conn_queue_flush(c);
}

struct px_conn *px_conn_new(struct px_worker *w)
{
	struct px_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	px_conn_link(c, w);
	uv_tcp_init(&w->loop, &c->h);
	uv_timer_init(&w->loop, &c->idle);
	c->h.data = c;
	c->idle.data = c;
	c->handles_open = 2;
	c->refs = 1;
	atomic_fetch_add_explicit(&w->srv->tcp_conns, 1, memory_order_relaxed);
	return c;
}

void px_conn_start(struct px_conn *c)
{
	struct px_worker *w = c->w;

	c->gauged = true;
	px_conn_gauge(c, +1);
	if (c->kind == PX_CONN_TCP)
		PX_STAT_INC(&w->stats, tcp_connections);
	else if (c->kind == PX_CONN_DOT)
		PX_STAT_INC(&w->stats, dot_connections);
	else
		PX_STAT_INC(&w->stats, doh_connections);
	uv_tcp_nodelay(&c->h, 1);
	/* A TLS connection runs on its handshake deadline until then. */
	if (c->tls == NULL)
		px_conn_idle_restart(c);
	conn_start_reading(c);
	px_conn_move_new(c);
}

const struct sockaddr *px_conn_client(struct px_conn *c)
{
	int len = sizeof(c->peer);

	/* Once per connection, and only when someone asks. */
	if (!c->peer_known) {
		if (uv_tcp_getpeername(&c->h, (struct sockaddr *)&c->peer, &len) < 0)
			return NULL;
		c->peer_known = true;
	}
	return (const struct sockaddr *)&c->peer;
}
