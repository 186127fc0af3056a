/* proxy/log.h - logging for the whole daemon.
 *
 * Only proxy/ logs (lower modules return codes and error text). px_log()
 * checks the level before evaluating its arguments, so a debug line in a
 * hot path costs one load and a branch when debug is off. Lines go to
 * stderr, one write(2) each, so threads never interleave within a line.
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
	PX_LOG_BACKEND,
	PX_LOG_XFR,
	PX_LOG_CTL,
};

extern atomic_int px_log_level; /* enum cfg_log_level */

#define px_log(level, group, ...)                                                                  \
	do {                                                                                       \
		if ((int)(level) <= atomic_load_explicit(&px_log_level, memory_order_relaxed))     \
			px__log_write((level), PX_LOG_##group, __VA_ARGS__);                       \
	} while (0)

void px__log_write(enum cfg_log_level level, enum px_log_group group, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/**
 * Rate limit for repeated network warnings: returns true at most once per
 * second per limiter (a static uint64_t the caller owns, holding the last
 * second it let through). Threads: any; a lost race costs one extra line.
 */
bool px_log_ratelimit(_Atomic uint64_t *last_sec);
