/* proxy/backend/backend.h - BIND: ID-keeping UDP sockets, the pipelined TCP
 * pool for truncated answers, and zone transfers.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct px_txn;
struct px_udp_local;
struct px_worker;

/* Backend UDP sockets per worker at most. A new socket is opened only
 * when a query's ID is in flight on every open one, so this bounds how
 * many concurrent queries may share one ID. */
#define PX_BACKEND_MAX_SOCKS 64
/* Backend TCP connections per worker for truncated answers. */
#define PX_BACKEND_MAX_TCP 8
/* Pipelined queries per backend TCP connection. */
#define PX_BCONN_MAX_INFLIGHT 64

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
                          const struct sockaddr *peer, const struct px_udp_local *src, int err);
/* Is the address the backend's (any port)? NOTIFY and the answer cache ask. */
bool px_from_backend(const struct px_worker *w, const struct sockaddr *peer);
