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
#include "proxy/backend/leg.h"
#include "proxy/flat/state.h"
#include "proxy/listen/origin.h"
#include "proxy/ops/qlog_part.h"

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

/** The transaction slots of a worker and their deadline list. */
struct px_txn_slots {
	struct px_txn *txns; /* PX_TXN_SLOTS of them */
	struct px_txn *free;
	struct px_txn *dl_head, *dl_tail; /* ascending deadlines: append at the tail */
	unsigned inflight;
};

/**
 * One client query in flight. Its parts belong to the rooms that fill
 * them: cl to the transport it came in on (listen/), be to the backend
 * leg (backend/), flat to flattening (flat/), ql to the query log (ops/);
 * the rest is the engine's.
 */
struct px_txn {
	uint32_t idx;
	uint32_t gen;
	bool busy;
	bool answered;  /* counted in the statistics (an XFR answers often) */
	bool xfr;       /**< AXFR/IXFR relayed message by message */
	bool keepalive; /**< the query carries edns-tcp-keepalive (RFC 7828) */
	enum px_origin origin;
	struct px_gen *g; /**< the generation it started under (px_gen_hold) */
	uint64_t rx_ns;   /* uv_hrtime() when the query was read, for latency */

	/* The query, unchanged. */
	uint8_t *q;
	uint16_t qlen;
	struct codec_view qv;

	struct px_txn_client cl;
	struct px_txn_backend be;
	struct px_txn_flat flat;
	struct px_qlog_txn ql;

	/* Deadline list (ascending deadlines: append at the tail). */
	uint64_t deadline_ms;
	struct px_txn *dl_prev, *dl_next;
	struct px_txn *free_next;

	/* Last, so that clearing a slot stops short of it (px_txn_new). */
	uint8_t qinline[PX_TXN_INLINE];
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
/* The backend could not take t's query (err, a libuv error): logged with
 * a rate limit, counted in backend_errors, and t ends with SERVFAIL +
 * EDE 23 saying "<pre>backend ADDRESS<post>: error". */
void px_txn_fail_backend(struct px_worker *w, struct px_txn *t, const char *pre, const char *post,
                         int err);
/* Ends t (answer already sent) and frees it. */
void px_txn_done(struct px_worker *w, struct px_txn *t);
/* Ends t whose answer broke off midway (a zone transfer): too late for
 * SERVFAIL, so a TCP client's connection is closed instead. */
void px_txn_cut(struct px_worker *w, struct px_txn *t);
