/* proxy/io/udptx.c - UDP datagrams sent in batches, one sendmmsg per socket
 * per loop turn.
 *
 * Under load a worker handles a burst per loop turn: up to
 * PX_UDP_RX_CHUNKS queries from one recvmmsg, then the backend's answers
 * to earlier ones. Sending each at once costs a system call per datagram
 * in each direction. Instead the datagram is copied into the worker's
 * queue (client answers and backend queries each have one) and the
 * worker's check and prepare phases hand each queue to the kernel with
 * one sendmmsg per socket. The latency added is the rest of the loop
 * turn, a few microseconds.
 *
 * A datagram that does not fit the queue's arena goes out at once, as
 * do all datagrams when the queue is full (after flushing it). A send
 * that fails with a full socket buffer falls back to libuv's own queue
 * (one copy on the heap); any other failure is counted, and a backend
 * query's failure ends its transaction with SERVFAIL like before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/io/udptx.h"
#include "proxy/backend/backend.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

static void tx_flush_queue(struct px_udp_tx *q, bool backend);

static void tx_init_hdr(struct px_udp_tx *q, unsigned i)
{
	struct px_udp_tx_ent *e = &q->ent[i];

	q->iov[i].iov_base = q->arena + e->off;
	q->iov[i].iov_len = e->len;
	memset(&q->mm[i], 0, sizeof(q->mm[i]));
	q->mm[i].msg_hdr.msg_iov = &q->iov[i];
	q->mm[i].msg_hdr.msg_iovlen = 1;
	if (e->alen > 0) {
		q->mm[i].msg_hdr.msg_name = &e->peer;
		q->mm[i].msg_hdr.msg_namelen = e->alen;
	}
}

static socklen_t peer_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
	                                 : (socklen_t)sizeof(struct sockaddr_in);
}

/* Room for len more bytes? Entries start 8-aligned, a cache line's
 * worth of false sharing does not matter here but misaligned iov bases
 * would slow the kernel's copy a little. */
static bool tx_has_room(const struct px_udp_tx *q, size_t len)
{
	return q->n < PX_UDP_TX_MAX && q->used + ((len + 7) & ~(size_t)7) <= PX_UDP_TX_ARENA;
}

static struct px_udp_tx_ent *tx_push(struct px_udp_tx *q, const uint8_t *msg, size_t len)
{
	struct px_udp_tx_ent *e = &q->ent[q->n++];

	e->off = (uint32_t)q->used;
	e->len = (uint32_t)len;
	memcpy(q->arena + q->used, msg, len);
	q->used += (len + 7) & ~(size_t)7;
	return e;
}

/* --- client answers ----------------------------------------------------- */

struct udp_send_req {
	uv_udp_send_t req;
	uint8_t data[];
};

static void udp_send_cb(uv_udp_send_t *req, int status)
{
	struct px_udp_listener *l = req->handle->data;

	struct px_worker *w = l->w;

	if (status < 0 && status != UV_ECANCELED)
		PX_STAT_INC(&w->stats, udp_send_errors);
	free(req);
	px_udp_maybe_close(l); /* a removed listener waits for its queue */
	if (w->draining)
		px_worker_maybe_finish(w);
}

static void client_send_failed(struct px_udp_listener *l, int err)
{
	PX_STAT_INC(&l->w->stats, udp_send_errors);
	px_log_rl(CFG_LOG_WARNING, UDP, "send on %s: %s", l->addr.text, uv_strerror(err));
}

/* The socket buffer is full: libuv keeps a copy and sends it when the
 * socket drains, rather than dropping the answer. */
static void client_send_queued(struct px_udp_listener *l, const struct sockaddr *peer,
                               const uint8_t *msg, size_t len, int err)
{
	struct udp_send_req *r = malloc(sizeof(*r) + len);

	if (r != NULL) {
		memcpy(r->data, msg, len);
		uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
		if (uv_udp_send(&r->req, &l->h, &b, 1, peer, udp_send_cb) == 0)
			return;
		free(r);
	}
	client_send_failed(l, err);
}

static void client_send_now(struct px_udp_listener *l, const struct sockaddr *peer,
                            const uint8_t *msg, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
	int rc = uv_udp_try_send(&l->h, &b, 1, peer);

	if (rc >= 0)
		return;
	if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
		client_send_queued(l, peer, msg, len, rc);
	else
		client_send_failed(l, rc);
}

void px_udp_send(struct px_udp_listener *l, const struct sockaddr *peer, const uint8_t *msg,
                 size_t len)
{
	struct px_udp_tx *q = l->w->tx_client;

	if (len > PX_UDP_TX_ARENA / 4 || q == NULL) {
		client_send_now(l, peer, msg, len);
		return;
	}
	if (!tx_has_room(q, len))
		tx_flush_queue(q, false);
	struct px_udp_tx_ent *e = tx_push(q, msg, len);
	e->owner = l;
	e->fd = l->sendfd;
	e->alen = peer_len(peer);
	memcpy(&e->peer, peer, e->alen);
}

/* --- backend queries ---------------------------------------------------- */

struct bsend_req {
	uv_udp_send_t req;
	uint8_t data[];
};

static void bsend_cb(uv_udp_send_t *req, int status)
{
	(void)status; /* a lost query times out like a lost datagram */
	free(req);
}

static int backend_send_queued(struct px_bsock *s, const uint8_t *msg, size_t len)
{
	struct bsend_req *r = malloc(sizeof(*r) + len);

	if (r == NULL)
		return -ENOMEM;
	memcpy(r->data, msg, len);
	uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
	int rc = uv_udp_send(&r->req, &s->h, &b, 1, NULL, bsend_cb);
	if (rc < 0)
		free(r);
	return rc;
}

