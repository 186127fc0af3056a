/* proxy/ops/dnstap.h - dnstap ([server] dnstap, dnstap-chases).
 *
 * One sink per destination (unix:PATH or file:PATH): a Frame Streams
 * writer (libfstrm's fstrm_iothr) with a thread of its own that writes,
 * connects and reconnects, and one bounded single-producer input queue
 * per worker. A worker encodes each message (dnstap_pb.h) into a buffer
 * of its own and hands it to its queue without waiting: while the
 * destination is not open, or when the queue is full, the message is
 * dropped and counted (dnstap_dropped), never waited for. Handed over
 * messages are counted in dnstap_sent.
 *
 * What is logged (docs/operations.md, "dnstap"): for every client query
 * apexd answers, one AUTH_QUERY and one AUTH_RESPONSE with the exact
 * bytes the client sent and got; with dnstap-chases, each of apexd's own
 * queries to a resolver (not to BIND) as FORWARDER_QUERY and each answer
 * as FORWARDER_RESPONSE.
 *
 * Off, it costs the test of a worker-local bool per answer.
 * Threads: open/post/unref on main (unref from any thread: the last one
 * off main hands the blocking teardown to a thread of its own); the rest
 * on the worker that owns the port.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/engine/txn.h"
#include "proxy/ops/dnstap_pb.h"

struct px_conn;
struct px_dnstap;
struct px_server;
struct px_tap_port;
struct px_udp_listener;
struct px_worker;

/* Messages one worker may have waiting for the writer thread (a power of
 * two, libfstrm's rule). Two per query: 2048 queries' worth rides out a
 * burst or a collector's pause of a few milliseconds at 100k queries a
 * second per worker; past it messages are dropped rather than memory
 * growing. */
#define PX_DNSTAP_QUEUE 4096
/* Longest a write to or a read from the collector's socket may block
 * the writer thread: a collector that stops reading is cut off then
 * (and reconnected), so shutdown never hangs on it. */
#define PX_DNSTAP_IO_TIMEOUT_MS 5000
/* Seconds between attempts to reach an absent collector (libfstrm's
 * smallest reopen interval). */
#define PX_DNSTAP_REOPEN_S 1

/**
 * Starts a sink for dest ("unix:/path" or "file:/path", as validated by
 * config/) with n_queues input queues (one per worker). The writer
 * thread connects at once and again every PX_DNSTAP_REOPEN_S while the
 * collector is absent; an absent collector is not an error.
 * @return 0, or a negative errno with err saying why (NUL-terminated).
 */
int px_dnstap_open(const char *dest, unsigned n_queues, struct px_dnstap **out, char *err,
                   size_t errlen);
/** Drops a reference; the last one flushes and stops the sink. NULL is fine. */
void px_dnstap_unref(struct px_dnstap *d);
/** Waits (bounded) for sinks being stopped off the main thread; at exit. */
void px_dnstap_wait_retired(void);

/** Hands d (NULL: off) to every worker, a reference each; main thread. */
void px_dnstap_post(struct px_server *srv, struct px_dnstap *d);
/** Worker: takes a posted sink (in its async callback). */
void px_dnstap_adopt(struct px_worker *w);
/** Worker: lets go of its sink (at exit). */
void px_dnstap_worker_deinit(struct px_worker *w);

/** Worker: AUTH_QUERY (first: the first answer of t) and AUTH_RESPONSE
 *  for txn t answered with ans[0..len), as the client gets it. */
void px_dnstap_txn(struct px_worker *w, struct px_txn *t, const uint8_t *ans, size_t len,
                   bool first);
/** Worker: the same for a query answered without a txn (answer cache,
 *  FORMERR, overload, RRL slip, NOTIFY); rx_ns 0 when not known. */
void px_dnstap_direct(struct px_worker *w, enum px_origin origin, struct px_udp_listener *ul,
                      const struct px_udp_local *local, const struct sockaddr *peer,
                      struct px_conn *conn, const uint8_t *q, size_t qlen, const uint8_t *ans,
                      size_t len, uint64_t rx_ns);

/** Now, as dnstap writes times. */
void px_dnstap_now(struct px_tap_time *t);
/** FORWARDER_QUERY (resp NULL) or FORWARDER_RESPONSE for one of apexd's
 *  own queries, on the thread that owns port p; sent is when the query
 *  left. local is apexd's end of the socket (NULL: unknown). */
void px_dnstap_forward(struct px_tap_port *p, bool tcp, const struct sockaddr *local,
                       const struct sockaddr *server, const struct px_tap_time *sent,
                       const uint8_t *q, size_t qlen, const uint8_t *resp, size_t rlen);
