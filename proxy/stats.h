/* proxy/stats.h - per-worker counters.
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
	X(tls_handshake_timeouts, "DoT/DoH connections closed: no TLS handshake in time")          \
	X(tcp_slow_reader_paused, "times a client's queries went unread: its answers piled up")    \
	X(tcp_slow_reader_closed, "client connections cut off: answers unread past the cap")       \
	X(tcp_fd_refused, "client TCP connections refused: file descriptors running out")          \
	X(udp_send_errors, "replies that could not be sent to a UDP client")                       \
	X(answers_flattened, "answers rewritten with addresses apexd resolved")                    \
	X(answers_flattened_local, "answers flattened from BIND's own in-zone chain")              \
	X(answers_flattened_direct,                                                                \
	  "flattened answers served from the caches without the backend")                          \
	X(answers_stale, "flattened answers served stale (RFC 8767, EDE 3)")                       \
	X(answers_sibling, "chase failed: BIND's sibling addresses relayed")                       \
	X(answers_flatten_failed, "chase failed: SERVFAIL with an Extended DNS Error")             \
	X(answers_flatten_deadline, "flattened answers that hit the deadline")                     \
	X(signed_relayed, "flattenable answers relayed unflattened: signed zone, DO=1")            \
	X(aname_probes, "ANAME presence probes sent to the backend")                               \
	X(aname_invalid, "ANAME records ignored: RDATA not exactly one name")                      \
	X(cache_hits, "target cache hits (fresh)")                                                 \
	X(cache_misses, "target cache misses")                                                     \
	X(cache_coalesced, "lookups that waited on another query's chase")                         \
	X(chases, "chases started (cache miss or refresh)")                                        \
	X(chase_queries, "queries sent by chases to resolvers or the backend")                     \
	X(chase_failures, "chases that ended in failure")                                          \
	X(prefetches, "chases started to refresh an entry before it expires")                      \
	X(chase_refused, "chases not started: too many in flight on the worker")                   \
	X(notify_flushes, "NOTIFYs from the backend that flushed a zone's cache")                  \
	X(rrl_dropped, "UDP answers dropped by [limits] responses-per-second")                     \
	X(rrl_slipped, "UDP answers sent as empty TC=1 replies by [limits] slip")                  \
	X(upstream_busy, "probes and chase steps not sent: PX_UP_MAX_INFLIGHT in flight")

struct px_stats {
#define X(name, help) _Atomic uint64_t name;
	PX_STATS(X)
#undef X
};

#define PX_STAT_INC(st, field)                                                                     \
	atomic_store_explicit(&(st)->field,                                                        \
	                      atomic_load_explicit(&(st)->field, memory_order_relaxed) + 1,        \
	                      memory_order_relaxed)

/** Adds every counter of src into the plain array sum (PX_STATS order). */
void px_stats_add(uint64_t *sum, const struct px_stats *src);

/** Number of counters, and the name of counter i. */
size_t px_stats_count(void);
const char *px_stats_name(size_t i);
