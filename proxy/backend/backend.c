/* proxy/backend/backend.c - the client side towards the authoritative backend.
 *
 * UDP: a few sockets per worker, each connect()ed to the backend so the
 * kernel drops datagrams from anyone else. The client's query goes out
 * unchanged, its ID included (a TSIG-signed query must still verify at
 * BIND, and compliance testers flag renumbering proxies), on the first
 * socket where that ID is free; a socket is opened only when the ID is
 * busy on every open one. An answer is matched on socket + ID + the
 * question's bytes, then relayed to the client as BIND wrote it.
 *
 * Only when the client's ID is busy on every open socket and the query
 * is not TSIG-signed (nothing then depends on the ID: RFC 8484 asks DoH
 * clients to send ID 0 on every query) does it travel under another,
 * free ID; the answer gets the client's ID back before anything else
 * sees it.
 *
 * TCP: used when BIND truncates an answer for a TCP client (the client's
 * buffer size travels with its query, so BIND decides), and for zone
 * transfers. Connections are pooled per worker and pipelined; a transfer
 * gets a connection of its own, closed when the transfer ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "codec/name.h"
#include "codec/rr.h"
#include "proxy/backend/backend.h"
#include "proxy/engine/anscache.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/io/frame.h"
#include "proxy/io/rbuf.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* A pooled backend TCP connection idle this long is closed. */
#define PX_BCONN_IDLE_MS 5000
/* Backend UDP socket buffers: a burst of answers must not overflow. */
#define PX_BSOCK_RCVBUF (4 * 1024 * 1024)

/* Does the answer belong to the query of t? Servers echo the question
 * verbatim at offset 12, so comparing bytes is exact and cheap; an answer
 * without a question (some error replies) is matched on the ID alone. */
static bool answer_matches(const struct px_txn *t, const uint8_t *msg, size_t len)
{
	if (len < CODEC_HDR_LEN || codec_hdr_id(msg) != t->bid)
		return false;
	if (t->qv.qdcount == 0 || codec_hdr_qdcount(msg) == 0)
		return true;
	size_t qlen = (size_t)t->qv.qname_len + 4;
	if (len < CODEC_HDR_LEN + qlen || t->qlen < CODEC_HDR_LEN + qlen)
		return false;
	return memcmp(msg + CODEC_HDR_LEN, t->q + CODEC_HDR_LEN, qlen) == 0;
}

/* The answer carried t->bid: give it the client's ID back. The buffer is
 * one of ours (a receive block or a connection buffer). */
static void restore_id(const struct px_txn *t, const uint8_t *msg)
{
	if (t->bid != t->qv.id)
		codec_put_u16((uint8_t *)msg, t->qv.id);
}

static void fail_all_on_bsock(struct px_bsock *s, int err)
{
	struct px_worker *w = s->w;
	char why[160];

	if (s->inflight == 0)
		return;
	snprintf(why, sizeof(why), "backend %s: %s", w->cfg->backend.address.text,
	         uv_strerror(err));
	px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
	for (uint32_t id = 0; id < 65536 && s->inflight > 0; id++) {
		if (s->slot[id] == 0)
			continue;
		struct px_txn *t = &w->txns[s->slot[id] - 1];
		PX_STAT_INC(&w->stats, backend_errors);
		px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
	}
}

/* Under load BIND's answers arrive in bursts: like the listeners, the
 * backend sockets read up to PX_UDP_RX_CHUNKS of them per system call,
 * into the worker's receive block (libuv runs one callback at a time,
 * and every datagram is handled before its callback returns). */
static void bsock_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_bsock *s = h->data;
	(void)suggested;
	buf->base = (char *)s->w->udp_rx;
	buf->len = (size_t)PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX;
}

