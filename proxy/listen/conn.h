/* proxy/listen/conn.h - a client's TCP connection: DNS over TCP, DoT or DoH,
 * with its write batching and back-pressure.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/engine/txn.h"
#include "proxy/io/rbuf.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/stats.h"

struct px_doh;
struct px_rbuf;
struct px_worker;
struct tls_stream;

/* Pipelined queries per client connection before apexd stops reading
 * from it (RFC 7766 6.2.1.1 lets a server limit this). */
#define PX_CONN_MAX_INFLIGHT 128
/* Answers written but not yet taken by the kernel, per connection. Past
 * the high mark apexd stops reading the client's queries (it is not
 * reading its answers; RFC 7766 6.2.1.1 lets a server stop) and DoH
 * leaves its frames inside nghttp2; below the low mark both resume.
 * Answers already in flight may still land on top, up to the hard cap,
 * where the client is cut off: memory per connection stays bounded
 * whatever the client does. */
#define PX_CONN_WQ_HIGH (256 * 1024)
#define PX_CONN_WQ_LOW (64 * 1024)
#define PX_CONN_WQ_HARD (4 * 1024 * 1024)

/** A client TCP connection. */
struct px_conn {
	uv_tcp_t h;
	uv_timer_t idle;
	struct px_worker *w;
	unsigned refs; /* 1 while handles are open + 1 per txn + 1 per pending write */
	unsigned handles_open;
	unsigned inflight;
	bool closing;
	bool eof; /* client half-closed: answer what is in flight, then close */
	bool reading;
	bool backlogged;             /* answers unread past PX_CONN_WQ_HIGH: not reading */
	struct px_rbuf in;           /* TCP: frames; TLS: ciphertext, fed at once */
	struct px_conn *prev, *next; /* worker's list, for shutdown */

	enum px_conn_kind kind;
	bool gauged;            /* counted in the worker's open_* gauge */
	struct tls_stream *tls; /* DoT, DoH */
	struct px_rbuf plain;   /* DoT: decrypted frames waiting to be peeled */
	struct px_doh *doh;     /* DoH: the HTTP/2 session (doh.c) */
	int32_t cur_stream;     /* DoH: the stream px_conn_send() answers */

	/* Answers wait here until the worker's check phase writes them all
	 * at once: one TLS record and one system call for a burst. */
	struct px_rbuf out; /* TCP: frames; DoT: plaintext frames */
	bool flush_queued;  /* on the worker's flush list (holds a ref) */
	struct px_conn *flush_next;

	/* The client's address (px_conn_client): the source a PROXY v2
	 * header named, or the peer's, asked of the kernel once. */
	bool peer_known;
	struct sockaddr_storage peer;
	/* apexd's end of the connection, for dnstap, asked once. */
	bool local_known;
	struct sockaddr_storage local;
	/* From a [listen] proxy-protocol-from source: the connection's first
	 * bytes must be a PROXY v2 header (listen/proxyv2.c). */
	bool pp2_wait;

	/* Handed to another worker (listen/move.c): at its next quiet
	 * moment, with reading paused until then, the connection goes to
	 * worker move_to. moved_fd is its socket between the two loops. */
	bool move;
	unsigned move_to;
	int moved_fd;
	struct px_conn *post_next; /* on move_to's posts until it adopts */
};

void px_conn_send(struct px_conn *c, const uint8_t *msg, size_t len);
void px_conn_query_done(struct px_conn *c);
void px_conn_unref(struct px_conn *c);
void px_conn_close(struct px_conn *c);
/* Has the client left PX_CONN_WQ_HIGH bytes of answers unread? */
bool px_conn_backlogged(const struct px_conn *c);
/* Writes out the answers queued on connections (the check handle). */
void px_conn_flush_all(struct px_worker *w);
/* Has the connection's output written at the end of this loop turn. */
void px_conn_queue_flush(struct px_conn *c);
/* Who is asking over c: the source its PROXY v2 header named, else the
 * peer's address (asked once, then kept); NULL if the kernel no longer
 * knows it. Valid while c lives. */
const struct sockaddr *px_conn_client(struct px_conn *c);
/* listen/move.c, from the worker's wake-up: takes the connections other
 * workers handed over, and picks those of its own that should move
 * since the number of active workers changed. */
void px_conn_adopt(struct px_worker *w);
void px_conn_rebalance(struct px_worker *w);

/* The transport a query came in on, for the statistics. */
static inline enum px_transport px_transport_of(enum px_origin origin, const struct px_conn *conn)
{
	if (origin == PX_ORIGIN_UDP || conn == NULL)
		return PX_TR_UDP;
	return conn->kind == PX_CONN_DOT   ? PX_TR_DOT
	       : conn->kind == PX_CONN_DOH ? PX_TR_DOH
	                                   : PX_TR_TCP;
}
