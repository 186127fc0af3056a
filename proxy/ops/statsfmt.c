/* proxy/ops/statsfmt.c - the statistics as text: apexctl stats and /metrics.
 *
 * Sums every worker's struct px_stats with relaxed loads (each worker is
 * the only writer of its own), adds the target cache's counters (read
 * under its shard locks) and renders one of two formats:
 *  - text: "name=value" lines, the names of the exit `stats:` line plus
 *    the labelled families flattened into names (answers_rcode_nxdomain,
 *    latency_udp_le_1000us, ...), for people and scripts;
 *  - Prometheus text exposition format 0.0.4: every metric named apexd_*
 *    with # HELP and # TYPE lines; counters end in _total, latencies are
 *    histograms in seconds with cumulative buckets.
 * Threads: any (the control socket's main thread, the metrics thread).
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/text.h"
#include "flatten/cache.h"
#include "proxy/ops/statsfmt.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/health/health.h"
#include "proxy/ops/stats.h"
#include "proxy/engine/worker.h"

/* Initial output buffer; it doubles as needed (the whole text is about
 * 20 KiB with every histogram). */
#define PX_STATS_BUF_INITIAL 16384

#define sbuf px_sbuf
#define put px_sbuf_put

void px_sbuf_put(struct px_sbuf *b, const char *fmt, ...)
{
	va_list ap;

	if (b->oom)
		return;
	if (b->p == NULL) {
		b->p = malloc(PX_STATS_BUF_INITIAL);
		if (b->p == NULL) {
			b->oom = true;
			return;
		}
		b->cap = PX_STATS_BUF_INITIAL;
		b->len = 0;
		b->p[0] = '\0';
	}
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap * 2;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* Prometheus HELP text: backslash and newline escaped (format 0.0.4). */
static void help(struct sbuf *b, const char *name, const char *text, const char *type)
{
	put(b, "# HELP %s ", name);
	for (const char *p = text; *p; p++) {
		if (*p == '\\')
			put(b, "\\\\");
		else if (*p == '\n')
			put(b, "\\n");
		else
			put(b, "%c", *p);
	}
	put(b, "\n# TYPE %s %s\n", name, type);
}

#define SIB_LOAD(ss, field)                                                                        \
	((unsigned long long)atomic_load_explicit(&(ss)->field, memory_order_relaxed))

/* Sibling upkeep (flat/siblings.c): the main thread's counters. */
static void render_sib_text(struct sbuf *b, const struct px_sib_stats *ss)
{
	put(b, "sibling_zones=%llu\nsibling_owners=%llu\nsibling_bytes=%llu\n", SIB_LOAD(ss, zones),
	    SIB_LOAD(ss, owners), SIB_LOAD(ss, bytes));
	for (int k = 0; k < PX_SIB_XFR_KINDS; k++)
		for (int r = 0; r < PX_SIB_XFR_RESULTS; r++)
			put(b, "sibling_transfers_%s_%s=%llu\n", px_sib_xfr_kind_name(k),
			    px_sib_xfr_result_name(r), SIB_LOAD(ss, transfers[k][r]));
	for (int r = 0; r < PX_SIB_UPD_RESULTS; r++)
		put(b, "sibling_updates_%s=%llu\n", px_sib_upd_result_name(r),
		    SIB_LOAD(ss, updates[r]));
	put(b, "sibling_changes=%llu\nsibling_chase_failures=%llu\n", SIB_LOAD(ss, changes),
	    SIB_LOAD(ss, chase_failures));
	put(b, "sibling_refreshes=%llu\nsibling_chases=%llu\nsibling_chase_queries=%llu\n",
	    SIB_LOAD(ss, refreshes), SIB_LOAD(ss, chases), SIB_LOAD(ss, chase_queries));
}

static void render_sib_prometheus(struct sbuf *b, const struct px_sib_stats *ss)
{
	help(b, "apexd_sibling_zones", "zones whose siblings apexd keeps by UPDATE", "gauge");
	put(b, "apexd_sibling_zones %llu\n", SIB_LOAD(ss, zones));
	help(b, "apexd_sibling_owners", "ANAME and [alias] owners whose siblings apexd keeps",
	     "gauge");
	put(b, "apexd_sibling_owners %llu\n", SIB_LOAD(ss, owners));
	help(b, "apexd_sibling_bytes", "memory of the sibling owner tables", "gauge");
	put(b, "apexd_sibling_bytes %llu\n", SIB_LOAD(ss, bytes));
	help(b, "apexd_sibling_transfers_total",
	     "zone transfers from the backend, by kind and result", "counter");
	for (int k = 0; k < PX_SIB_XFR_KINDS; k++)
		for (int r = 0; r < PX_SIB_XFR_RESULTS; r++)
			put(b, "apexd_sibling_transfers_total{kind=\"%s\",result=\"%s\"} %llu\n",
			    px_sib_xfr_kind_name(k), px_sib_xfr_result_name(r),
			    SIB_LOAD(ss, transfers[k][r]));
	help(b, "apexd_sibling_updates_total", "UPDATEs sent to the backend, by result", "counter");
	for (int r = 0; r < PX_SIB_UPD_RESULTS; r++)
		put(b, "apexd_sibling_updates_total{result=\"%s\"} %llu\n",
		    px_sib_upd_result_name(r), SIB_LOAD(ss, updates[r]));
	help(b, "apexd_sibling_changes_total", "sibling RRsets written or deleted by UPDATE",
	     "counter");
	put(b, "apexd_sibling_changes_total %llu\n", SIB_LOAD(ss, changes));
	help(b, "apexd_sibling_chase_failures_total",
	     "chases for siblings that failed and left BIND's siblings in place", "counter");
	put(b, "apexd_sibling_chase_failures_total %llu\n", SIB_LOAD(ss, chase_failures));
	help(b, "apexd_sibling_refreshes_total",
	     "owner families looked up for siblings (target cache or chase)", "counter");
	put(b, "apexd_sibling_refreshes_total %llu\n", SIB_LOAD(ss, refreshes));
	help(b, "apexd_sibling_chases_total",
	     "sibling refreshes the target cache could not answer, chased on the main thread",
	     "counter");
	put(b, "apexd_sibling_chases_total %llu\n", SIB_LOAD(ss, chases));
	help(b, "apexd_sibling_chase_queries_total", "queries those chases sent", "counter");
	put(b, "apexd_sibling_chase_queries_total %llu\n", SIB_LOAD(ss, chase_queries));
}

static void render_text(struct sbuf *b, const struct px_stats_sum *s,
                        const struct flat_cache_stats *cs, uint64_t uptime_s, unsigned workers)
{
	char buf[16], name[32];

	for (size_t i = 0; i < px_stats_count(); i++)
		put(b, "%s=%llu\n", px_stats_name(i), (unsigned long long)s->counters[i]);
	for (size_t i = 0; i < PX_GAUGE_COUNT; i++)
		put(b, "%s=%llu\n", px_gauge_name(i), (unsigned long long)s->gauges[i]);
	for (unsigned rc = 0; rc < PX_RCODES; rc++) {
		snprintf(name, sizeof(name), "%s", codec_rcode_text(rc, buf, sizeof(buf)));
		lower(name);
		put(b, "answers_rcode_%s=%llu\n", name, (unsigned long long)s->rcode[rc]);
	}
	for (unsigned r = 0; r < FLAT_CHASE_FAIL_COUNT; r++)
		put(b, "chase_fail_%s=%llu\n", flat_chase_fail_name((enum flat_chase_fail)r),
		    (unsigned long long)s->chase_fail[r]);
	for (unsigned t = 0; t < PX_TR_COUNT; t++) {
		const char *tr = px_transport_name((enum px_transport)t);
		uint64_t cum = 0;
		for (unsigned k = 0; k <= PX_LAT_BUCKETS; k++)
			cum += s->lat[t][k];
		put(b, "latency_%s_count=%llu\n", tr, (unsigned long long)cum);
		put(b, "latency_%s_sum_us=%llu\n", tr, (unsigned long long)s->lat_sum_us[t]);
		cum = 0;
		for (unsigned k = 0; k < PX_LAT_BUCKETS; k++) {
			cum += s->lat[t][k];
			put(b, "latency_%s_le_%uus=%llu\n", tr, px_lat_bounds_us[k],
			    (unsigned long long)cum);
		}
	}
	put(b, "cache_bytes=%zu\ncache_entries=%zu\ncache_chases_in_flight=%zu\n", cs->bytes,
	    cs->entries, cs->claims);
	put(b, "cache_evictions=%llu\n", (unsigned long long)cs->evictions);
	put(b, "cache_scoped_entries=%zu\ncache_scope_evictions=%llu\n", cs->scoped,
	    (unsigned long long)cs->scope_evictions);
	put(b, "workers=%u\nuptime_seconds=%llu\n", workers, (unsigned long long)uptime_s);
}

static void render_prometheus(struct sbuf *b, const struct px_stats_sum *s,
                              const struct flat_cache_stats *cs, uint64_t uptime_s,
                              unsigned workers)
{
	char name[96], buf[16];

	put(b,
	    "# HELP apexd_build_info apexd version\n# TYPE apexd_build_info gauge\n"
	    "apexd_build_info{version=\"%s\"} 1\n",
	    APEX_VERSION);
	for (size_t i = 0; i < px_stats_count(); i++) {
		snprintf(name, sizeof(name), "apexd_%s_total", px_stats_name(i));
		help(b, name, px_stats_help(i), "counter");
		put(b, "%s %llu\n", name, (unsigned long long)s->counters[i]);
	}
	for (size_t i = 0; i < PX_GAUGE_COUNT; i++) {
		snprintf(name, sizeof(name), "apexd_%s", px_gauge_name(i));
		help(b, name, px_gauge_help(i), "gauge");
		put(b, "%s %llu\n", name, (unsigned long long)s->gauges[i]);
	}
	help(b, "apexd_answers_by_rcode_total", "answers sent to clients, by header RCODE",
	     "counter");
	for (unsigned rc = 0; rc < PX_RCODES; rc++)
		put(b, "apexd_answers_by_rcode_total{rcode=\"%s\"} %llu\n",
		    codec_rcode_text(rc, buf, sizeof(buf)), (unsigned long long)s->rcode[rc]);
	help(b, "apexd_chase_failures_by_reason_total", "chases that ended in failure, by reason",
	     "counter");
	for (unsigned r = 0; r < FLAT_CHASE_FAIL_COUNT; r++)
		put(b, "apexd_chase_failures_by_reason_total{reason=\"%s\"} %llu\n",
		    flat_chase_fail_name((enum flat_chase_fail)r),
		    (unsigned long long)s->chase_fail[r]);
	help(b, "apexd_answer_latency_seconds",
	     "time from reading a query to sending its answer, by client transport", "histogram");
	for (unsigned t = 0; t < PX_TR_COUNT; t++) {
		const char *tr = px_transport_name((enum px_transport)t);
		uint64_t cum = 0;
		for (unsigned k = 0; k < PX_LAT_BUCKETS; k++) {
			cum += s->lat[t][k];
			/* Bounds in seconds, exact: they are whole microseconds. */
			put(b,
			    "apexd_answer_latency_seconds_bucket{transport=\"%s\",le=\"%u.%06u\"} "
			    "%llu\n",
			    tr, px_lat_bounds_us[k] / 1000000, px_lat_bounds_us[k] % 1000000,
			    (unsigned long long)cum);
		}
		cum += s->lat[t][PX_LAT_BUCKETS];
		put(b, "apexd_answer_latency_seconds_bucket{transport=\"%s\",le=\"+Inf\"} %llu\n",
		    tr, (unsigned long long)cum);
		put(b, "apexd_answer_latency_seconds_sum{transport=\"%s\"} %llu.%06llu\n", tr,
		    (unsigned long long)(s->lat_sum_us[t] / 1000000),
		    (unsigned long long)(s->lat_sum_us[t] % 1000000));
		put(b, "apexd_answer_latency_seconds_count{transport=\"%s\"} %llu\n", tr,
		    (unsigned long long)cum);
	}
	help(b, "apexd_cache_bytes", "memory held by the target cache", "gauge");
	put(b, "apexd_cache_bytes %zu\n", cs->bytes);
	help(b, "apexd_cache_entries", "entries in the target cache", "gauge");
	put(b, "apexd_cache_entries %zu\n", cs->entries);
	help(b, "apexd_cache_chases_in_flight", "chases in flight (target cache claims)", "gauge");
	put(b, "apexd_cache_chases_in_flight %zu\n", cs->claims);
	help(b, "apexd_cache_evictions_total", "target cache entries dropped by the memory bound",
	     "counter");
	put(b, "apexd_cache_evictions_total %llu\n", (unsigned long long)cs->evictions);
	help(b, "apexd_cache_scoped_entries",
	     "target cache entries kept for a client subnet's scope (ECS)", "gauge");
	put(b, "apexd_cache_scoped_entries %zu\n", cs->scoped);
	help(b, "apexd_cache_scope_evictions_total",
	     "scoped entries dropped because their target had the most scopes kept", "counter");
	put(b, "apexd_cache_scope_evictions_total %llu\n", (unsigned long long)cs->scope_evictions);
	help(b, "apexd_workers", "worker threads", "gauge");
	put(b, "apexd_workers %u\n", workers);
	help(b, "apexd_uptime_seconds", "seconds since apexd started", "gauge");
	put(b, "apexd_uptime_seconds %llu\n", (unsigned long long)uptime_s);
}

/* Queries and connections by worker: where steering (engine/steer.c)
 * sent them. */
static void render_workers(struct sbuf *b, const struct px_server *srv, bool prom)
{
	static const struct {
		const char *tr, *help;
		size_t off;
	} kinds[] = {
	        {"udp", "queries received over UDP, by worker",
	         offsetof(struct px_stats, queries_udp)},
	        {"tcp", "queries received over TCP, by worker",
	         offsetof(struct px_stats, queries_tcp)},
	        {"dot", "queries received over DNS-over-TLS, by worker",
	         offsetof(struct px_stats, queries_dot)},
	        {"doh", "queries received over DNS-over-HTTPS, by worker",
	         offsetof(struct px_stats, queries_doh)},
	};

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		char name[64];
		snprintf(name, sizeof(name), "apexd_worker_queries_%s_total", kinds[k].tr);
		if (prom)
			help(b, name, kinds[k].help, "counter");
		for (unsigned i = 0; i < srv->n_workers; i++) {
			const _Atomic uint64_t *c =
			        (const _Atomic uint64_t *)((const char *)&srv->workers[i].stats +
			                                   kinds[k].off);
			unsigned long long q = atomic_load_explicit(c, memory_order_relaxed);
			if (prom)
				put(b, "%s{worker=\"%u\"} %llu\n", name, i, q);
			else
				put(b, "worker%u_queries_%s=%llu\n", i, kinds[k].tr, q);
		}
	} /* Where the connections are: steering moves them (listen/move.c). */
	if (prom)
		help(b, "apexd_worker_open_connections",
		     "client TCP, DoT and DoH connections open now, by worker", "gauge");
	for (unsigned i = 0; i < srv->n_workers; i++) {
		const struct px_stats *st = &srv->workers[i].stats;
		unsigned long long n = atomic_load_explicit(&st->open_tcp, memory_order_relaxed) +
		                       atomic_load_explicit(&st->open_dot, memory_order_relaxed) +
		                       atomic_load_explicit(&st->open_doh, memory_order_relaxed);
		if (prom)
			put(b, "apexd_worker_open_connections{worker=\"%u\"} %llu\n", i, n);
		else
			put(b, "worker%u_open_conns=%llu\n", i, n);
	}
}

