/* proxy/listen/udpwild.c - how a UDP listener reads and holds answers.
 *
 * Named for the wildcard address it was first written for: a socket bound
 * to 0.0.0.0 or [::] must answer each query from the address it was sent
 * to (io/pktinfo.h), so it needs each datagram's destination, and libuv's
 * recvmmsg (UV_UDP_RECVMMSG) passes no control buffer and its send queue
 * no control message. Every UDP listener is now a uv_poll_t on its socket:
 * it reads with recvmmsg into the worker's receive block (PX_UDP_RX_CHUNKS
 * datagrams a call, a bounded number per wake-up), with a control buffer
 * per datagram, and hands each query (and, on a wildcard, its
 * destination) to the engine. A short batch means the socket was empty,
 * so it goes back to epoll without the read that would only say EAGAIN
 * (libuv's loop makes that read; udp.c says what it costs). The
 * destination travels with the query (the txn's client part) to every
 * answer, which goes through the worker's sendmmsg queue like any other.
 *
 * An answer the kernel refuses for a full socket buffer is held here,
 * source address and all, and sent when the socket drains.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/engine/query.h"
#include "proxy/engine/steer.h"
#include "proxy/engine/worker.h"
#include "proxy/io/pktinfo.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/listen/udpwild.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* Datagrams a wake-up reads before other handles get their turn; what is
 * left stays readable for the next loop turn. libuv's own bound. */
#define PX_UDPW_READ_BUDGET 32

/** The receive headers of a wildcard listener, set up once: recvmmsg
 *  changes only the lengths and flags, which are set again per use. */
struct px_udpw_rx {
	struct mmsghdr mm[PX_UDP_RX_CHUNKS];
	struct iovec iov[PX_UDP_RX_CHUNKS];
	struct sockaddr_in6 peers[PX_UDP_RX_CHUNKS]; /* room for either family */
	union {
		struct cmsghdr align;
		uint8_t b[PX_PKTINFO_SPACE];
	} ctl[PX_UDP_RX_CHUNKS];
};

/** An answer waiting for the socket buffer to drain. */
struct px_udp_held {
	struct px_udp_held *next;
	struct px_udp_local src;
	socklen_t alen;
	struct sockaddr_in6 peer; /* room for either family */
	size_t len;
	uint8_t msg[];
};

static socklen_t peer_len(const struct sockaddr *peer)
{
	return peer->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
	                                   : (socklen_t)sizeof(struct sockaddr_in);
}

static void udpw_lost(struct px_udp_listener *l, int err)
{
	PX_STAT_INC(&l->w->stats, udp_send_errors);
	px_log_rl(CFG_LOG_WARNING, UDP, "send on %s: %s", l->addr.text, uv_strerror(err));
}

/* --- answers held for a full socket buffer ------------------------------ */

int px_udpw_hold(struct px_udp_listener *l, const struct sockaddr *peer,
                 const struct px_udp_local *src, const uint8_t *msg, size_t len)
{
	if (l->n_held >= PX_UDPW_HELD_MAX)
		return -ENOBUFS;
	struct px_udp_held *h = malloc(sizeof(*h) + len);
	if (h == NULL)
		return -ENOMEM;
	h->next = NULL;
	h->src.family = 0;
	if (src != NULL)
		h->src = *src;
	h->alen = peer_len(peer);
	memcpy(&h->peer, peer, h->alen);
	h->len = len;
	memcpy(h->msg, msg, len);
	if (l->held_tail != NULL)
		l->held_tail->next = h;
	else
		l->held = h;
	l->held_tail = h;
	l->n_held++;
	px_udpw_watch(l);
	return 0;
}

void px_udpw_free(struct px_udp_listener *l)
{
	free(l->rx);
	l->rx = NULL;
	while (l->held != NULL) {
		struct px_udp_held *h = l->held;
		l->held = h->next;
		free(h);
	}
	l->held_tail = NULL;
	l->n_held = 0;
}

/* The socket drained: sends what it holds, oldest first, until the
 * buffer is full again. */
static void udpw_send_held(struct px_udp_listener *l)
{
	struct px_worker *w = l->w;

	while (l->held != NULL) {
		struct px_udp_held *h = l->held;
		int rc = px_pktinfo_sendmsg(l->fd, (const struct sockaddr *)&h->peer, h->alen,
		                            &h->src, h->msg, h->len);
		if (rc == UV_EAGAIN || rc == UV_ENOBUFS)
			return; /* still full: the next writable event */
		if (rc < 0)
			udpw_lost(l, rc);
		l->held = h->next;
		if (l->held == NULL)
			l->held_tail = NULL;
		l->n_held--;
		free(h);
	}
	px_udpw_watch(l);
	px_udp_maybe_close(l); /* a removed listener waits for what it holds */
	if (w->draining)
		px_worker_maybe_finish(w);
}

void px_udpw_send(struct px_udp_listener *l, const struct sockaddr *peer,
                  const struct px_udp_local *src, const uint8_t *msg, size_t len)
{
	int rc = UV_EAGAIN;

	/* Behind held answers it waits its turn, as in libuv's queue. */
	if (l->held == NULL)
		rc = px_pktinfo_sendmsg(l->fd, peer, peer_len(peer), src, msg, len);
	if (rc == 0)
		return;
	if (rc == UV_EAGAIN || rc == UV_ENOBUFS) {
		int hr = px_udpw_hold(l, peer, src, msg, len);
		if (hr == 0)
			return;
		rc = uv_translate_sys_error(-hr);
	}
	udpw_lost(l, rc);
}

