/* proxy/ops/log.h - logging for the whole daemon.
 *
 * Only proxy/ logs (lower modules return codes and error text). px_log()
 * checks the level before evaluating its arguments, so a debug line in a
 * hot path costs one load and a branch when debug is off. Lines go to
 * stderr, one write(2) each, so threads never interleave within a line.
 * Groups (STYLE.md 4.7) name the part of the daemon a line comes from.
 * Repeated network warnings go through px_log_rl(), which lets at most
 * PX_LOG_RL_BURST lines per second through per call site and says how
 * many it held back on the next line it lets through.
 * Threads: any.
 */
#pragma once
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"

enum px_log_group {
	PX_LOG_MAIN,
	PX_LOG_CFG,
	PX_LOG_UDP,
	PX_LOG_TCP,
	PX_LOG_TLS,
	PX_LOG_DOH,
	PX_LOG_BACKEND,
	PX_LOG_CHASE,
	PX_LOG_CACHE,
	PX_LOG_XFR,
	PX_LOG_CTL,
	PX_LOG_HEALTH,
};

extern atomic_int px_log_level; /* enum cfg_log_level */

/* Lines per second one rate-limited call site may write: enough to see
 * that a problem has several faces, few enough that a flood of send
 * errors cannot fill a disk. */
#define PX_LOG_RL_BURST 5

/** State of one rate-limited call site (zero-initialised static). */
struct px_ratelimit {
	_Atomic uint64_t sec;   /**< the second being counted (monotonic clock) */
	atomic_uint n;          /**< lines let through in that second */
	atomic_uint suppressed; /**< lines held back since the last one written */
};

#define px_log_enabled(level)                                                                      \
	((int)(level) <= atomic_load_explicit(&px_log_level, memory_order_relaxed))

#define px_log(level, group, ...)                                                                  \
	do {                                                                                       \
		if (px_log_enabled(level))                                                         \
			px_log_write((level), PX_LOG_##group, __VA_ARGS__);                        \
	} while (0)

/* A static limiter per call site: each place that may repeat under load
 * (send errors, accept failures, backend errors) has its own budget. */
#define px_log_rl(level, group, ...)                                                               \
	do {                                                                                       \
		static struct px_ratelimit px_rl_site;                                             \
		unsigned px_rl_held;                                                               \
		if (px_log_enabled(level) && px_ratelimit_take(&px_rl_site, &px_rl_held))          \
			px_log_write_rl((level), PX_LOG_##group, px_rl_held, __VA_ARGS__);         \
	} while (0)

void px_log_write(enum cfg_log_level level, enum px_log_group group, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/** As px_log_write, with " (N similar messages suppressed)" appended when
 *  held > 0. */
void px_log_write_rl(enum cfg_log_level level, enum px_log_group group, unsigned held,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/**
 * The limiter of px_log_rl(): true when a line may be written now, with
 * *held set to the number of lines held back since the last one written
 * (then reset). Threads: any; a lost race costs at most a line more or
 * less in the count.
 */
bool px_ratelimit_take(struct px_ratelimit *rl, unsigned *held);

/**
 * Older, simpler limiter: true at most once per second per limiter (a
 * static uint64_t the caller owns, holding the last second it let
 * through). Prefer px_log_rl(), which also counts what it held back.
 */
bool px_log_ratelimit(_Atomic uint64_t *last_sec);

/* Internal consistency check: logs and carries on in release builds,
 * aborts in debug builds (knot-resolver's kr_fails_assert). */
bool px_assert_log(const char *what, const char *file, int line);
#ifdef NDEBUG
#define px_fails_assert(cond) (!(cond) ? px_assert_log(#cond, __FILE__, __LINE__) : false)
#else
#include <assert.h>
#define px_fails_assert(cond) (assert(cond), false)
#endif
