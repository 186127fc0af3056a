/* proxy/ops/statsfmt.h - the statistics as text, and a growable text buffer. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct px_server;

/* A growable text buffer (statsfmt.c): p is NUL-terminated once non-NULL;
 * oom is sticky and the caller checks it once at the end. */
struct px_sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};
__attribute__((format(printf, 2, 3))) void px_sbuf_put(struct px_sbuf *b, const char *fmt, ...);

/* statsfmt.c: every statistic, summed over the workers, as text. */
enum px_stats_format {
	PX_STATS_TEXT = 0,   /* "name=value" lines (as the exit stats: line), apexctl */
	PX_STATS_PROMETHEUS, /* Prometheus text format 0.0.4 */
};
/* Renders into a malloc'd string (*out, NUL-terminated); any thread.
 * @return its length, or -ENOMEM. */
ssize_t px_stats_render(struct px_server *srv, enum px_stats_format fmt, char **out);
