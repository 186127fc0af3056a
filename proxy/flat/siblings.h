/* proxy/flat/siblings.h - sibling upkeep: A/AAAA at ANAME and [alias]
 * owners kept in BIND by RFC 2136 UPDATE (issue 13, `siblings = update`).
 *
 * Runs on the main thread's loop, beside the control socket: it has no
 * client to answer, so it never takes a worker's time. Per zone it
 * transfers the zone from the backend (AXFR, then IXFR on the backend's
 * NOTIFY and at the SOA refresh), chases every owner's target with the
 * query path's chase runner and target cache, and writes what changed in
 * one TSIG-signed UPDATE per zone per batch. BIND signs what it writes
 * and notifies secondaries; apexd never signs.
 * Threads: main, except px_sib_notify (any).
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct px_sbuf;
struct px_server;
struct px_sib;

/** Counters of sibling upkeep; written on main, read by the metrics
 *  thread (relaxed atomics, as struct px_stats). */
enum px_sib_xfr_kind { PX_SIB_AXFR = 0, PX_SIB_IXFR, PX_SIB_XFR_KINDS };
enum px_sib_xfr_result {
	PX_SIB_XFR_OK = 0,
	PX_SIB_XFR_UPTODATE,
	PX_SIB_XFR_FAILED,
	PX_SIB_XFR_RESULTS
};
enum px_sib_upd_result {
	PX_SIB_UPD_OK = 0,
	PX_SIB_UPD_REFUSED,
	PX_SIB_UPD_NOTAUTH,
	PX_SIB_UPD_PREREQ,
	PX_SIB_UPD_TIMEOUT,
	PX_SIB_UPD_ERROR,
	PX_SIB_UPD_RESULTS,
};

struct px_sib_stats {
	_Atomic uint64_t zones;  /**< gauge: zones with siblings = update */
	_Atomic uint64_t owners; /**< gauge: owners tracked */
	_Atomic uint64_t bytes;  /**< gauge: memory of the owner tables */
	_Atomic uint64_t transfers[PX_SIB_XFR_KINDS][PX_SIB_XFR_RESULTS];
	_Atomic uint64_t updates[PX_SIB_UPD_RESULTS];
	_Atomic uint64_t changes;        /**< RRsets written or deleted */
	_Atomic uint64_t chase_failures; /**< chases that left the siblings in place */
	_Atomic uint64_t refreshes;      /**< owner families looked up (cache or chase) */
	_Atomic uint64_t chases;         /**< of which chased (the cache had nothing fresh) */
	_Atomic uint64_t chase_queries;  /**< queries those chases sent */
};

const char *px_sib_xfr_kind_name(enum px_sib_xfr_kind k);     /* "axfr" */
const char *px_sib_xfr_result_name(enum px_sib_xfr_result r); /* "ok" */
const char *px_sib_upd_result_name(enum px_sib_upd_result r); /* "refused" */

/** Starts upkeep for srv's current generation on loop (after the first
 *  generation is published). 0, or negative after logging why. */
int px_sib_start(struct px_server *srv, uv_loop_t *loop);
/** The generation changed (reload): zones added start, zones removed
 *  stop, the rest transfer again with the new aliases and key. */
void px_sib_reload(struct px_server *srv);
/** Stops upkeep: queries in flight are cancelled, handles closed. */
void px_sib_stop(struct px_server *srv);
/** The backend sent a NOTIFY for zone (uncompressed wire name): transfer
 *  it again soon. Any thread; a no-op for zones without siblings. */
void px_sib_notify(struct px_server *srv, const uint8_t *zone, size_t len);
/** Appends the "siblings:" block of explain for owner name to b; false
 *  (nothing written) when name is no tracked owner. */
bool px_sib_explain(struct px_server *srv, const uint8_t *name, size_t len, struct px_sbuf *b);
/** Frees what px_sib_start allocated, after the workers ended. */
void px_sib_free(struct px_server *srv);
