/* proxy/flat/upstream.h - apexd's own queries to BIND and to resolvers.
 *
 * Queries belong to a home: a loop with its list of queries in flight.
 * Each worker is one (px_up_query()); any other loop may be one too (the
 * main thread's, for apexctl explain: px_up_send()).
 * Threads: the home's loop only.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

struct px_stats;
struct px_tap_port;
struct px_up;
struct px_up_sock;
struct px_worker;

/* A loop's own queries: a worker's (px_worker.own), or the control
 * socket's for explain. */
struct px_own_queries {
	struct px_up *ups;        /* in flight, for cancelling */
	unsigned n_ups;           /* at most PX_UP_MAX_INFLIGHT */
	struct px_up_sock *socks; /* UDP sockets with queries on them (upstream.c) */
	/* Ended UDP queries kept for the next, when the home outlives every
	 * close callback of its loop (a worker's: px_up_spare_free() after
	 * the loop has closed); false elsewhere. */
	bool keep_spare;
	struct px_up *spare;
	unsigned n_spare;
	uint8_t *rx;       /* PX_UDP_DGRAM_MAX, their UDP answers */
	unsigned n_chases; /* chases in flight, at most PX_CHASE_MAX_INFLIGHT */
};

/* Where own queries run: a loop and its queries' storage (a worker's,
 * px_up_home_of(), or another loop's). */
struct px_up_home {
	uv_loop_t *loop;
	struct px_own_queries *own;
	struct px_stats *stats; /* upstream_busy; NULL: not counted */
	/* dnstap-chases: the queries and their answers are logged as
	 * FORWARDER_* through this port of the home's thread; NULL: not
	 * (what the caller sets for anything but a resolver). */
	struct px_tap_port *tap;
};

/* apexd's own queries (probes, chase steps, SOA lookups) in flight per
 * worker. Each holds a timer and a share of a UDP socket (a TCP one holds
 * a connection); chases outlive the client query that started them, so
 * without a bound a flood of cache misses would hold memory and, over
 * TCP, file descriptors, taking client TCP with it.
 * Past it a query is not sent (-EBUSY): a chase fails over as if the
 * resolver timed out, a probe is tried again shortly (flat/probe.c). */
#define PX_UP_MAX_INFLIGHT 4096

enum {
	PX_UP_WAIT = 0, /**< not the answer to this query: keep waiting */
	PX_UP_DONE = 1, /**< answer taken (or failure seen): the query is over */
};

/**
 * Called with each answer (status 0, msg/len valid for the call only),
 * or once with a negative libuv status and no message: UV_ETIMEDOUT,
 * UV_ECONNREFUSED, UV_ECONNRESET, UV_ECANCELED (worker shutting down).
 * Returns PX_UP_WAIT to ignore a mismatched answer (only meaningful with
 * status 0) or PX_UP_DONE. The callback may start new queries.
 */
typedef int px_up_cb(void *arg, int status, const uint8_t *msg, size_t len);

/**
 * Sends q[0..qlen) to server: over UDP from one of a few sockets on random
 * ports shared by the home's queries to that server (upstream.c says why
 * and how they rotate), over TCP on a connection of its own; and calls
 * cb as answers arrive until it returns PX_UP_DONE or
 * timeout_ms passes. The query bytes are copied.
 * @return 0, or a negative errno (-EBUSY: PX_UP_MAX_INFLIGHT queries of
 *         this worker are in flight); on error cb is never called.
 */
int px_up_query(struct px_worker *w, const struct sockaddr *server, const uint8_t *q, size_t qlen,
                bool tcp, uint64_t timeout_ms, px_up_cb *cb, void *arg);

/** The home of worker w's queries (not logged to dnstap). */
void px_up_home_of(struct px_up_home *home, struct px_worker *w);

/** px_up_query() for any home. */
int px_up_send(const struct px_up_home *home, const struct sockaddr *server, const uint8_t *q,
               size_t qlen, bool tcp, uint64_t timeout_ms, px_up_cb *cb, void *arg);

/** Ends every query of the home, each callback seeing UV_ECANCELED. */
void px_up_cancel_home(const struct px_up_home *home);

/** Ends every query of the worker, each callback seeing UV_ECANCELED. */
void px_up_cancel_all(struct px_worker *w);

/** Frees the kept ended queries of own (its loop closed). */
void px_up_spare_free(struct px_own_queries *own);

/** A query ID from the kernel's CSPRNG (fetched in batches per thread). */
uint16_t px_up_random_id(void);
