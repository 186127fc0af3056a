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
 * the kernel refuses goes to the queue's failure callback: its user
 * decides (libuv's own queue for a full socket buffer, a count, a failed
 * transaction), since only it knows what the datagram was.
 *
 * An answer to a query that came in on a wildcard socket carries the
 * address the client asked (pktinfo.h): it travels as an IP_PKTINFO or
 * IPV6_PKTINFO control message of its own entry in the same sendmmsg,
 * so such answers batch like any other; an entry without one has no
 * control message at all.
 *
 * That callback re-enters the queue: a failed backend query fails its
 * transaction, which may finish a TCP connection's query and queue the
 * connection's next one on the very queue being flushed, or close a
 * socket and px_udp_tx_forget its entries. So while a flush runs, the
 * queue only grows at its end (a push that finds it full is sent at once
 * by its caller, never by a nested flush), each entry is marked done (fd
 * -1) before anyone is told about it, and the flush goes round again for
 * what was added; it resets the queue only once nothing calls out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/io/udptx.h"

_Static_assert(PX_UDP_TX_MAX <= 64, "src_mask has one bit per entry");

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

/* The source address of entry i into out; NULL if it has none. */
static const struct px_udp_local *tx_src(const struct px_udp_tx *q, unsigned i,
                                         struct px_udp_local *out)
{
	if (((q->src_mask >> i) & 1) == 0)
		return NULL;
	px_pktinfo_of_cmsg(q->ctl[i].b, out);
	return out;
}

/* Gives the entries [from, to) that carry a source their control
 * message: nothing to do unless a wildcard listener queued answers. */
static void tx_init_src(struct px_udp_tx *q, unsigned from, unsigned to)
{
	uint64_t below_to = to >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << to) - 1;

	for (uint64_t m = q->src_mask & below_to & ~(((uint64_t)1 << from) - 1); m != 0;
	     m &= m - 1) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		q->mm[i].msg_hdr.msg_control = q->ctl[i].b;
		q->mm[i].msg_hdr.msg_controllen = q->ctl[i].align.cmsg_len;
	}
}

void px_udp_tx_init(struct px_udp_tx *q, px_udp_tx_fail_fn *fail)
{
	q->n = 0;
	q->used = 0;
	q->flushing = false;
	q->src_mask = 0;
	q->fail = fail;
}

/* One datagram that sendmmsg refused (it stops at the first error):
 * done before its user hears of it, who may forget its owner. */
static void tx_one_failed(struct px_udp_tx *q, unsigned i, int err)
{
	struct px_udp_tx_ent *e = &q->ent[i];
	struct px_udp_local src;

	e->fd = -1;
	q->fail(e->owner, e->tag, q->arena + e->off, e->len, e->alen > 0 ? &e->peer.sa : NULL,
	        tx_src(q, i, &src), err);
}

/* Drops from order[from..k) (and mm) the entries the failure callback
 * forgot meanwhile (px_udp_tx_forget sent them); returns the new k. */
static unsigned tx_skip_done(const struct px_udp_tx *q, unsigned *order, struct mmsghdr *mm,
                             unsigned from, unsigned k)
{
	unsigned out = from;

	for (unsigned r = from; r < k; r++) {
		if (q->ent[order[r]].fd < 0)
			continue;
		order[out] = order[r];
		mm[out] = mm[r];
		out++;
	}
	return out;
}

/* Sends the k datagrams in order[] (all on one socket), going past the
 * ones the kernel refuses. */
static void tx_send_run(struct px_udp_tx *q, unsigned *order, unsigned k, struct mmsghdr *mm)
{
	unsigned done = 0;

	while (done < k) {
		int rc = sendmmsg(q->ent[order[done]].fd, mm + done, k - done, MSG_DONTWAIT);
		if (rc > 0) {
			for (unsigned r = done; r < done + (unsigned)rc; r++)
				q->ent[order[r]].fd = -1;
			done += (unsigned)rc;
			continue;
		}
		if (rc < 0 && errno == EINTR)
			continue;
		tx_one_failed(q, order[done], rc < 0 ? uv_translate_sys_error(errno) : UV_EIO);
		done++;
		k = tx_skip_done(q, order, mm, done, k);
	}
}

/* Sends entries [from, to), one run per socket. */
static void tx_flush_round(struct px_udp_tx *q, unsigned from, unsigned to)
{
	unsigned order[PX_UDP_TX_MAX];
	struct mmsghdr mm[PX_UDP_TX_MAX];
	bool taken[PX_UDP_TX_MAX] = {false};

	for (unsigned i = from; i < to; i++)
		tx_init_hdr(q, i);
	if (q->src_mask != 0)
		tx_init_src(q, from, to);
	for (unsigned i = from; i < to; i++) {
		int fd = q->ent[i].fd;
		if (taken[i] || fd < 0)
			continue;
		unsigned k = 0;
		for (unsigned j = i; j < to; j++) {
			if (!taken[j] && q->ent[j].fd == fd) {
				taken[j] = true;
				order[k] = j;
				mm[k] = q->mm[j];
				k++;
			}
		}
		tx_send_run(q, order, k, mm);
	}
}

void px_udp_tx_flush(struct px_udp_tx *q)
{
	if (q == NULL || q->n == 0 || q->flushing)
		return;
	q->flushing = true;
	/* Each round sends what was queued when it began; what its failure
	 * reports queue is the next round's. The queue holds at most
	 * PX_UDP_TX_MAX entries, so this ends. */
	for (unsigned from = 0; from < q->n;) {
		unsigned to = q->n;
		tx_flush_round(q, from, to);
		from = to;
	}
	q->n = 0;
	q->used = 0;
	q->src_mask = 0;
	q->flushing = false;
}

bool px_udp_tx_pending(const struct px_udp_tx *q)
{
	return q != NULL && q->n > 0;
}

void px_udp_tx_forget(struct px_udp_tx *q, const void *owner, px_udp_tx_fail_fn *fail)
{
	if (q == NULL)
		return;
	for (unsigned i = 0; i < q->n; i++) {
		struct px_udp_tx_ent *e = &q->ent[i];
		if (e->owner != owner || e->fd < 0)
			continue;
		const uint8_t *msg = q->arena + e->off;
		const struct sockaddr *peer = e->alen > 0 ? &e->peer.sa : NULL;
		struct px_udp_local srcbuf;
		const struct px_udp_local *src = tx_src(q, i, &srcbuf);
		int fd = e->fd;
		e->fd = -1; /* done before fail may come back here */
		int rc = px_pktinfo_sendmsg(fd, peer, e->alen, src, msg, e->len);
		if (rc < 0)
			fail(e->owner, e->tag, msg, e->len, peer, src, rc);
	}
}

struct udp_copy_req {
	uv_udp_send_t req;
	uint8_t data[];
};

int px_udp_send_copy(uv_udp_t *h, const struct sockaddr *peer, const uint8_t *msg, size_t len,
                     uv_udp_send_cb cb)
{
	struct udp_copy_req *r = malloc(sizeof(*r) + len);

	if (r == NULL)
		return -ENOMEM;
	memcpy(r->data, msg, len);
	uv_buf_t b = uv_buf_init((char *)r->data, (unsigned)len);
	int rc = uv_udp_send(&r->req, h, &b, 1, peer, cb);
	if (rc < 0)
		free(r);
	return rc;
}