static void bsock_recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                          unsigned flags)
{
	struct px_bsock *s = h->data;
	struct px_worker *w = s->w;
	const uint8_t *msg = (const uint8_t *)buf->base;
	(void)flags;

	if (n < 0) {
		/* On a connected socket, ICMP port unreachable surfaces here
		 * as ECONNREFUSED: nothing listens at the backend address.
		 * Everything waiting on this socket fails at once. */
		fail_all_on_bsock(s, (int)n);
		return;
	}
	if (from == NULL)
		return;
	if ((size_t)n < CODEC_HDR_LEN) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	uint16_t id = codec_hdr_id(msg);
	uint32_t slot = s->slot[id];
	if (slot == 0) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	struct px_txn *t = &w->txns[slot - 1];
	if (!answer_matches(t, msg, (size_t)n)) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	s->slot[id] = 0;
	s->inflight--;
	t->bsock = NULL;
	restore_id(t, msg);

	if (codec_hdr_tc(msg) && t->origin == PX_ORIGIN_TCP) {
		/* The client's buffer size limited BIND; the client itself came
		 * over TCP, so fetch the whole answer over TCP. */
		PX_STAT_INC(&w->stats, backend_tc_retries);
		int rc = px_backend_send_tcp(w, t);
		if (rc < 0) {
			char why[160];
			snprintf(why, sizeof(why), "backend %s over TCP: %s",
			         w->cfg->backend.address.text, uv_strerror(rc));
			px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
			PX_STAT_INC(&w->stats, backend_errors);
			px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
		}
		return;
	}
	if (t->flat_eligible && px_flat_answer(w, t, msg, (size_t)n))
		return;
	if (w->anscache != NULL)
		px_anscache_offer(w, t, msg, (size_t)n);
	PX_STAT_INC(&w->stats, answers_relayed);
	px_txn_reply(w, t, msg, (size_t)n);
	px_txn_done(w, t);
}

static void bsock_closed_cb(uv_handle_t *h)
{
	free(h->data);
}

static int bsock_open(struct px_worker *w, struct px_bsock **out)
{
	const struct cfg_addr *be = &w->cfg->backend.address;
	struct px_bsock *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->w = w;
	rc = uv_udp_init_ex(&w->loop, &s->h, (unsigned)be->sa.ss_family | UV_UDP_RECVMMSG);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->h.data = s;
	rc = uv_udp_connect(&s->h, (const struct sockaddr *)&be->sa);
	if (rc == 0) {
		int size = PX_BSOCK_RCVBUF;
		uv_recv_buffer_size((uv_handle_t *)&s->h, &size);
		rc = uv_udp_recv_start(&s->h, bsock_alloc_cb, bsock_recv_cb);
	}
	if (rc == 0) {
		uv_os_fd_t fd;
		rc = uv_fileno((uv_handle_t *)&s->h, &fd);
		s->sendfd = fd;
	}
	if (rc < 0) {
		uv_close((uv_handle_t *)&s->h, bsock_closed_cb);
		return rc;
	}
	s->idx = w->backend->n_bsock;
	w->backend->bsock[w->backend->n_bsock++] = s;
	*out = s;
	return 0;
}

static void bsend_cb(uv_udp_send_t *req, int status)
{
	(void)status; /* a lost query times out like a lost datagram */
	free(req);
}

/* A queued query could not be sent: its txn, if still waiting on that
 * socket and ID, fails now rather than at its timeout. */
static void bsock_send_failed(struct px_bsock *s, uint16_t id, int err)
{
	struct px_worker *w = s->w;
	uint32_t slot = s->slot[id];
	char why[160];

	if (slot == 0)
		return;
	struct px_txn *t = &w->txns[slot - 1];
	snprintf(why, sizeof(why), "backend %s: %s", w->cfg->backend.address.text,
	         uv_strerror(err));
	px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
	PX_STAT_INC(&w->stats, backend_errors);
	px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
}

void px_backend_tx_failed(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                          const struct sockaddr *peer, int err)
{
	struct px_bsock *s = owner;
	int rc = err;
	(void)peer;

	if (err == UV_ECONNREFUSED) {
		/* The error belonged to an earlier datagram and is now
		 * cleared; this one was never sent. */
		rc = send(s->sendfd, msg, len, MSG_DONTWAIT) < 0 ? uv_translate_sys_error(errno)
		                                                 : 0;
	}
	if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
		rc = px_udp_send_copy(&s->h, NULL, msg, len, bsend_cb);
	if (rc < 0)
		bsock_send_failed(s, tag, rc);
}

/* Queues the query (its wire ID is id) for the worker's next sendmmsg.
 * Returns 0 or a libuv error for a send made at once (a message too big
 * to queue); a queued one that fails later fails its txn. */
