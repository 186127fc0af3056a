/* proxy/backend/tcp.c - queries to the backend over TCP: when BIND
 * truncates an answer for a TCP client, and for zone transfers (xfr.c).
 * Connections are pooled per worker and pipelined, answers matched on
 * ID + question; a transfer gets a connection of its own, closed when
 * the transfer ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/backend/backend.h"
#include "proxy/backend/internal.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/io/frame.h"
#include "proxy/io/rbuf.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* A pooled backend TCP connection idle this long is closed. */
#define PX_BCONN_IDLE_MS 5000

static void bconn_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void bconn_unlink_txn(struct px_bconn *b, struct px_txn *t)
{
	for (struct px_txn **pp = &b->waiting; *pp != NULL; pp = &(*pp)->be.bnext) {
		if (*pp == t) {
			*pp = t->be.bnext;
			t->be.bnext = NULL;
			t->be.bconn = NULL;
			b->inflight--;
			return;
		}
	}
}

static void bconn_handle_closed(uv_handle_t *h)
{
	struct px_bconn *b = h->data;

	if (--b->handles_open > 0)
		return;
	struct px_worker *w = b->w;
	for (struct px_bconn **pp = &w->backend->bconns; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == b) {
			*pp = b->next;
			break;
		}
	}
	w->backend->n_bconns--;
	free(b->in.buf);
	free(b);
	if (w->draining)
		px_worker_maybe_finish(w);
}

static void bconn_close(struct px_bconn *b)
{
	if (b->closing)
		return;
	b->closing = true;
	uv_close((uv_handle_t *)&b->idle, bconn_handle_closed);
	uv_close((uv_handle_t *)&b->h, bconn_handle_closed);
}

/* Fails everything waiting on b and closes it. */
static void bconn_fail(struct px_bconn *b, const char *what)
{
	struct px_worker *w = b->w;
	char why[160];

	snprintf(why, sizeof(why), "backend %s over TCP: %s", w->cfg->backend.address.text, what);
	px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
	bconn_close(b);
	while (b->waiting != NULL) {
		struct px_txn *t = b->waiting;
		bconn_unlink_txn(b, t);
		PX_STAT_INC(&w->stats, backend_errors);
		if (!px_xfr_broken(w, t))
			px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
	}
}

static void bconn_idle_cb(uv_timer_t *h)
{
	struct px_bconn *b = h->data;

	if (b->inflight == 0)
		bconn_close(b);
}

static void bconn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_bconn *b = h->data;
	(void)suggested;
	px_rbuf_alloc(&b->in, buf);
}

static void bconn_connect_cb(uv_connect_t *req, int status)
{
	struct px_bconn *b = req->data;

	if (b->closing)
		return;
	if (status < 0) {
		bconn_fail(b, uv_strerror(status));
		return;
	}
	b->connected = true;
	uv_tcp_nodelay(&b->h, 1);
	int rc = uv_read_start((uv_stream_t *)&b->h, bconn_alloc_cb, bconn_read_cb);
	if (rc < 0)
		bconn_fail(b, uv_strerror(rc));
}

static void bconn_frame(struct px_bconn *b, const uint8_t *msg, size_t len)
{
	struct px_worker *w = b->w;
	struct px_txn *t = NULL;

	for (struct px_txn *x = b->waiting; x != NULL; x = x->be.bnext) {
		if (px_backend_answer_matches(x, msg, len)) {
			t = x;
			break;
		}
	}
	if (t == NULL) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	px_backend_restore_id(t, msg);
	if (t->xfr) {
		px_xfr_relay(w, t, msg, len);
		return;
	}
	/* Out of the waiting list first: flattening may take a while. */
	bconn_unlink_txn(b, t);
	px_backend_relay(w, t, msg, len);
}