int px_udp_tx_backend(struct px_bsock *s, uint16_t id, const uint8_t *msg, size_t len)
{
	struct px_worker *w = s->w;
	struct px_udp_tx *q = w->tx_backend;

	if (len > PX_UDP_TX_ARENA / 4 || q == NULL) {
		uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
		int rc = uv_udp_try_send(&s->h, &b, 1, NULL);
		if (rc == UV_ECONNREFUSED) /* an earlier datagram's ICMP error */
			rc = uv_udp_try_send(&s->h, &b, 1, NULL);
		if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
			rc = backend_send_queued(s, msg, len);
		return rc < 0 ? rc : 0;
	}
	if (!tx_has_room(q, len))
		tx_flush_queue(q, true);
	struct px_udp_tx_ent *e = tx_push(q, msg, len);
	e->owner = s;
	e->fd = s->sendfd;
	e->alen = 0; /* connected */
	e->id = id;
	return 0;
}

/* A queued backend query could not be sent: its txn, if still waiting
 * on that socket and ID, fails now rather than at its timeout. */
static void backend_send_failed(struct px_bsock *s, uint16_t id, int err)
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

/* --- flushing ----------------------------------------------------------- */

/* One datagram that sendmmsg refused (it stops at the first error). */
static void tx_one_failed(struct px_udp_tx *q, unsigned i, bool backend, int err)
{
	struct px_udp_tx_ent *e = &q->ent[i];
	const uint8_t *msg = q->arena + e->off;

	if (backend) {
		struct px_bsock *s = e->owner;
		int rc = err;
		if (err == UV_ECONNREFUSED) {
			/* The error belonged to an earlier datagram and is now
			 * cleared; this one was never sent. */
			rc = send(e->fd, msg, e->len, MSG_DONTWAIT) < 0
			             ? uv_translate_sys_error(errno)
			             : 0;
		}
		if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
			rc = backend_send_queued(s, msg, e->len);
		if (rc < 0)
			backend_send_failed(s, e->id, rc);
		return;
	}
	struct px_udp_listener *l = e->owner;
	if (err == UV_EAGAIN || err == UV_ENOBUFS)
		client_send_queued(l, (const struct sockaddr *)&e->peer, msg, e->len, err);
	else
		client_send_failed(l, err);
}

/* Sends the k datagrams in order[] (all on one socket), going past the
 * ones the kernel refuses. */
static void tx_send_run(struct px_udp_tx *q, const unsigned *order, unsigned k, bool backend,
                        struct mmsghdr *mm)
{
	unsigned done = 0;

	while (done < k) {
		int rc = sendmmsg(q->ent[order[done]].fd, mm + done, k - done, MSG_DONTWAIT);
		if (rc > 0) {
			done += (unsigned)rc;
			continue;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		tx_one_failed(q, order[done], backend,
		              rc < 0 ? uv_translate_sys_error(errno) : UV_EIO);
		done++;
	}
}

static void tx_flush_queue(struct px_udp_tx *q, bool backend)
{
	unsigned n = q->n;
	unsigned order[PX_UDP_TX_MAX];
	struct mmsghdr mm[PX_UDP_TX_MAX];
	bool taken[PX_UDP_TX_MAX] = {false};

	if (n == 0)
		return;
	for (unsigned i = 0; i < n; i++)
		tx_init_hdr(q, i);
	/* Failure handling below may queue more (a SERVFAIL to a client goes
	 * to the other queue; nothing re-enters this one), so the entries
	 * are read from q only until the queue is reset. */
	for (unsigned i = 0; i < n; i++) {
		if (taken[i] || q->ent[i].fd < 0)
			continue;
		unsigned k = 0;
		for (unsigned j = i; j < n; j++) {
			if (!taken[j] && q->ent[j].fd == q->ent[i].fd) {
				taken[j] = true;
				order[k] = j;
				mm[k] = q->mm[j];
				k++;
			}
		}
		tx_send_run(q, order, k, backend, mm);
	}
	q->n = 0;
	q->used = 0;
}

void px_udp_tx_flush(struct px_worker *w)
{
	/* A failed backend send ends its txn, which may end the worker's
	 * drain and come back here: the outer flush finishes the job. */
	if (w->tx_flushing)
		return;
	w->tx_flushing = true;
	/* Backend first: a query it cannot send fails into the client queue. */
	if (w->tx_backend != NULL)
		tx_flush_queue(w->tx_backend, true);
	if (w->tx_client != NULL)
		tx_flush_queue(w->tx_client, false);
	w->tx_flushing = false;
}

void px_udp_tx_forget_listener(struct px_udp_listener *l)
{
	struct px_udp_tx *q = l->w->tx_client;

	if (q == NULL)
		return;
	for (unsigned i = 0; i < q->n; i++) {
		struct px_udp_tx_ent *e = &q->ent[i];
		if (e->owner != l || e->fd < 0)
			continue;
		if (sendto(e->fd, q->arena + e->off, e->len, MSG_DONTWAIT, &e->peer.sa, e->alen) <
		    0)
			client_send_failed(l, uv_translate_sys_error(errno));
		e->fd = -1;
	}
}

bool px_udp_tx_pending(const struct px_worker *w)
{
	return (w->tx_backend != NULL && w->tx_backend->n > 0) ||
	       (w->tx_client != NULL && w->tx_client->n > 0);
}
