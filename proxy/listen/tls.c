/* proxy/listen/tls.c - the TLS glue of client connections: DoT (RFC 7858)
 * and DoH (RFC 8484) over a struct px_conn.
 *
 * Ciphertext read from the socket goes to the connection's tls_stream
 * whole; what it decrypts comes back through conn_tls_recv (DoT frames
 * into c->plain, DoH bytes to nghttp2) and what it encrypts goes out
 * through conn_tls_send. Until the handshake ends the connection runs on
 * a deadline of its own instead of the idle timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tls/stream.h"
#include "proxy/daemon/gen.h"
#include "proxy/engine/worker.h"
#include "proxy/io/rbuf.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/doh.h"
#include "proxy/listen/internal.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* A TLS client has this long from accept to a finished handshake (or
 * tcp-idle-timeout, if shorter). A handshake on a real link takes a few
 * round trips; a client that connects and sends nothing, or half a
 * ClientHello, would otherwise hold a connection slot, a file descriptor
 * and an SSL object for the whole idle timeout. */
#define PX_TLS_HANDSHAKE_MS 5000

static void handshake_timeout_cb(uv_timer_t *h)
{
	struct px_conn *c = h->data;

	PX_STAT_INC(&c->w->stats, tls_handshake_timeouts);
	px_conn_close(c);
}

/* tls_stream callbacks. */
static int conn_tls_send(void *arg, const uint8_t *p, size_t n)
{
	struct px_conn *c = arg;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);

	if (uv_is_closing((uv_handle_t *)&c->h))
		return -EPIPE;
	return px_conn_raw_write(c, &b, 1);
}

/* A DoT client may pipeline many frames; beyond this much undelivered
 * plaintext it is not reading its answers, and the connection goes. */
#define PX_DOT_PLAIN_MAX (4 * PX_TCP_FRAME_MAX)

static void conn_tls_recv(void *arg, const uint8_t *p, size_t n)
{
	struct px_conn *c = arg;
	struct px_rbuf *pl = &c->plain;

	if (c->closing)
		return;
	if (c->kind == PX_CONN_DOH) {
		px_doh_recv(c, p, n);
		return;
	}
	if (pl->start > 0) {
		memmove(pl->buf, pl->buf + pl->start, pl->end - pl->start);
		pl->end -= pl->start;
		pl->start = 0;
	}
	if (pl->end + n > pl->cap) {
		size_t ncap = pl->cap ? pl->cap : PX_TCP_RBUF_INITIAL;
		while (ncap < pl->end + n)
			ncap *= 2;
		uint8_t *nb = ncap <= PX_DOT_PLAIN_MAX ? realloc(pl->buf, ncap) : NULL;
		if (nb == NULL) {
			px_conn_close(c);
			return;
		}
		pl->buf = nb;
		pl->cap = ncap;
	}
	memcpy(pl->buf + pl->end, p, n);
	pl->end += n;
	px_conn_process(c);
}

static void conn_tls_ready(void *arg)
{
	struct px_conn *c = arg;

	/* The handshake deadline gives way to the idle timeout. */
	px_conn_idle_restart(c);
	if (c->kind == PX_CONN_DOH && px_doh_start(c) < 0)
		px_conn_close(c);
}

int px_conn_tls_start(struct px_conn *c)
{
	struct px_worker *w = c->w;
	struct tls_stream_io io = {
	        .send = conn_tls_send,
	        .recv = conn_tls_recv,
	        .ready = conn_tls_ready,
	        .arg = c,
	};
	struct tls_ctx *ctx = c->kind == PX_CONN_DOT ? w->gen->tls_dot : w->gen->tls_doh;

	/* The stream takes its own reference: the connection keeps its
	 * certificate across a reload. */
	c->tls = ctx != NULL ? tls_stream_new(ctx, &io) : NULL;
	if (c->tls == NULL)
		return -ENOMEM;
	uint64_t ms = w->cfg->listen.tcp_idle_timeout_ms;
	uv_timer_start(&c->idle, handshake_timeout_cb,
	               ms < PX_TLS_HANDSHAKE_MS ? ms : PX_TLS_HANDSHAKE_MS, 0);
	return 0;
}

int px_conn_tls_feed(struct px_conn *c)
{
	/* Ciphertext is handed over whole; the stream keeps partial
	 * records itself, so the buffer empties on every read. */
	int rc = tls_stream_feed(c->tls, c->in.buf + c->in.start, c->in.end - c->in.start);

	c->in.start = c->in.end = 0;
	if (rc < 0) {
		if (rc != -ECONNRESET)
			px_log(CFG_LOG_DEBUG, TLS, "%s", tls_stream_errstr(c->tls));
		px_conn_close(c);
		return rc;
	}
	return 0;
}
