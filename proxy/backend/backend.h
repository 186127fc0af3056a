/* proxy/backend/backend.h - BIND: ID-keeping UDP sockets, the pipelined TCP
 * pool for truncated answers, and zone transfers.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/io/rbuf.h"

struct px_rbuf;
struct px_txn;
struct px_worker;

/* Backend UDP sockets per worker at most. A new socket is opened only
 * when a query's ID is in flight on every open one, so this bounds how
 * many concurrent queries may share one ID. */
#define PX_BACKEND_MAX_SOCKS 64
/* Backend TCP connections per worker for truncated answers. */
#define PX_BACKEND_MAX_TCP 8
/* Pipelined queries per backend TCP connection. */
#define PX_BCONN_MAX_INFLIGHT 64

/** A backend UDP socket, connected to the backend address. */
struct px_bsock {
	uv_udp_t h;
	struct px_worker *w;
	unsigned idx;
	unsigned inflight;
	int sendfd;           /**< the handle's socket, for sendmmsg (udptx.c) */
	uint32_t slot[65536]; /**< query ID -> txn index + 1; 0 = ID free here */
};

/** A backend TCP connection: used when the backend truncates, and for XFR. */
struct px_bconn {
	uv_tcp_t h;
	uv_connect_t creq;
	uv_timer_t idle;
	struct px_worker *w;
	bool connected, closing, exclusive;
	unsigned handles_open;
	unsigned inflight;
	struct px_txn *waiting; /* singly linked through txn->bnext */
	struct px_rbuf in;
	struct px_bconn *next;
};

/** A worker's side of the backend: its UDP sockets and TCP connections. */
struct px_backend {
	struct px_bsock *bsock[PX_BACKEND_MAX_SOCKS];
	unsigned n_bsock;
	struct px_bconn *bconns;
	unsigned n_bconns;
};

/* Worker thread, from px_worker_init and px_worker_deinit. */
int px_backend_init(struct px_worker *w);
void px_backend_free(struct px_worker *w);
int px_backend_send(struct px_worker *w, struct px_txn *t);
int px_backend_send_tcp(struct px_worker *w, struct px_txn *t);
void px_backend_forget(struct px_worker *w, struct px_txn *t);
void px_backend_close(struct px_worker *w);
/* The backend queue's failure callback (px_udp_tx_fail_fn, owner is the
 * px_bsock, tag the query's wire ID): the txn waiting on it fails. */
void px_backend_tx_failed(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                          const struct sockaddr *peer, int err);
/* Is the address the backend's (any port)? flatten.c */
bool px_from_backend(const struct px_worker *w, const struct sockaddr *peer);
