/* proxy/listen/udp.c - the UDP listener of one worker.
 *
 * The socket was bound by main with SO_REUSEPORT (one per worker and
 * address, so the kernel spreads clients over workers) and is opened here
 * on the worker's loop with UV_UDP_RECVMMSG: one system call reads up to
 * PX_UDP_RX_CHUNKS datagrams into the worker's receive block. Each
 * datagram is handled before the callback returns, so one block serves
 * every listener of the worker. A wildcard address reads its own way
 * (udpwild.c), for the destination of each datagram.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/engine/query.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/listen/udpwild.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* --- answers out ------------------------------------------------------ */

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

/* An answer lost: counted and logged, never reported back. */
static void udp_send_lost(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                          const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	struct px_udp_listener *l = owner;
	(void)tag, (void)msg, (void)len, (void)peer, (void)src;

	PX_STAT_INC(&l->w->stats, udp_send_errors);
	px_log_rl(CFG_LOG_WARNING, UDP, "send on %s: %s", l->addr.text, uv_strerror(err));
}

void px_udp_send_failed(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                        const struct sockaddr *peer, const struct px_udp_local *src, int err)
{
	struct px_udp_listener *l = owner;

	/* A full socket buffer: libuv (or udpwild.c, which keeps the
	 * source) keeps a copy and sends it when the socket drains, rather
	 * than dropping the answer. */
	if ((err == UV_EAGAIN || err == UV_ENOBUFS) &&
	    (l->pktinfo ? px_udpw_hold(l, peer, src, msg, len)
	                : px_udp_send_copy(&l->h, peer, msg, len, udp_send_cb)) == 0)
		return;
	udp_send_lost(owner, tag, msg, len, peer, src, err);
}

void px_udp_send(struct px_udp_listener *l, const struct sockaddr *peer,
                 const struct px_udp_local *src, const uint8_t *msg, size_t len)
{
	if (px_udp_tx_push(l->w->tx.client, l->sendfd, l, 0, peer, msg, len)) {
		if (src != NULL && src->family != 0)
			px_udp_tx_set_src(l->w->tx.client, src);
		return;
	}
	if (l->pktinfo) {
		px_udpw_send(l, peer, src, msg, len);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
	int rc = uv_udp_try_send(&l->h, &b, 1, peer);
	if (rc < 0)
		px_udp_send_failed(l, 0, msg, len, peer, NULL, rc);
}

/* --- queries in --------------------------------------------------------- */

static void udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_udp_listener *l = h->data;
	(void)suggested;
	buf->base = (char *)l->w->udp_rx;
	buf->len = (size_t)PX_UDP_RX_CHUNKS * PX_UDP_DGRAM_MAX;
}

static void udp_recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags)
{
	struct px_udp_listener *l = h->data;

	/* n == 0 with from == NULL: nothing more to read, or the end of an
	 * mmsg batch (UV_UDP_MMSG_FREE); the block is ours, nothing to free. */
	if (from == NULL)
		return;
	if (n < 0) {
		px_log_rl(CFG_LOG_WARNING, UDP, "receive on %s: %s", l->addr.text,
		          uv_strerror((int)n));
		return;
	}
	if (flags & UV_UDP_PARTIAL) {
		/* Cannot happen with 64 KiB chunks; never act on a cut message. */
		PX_STAT_INC(&l->w->stats, malformed_dropped);
		return;
	}
	if (l->w->draining)
		return;
	/* Off by default: one load and a branch per datagram. */
	const struct cfg_prefix_list *pp = &l->w->cfg->listen.proxy_from;
	if (pp->n > 0 && cfg_prefix_list_match(pp, from)) {
		px_pp2_udp(l, (const uint8_t *)buf->base, (size_t)n, from, NULL);
		return;
	}
	px_query_handle(l->w, (const uint8_t *)buf->base, (size_t)n, PX_ORIGIN_UDP, l, from, from,
	                NULL, NULL);
}

int px_udp_start(struct px_udp_listener *l, struct px_worker *w)
{
	int rc;

	l->w = w;
	l->pktinfo = px_pktinfo_wildcard((const struct sockaddr *)&l->addr.sa);
	if (l->pktinfo)
		return px_udpw_start(l);
	/* AF_UNSPEC: libuv must not make a socket of its own, we open ours. */
	rc = uv_udp_init_ex(&w->loop, &l->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0)
		return rc;
	l->started = true;
	l->h.data = l;
	rc = uv_udp_open(&l->h, l->fd);
	if (rc < 0)
		return rc;
	l->fd = -1; /* owned by the handle now */
	uv_os_fd_t fd;
	rc = uv_fileno((uv_handle_t *)&l->h, &fd);
	if (rc < 0)
		return rc;
	l->sendfd = fd;
	return uv_udp_recv_start(&l->h, udp_alloc_cb, udp_recv_cb);
}

static void udp_closed_cb(uv_handle_t *h)
{
	struct px_udp_listener *l = h->data;

	if (l->fd >= 0)
		close(l->fd); /* uv_udp_open() failed, or a wildcard's: still ours */
	px_udpw_free(l);
	free(l);
}

/* A removed listener goes once nothing needs it: no query of its own in
 * flight (their answers must leave from this address) and no reply
 * queued in the kernel's stead. */
void px_udp_maybe_close(struct px_udp_listener *l)
{
	if (!l->removed || l->txns > 0 || uv_is_closing(&l->handle) || px_udp_sends_pending(l))
		return;
	/* Answers still queued for this socket's next sendmmsg go out now:
	 * the batch must not meet a closed (or reused) descriptor. */
	px_udp_tx_forget(l->w->tx.client, l, udp_send_lost);
	uv_close(&l->handle, udp_closed_cb);
}

void px_udp_discard(struct px_udp_listener *l)
{
	if (l == NULL)
		return;
	if (l->fd >= 0)
		close(l->fd);
	px_udpw_free(l);
	free(l);
}

void px_udp_remove(struct px_udp_listener *l)
{
	if (!l->started) {
		px_udp_discard(l);
		return;
	}
	l->removed = true;
	px_udp_stop_reading(l);
	px_udp_maybe_close(l);
}

void px_udp_stop_reading(struct px_udp_listener *l)
{
	if (!l->pktinfo) {
		uv_udp_recv_stop(&l->h);
		return;
	}
	l->reading = false;
	px_udpw_watch(l);
}

bool px_udp_sends_pending(const struct px_udp_listener *l)
{
	return l->pktinfo ? l->held != NULL : uv_udp_get_send_queue_count(&l->h) > 0;
}

void px_udp_release(struct px_udp_listener *l)
{
	if (px_fails_assert(l->txns > 0))
		return;
	l->txns--;
	px_udp_maybe_close(l);
}
