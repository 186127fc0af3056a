/* proxy/health/health.h - health checks of the addresses flattened
 * answers carry (issue 17).
 *
 * A checker thread with a libuv loop of its own probes every address an
 * answer used recently, with the check of the owner's zone ([health]
 * check, [zone] check): a TCP connect, a TLS handshake whose certificate
 * must verify for the owner name, or an HTTP GET. An address is down
 * after [health] fall consecutive failures and up again after rise
 * successes; one not yet known counts as up.
 *
 * The answer path asks px_health_down() for each address: a lookup in a
 * table the checker alone writes, read with atomics only (no lock, no
 * allocation). An address the table does not hold is handed to the
 * checker, which starts checking it; only that hand-over takes a lock.
 * Each answer marks the entries it used; an entry nobody used for
 * max(3 x interval, 60 s) stops being checked and is dropped, and a
 * reload drops at once the entries of a check no zone uses any more.
 *
 * Owns: the checker thread, its loop, the table, the probes' sockets.
 * Threads: px_health_down from any worker; px_health_new, _reload and
 * _free on the main thread; _explain and _render from the main or the
 * metrics thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct px_health;
struct px_sbuf;

/** Addresses checked at most, all owners together: a miss past it is
 *  not handed over (the address counts as up and goes unchecked). */
#define PX_HEALTH_MAX_ADDRS 16384
/** Probes in flight at most; checks due beyond it wait for the next tick
 *  of the checker. Each holds a socket (and a TLS object for tls:). */
#define PX_HEALTH_MAX_INFLIGHT 256
/** Owners whose addresses get metric labels of their own; the rest are
 *  summed under owner="_other", so a flood of owners cannot blow up the
 *  metrics. */
#define PX_HEALTH_METRIC_OWNERS 32
/** An entry unused for max(this, 3 x interval) is dropped. */
#define PX_HEALTH_IDLE_MIN_MS 60000

/** What the answer path knows when it asks (ctx-issue17 seam). */
struct px_health_ask {
	struct px_health *h;
	const struct cfg_check *check; /**< the zone's effective check; kind NONE: no checks */
	const uint8_t *owner;          /**< wire form, any case (folded as it is keyed) */
	uint8_t owner_len;
	/* Filled by the first px_health_down() call and reused for the
	 * next addresses of the same answer: zero them (designated
	 * initializer) when building an ask. */
	uint16_t key_qtype;
	uint64_t key;
};

/**
 * Is this address (4 or 16 octets by qtype A/AAAA) of the owner down?
 * Matches flat_health_down_fn. Never blocks for a known address: atomic
 * loads and, once a second per entry, a relaxed store marking it used.
 * An unknown address is up and is handed to the checker (a mutex then).
 * False when ask->h is NULL or the check is none.
 */
bool px_health_down(void *ask, const uint8_t *addr, uint16_t qtype);

/**
 * Is any address down, under any check (one relaxed load of a counter
 * the checker changes at each down/up)? When none is, no answer can lose
 * an address, and the answer path need only ask px_health_down() about
 * an owner's addresses once a second (px_health_clock()), for their marks
 * and for the addresses the checker has not seen yet. False for NULL.
 */
bool px_health_any_down(const struct px_health *h);
/** Mixes name[0..len) into x, eight octets a step, ASCII case folded:
 *  the hash px_health_key() takes of an owner, for the answer path's own
 *  keys of owners (flat/health.c). */
uint64_t px_health_mix_name(uint64_t x, const uint8_t *name, size_t len);
/** The checker's clock in seconds, the unit of px_health_down()'s marks. */
uint32_t px_health_clock(const struct px_health *h);

/**
 * Creates the health state for srv's first configuration; the checker
 * thread starts when some zone has a check (now, or at a reload).
 * @return NULL when out of memory (then no checks; logged).
 */
struct px_health *px_health_new(const struct cfg *cfg);

/**
 * Applies cfg (a reload): interval, timeout, fall, rise for the next
 * checks; the entries of checks no zone uses any more are dropped.
 * Starts the checker if cfg has checks and it does not run yet.
 * Call before the workers see cfg. Main thread.
 */
void px_health_reload(struct px_health *h, const struct cfg *cfg);

/** Stops the checker (probes in flight are abandoned) and frees h.
 *  After the workers ended. NULL is fine. */
void px_health_free(struct px_health *h);

/**
 * Writes one line per address of addrs[0..n) (4 or 16 octets by qtype)
 * to b: its health for owner under check, the age of its last check and
 * why it is down. Nothing when check is none.
 */
void px_health_explain(struct px_health *h, const struct cfg_check *check, const uint8_t *owner,
                       size_t owner_len, uint16_t qtype, const uint8_t (*addrs)[16], unsigned n,
                       struct px_sbuf *b);

/** Appends the checker's counters and per-owner gauges to b, as text
 *  ("name=value") or Prometheus. NULL h writes zeros. */
void px_health_render(struct px_health *h, bool prometheus, struct px_sbuf *b);
