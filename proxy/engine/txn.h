/* proxy/engine/txn.h - one client query in flight.
 *
 * A client query lives in a struct px_txn (fixed slots per worker, no
 * allocation for queries up to PX_TXN_INLINE bytes) from the moment it is
 * read until its answer is written. The client's message goes to the
 * backend unchanged, ID included, so the backend side is multiplexed by
 * socket: a query takes a backend UDP socket on which its ID is free, and
 * an answer is matched on socket + ID + question (backend/).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "codec/scan.h"

struct px_bconn;
struct px_bsock;
struct px_conn;
struct px_flat;
struct px_gen;
struct px_udp_listener;
struct px_worker;

/* Queries up to this size are kept inside the slot; larger ones (rare:
 * UPDATE with big RRsets) are copied to the heap. 512 covers every plain
 * query with EDNS, a cookie and a TSIG. */
#define PX_TXN_INLINE 512
/* Slots per worker: bounds memory and in-flight queries per thread. */
#define PX_TXN_SLOTS 8192

enum px_origin {
	PX_ORIGIN_UDP,
	PX_ORIGIN_TCP,
};

/** One client query in flight. */
struct px_txn {
	uint32_t idx;
	uint32_t gen;
	bool busy;
	bool qlogged;     /**< its query-log line is written */
	uint8_t flat_how; /**< enum px_flat_how, for the query log */
	/* An answer from the caches alone (flatten.c answer_direct): its
	 * target, borrowed while the answer is written, for the query log. */
	const uint8_t *direct_target;
	uint8_t direct_target_len;
	uint8_t direct_hops;
	struct px_gen *g;       /**< the generation it started under (px_gen_hold) */
	uint64_t qlog_start_ns; /**< uv_hrtime() at arrival, only with a query log */
	enum px_origin origin;
	bool via_tcp;   /**< currently waiting on a backend TCP connection */
	bool xfr;       /**< AXFR/IXFR relayed message by message */
	bool keepalive; /**< the query carries edns-tcp-keepalive (RFC 7828) */
	uint16_t bid;   /**< the ID on the wire to the backend (see backend.c) */

	/* Client side. */
	struct px_udp_listener *ul;   /* UDP origin */
	struct sockaddr_storage peer; /* UDP origin */
	struct px_conn *conn;         /* TCP origin; holds a reference */
	int32_t doh_stream;           /* DoH: the HTTP/2 stream to answer on */
	uint64_t rx_ns;               /* uv_hrtime() when the query was read, for latency */
	bool answered;                /* counted in the statistics (an XFR answers often) */

	/* The query, unchanged. */
	uint8_t *q;
	uint16_t qlen;
	struct codec_view qv;
	uint8_t qinline[PX_TXN_INLINE];

	/* Backend side. */
	struct px_bsock *bsock; /* UDP socket the query went out on, or NULL */
	struct px_bconn *bconn; /* TCP connection it waits on, or NULL */
	struct px_txn *bnext;   /* next txn waiting on the same bconn */

	/* Flattening (flatten.c); fl is allocated only when it engages. */
	bool flat_eligible; /* A/AAAA/ANY/ANAME query inside a configured zone */
	uint16_t zone_idx;
	bool is_apex;
	uint64_t start_ms;
	struct px_flat *fl;

	/* Zone transfer progress (RFC 5936: ends with the first SOA repeated). */
	uint32_t xfr_msgs;
	uint32_t xfr_soa_serial;
	bool xfr_soa_seen;

	/* Deadline list (ascending deadlines: append at the tail). */
	uint64_t deadline_ms;
	struct px_txn *prev, *next;
	struct px_txn *free_next;
};

/* txn.c */
struct px_txn *px_txn_new(struct px_worker *w);
void px_txn_free(struct px_worker *w, struct px_txn *t);
void px_txn_arm(struct px_worker *w, struct px_txn *t, uint64_t timeout_ms);
void px_txn_disarm(struct px_worker *w, struct px_txn *t);
int px_txn_set_query(struct px_txn *t, const uint8_t *q, size_t len, const struct codec_view *v);
void px_deadline_cb(uv_timer_t *h);
/* Sends an answer (relayed or built) to the client of t. */
void px_txn_reply(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
/* Ends t with SERVFAIL + EDE and frees it. */
void px_txn_fail(struct px_worker *w, struct px_txn *t, uint16_t ede, const char *why);
/* Ends t (answer already sent) and frees it. */
void px_txn_done(struct px_worker *w, struct px_txn *t);
/* Ends t whose answer broke off midway (a zone transfer): too late for
 * SERVFAIL, so a TCP client's connection is closed instead. */
void px_txn_cut(struct px_worker *w, struct px_txn *t);
