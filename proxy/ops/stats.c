/* proxy/ops/stats.c - names of the counters, summing, and the answer hook. */
#include <uv.h>

#include "proxy/ops/stats.h"

static const char *const names[] = {
#define X(name, help) #name,
        PX_STATS(X)
#undef X
};

static const char *const helps[] = {
#define X(name, help) help,
        PX_STATS(X)
#undef X
};

static const char *const gauge_names[] = {
#define X(name, help) #name,
        PX_GAUGES(X)
#undef X
};

static const char *const gauge_helps[] = {
#define X(name, help) help,
        PX_GAUGES(X)
#undef X
};

_Static_assert(sizeof(gauge_names) / sizeof(gauge_names[0]) == PX_GAUGE_COUNT, "PX_GAUGE_COUNT");

const uint32_t px_lat_bounds_us[PX_LAT_BUCKETS] = {
        50,    100,    250,    500,    1000,    2500,    5000,     10000,    25000,
        50000, 100000, 250000, 500000, 1000000, 2500000, 10000000, 30000000,
};

size_t px_stats_count(void)
{
	return sizeof(names) / sizeof(names[0]);
}

const char *px_stats_name(size_t i)
{
	return i < px_stats_count() ? names[i] : NULL;
}

const char *px_stats_help(size_t i)
{
	return i < px_stats_count() ? helps[i] : NULL;
}

const char *px_gauge_name(size_t i)
{
	return i < PX_GAUGE_COUNT ? gauge_names[i] : NULL;
}

const char *px_gauge_help(size_t i)
{
	return i < PX_GAUGE_COUNT ? gauge_helps[i] : NULL;
}

const char *px_transport_name(enum px_transport tr)
{
	static const char *const tr_names[PX_TR_COUNT] = {"udp", "tcp", "dot", "doh"};

	return (unsigned)tr < PX_TR_COUNT ? tr_names[tr] : "?";
}

void px_stats_record(struct px_stats *st, enum px_transport tr, unsigned rcode, uint64_t us)
{
	PX_STAT_INC(st, rcode[rcode & 0x0f]);
	if ((unsigned)tr >= PX_TR_COUNT)
		return;
	/* Bucket k holds bounds[k-1] < us <= bounds[k], as Prometheus's le. */
	unsigned b = 0;
	while (b < PX_LAT_BUCKETS && us > px_lat_bounds_us[b])
		b++;
	PX_STAT_INC(st, lat[tr][b]);
	PX_STAT_ADD(st, lat_sum_us[tr], us);
}

void px_stats_answer(struct px_stats *st, enum px_transport tr, const uint8_t *msg, size_t len,
                     uint64_t rx_ns)
{
	if (len < 4)
		return;
	if (rx_ns == 0) {
		/* No start time (a NOTIFY acknowledged by apexd): RCODE only. */
		PX_STAT_INC(st, rcode[msg[3] & 0x0f]);
		return;
	}
	uint64_t now = uv_hrtime();
	px_stats_record(st, tr, msg[3], now > rx_ns ? (now - rx_ns) / 1000 : 0);
}

void px_stats_add(uint64_t *sum, const struct px_stats *src)
{
	size_t i = 0;
#define X(name, help) sum[i++] += atomic_load_explicit(&src->name, memory_order_relaxed);
	PX_STATS(X)
#undef X
}

void px_stats_sum_add(struct px_stats_sum *sum, const struct px_stats *src)
{
	size_t i = 0;

	px_stats_add(sum->counters, src);
#define X(name, help) sum->gauges[i++] += atomic_load_explicit(&src->name, memory_order_relaxed);
	PX_GAUGES(X)
#undef X
	for (i = 0; i < PX_RCODES; i++)
		sum->rcode[i] += atomic_load_explicit(&src->rcode[i], memory_order_relaxed);
	for (i = 0; i < FLAT_CHASE_FAIL_COUNT; i++)
		sum->chase_fail[i] +=
		        atomic_load_explicit(&src->chase_fail[i], memory_order_relaxed);
	for (unsigned t = 0; t < PX_TR_COUNT; t++) {
		for (i = 0; i <= PX_LAT_BUCKETS; i++)
			sum->lat[t][i] +=
			        atomic_load_explicit(&src->lat[t][i], memory_order_relaxed);
		sum->lat_sum_us[t] +=
		        atomic_load_explicit(&src->lat_sum_us[t], memory_order_relaxed);
	}
}
