#include "proxy/stats.h"

static const char *const names[] = {
#define X(name, help) #name,
        PX_STATS(X)
#undef X
};

size_t px_stats_count(void)
{
	return sizeof(names) / sizeof(names[0]);
}

const char *px_stats_name(size_t i)
{
	return i < px_stats_count() ? names[i] : NULL;
}

void px_stats_add(uint64_t *sum, const struct px_stats *src)
{
	size_t i = 0;
#define X(name, help) sum[i++] += atomic_load_explicit(&src->name, memory_order_relaxed);
	PX_STATS(X)
#undef X
}
