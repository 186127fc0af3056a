/* proxy/health/internal.h - what the files of proxy/health/ share.
 *
 *   table.c    the shared table: slots the answer path reads with atomics,
 *              the state machine (fall/rise), the hand-over of misses
 *   http.c     the HTTP status line parser
 *   probe.c    one check: TCP connect, TLS handshake or HTTP GET, on libuv
 *   checker.c  the thread: loop, ticks, scheduling, reload, logs
 *   report.c   explain lines and metrics
 *
 * Threads: see health.h; everything not marked "shared" is the checker's.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/khash.h"
#include "config/config.h"
#include "proxy/health/health.h"

struct tls_ctx;

/* The table: PX_HEALTH_BUCKETS buckets of PX_HEALTH_WAYS slots. An entry
 * lives in the bucket its key and address hash to; a full bucket (8
 * entries there, with at most PX_HEALTH_MAX_ADDRS in 32768 slots) leaves
 * the address unchecked. Readers look at 8 slots at most, no chains. */
#define PX_HEALTH_WAYS 8
#define PX_HEALTH_BUCKETS 4096
#define PX_HEALTH_SLOTS (PX_HEALTH_WAYS * PX_HEALTH_BUCKETS)
/* Misses waiting for the checker at most; more are dropped (the answer
 * path asks again with its next answer). */
#define PX_HEALTH_PENDING_MAX 256

enum px_health_state {
	PX_HS_UNKNOWN = 0, /* not decided yet: served */
	PX_HS_UP = 1,
	PX_HS_DOWN = 2,
};

/* Outcomes of one check, for metrics and "why down". */
enum px_health_result {
	PX_HR_OK = 0,
	PX_HR_REFUSED,     /* connection refused (RST) */
	PX_HR_CONNECT,     /* other connect error: unreachable, reset */
	PX_HR_TIMEOUT,     /* no verdict within [health] timeout */
	PX_HR_TLS,         /* TLS handshake failed (not the certificate) */
	PX_HR_CERT,        /* the certificate does not verify for the owner */
	PX_HR_HTTP_STATUS, /* an HTTP status other than 2xx/3xx */
	PX_HR_HTTP_BAD,    /* not an HTTP/1.x status line */
	PX_HR_CLOSED,      /* the peer closed before a verdict */
	PX_HR_ERROR,       /* a local error: socket, memory */
	PX_HR_COUNT,
};

const char *px_health_result_name(enum px_health_result r);

/* ---- the state machine (table.c), pure ---------------------------------- */

struct px_health_sm {
	uint8_t state; /* enum px_health_state */
	uint8_t fails; /* consecutive failures, saturating */
	uint8_t oks;   /* consecutive successes, saturating */
};

/* One check's outcome: down after fall consecutive failures (from
 * unknown or up), up after rise consecutive successes from down, up at
 * the first success from unknown (it was served anyway). Returns the
 * state before. */
enum px_health_state px_health_sm_step(struct px_health_sm *sm, bool ok, unsigned fall,
                                       unsigned rise);

/* ---- the shared table (table.c) ---------------------------------------- */

/* One slot, read by every worker, written by the checker only. tag is 0
 * when empty, else the entry's key (never 0); the other words are valid
 * while tag holds the same value before and after reading them. */
struct px_health_slot {
	_Atomic uint64_t tag;
	_Atomic uint64_t a[2];   /* the address: 4 octets (A) or 16 (AAAA), zero padded */
	_Atomic uint32_t state;  /* enum px_health_state */
	_Atomic uint32_t used_s; /* px_health.clock_s when an answer last used it */
};

/* A miss handed over by a worker. */
struct px_health_miss {
	uint64_t key;
	uint64_t a[2];
	uint16_t qtype;
	uint8_t owner_len;
	uint8_t owner[255];
	struct cfg_check check;
};

/* An owner as the checker sees it: one (check, owner name, family). */
struct px_health_owner {
	uint64_t key;
	struct cfg_check check;
	uint16_t qtype;
	char host[256];  /* presentation form without the final dot: SNI, Host */
	unsigned n;      /* live entries */
	unsigned n_down; /* of which down */
	bool all_down;   /* logged "fail open" */
	bool live;
	uint32_t next_free;
};

/* The checker's view of one slot's entry; read under info_mu by others. */
struct px_health_ent {
	bool live;
	struct px_health_sm sm;
	uint32_t owner; /* index into owners */
	uint32_t gen;   /* bumped when the slot is dropped: stale probes ignored */
	uint32_t live_pos;
	uint64_t next_at;    /* loop ms of the next check */
	uint64_t last_at;    /* loop ms of the last verdict; 0: none yet */
	uint64_t down_since; /* loop ms */
	uint8_t last;        /* enum px_health_result of the last check */
	bool in_flight;
	char why[96]; /* the last failure, for the log and explain */
};

