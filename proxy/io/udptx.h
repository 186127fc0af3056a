/* proxy/io/udptx.h - UDP datagrams sent in batches, one sendmmsg per socket
 * per loop turn.
 *
 * Owns: copies of the queued datagrams (in the queue's arena).
 * Threads: the worker that owns the queue. No DNS here: what a failed
 * datagram means is for the queue's user to say, through its callback.
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/io/pktinfo.h"

/* Datagrams queued per worker and direction before a sendmmsg (udptx.c):
 * more than one recvmmsg burst, so a burst's answers leave together. */
#define PX_UDP_TX_MAX 64 /* at most 64: src_mask has a bit per entry */
/* Bytes of queued datagrams per direction; one larger than a quarter of
 * this is sent at once instead (big answers are rare and cost the copy). */
#define PX_UDP_TX_ARENA (128 * 1024)

/* A queued datagram the kernel refused at the flush: owner and tag as
 * given to px_udp_tx_push, src as given to px_udp_tx_set_src (NULL: none),
 * peer NULL on a connected socket, err a libuv error. msg and src are
 * valid for the call only. The callback may queue on any queue, the one
 * being flushed included (the flush sends that in a further round), and
 * may px_udp_tx_forget an owner. */
typedef void px_udp_tx_fail_fn(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                               const struct sockaddr *peer, const struct px_udp_local *src,
                               int err);

/** A datagram waiting for the next sendmmsg. */
struct px_udp_tx_ent {
	int fd; /* -1: already sent (px_udp_tx_forget) */
	void *owner;
	uint32_t off, len;
	uint16_t tag;   /* the user's, handed back on failure */
	socklen_t alen; /* 0: connected socket */
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} peer;
};

/** Datagrams of one direction queued during a loop turn (udptx.c). */
struct px_udp_tx {
	unsigned n;
	size_t used;
	bool flushing; /* entries are append-only until the flush ends */
	/* Entries with a source address of their own (bit i: ent[i], its
	 * control message in ctl[i]): a queue with none, every backend
	 * queue and the client queue of specific listeners, never looks
	 * further. */
	uint64_t src_mask;
	px_udp_tx_fail_fn *fail;
	struct px_udp_tx_ent ent[PX_UDP_TX_MAX];
	struct mmsghdr mm[PX_UDP_TX_MAX];
	struct iovec iov[PX_UDP_TX_MAX];
	union {
		struct cmsghdr align;
		uint8_t b[PX_PKTINFO_SPACE];
	} ctl[PX_UDP_TX_MAX];
	uint8_t arena[PX_UDP_TX_ARENA];
};

void px_udp_tx_init(struct px_udp_tx *q, px_udp_tx_fail_fn *fail);
/* Sends everything queued, one sendmmsg per socket, going past refused
 * datagrams (each reported to q->fail), and what the reports queue, in
 * further rounds, until q is empty. NULL is fine; called again while q is
 * being flushed, it returns at once (the flush in progress sends all). */
void px_udp_tx_flush(struct px_udp_tx *q);

/* Room for len more bytes? Entries start 8-aligned: misaligned iov bases
 * would slow the kernel's copy a little. */
static inline bool px_udp_tx_has_room(const struct px_udp_tx *q, size_t len)
{
	return q->n < PX_UDP_TX_MAX && q->used + ((len + 7) & ~(size_t)7) <= PX_UDP_TX_ARENA;
}

/* Copies msg into q for fd (peer NULL: connected), flushing q first when
 * it is full. false: not queued (q is NULL, msg too big to be worth the
 * copy, or q full while it is being flushed), the caller sends it at
 * once. Inline: every answer and every query to BIND passes here. */
static inline bool px_udp_tx_push(struct px_udp_tx *q, int fd, void *owner, uint16_t tag,
                                  const struct sockaddr *peer, const uint8_t *msg, size_t len)
{
	if (len > PX_UDP_TX_ARENA / 4 || q == NULL)
		return false;
	if (!px_udp_tx_has_room(q, len)) {
		if (q->flushing)
			return false;
		px_udp_tx_flush(q);
	}
	struct px_udp_tx_ent *e = &q->ent[q->n++];
	e->off = (uint32_t)q->used;
	e->len = (uint32_t)len;
	memcpy(q->arena + q->used, msg, len);
	q->used += (len + 7) & ~(size_t)7;
	e->owner = owner;
	e->fd = fd;
	e->tag = tag;
	e->alen = 0;
	if (peer != NULL) {
		e->alen = peer->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
		                                      : (socklen_t)sizeof(struct sockaddr_in);
		memcpy(&e->peer, peer, e->alen);
	}
	return true;
}
/* The datagram px_udp_tx_push just queued leaves from src (a wildcard
 * listener's answer; family not 0), not from the address the kernel
 * would pick. A call of its own, so that a push without one costs
 * nothing more. */
static inline void px_udp_tx_set_src(struct px_udp_tx *q, const struct px_udp_local *src)
{
	px_pktinfo_cmsg(src, q->ctl[q->n - 1].b);
	q->src_mask |= (uint64_t)1 << (q->n - 1);
}
bool px_udp_tx_pending(const struct px_udp_tx *q);
/* Sends owner's queued datagrams at once and drops them from q: owner's
 * socket is about to close. A failed one goes to fail, not q->fail. */
void px_udp_tx_forget(struct px_udp_tx *q, const void *owner, px_udp_tx_fail_fn *fail);

/* The socket buffer is full: libuv keeps a copy of msg and sends it when
 * the socket drains. cb must free() the request. Returns 0 or a libuv
 * error (-ENOMEM too); cb is not called then. */
int px_udp_send_copy(uv_udp_t *h, const struct sockaddr *peer, const uint8_t *msg, size_t len,
                     uv_udp_send_cb cb);
