/* proxy/io/udptx.h - UDP datagrams sent in batches, one sendmmsg per socket
 * per loop turn.
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct px_bsock;
struct px_udp_listener;
struct px_worker;

/* Datagrams queued per worker and direction before a sendmmsg (udptx.c):
 * more than one recvmmsg burst, so a burst's answers leave together. */
#define PX_UDP_TX_MAX 64
/* Bytes of queued datagrams per direction; one larger than a quarter of
 * this is sent at once instead (big answers are rare and cost the copy). */
#define PX_UDP_TX_ARENA (128 * 1024)

/** A datagram waiting for the worker's next sendmmsg. */
struct px_udp_tx_ent {
	int fd;
	void *owner; /* struct px_udp_listener (client queue) or px_bsock */
	uint32_t off, len;
	uint16_t id;    /* backend: the ID on the wire, to find the txn on failure */
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
	struct px_udp_tx_ent ent[PX_UDP_TX_MAX];
	struct mmsghdr mm[PX_UDP_TX_MAX];
	struct iovec iov[PX_UDP_TX_MAX];
	uint8_t arena[PX_UDP_TX_ARENA];
};

/* Queues an answer to a UDP client for the worker's next sendmmsg; a
 * failure is counted (udp_send_errors), never reported back. */
void px_udp_send(struct px_udp_listener *l, const struct sockaddr *peer, const uint8_t *msg,
                 size_t len);
/* Queues a query (its wire ID is id) to the backend on s. A send that
 * fails at the flush fails the txn waiting on s + id. Returns 0 or a
 * libuv error for a send made at once (a message too big to queue). */
int px_udp_tx_backend(struct px_bsock *s, uint16_t id, const uint8_t *msg, size_t len);
/* Sends everything queued: from the worker's check and prepare phases. */
void px_udp_tx_flush(struct px_worker *w);
bool px_udp_tx_pending(const struct px_worker *w);
/* Sends l's queued answers at once and drops them from the queue: l is
 * about to close (a listener removed by a reload). */
void px_udp_tx_forget_listener(struct px_udp_listener *l);