struct px_health {
	/* ---- shared with the workers ---- */
	struct px_health_slot *slots;   /* PX_HEALTH_SLOTS */
	_Atomic uint32_t clock_s;       /* the checker's second counter, for used_s */
	_Atomic uint32_t n_addrs;       /* live entries */
	_Atomic uint32_t n_down;        /* live entries down (px_health_any_down) */
	atomic_bool pending_full;       /* misses are being dropped */
	atomic_bool running;            /* the checker thread runs */
	uint64_t seed;                  /* of the keys of (check, owner, family) */
	uv_mutex_t pend_mu;             /* guards pending, n_pending */
	struct px_health_miss *pending; /* PX_HEALTH_PENDING_MAX */
	unsigned n_pending;
	uv_async_t wake; /* misses, reload, stop */

	/* ---- main thread -> checker, under cfg_mu ---- */
	uv_mutex_t cfg_mu;
	bool cfg_changed;
	bool stopping;
	uint64_t interval_ms, timeout_ms;
	unsigned fall, rise;
	struct cfg_check *active; /* the checks some zone uses */
	size_t n_active;

	/* ---- the checker's; read by others under info_mu ---- */
	uv_mutex_t info_mu;
	struct px_health_ent *ents; /* PX_HEALTH_SLOTS, by slot index */
	struct px_health_owner *owners;
	size_t n_owners, owners_cap;
	uint32_t owners_free; /* free list head, UINT32_MAX: none */
	_Atomic uint64_t checks[PX_HR_COUNT];
	_Atomic uint64_t changes;
	_Atomic uint64_t dropped_misses;

	/* ---- the checker's alone ---- */
	uv_thread_t thread;
	uv_loop_t loop;
	uv_timer_t tick;
	bool tick_on;
	bool c_stopping;
	uint32_t *live; /* slot indexes of live entries */
	uint32_t n_live;
	unsigned inflight;              /* probes */
	struct tls_ctx *tls;            /* client context: default trust store, no resumption */
	uint64_t c_interval, c_timeout; /* in force in the checker */
	unsigned c_fall, c_rise;
	uint64_t start_ms;
	uint32_t rng;
};

/* The key of (check, owner in any case, qtype): never 0. */
uint64_t px_health_key(const struct px_health *h, const struct cfg_check *c, const uint8_t *owner,
                       size_t owner_len, uint16_t qtype);
/* Address octets as the two words slots hold (IPv4: the 4 octets in a[0]). */
void px_health_addr_words(const uint8_t *addr, uint16_t qtype, uint64_t a[2]);
/* The bucket (index of its first slot) of key and address. */
uint32_t px_health_bucket(uint64_t key, const uint64_t a[2]);
/* The slot index holding (key, a), or -1: for the checker and explain. */
int px_health_find(const struct px_health *h, uint64_t key, const uint64_t a[2]);

/* ---- http.c ------------------------------------------------------------- */

/* Longest response head a check reads for its status line(s). */
#define PX_HEALTH_HTTP_MAX 2048

/**
 * Parses an HTTP/1.x status line at the start of p[0..n):
 * "HTTP/1.D SP DDD [SP reason] CRLF", strictly (a bare LF, a control
 * character in the reason, another version or a status outside
 * 100..599 are errors).
 * @return the status code, with *used set to the line's length including
 *         CRLF; 0 when more bytes are needed; -1 when p is no status line.
 */
int px_health_http_status(const uint8_t *p, size_t n, size_t *used);

/**
 * The status a whole response head decides, skipping 1xx interim
 * responses (each up to its blank line).
 * @return the final status (200..599), 0 for more bytes, -1 for garbage.
 */
int px_health_http_final(const uint8_t *p, size_t n);

/* ---- probe.c ------------------------------------------------------------ */

/* Starts a check of slot idx; its verdict comes to px_health_verdict().
 * 0, or a negative errno (nothing started). */
int px_health_probe_start(struct px_health *h, uint32_t idx);
/* Stopping: ends the probe that owns handle hd (a probe's TCP or timer). */
void px_health_probe_abort(uv_handle_t *hd);

/* ---- checker.c ---------------------------------------------------------- */

/* A check of slot idx (under generation gen) ended. */
void px_health_verdict(struct px_health *h, uint32_t idx, uint32_t gen, enum px_health_result r,
                       const char *why);