static int bsock_send(struct px_bsock *s, uint16_t id, const uint8_t *msg, size_t len)
{
	if (px_udp_tx_push(s->w->tx_backend, s->sendfd, s, id, NULL, msg, len))
		return 0;
	uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
	int rc = uv_udp_try_send(&s->h, &b, 1, NULL);
	if (rc == UV_ECONNREFUSED) /* an earlier datagram's ICMP error */
		rc = uv_udp_try_send(&s->h, &b, 1, NULL);
	if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
		rc = px_udp_send_copy(&s->h, NULL, msg, len, bsend_cb);
	return rc < 0 ? rc : 0;
}

/* Sockets are cheap to keep few: an unsigned query whose ID is busy
 * everywhere takes a free ID on an open socket before a socket is added. */
#define PX_BID_TRIES 16

int px_backend_send(struct px_worker *w, struct px_txn *t)
{
	uint16_t id = t->qv.id;
	struct px_bsock *s = NULL;
	int rc;

	for (unsigned i = 0; i < w->backend->n_bsock; i++) {
		if (w->backend->bsock[i]->slot[id] == 0) {
			s = w->backend->bsock[i];
			break;
		}
	}
	if (s == NULL && !t->qv.has_tsig) {
		for (unsigned i = 0; i < w->backend->n_bsock && s == NULL; i++) {
			for (unsigned k = 0; k < PX_BID_TRIES; k++) {
				uint16_t cand = px_rand16(w);
				if (w->backend->bsock[i]->slot[cand] == 0) {
					s = w->backend->bsock[i];
					id = cand;
					break;
				}
			}
		}
	}
	if (s == NULL) {
		if (w->backend->n_bsock == PX_BACKEND_MAX_SOCKS)
			return -EADDRINUSE;
		rc = bsock_open(w, &s);
		if (rc < 0)
			return rc;
	}
	t->bid = id;
	/* The stored query keeps the client's ID (flattening answers from
	 * it); the ID on the wire goes in only for the send. */
	codec_put_u16(t->q, id);
	rc = bsock_send(s, id, t->q, t->qlen);
	codec_put_u16(t->q, t->qv.id);
	if (rc < 0)
		return rc;
	s->slot[id] = t->idx + 1;
	s->inflight++;
	t->bsock = s;
	return 0;
}

/* --- TCP ---------------------------------------------------------------- */