/* --- queries in ----------------------------------------------------------- */

/* The fields recvmmsg overwrites, set again for datagram k. */
static inline void udpw_rx_reset(struct mmsghdr *mm, unsigned k)
{
	mm[k].msg_hdr.msg_namelen = sizeof(struct sockaddr_in6);
	mm[k].msg_hdr.msg_controllen = PX_PKTINFO_SPACE;
	mm[k].msg_hdr.msg_flags = 0;
}

/* The headers of l's reads into the worker's receive block, which every
 * listener of the worker shares (each datagram is handled before the
 * next read). */
static struct px_udpw_rx *udpw_rx_new(const struct px_worker *w)
{
	struct px_udpw_rx *rx = calloc(1, sizeof(*rx));

	if (rx == NULL)
		return NULL;
	for (unsigned k = 0; k < PX_UDP_RX_CHUNKS; k++) {
		rx->iov[k].iov_base = w->udp_rx + (size_t)k * PX_UDP_DGRAM_MAX;
		rx->iov[k].iov_len = PX_UDP_DGRAM_MAX;
		rx->mm[k].msg_hdr.msg_iov = &rx->iov[k];
		rx->mm[k].msg_hdr.msg_iovlen = 1;
		rx->mm[k].msg_hdr.msg_name = &rx->peers[k];
		rx->mm[k].msg_hdr.msg_control = rx->ctl[k].b;
		udpw_rx_reset(rx->mm, k);
	}
	return rx;
}

/* One datagram: from a [listen] proxy-protocol-from source it must
 * start with a PROXY v2 header (listen/proxyv2.c), as on udp.c's path. */
static void udpw_handle(struct px_udp_listener *l, const uint8_t *p, size_t n,
                        const struct sockaddr *from, const struct px_udp_local *dst)
{
	const struct cfg_prefix_list *pp = &l->w->cfg->listen.proxy_from;

	if (pp->n > 0 && cfg_prefix_list_match(pp, from)) {
		px_pp2_udp(l, p, n, from, dst);
		return;
	}
	px_query_handle(l->w, p, n, PX_ORIGIN_UDP, l, from, from, dst, NULL);
}

static void udpw_read(struct px_udp_listener *l)
{
	struct px_worker *w = l->w;
	struct mmsghdr *mm = l->rx->mm;

	for (int budget = PX_UDPW_READ_BUDGET; budget > 0;) {
		int n = recvmmsg(l->fd, mm, PX_UDP_RX_CHUNKS, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				px_log_rl(CFG_LOG_WARNING, UDP, "receive on %s: %s", l->addr.text,
				          strerror(errno));
			return;
		}
		for (unsigned k = 0; k < (unsigned)n; k++) {
			/* A query handled may stop the reading (a drain): the
			 * rest of the batch is dropped, as libuv would. */
			if (!l->reading || w->draining) {
				while (k < (unsigned)n)
					udpw_rx_reset(mm, k++);
				return;
			}
			if (mm[k].msg_hdr.msg_flags & MSG_TRUNC) {
				/* Cannot happen with 64 KiB chunks; never act on a cut message. */
				PX_STAT_INC(&w->stats, malformed_dropped);
			} else {
				struct px_udp_local dst = {.family = 0};
				const struct sockaddr *from =
				        (const struct sockaddr *)&l->rx->peers[k];
				if (l->pktinfo)
					px_pktinfo_parse(&mm[k].msg_hdr, &dst);
				udpw_handle(l, l->rx->iov[k].iov_base, mm[k].msg_len, from, &dst);
			}
			udpw_rx_reset(mm, k);
		}
		if (n < PX_UDP_RX_CHUNKS)
			return; /* the socket is empty */
		budget -= n;
	}
}

static void udpw_poll_cb(uv_poll_t *h, int status, int events)
{
	struct px_udp_listener *l = h->data;

	if (status < 0) {
		/* POLLERR: libuv stopped the handle. Read to clear the socket's
		 * error, and watch again rather than go deaf. */
		px_log_rl(CFG_LOG_WARNING, UDP, "poll on %s: %s", l->addr.text,
		          uv_strerror(status));
		l->events = 0;
		px_udpw_watch(l);
		events = UV_READABLE;
	}
	if (events & UV_WRITABLE)
		udpw_send_held(l);
	if ((events & UV_READABLE) && l->reading) {
		udpw_read(l);
		px_steer_window(l->w);
	}
}

void px_udpw_watch(struct px_udp_listener *l)
{
	int ev = (l->reading ? UV_READABLE : 0) | (l->held != NULL ? UV_WRITABLE : 0);

	if (ev == l->events || !l->started || uv_is_closing(&l->handle))
		return;
	l->events = ev;
	if (ev == 0)
		uv_poll_stop(&l->poll);
	else
		uv_poll_start(&l->poll, ev, udpw_poll_cb);
}

int px_udpw_start(struct px_udp_listener *l)
{
	l->rx = udpw_rx_new(l->w);
	if (l->rx == NULL)
		return UV_ENOMEM;
	int rc = uv_poll_init_socket(&l->w->loop, &l->poll, l->fd);

	if (rc < 0)
		return rc;
	l->started = true;
	l->poll.data = l;
	l->sendfd = l->fd;
	l->reading = true;
	l->events = UV_READABLE;
	px_steer_listener(l->w, l->fd);
	return uv_poll_start(&l->poll, UV_READABLE, udpw_poll_cb);
}
