#include "proxy/internal.h"
#include "proxy/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

atomic_int px_log_level = CFG_LOG_INFO;

static const char *const group_names[] = {
        [PX_LOG_MAIN] = "main",   [PX_LOG_CFG] = "config",      [PX_LOG_UDP] = "udp",
        [PX_LOG_TCP] = "tcp",     [PX_LOG_BACKEND] = "backend", [PX_LOG_XFR] = "xfr",
        [PX_LOG_CTL] = "control",
};

void px__log_write(enum cfg_log_level level, enum px_log_group group, const char *fmt, ...)
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
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: stderr lines from several threads stay whole. */
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
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

bool px__assert_log(const char *what, const char *file, int line)
{
	px_log(CFG_LOG_ERROR, MAIN, "internal error: %s failed at %s:%d", what, file, line);
	return true;
}
