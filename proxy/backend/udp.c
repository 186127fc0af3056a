/* proxy/backend/udp.c - queries to the backend over UDP: a few sockets
 * per worker connect()ed to it, the query's ID kept where it is free, and
 * the answers matched on socket + ID + question (see backend.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/backend/backend.h"
#include "proxy/backend/internal.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/io/udptx.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* Backend UDP socket buffers: a burst of answers must not overflow. */
#define PX_BSOCK_RCVBUF (4 * 1024 * 1024)

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
		struct px_txn *t = &w->slots.txns[s->slot[id] - 1];
		PX_STAT_INC(&w->stats, backend_errors);
		px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
	}
}

/* One answer from the backend: matched to its txn on ID and question. */
static void bsock_answer(struct px_bsock *s, const uint8_t *msg, size_t n)
{
	struct px_worker *w = s->w;

	if (n < CODEC_HDR_LEN) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	uint16_t id = codec_hdr_id(msg);
	uint32_t slot = s->slot[id];
	if (slot == 0) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	struct px_txn *t = &w->slots.txns[slot - 1];
	if (!px_backend_answer_matches(t, msg, n)) {
		PX_STAT_INC(&w->stats, backend_unmatched);
		return;
	}
	s->slot[id] = 0;
	s->inflight--;
	t->be.bsock = NULL;
	px_backend_restore_id(t, msg);

	if (codec_hdr_tc(msg) && t->origin == PX_ORIGIN_TCP) {
		/* The client's buffer size limited BIND; the client itself came
		 * over TCP, so fetch the whole answer over TCP. */
		PX_STAT_INC(&w->stats, backend_tc_retries);
		int rc = px_backend_send_tcp(w, t);
		if (rc < 0)
			px_txn_fail_backend(w, t, "", " over TCP", rc);
		return;
	}
	px_backend_relay(w, t, msg, n);
}

/* Datagrams a wake-up reads before other handles get their turn. */
#define PX_BSOCK_READ_BUDGET 64

/* Under load BIND's answers arrive in bursts: like the listeners, the
 * backend sockets read up to PX_UDP_RX_CHUNKS of them per system call,
 * into the worker's receive block (every datagram is handled before the
 * next read), and a short batch means the socket is empty. */
static void bsock_poll_cb(uv_poll_t *h, int status, int events)
{
	struct px_bsock *s = h->data;
	(void)events;

	/* A pending socket error (ECONNREFUSED from an ICMP port
	 * unreachable) is POLLERR, which libuv reports as UV_EBADF after
	 * stopping the handle: read to collect the error, and watch again. */
	if (status < 0 && !uv_is_closing((uv_handle_t *)h))
		uv_poll_start(h, UV_READABLE, bsock_poll_cb);
	for (int budget = PX_BSOCK_READ_BUDGET; budget > 0;) {
		int n = recvmmsg(s->rfd, s->rmm, PX_UDP_RX_CHUNKS, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* On a connected socket, ICMP port unreachable surfaces
			 * here as ECONNREFUSED: nothing listens at the backend
			 * address. Everything waiting on this socket fails at
			 * once. */
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				fail_all_on_bsock(s, uv_translate_sys_error(errno));
			return;
		}
		for (int k = 0; k < n; k++) {
			/* Cannot happen with 64 KiB chunks; never act on a cut message. */
			if (s->rmm[k].msg_hdr.msg_flags & MSG_TRUNC)
				PX_STAT_INC(&s->w->stats, backend_unmatched);
			else
				bsock_answer(s, s->riov[k].iov_base, s->rmm[k].msg_len);
			s->rmm[k].msg_hdr.msg_flags = 0; /* the one field recvmmsg changes */
		}
		if (n < PX_UDP_RX_CHUNKS || uv_is_closing((uv_handle_t *)&s->rpoll))
			return;
		budget -= n;
	}
}

static void bsock_closed_cb(uv_handle_t *h)
{
	struct px_bsock *s = h->data;

	if (--s->open_handles > 0)
		return;
	if (s->rfd >= 0)
		close(s->rfd); /* uv_poll_t never closes its socket */
	free(s);
}

static void bsock_close(struct px_bsock *s)
{
	if (s->rfd >= 0 && s->open_handles == 2)
		uv_close((uv_handle_t *)&s->rpoll, bsock_closed_cb);
	uv_close((uv_handle_t *)&s->h, bsock_closed_cb);
}

static int bsock_open(struct px_worker *w, struct px_bsock **out)
{
	const struct cfg_addr *be = &w->cfg->backend.address;
	struct px_bsock *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	s->w = w;
	s->rfd = -1;
	/* Set once: on a connected socket with no name or control buffer,
	 * recvmmsg writes only msg_len and msg_flags. */
	for (unsigned k = 0; k < PX_UDP_RX_CHUNKS; k++) {
		s->riov[k].iov_base = w->udp_rx + (size_t)k * PX_UDP_DGRAM_MAX;
		s->riov[k].iov_len = PX_UDP_DGRAM_MAX;
		s->rmm[k].msg_hdr.msg_iov = &s->riov[k];
		s->rmm[k].msg_hdr.msg_iovlen = 1;
	}
	rc = uv_udp_init_ex(&w->loop, &s->h, (unsigned)be->sa.ss_family);
	if (rc < 0) {
		free(s);
		return rc;
	}
	s->h.data = s;
	s->open_handles = 1;
	rc = uv_udp_connect(&s->h, (const struct sockaddr *)&be->sa);
	if (rc == 0) {
		int size = PX_BSOCK_RCVBUF;
		uv_recv_buffer_size((uv_handle_t *)&s->h, &size);
		uv_os_fd_t fd;
		rc = uv_fileno((uv_handle_t *)&s->h, &fd);
		s->sendfd = fd;
	}
	if (rc == 0) {
		s->rfd = fcntl(s->sendfd, F_DUPFD_CLOEXEC, 0);
		rc = s->rfd < 0 ? uv_translate_sys_error(errno)
		                : uv_poll_init_socket(&w->loop, &s->rpoll, s->rfd);
	}
	if (rc == 0) {
		s->open_handles = 2;
		s->rpoll.data = s;
		rc = uv_poll_start(&s->rpoll, UV_READABLE, bsock_poll_cb);
	}
	if (rc < 0) {
		bsock_close(s);
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

	if (slot == 0)
		return;
	px_txn_fail_backend(w, &w->slots.txns[slot - 1], "", "", err);
}

void px_backend_tx_failed(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                          const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	struct px_bsock *s = owner;
	int rc = err;
	(void)peer, (void)src;

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
	if (px_udp_tx_push(s->w->tx.backend, s->sendfd, s, id, NULL, msg, len))
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
	t->be.bid = id;
	/* The stored query keeps the client's ID (flattening answers from
	 * it); the ID on the wire goes in only for the send. */
	codec_put_u16(t->q, id);
	rc = bsock_send(s, id, t->q, t->qlen);
	codec_put_u16(t->q, t->qv.id);
	if (rc < 0)
		return rc;
	s->slot[id] = t->idx + 1;
	s->inflight++;
	t->be.bsock = s;
	return 0;
}

void px_bsock_forget(struct px_txn *t)
{
	struct px_bsock *s = t->be.bsock;

	if (s->slot[t->be.bid] == t->idx + 1) {
		s->slot[t->be.bid] = 0;
		s->inflight--;
	}
	t->be.bsock = NULL;
}

void px_bsock_close_all(struct px_worker *w)
{
	for (unsigned i = 0; i < w->backend->n_bsock; i++)
		bsock_close(w->backend->bsock[i]);
	w->backend->n_bsock = 0;
}