static void bconn_read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void bconn_unlink_txn(struct px_bconn *b, struct px_txn *t)
{
	for (struct px_txn **pp = &b->waiting; *pp != NULL; pp = &(*pp)->bnext) {
		if (*pp == t) {
			*pp = t->bnext;
			t->bnext = NULL;
			t->bconn = NULL;
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
		if (t->xfr && t->xfr_msgs > 0) {
			/* Part of the transfer went out: only a close tells the
			 * client that the rest will not come. */
			if (t->conn != NULL)
				px_conn_close(t->conn);
			px_txn_done(w, t);
		} else {
			px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
		}
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

/* Reads the serial of an SOA RR (RFC 1035 3.3.13: two names, then it). */
static bool soa_serial(const uint8_t *msg, size_t len, const struct codec_rr *rr, uint32_t *serial)
{
	size_t off = rr->rdata_off, end;

	if (codec_name_skip(msg, len, off, &end) < 0)
		return false;
	if (codec_name_skip(msg, len, end, &end) < 0)
		return false;
	if (end + 4 > (size_t)rr->rdata_off + rr->rdlen)
		return false;
	*serial = codec_get_u32(msg + end);
	return true;
}

/* Follows a zone transfer (RFC 5936 2.2, RFC 1995 4): it ends with the
 * SOA it started with. An IXFR answer of one SOA (client up to date) ends
 * at once. Returns true when msg is the last message. */
static bool xfr_step(struct px_txn *t, const uint8_t *msg, size_t len)
{
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	bool last_is_final_soa = false;
	unsigned n = 0;

	t->xfr_msgs++;
	if (codec_hdr_rcode(msg) != CODEC_RCODE_NOERROR)
		return true;
	if (codec_scan(msg, len, &v) < 0)
		return true;
	codec_rr_iter_init(&it, msg, len, &v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		uint32_t serial;
		bool first = !t->xfr_soa_seen && n == 0;
		n++;
		last_is_final_soa = false;
		if (rr.type != CODEC_TYPE_SOA || !soa_serial(msg, len, &rr, &serial))
			continue;
		if (first) {
			t->xfr_soa_seen = true;
			t->xfr_soa_serial = serial;
		} else if (serial == t->xfr_soa_serial) {
			last_is_final_soa = true;
		}
	}
	if (t->xfr_msgs == 1 && n == 1 && t->xfr_soa_seen)
		return true;
	if (n == 0 && t->xfr_msgs == 1)
		return true; /* nothing to transfer: an empty answer ends it */
	return last_is_final_soa;
}

static void bconn_frame(struct px_bconn *b, const uint8_t *msg, size_t len)
{
	struct px_worker *w = b->w;
	struct px_txn *t = NULL;

	for (struct px_txn *x = b->waiting; x != NULL; x = x->bnext) {
		if (answer_matches(x, msg, len)) {
			t = x;
			break;
		}
	}
	if (t == NULL) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	restore_id(t, msg);
	if (t->xfr) {
		bool done = xfr_step(t, msg, len);
		px_txn_reply(w, t, msg, len);
		if (done)
			px_txn_done(w, t);
		else
			px_txn_arm(w, t, w->cfg->backend.timeout_ms);
		return;
	}
	/* Out of the waiting list first: flattening may take a while. */
	bconn_unlink_txn(b, t);
	if (t->flat_eligible && px_flat_answer(w, t, msg, len))
		return;
	if (w->anscache != NULL && !t->xfr)
		px_anscache_offer(w, t, msg, len);
	PX_STAT_INC(&w->stats, answers_relayed);
	px_txn_reply(w, t, msg, len);
	px_txn_done(w, t);
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
	for (const struct px_txn *x = b->waiting; x != NULL; x = x->bnext)
		if (x->bid == id)
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
			    !bconn_id_waiting(x, t->bid)) {
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
	codec_put_u16(r->data + 2, t->bid);
	uv_buf_t wb = uv_buf_init((char *)r->data, 2 + (unsigned)t->qlen);
	/* libuv queues writes issued while the connect is under way. */
	rc = uv_write(&r->req, (uv_stream_t *)&b->h, &wb, 1, bwrite_cb);
	if (rc < 0) {
		free(r);
		return rc;
	}
	uv_timer_stop(&b->idle);
	t->bconn = b;
	t->bnext = b->waiting;
	b->waiting = t;
	b->inflight++;
	return 0;
}

void px_backend_forget(struct px_worker *w, struct px_txn *t)
{
	(void)w;
	if (t->bsock != NULL) {
		struct px_bsock *s = t->bsock;
		if (s->slot[t->bid] == t->idx + 1) {
			s->slot[t->bid] = 0;
			s->inflight--;
		}
		t->bsock = NULL;
	}
	if (t->bconn != NULL) {
		struct px_bconn *b = t->bconn;
		bconn_unlink_txn(b, t);
		if (b->exclusive)
			bconn_close(b);
		else if (b->inflight == 0 && !b->closing)
			uv_timer_start(&b->idle, bconn_idle_cb, PX_BCONN_IDLE_MS, 0);
	}
}

int px_backend_init(struct px_worker *w)
{
	w->backend = calloc(1, sizeof(*w->backend));
	return w->backend != NULL ? 0 : -ENOMEM;
}

void px_backend_free(struct px_worker *w)
{
	free(w->backend);
	w->backend = NULL;
}

void px_backend_close(struct px_worker *w)
{
	for (unsigned i = 0; i < w->backend->n_bsock; i++)
		uv_close((uv_handle_t *)&w->backend->bsock[i]->h, bsock_closed_cb);
	w->backend->n_bsock = 0;
	for (struct px_bconn *b = w->backend->bconns; b != NULL; b = b->next)
		bconn_close(b);
}

bool px_from_backend(const struct px_worker *w, const struct sockaddr *peer)
{
	const struct sockaddr_storage *be = &w->cfg->backend.address.sa;

	if (peer == NULL || peer->sa_family != be->ss_family)
		return false;
	if (peer->sa_family == AF_INET)
		return ((const struct sockaddr_in *)peer)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)be)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)peer)->sin6_addr,
	              &((const struct sockaddr_in6 *)be)->sin6_addr, sizeof(struct in6_addr)) == 0;
}
