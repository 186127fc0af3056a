/* proxy/daemon/server.h - the state every worker shares, the server's life
 * (server.c) and reload (reload.c). Main thread unless said otherwise. */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/flat/siblings.h"

struct flat_cache;
struct flat_zones;
struct px_ctl;
struct px_dnstap;
struct px_gen;
struct px_health;
struct px_metrics;
struct px_qlog_file;
struct px_tcp_listener;
struct px_udp_listener;
struct px_worker;
struct tls_ctx;

/** State every worker shares; set up by px_server_start before the threads start. */
struct px_server {
	/* The current generation and, for the main thread and the control
	 * socket, its parts (workers read their own w->gen instead). All
	 * change only on the main thread, in px_server_reload(). */
	struct px_gen *gen;
	uv_mutex_t gen_mu; /* guards gen for threads other than main (metrics.c) */
	const struct cfg *cfg;
	struct flat_cache *cache;        /* targets and ANAME presence, all workers */
	struct flat_zones *zones;        /* [zone] sections, by cfg->zones index */
	struct flat_zones *alias_owners; /* [alias] owners, by cfg->aliases index */
	struct tls_ctx *tls_dot;         /* [tls] with ALPN "dot", NULL without DoT */
	struct tls_ctx *tls_doh;         /* [tls] with ALPN "h2", NULL without DoH */
	atomic_uint tcp_conns;           /**< client TCP connections, all workers */
	atomic_bool stopping;            /**< SIGTERM/SIGINT seen */
	atomic_uint anscache_gen;        /**< bumped by a backend NOTIFY: flushes answer caches */
	atomic_uint active;              /**< workers taking queries, new connections (steer.c) */
	atomic_uint steer_pin;           /**< apexctl workers N; 0 = the steering rule decides */
	struct px_qlog_file *qlog;       /**< main's reference to the query log, NULL when off */
	struct px_dnstap *tap;           /**< main's reference to the dnstap sink, NULL when off */
	struct px_worker *workers;
	unsigned n_workers;
	unsigned n_started;            /**< worker threads running (server.c) */
	struct px_ctl *ctl;            /**< [server] control, main thread (control.c) */
	struct px_metrics *metrics;    /**< [listen] metrics, its own thread (metrics.c) */
	uint64_t started_ms;           /**< uv_hrtime() / 1e6 at startup, for uptime */
	struct px_sib *sib;            /**< sibling upkeep, main thread (flat/siblings.c) */
	struct px_sib_stats sib_stats; /**< its counters, read by the metrics thread */
	struct px_health *health; /**< [health] checks, their own thread (health/); may be NULL */
};

/** A reload for one worker: the generation and the sockets main bound
 *  for listeners the new file adds. */
struct px_reload_post {
	struct px_gen *gen; /* a reference for the worker */
	struct px_udp_listener **udp;
	size_t n_udp;
	struct px_tcp_listener **tcp;
	size_t n_tcp;
	struct px_reload_post *next;
};

/* bind.c: frees a post that was not applied: the listeners in it are
 * closed, its generation reference dropped. NULL is fine. */
void px_reload_post_free(struct px_reload_post *p);

/**
 * Re-reads the configuration file and applies it: zones, aliases,
 * resolvers, flattening and cache settings, TTL bounds, log level,
 * certificates, the query log, listeners added or removed. Queries in
 * flight finish under the configuration they started with. A file that
 * does not load or validate, a [tls] that does not load or an address
 * that cannot be bound keeps the running configuration and logs every
 * error. [server] threads and [backend] address are not applied (a
 * restart is needed): each such change is logged.
 * Main thread only (SIGHUP, the control socket).
 * @return 0 or -1; msg gets one line saying what happened (NUL-terminated).
 */
int px_server_reload(struct px_server *srv, char *msg, size_t msglen);

/* server.c. The life of a server, in this order: start, then (with the
 * caller's signal handlers in place on loop) open and run, then stop.
 * Stop undoes whatever start and open did, also after they failed. */

/* Builds the first generation from cfg (owned by it from then on, freed
 * on failure too), opens the query log, binds every listener, drops
 * privileges. 0, or negative after logging why. */
int px_server_start(struct px_server *srv, struct cfg *cfg);
/* Opens the control socket and the metrics endpoint on loop, starts the
 * worker threads and logs that apexd serves. On failure, what it started
 * is told to stop; the caller closes its own handles on loop and still
 * calls px_server_run so that they close. */
int px_server_open(struct px_server *srv, uv_loop_t *loop);
/* Runs loop until every handle on it closed, then waits for the workers
 * and logs their counters. */
void px_server_run(struct px_server *srv, uv_loop_t *loop);
/* Tells the running workers to finish the queries in flight and end. */
void px_server_stopping(struct px_server *srv);
void px_server_stop(struct px_server *srv, uv_loop_t *loop);
