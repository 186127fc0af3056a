/* proxy/ops/log.c - log lines to stderr, levels, groups and rate limits. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy/ops/log.h"

atomic_int px_log_level = CFG_LOG_INFO;

static const char *const group_names[] = {
        [PX_LOG_MAIN] = "main",       [PX_LOG_CFG] = "config",  [PX_LOG_UDP] = "udp",
        [PX_LOG_TCP] = "tcp",         [PX_LOG_TLS] = "tls",     [PX_LOG_DOH] = "doh",
        [PX_LOG_BACKEND] = "backend", [PX_LOG_CHASE] = "chase", [PX_LOG_CACHE] = "cache",
        [PX_LOG_XFR] = "xfr",         [PX_LOG_CTL] = "ctl",     [PX_LOG_HEALTH] = "health",
};

static void log_vwrite(enum cfg_log_level level, enum px_log_group group, unsigned held,
                       const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void log_vwrite(enum cfg_log_level level, enum px_log_group group, unsigned held,
                       const char *fmt, va_list ap)
{
	char line[4096]; /* the stats line is long */
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n,
	                      ".%03ldZ apexd[%d] %s %s: ", ts.tv_nsec / 1000000, (int)getpid(),
	                      cfg_log_level_name(level), group_names[group]);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (held > 0) {
		m = snprintf(line + n, sizeof(line) - n - 1, " (%u similar message%s suppressed)",
		             held, held == 1 ? "" : "s");
		if (m > 0)
			n += (size_t)m;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line: stderr lines from several threads stay whole. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void px_log_write(enum cfg_log_level level, enum px_log_group group, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, group, 0, fmt, ap);
	va_end(ap);
}

void px_log_write_rl(enum cfg_log_level level, enum px_log_group group, unsigned held,
                     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(level, group, held, fmt, ap);
	va_end(ap);
}

bool px_ratelimit_take(struct px_ratelimit *rl, unsigned *held)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	uint64_t now = (uint64_t)ts.tv_sec + 1; /* 0 means "never" in a fresh limiter */
	uint64_t sec = atomic_load_explicit(&rl->sec, memory_order_relaxed);

	if (sec != now && atomic_compare_exchange_strong_explicit(
	                          &rl->sec, &sec, now, memory_order_relaxed, memory_order_relaxed))
		atomic_store_explicit(&rl->n, 0, memory_order_relaxed);
	if (atomic_fetch_add_explicit(&rl->n, 1, memory_order_relaxed) >= PX_LOG_RL_BURST) {
		atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
		return false;
	}
	*held = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
	return true;
}

bool px_log_ratelimit(_Atomic uint64_t *last_sec)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec;
	uint64_t prev = atomic_load_explicit(last_sec, memory_order_relaxed);
	if (prev == now)
		return false;
	atomic_store_explicit(last_sec, now, memory_order_relaxed);
	return true;
}

bool px_assert_log(const char *what, const char *file, int line)
{
	px_log(CFG_LOG_ERROR, MAIN, "internal error: %s failed at %s:%d", what, file, line);
	return true;
}
