/* proxy/listen/udp.c - the UDP listener of one worker.
 *
 * The socket was bound by main with SO_REUSEPORT (one per worker and
 * address, so the kernel spreads clients over workers) and is watched here
 * on the worker's loop; udpwild.c reads it with recvmmsg, up to
 * PX_UDP_RX_CHUNKS datagrams a call into the worker's receive block, and
 * handles each datagram before the next call, so one block serves every
 * listener of the worker. Not libuv's uv_udp_t: its read loop calls
 * recvmmsg again after every batch until the socket says EAGAIN, one
 * wasted system call per wake-up, and under light load (one datagram per
 * wake-up) that is one in every three calls a relayed answer makes.
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

	/* A full socket buffer: udpwild.c keeps a copy (and its source)
	 * and sends it when the socket drains, rather than dropping it. */
	if ((err == UV_EAGAIN || err == UV_ENOBUFS) && px_udpw_hold(l, peer, src, msg, len) == 0)
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
	px_udpw_send(l, peer, src, msg, len);
}

/* --- queries in --------------------------------------------------------- */

int px_udp_start(struct px_udp_listener *l, struct px_worker *w)
{
	l->w = w;
	l->pktinfo = px_pktinfo_wildcard((const struct sockaddr *)&l->addr.sa);
	return px_udpw_start(l);
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
	l->reading = false;
	px_udpw_watch(l);
}

bool px_udp_sends_pending(const struct px_udp_listener *l)
{
	return l->held != NULL;
}

void px_udp_release(struct px_udp_listener *l)
{
	if (px_fails_assert(l->txns > 0))
		return;
	l->txns--;
	px_udp_maybe_close(l);
}
