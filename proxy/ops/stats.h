/* proxy/ops/stats.h - per-worker counters.
 *
 * Each worker owns one struct px_stats and is its only writer: increments
 * are a relaxed load and store, no locked instruction on the hot path.
 * Readers (the main thread at exit, later the control socket) sum all
 * workers with relaxed loads; TSAN-clean, unbound's per-thread model.
 * Names are stable: they are the operator-visible counter names.
 */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "flatten/chase.h"

/* X-macro: name, help. */
#define PX_STATS(X)                                                                                \
	X(queries_udp, "queries received over UDP")                                                \
	X(queries_tcp, "queries received over TCP")                                                \
	X(answers_relayed, "backend answers relayed to clients")                                   \
	X(answers_cached, "answers served from the answer cache ([cache] answers)")                \
	X(malformed_dropped, "client messages dropped: header unreadable or QR=1")                 \
	X(formerr_sent, "FORMERR replies to malformed client messages")                            \
	X(servfail_sent, "SERVFAIL replies written by apexd")                                      \
	X(backend_timeouts, "queries the backend did not answer in time")                          \
	X(backend_errors, "queries failed by a network error towards the backend")                 \
	X(backend_tc_retries, "truncated backend answers retried over TCP")                        \
	X(backend_unmatched, "backend answers matching no query (late or foreign)")                \
	X(xfr_relayed, "zone transfers relayed over TCP")                                          \
	X(txn_full, "queries refused because every transaction slot was busy")                     \
	X(id_busy, "queries refused because their ID was in flight on every backend socket")       \
	X(tcp_connections, "client TCP connections accepted")                                      \
	X(dot_connections, "client DNS-over-TLS connections accepted")                             \
	X(doh_connections, "client DNS-over-HTTPS connections accepted")                           \
	X(queries_dot, "queries received over DNS-over-TLS")                                       \
	X(queries_doh, "queries received over DNS-over-HTTPS")                                     \
	X(doh_http_errors, "DoH requests answered with an HTTP error status")                      \
	X(tcp_refused, "client TCP connections closed at once: max-connections reached")           \
	X(tcp_idle_closed, "client TCP connections closed by tcp-idle-timeout")                    \
	X(conns_moved, "client TCP, DoT and DoH connections handed to another worker")             \
	X(tls_handshake_timeouts, "DoT/DoH connections closed: no TLS handshake in time")          \
	X(tcp_slow_reader_paused, "times a client's queries went unread: its answers piled up")    \
	X(tcp_slow_reader_closed, "client connections cut off: answers unread past the cap")       \
	X(tcp_fd_refused, "client TCP connections refused: file descriptors running out")          \
	X(udp_send_errors, "replies that could not be sent to a UDP client")                       \
	X(udp_steer_changes, "times the number of workers taking UDP queries changed")             \
	X(udp_steer_trials, "trials of another number of workers taking UDP queries")              \
	X(proxy_v2_accepted, "PROXY v2 headers believed: their source was the client")             \
	X(proxy_v2_local, "PROXY v2 headers naming no client (LOCAL): the balancer was")           \
	X(proxy_v2_dropped,                                                                        \
	  "datagrams and connections from proxy-protocol-from without a valid PROXY v2 header")    \
	X(answers_flattened, "answers rewritten with addresses apexd resolved")                    \
	X(answers_flattened_local, "answers flattened from BIND's own in-zone chain")              \
	X(answers_flattened_direct,                                                                \
	  "flattened answers served from the caches without the backend")                          \
	X(answers_stale, "flattened answers served stale (RFC 8767, EDE 3)")                       \
	X(answers_sibling, "chase failed: BIND's sibling addresses relayed")                       \
	X(answers_flatten_failed, "chase failed: SERVFAIL with an Extended DNS Error")             \
	X(answers_flatten_deadline, "flattened answers that hit the deadline")                     \
	X(signed_relayed, "flattenable answers relayed unflattened: signed zone, DO=1")            \
	X(aname_probes, "ANAME presence probes sent to the backend (every try)")                   \
	X(aname_probe_unsent, "ANAME probe tries not sent: own-queries cap, memory or socket")     \
	X(aname_probe_retries, "ANAME probe tries after the first (timeout, error, SERVFAIL)")     \
	X(aname_probe_failed, "ANAME probes that ended without a verdict for their query")         \
	X(aname_probe_stale_used,                                                                  \
	  "ANAME probes without a verdict answered from an expired presence entry")                \
	X(aname_invalid, "ANAME records ignored: RDATA not exactly one name")                      \
	X(cache_hits, "target cache hits (fresh)")                                                 \
	X(cache_misses, "target cache misses")                                                     \
	X(cache_coalesced, "lookups that waited on another query's chase")                         \
	X(chases, "chases started (cache miss or refresh)")                                        \
	X(chase_queries, "queries sent by chases to resolvers or the backend")                     \
	X(chase_failures, "chases that ended in failure")                                          \
	X(resolver_timeouts, "chase queries a resolver did not answer in time")                    \
	X(backend_probe_timeouts,                                                                  \
	  "probe, SOA and chase queries the backend did not answer in time")                       \
	X(prefetches, "chases started to refresh an entry before it expires")                      \
	X(chase_refused, "chases not started: too many in flight on the worker")                   \
	X(notify_flushes, "NOTIFYs from the backend that flushed a zone's cache")                  \
	X(rrl_dropped, "UDP answers dropped by [limits] responses-per-second")                     \
	X(rrl_slipped, "UDP answers sent as empty TC=1 replies by [limits] slip")                  \
	X(upstream_busy, "probes and chase steps not sent: PX_UP_MAX_INFLIGHT in flight")          \
	X(dnstap_sent, "dnstap messages handed to the writer thread")                              \
	X(dnstap_dropped, "dnstap messages dropped: destination not open or queue full")           \
	X(health_filtered, "addresses left out of flattened answers: down by [health] checks")     \
	X(answers_health_fail_open,                                                                \
	  "flattened answers with every address down, served all of them (fail open)")