ssize_t px_stats_render(struct px_server *srv, enum px_stats_format fmt, char **out)
{
	struct px_stats_sum *sum = calloc(1, sizeof(*sum));
	struct flat_cache_stats cs;
	struct sbuf b = {0};

	*out = NULL;
	if (sum == NULL)
		return -ENOMEM;
	sum->counters = calloc(px_stats_count(), sizeof(*sum->counters));
	if (sum->counters == NULL) {
		free(sum);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < srv->n_workers; i++)
		px_stats_sum_add(sum, &srv->workers[i].stats);
	memset(&cs, 0, sizeof(cs));
	/* Called from the metrics thread too: hold the generation so that
	 * a reload cannot free its cache under us. */
	uv_mutex_lock(&srv->gen_mu);
	struct px_gen *g = srv->gen;
	if (g != NULL)
		px_gen_ref(g);
	uv_mutex_unlock(&srv->gen_mu);
	if (g != NULL && g->cache != NULL)
		flat_cache_stats(g->cache, &cs);
	px_gen_unref(g);
	uint64_t now_ms = uv_hrtime() / 1000000;
	uint64_t uptime = now_ms > srv->started_ms ? (now_ms - srv->started_ms) / 1000 : 0;
	if (fmt == PX_STATS_PROMETHEUS) {
		render_prometheus(&b, sum, &cs, uptime, srv->n_workers);
		render_workers(&b, srv, true);
		render_sib_prometheus(&b, &srv->sib_stats);
		px_health_render(srv->health, true, &b);
	} else {
		render_text(&b, sum, &cs, uptime, srv->n_workers);
		render_workers(&b, srv, false);
		render_sib_text(&b, &srv->sib_stats);
		px_health_render(srv->health, false, &b);
	}
	free(sum->counters);
	free(sum);
	if (b.oom || b.p == NULL) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	return (ssize_t)b.len;
}
