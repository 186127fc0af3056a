/* proxy/listen/listen.h - the client listeners of a worker: UDP sockets and
 * TCP/DoT/DoH accept sockets.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

struct px_worker;

#define PX_TCP_BACKLOG 1024

struct px_udp_held;
struct px_udp_local;
struct px_udpw_rx;

struct px_udp_listener {
	union { /* .data == this */
		uv_handle_t handle;
		uv_poll_t poll; /* udpwild.c reads and queues */
	};
	struct px_worker *w;
	struct cfg_addr addr; /* a copy: the listener may outlive its cfg */
	uv_os_sock_t fd;      /* bound by main, watched on the worker loop (it
	                       * stays ours: uv_poll_t never closes it) */
	int sendfd;           /* the handle's socket, for sendmmsg (udptx.c) */
	unsigned txns;        /* queries in flight that answer from this socket */
	bool started;         /* the handle is initialised (closing it frees the listener) */
	bool removed;         /* gone from the configuration: closes when txns end */
	/* A wildcard address: each answer leaves from the address its query
	 * was sent to (io/pktinfo.h). The rest is udpwild.c's, for every
	 * listener. */
	bool pktinfo;
	bool reading;                         /* watching for queries */
	int events;                           /* what the poll handle watches */
	unsigned n_held;                      /* answers waiting for the socket */
	struct px_udp_held *held, *held_tail; /* oldest first */
	struct px_udpw_rx *rx;                /* its recvmmsg headers */
};

/* What runs over a client TCP connection. */
enum px_conn_kind {
	PX_CONN_TCP = 0, /* DNS over TCP, RFC 7766 */
	PX_CONN_DOT,     /* the same framing inside TLS, RFC 7858 */
	PX_CONN_DOH,     /* HTTP/2 inside TLS, RFC 8484 (doh.c) */
};

struct px_tcp_listener {
	uv_tcp_t h;
	struct px_worker *w;
	enum px_conn_kind kind;
	struct cfg_addr addr; /* a copy: the listener may outlive its cfg */
	uv_os_sock_t fd;
	uint64_t fd_limit; /* RLIMIT_NOFILE at start, 0 = unlimited */
	bool started;
};

/* udp.c */
/* Queues an answer to a UDP client for the worker's next sendmmsg, from
 * src (the address the client asked, on a wildcard listener; NULL or
 * family 0: the socket's own); a failure is counted (udp_send_errors),
 * never reported back. */
void px_udp_send(struct px_udp_listener *l, const struct sockaddr *peer,
                 const struct px_udp_local *src, const uint8_t *msg, size_t len);
/* The client queue's failure callback (px_udp_tx_fail_fn, owner is the
 * listener): a full socket buffer falls back to the listener's own queue
 * (udpwild.c), which keeps the source address. */
void px_udp_send_failed(void *owner, uint16_t tag, const uint8_t *msg, size_t len,
                        const struct sockaddr *peer, const struct px_udp_local *src, int err);
/* Stops reading queries (the worker drains, or the listener goes). */
void px_udp_stop_reading(struct px_udp_listener *l);
/* Are answers waiting for l's socket buffer to drain? */
bool px_udp_sends_pending(const struct px_udp_listener *l);
int px_udp_start(struct px_udp_listener *l, struct px_worker *w);
/* Stops reading a listener removed by a reload; it closes (and is freed)
 * once its queries are answered. */
void px_udp_remove(struct px_udp_listener *l);
/* A query that answered from l ended. */
void px_udp_release(struct px_udp_listener *l);
/* Frees a listener that never started (its fd too). */
void px_udp_discard(struct px_udp_listener *l);
/* Closes a removed listener once nothing needs it any more. */
void px_udp_maybe_close(struct px_udp_listener *l);
int px_tcp_start(struct px_tcp_listener *l, struct px_worker *w);
/* Closes and frees a listener (removed by a reload, or at shutdown). */
void px_tcp_remove(struct px_tcp_listener *l);
void px_tcp_discard(struct px_tcp_listener *l);
/* Is a listener of this kind at address a in cfg (any thread)? */
bool px_listen_has(const struct cfg *cfg, bool udp, enum px_conn_kind kind,
                   const struct cfg_addr *a);

struct px_conn;

/* A worker's listeners, allocated one by one (a reload adds and removes
 * them), and its client connections. */
struct px_listeners {
	struct px_udp_listener **udp;
	size_t n_udp, cap_udp;
	struct px_tcp_listener **tcp;
	size_t n_tcp, cap_tcp;
	struct px_conn *conns;      /* every open one, for shutdown */
	struct px_conn *flush_head; /* those with answers to write */
	unsigned seen_active;       /* the number of active workers last acted on (move.c) */
};