static void bconn_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct px_bconn *b = st->data;
	struct px_rbuf *in = &b->in;
	(void)buf;

	if (n == 0 || b->closing)
		return;
	if (n < 0) {
		bconn_fail(b,
		           n == UV_EOF ? "connection closed by the backend" : uv_strerror((int)n));
		return;
	}
	in->end += (size_t)n;
	size_t off, flen;
	while (!b->closing &&
	       px_frame_next(in->buf + in->start, in->end - in->start, &off, &flen)) {
		const uint8_t *msg = in->buf + in->start + off;
		in->start += off + flen;
		if (flen < CODEC_HDR_LEN) {
			bconn_fail(b, "malformed frame");
			return;
		}
		bconn_frame(b, msg, flen);
	}
	if (in->start == in->end)
		in->start = in->end = 0;
}

static int bconn_open(struct px_worker *w, bool exclusive, struct px_bconn **out)
{
	const struct cfg_addr *be = &w->cfg->backend.address;
	struct px_bconn *b = calloc(1, sizeof(*b));
	int rc;

	if (b == NULL)
		return -ENOMEM;
	b->w = w;
	b->exclusive = exclusive;
	uv_tcp_init(&w->loop, &b->h);
	uv_timer_init(&w->loop, &b->idle);
	b->h.data = b;
	b->idle.data = b;
	b->creq.data = b;
	b->handles_open = 2;
	b->next = w->backend->bconns;
	w->backend->bconns = b;
	w->backend->n_bconns++;
	rc = uv_tcp_connect(&b->creq, &b->h, (const struct sockaddr *)&be->sa, bconn_connect_cb);
	if (rc < 0) {
		bconn_close(b);
		return rc;
	}
	*out = b;
	return 0;
}

static bool bconn_id_waiting(const struct px_bconn *b, uint16_t id)
{
	for (const struct px_txn *x = b->waiting; x != NULL; x = x->be.bnext)
		if (x->be.bid == id)
			return true;
	return false;
}

struct bwrite_req {
	uv_write_t req;
	uint8_t data[];
};

static void bwrite_cb(uv_write_t *req, int status)
{
	/* A failed write shows up as a read error or a timeout too. */
	(void)status;
	free(req);
}

int px_backend_send_tcp(struct px_worker *w, struct px_txn *t)
{
	struct px_bconn *b = NULL;
	int rc;

	if (!t->xfr) {
		for (struct px_bconn *x = w->backend->bconns; x != NULL; x = x->next) {
			if (!x->closing && !x->exclusive && x->inflight < PX_BCONN_MAX_INFLIGHT &&
			    !bconn_id_waiting(x, t->be.bid)) {
				b = x;
				break;
			}
		}
	}
	if (b == NULL) {
		if (!t->xfr && w->backend->n_bconns >= PX_BACKEND_MAX_TCP)
			return -EADDRINUSE;
		rc = bconn_open(w, t->xfr, &b);
		if (rc < 0)
			return rc;
	}
	struct bwrite_req *r = malloc(sizeof(*r) + 2 + t->qlen);
	if (r == NULL)
		return -ENOMEM;
	codec_put_u16(r->data, t->qlen);
	memcpy(r->data + 2, t->q, t->qlen);
	codec_put_u16(r->data + 2, t->be.bid);
	uv_buf_t wb = uv_buf_init((char *)r->data, 2 + (unsigned)t->qlen);
	/* libuv queues writes issued while the connect is under way. */
	rc = uv_write(&r->req, (uv_stream_t *)&b->h, &wb, 1, bwrite_cb);
	if (rc < 0) {
		free(r);
		return rc;
	}
	uv_timer_stop(&b->idle);
	t->be.bconn = b;
	t->be.bnext = b->waiting;
	b->waiting = t;
	b->inflight++;
	return 0;
}

void px_bconn_forget(struct px_txn *t)
{
	struct px_bconn *b = t->be.bconn;

	bconn_unlink_txn(b, t);
	if (b->exclusive)
		bconn_close(b);
	else if (b->inflight == 0 && !b->closing)
		uv_timer_start(&b->idle, bconn_idle_cb, PX_BCONN_IDLE_MS, 0);
}

void px_bconn_close_all(struct px_worker *w)
{
	for (struct px_bconn *b = w->backend->bconns; b != NULL; b = b->next)
		bconn_close(b);
}
