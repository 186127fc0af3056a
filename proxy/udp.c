/* proxy/udp.c - the UDP listener of one worker.
 *
 * The socket was bound by main with SO_REUSEPORT (one per worker and
 * address, so the kernel spreads clients over workers) and is opened here
 * on the worker's loop with UV_UDP_RECVMMSG: one system call reads up to
 * PX_UDP_RX_CHUNKS datagrams into the worker's receive block. Each
 * datagram is handled before the callback returns, so one block serves
 * every listener of the worker.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

static _Atomic uint64_t send_err_log;

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
		if (px_log_ratelimit(&send_err_log))
			px_log(CFG_LOG_WARNING, UDP, "receive on %s: %s", l->addr->text,
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
	px__query_handle(l->w, (const uint8_t *)buf->base, (size_t)n, PX_ORIGIN_UDP, l, from, NULL);
}

int px__udp_start(struct px_udp_listener *l, struct px_worker *w)
{
	int rc;

	l->w = w;
	/* AF_UNSPEC: libuv must not make a socket of its own, we open ours. */
	rc = uv_udp_init_ex(&w->loop, &l->h, AF_UNSPEC | UV_UDP_RECVMMSG);
	if (rc < 0)
		return rc;
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