/* Gauges, X-macro: name, help. Values now, raised and lowered by the
 * owning worker (a connection is opened and closed on one loop, so a
 * worker's value never goes below 0; readers sum them). */
#define PX_GAUGES(X)                                                                               \
	X(open_tcp, "client TCP connections open now")                                             \
	X(open_dot, "client DNS-over-TLS connections open now")                                    \
	X(open_doh, "client DNS-over-HTTPS connections open now")                                  \
	X(udp_workers_active, "workers the kernel hands UDP queries to now")

#define PX_GAUGE_COUNT 4

/** Client transports, for the per-transport latency histograms. */
enum px_transport {
	PX_TR_UDP = 0,
	PX_TR_TCP,
	PX_TR_DOT,
	PX_TR_DOH,
	PX_TR_COUNT,
};

/* Latency buckets: upper bounds in microseconds, from a cache hit on
 * loopback (well under 100 us) to the longest [flatten] deadline (30 s);
 * roughly 1-2.5-5 steps, as Prometheus client libraries use. One more
 * bucket, +Inf, follows the last bound. */
#define PX_LAT_BUCKETS 17
extern const uint32_t px_lat_bounds_us[PX_LAT_BUCKETS];

/* RCODEs are 4 bits in the header (RFC 1035 4.1.1); the extended bits in
 * OPT are not counted apart. */
#define PX_RCODES 16

struct px_stats {
#define X(name, help) _Atomic uint64_t name;
	PX_STATS(X)
	PX_GAUGES(X)
#undef X
	_Atomic uint64_t rcode[PX_RCODES];                  /**< answers sent, by header RCODE */
	_Atomic uint64_t chase_fail[FLAT_CHASE_FAIL_COUNT]; /**< failed chases by reason */
	/** Answers by transport and latency bucket (not cumulative; the
	 *  last one is +Inf), with the sum of the latencies in microseconds. */
	_Atomic uint64_t lat[PX_TR_COUNT][PX_LAT_BUCKETS + 1];
	_Atomic uint64_t lat_sum_us[PX_TR_COUNT];
};

/** Everything in struct px_stats, summed over the workers. */
struct px_stats_sum {
	uint64_t *counters;              /**< px_stats_count() entries, PX_STATS order */
	uint64_t gauges[PX_GAUGE_COUNT]; /**< PX_GAUGES order */
	uint64_t rcode[PX_RCODES];
	uint64_t chase_fail[FLAT_CHASE_FAIL_COUNT];
	uint64_t lat[PX_TR_COUNT][PX_LAT_BUCKETS + 1];
	uint64_t lat_sum_us[PX_TR_COUNT];
};

#define PX_STAT_INC(st, field)                                                                     \
	atomic_store_explicit(&(st)->field,                                                        \
	                      atomic_load_explicit(&(st)->field, memory_order_relaxed) + 1,        \
	                      memory_order_relaxed)

#define PX_STAT_ADD(st, field, n)                                                                  \
	atomic_store_explicit(&(st)->field,                                                        \
	                      atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n),      \
	                      memory_order_relaxed)
/* Gauges may go down; unsigned wrap-around makes the sum right anyway. */
#define PX_GAUGE_DEC(st, field) PX_STAT_ADD(st, field, (uint64_t)-1)

/** The part of px_stats_answer after the clock: one answer with this
 *  RCODE (low 4 bits) that took us microseconds. Owner thread only. */
void px_stats_record(struct px_stats *st, enum px_transport tr, unsigned rcode, uint64_t us);

/**
 * Counts one answer sent to a client: its RCODE (header byte 3) and its
 * latency since rx_ns (uv_hrtime() when the query was read). Owner
 * thread only; no lock, no allocation.
 */
void px_stats_answer(struct px_stats *st, enum px_transport tr, const uint8_t *msg, size_t len,
                     uint64_t rx_ns);

/** Adds every counter of src into the plain array sum (PX_STATS order). */
void px_stats_add(uint64_t *sum, const struct px_stats *src);

/** Number of counters, and the name and help text of counter i. */
size_t px_stats_count(void);
const char *px_stats_name(size_t i);
const char *px_stats_help(size_t i);

/** Gauge names and help texts, PX_GAUGES order. */
const char *px_gauge_name(size_t i);
const char *px_gauge_help(size_t i);

/** Name of a transport ("udp", "tcp", "dot", "doh"). */
const char *px_transport_name(enum px_transport tr);

/** Adds everything of src into sum (counters must hold px_stats_count()). */
void px_stats_sum_add(struct px_stats_sum *sum, const struct px_stats *src);
