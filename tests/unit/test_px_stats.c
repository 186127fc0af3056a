/* Unit tests for proxy/stats and proxy/statsfmt: the answer hook's
 * buckets and RCODEs, summing workers, and both renderings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/helpers.h"
#include "proxy/daemon/server.h"
#include "proxy/ops/stats.h"
#include "proxy/ops/statsfmt.h"
#include "proxy/engine/worker.h"

static void test_stats_record_bucket_edges(void **state)
{
	(void)state;
	struct px_stats *st = calloc(1, sizeof(*st));
	assert_non_null(st);

	px_stats_record(st, PX_TR_UDP, 0, 0);                      /* bucket 0 */
	px_stats_record(st, PX_TR_UDP, 0, 50);                     /* le 50us: bucket 0 */
	px_stats_record(st, PX_TR_UDP, 3, 51);                     /* bucket 1 */
	px_stats_record(st, PX_TR_TCP, 2, 30000000);               /* last finite */
	px_stats_record(st, PX_TR_TCP, 0x12, 30000001);            /* +Inf; RCODE low bits */
	px_stats_record(st, (enum px_transport)PX_TR_COUNT, 5, 7); /* RCODE only */
	assert_int_equal(atomic_load(&st->lat[PX_TR_UDP][0]), 2);
	assert_int_equal(atomic_load(&st->lat[PX_TR_UDP][1]), 1);
	assert_int_equal(atomic_load(&st->lat[PX_TR_TCP][PX_LAT_BUCKETS - 1]), 1);
	assert_int_equal(atomic_load(&st->lat[PX_TR_TCP][PX_LAT_BUCKETS]), 1);
	assert_int_equal(atomic_load(&st->lat_sum_us[PX_TR_UDP]), 101);
	assert_int_equal(atomic_load(&st->lat_sum_us[PX_TR_TCP]), 60000001);
	assert_int_equal(atomic_load(&st->rcode[0]), 2);
	assert_int_equal(atomic_load(&st->rcode[2]), 2);
	assert_int_equal(atomic_load(&st->rcode[3]), 1);
	assert_int_equal(atomic_load(&st->rcode[5]), 1);
	free(st);
}

static void test_stats_answer_reads_rcode_from_header(void **state)
{
	(void)state;
	struct px_stats *st = calloc(1, sizeof(*st));
	uint8_t msg[12] = {0x12, 0x34, 0x84, 0x03};
	assert_non_null(st);

	px_stats_answer(st, PX_TR_DOH, msg, sizeof(msg), uv_hrtime());
	px_stats_answer(st, PX_TR_DOH, msg, sizeof(msg), 0); /* no clock: RCODE only */
	px_stats_answer(st, PX_TR_DOH, msg, 3, uv_hrtime()); /* too short: nothing */
	assert_int_equal(atomic_load(&st->rcode[3]), 2);
	uint64_t n = 0;
	for (unsigned b = 0; b <= PX_LAT_BUCKETS; b++)
		n += atomic_load(&st->lat[PX_TR_DOH][b]);
	assert_int_equal(n, 1);
	free(st);
}

/* A server with two workers and no cache: enough for the renderers. */
static struct px_server *fake_server(void)
{
	struct px_server *srv = calloc(1, sizeof(*srv));
	assert_non_null(srv);
	srv->n_workers = 2;
	srv->workers = calloc(2, sizeof(*srv->workers));
	assert_non_null(srv->workers);
	srv->started_ms = uv_hrtime() / 1000000;
	return srv;
}

static void free_server(struct px_server *srv)
{
	free(srv->workers);
	free(srv);
}

static void test_stats_render_sums_workers(void **state)
{
	(void)state;
	struct px_server *srv = fake_server();
	char *text = NULL;

	PX_STAT_INC(&srv->workers[0].stats, queries_udp);
	PX_STAT_ADD(&srv->workers[1].stats, queries_udp, 4);
	PX_STAT_INC(&srv->workers[0].stats, open_tcp);
	PX_STAT_INC(&srv->workers[1].stats, open_tcp);
	PX_GAUGE_DEC(&srv->workers[1].stats, open_tcp);
	PX_STAT_INC(&srv->workers[1].stats, chase_fail[FLAT_CHASE_FAIL_LOOP]);
	px_stats_record(&srv->workers[0].stats, PX_TR_UDP, 3, 40);
	px_stats_record(&srv->workers[1].stats, PX_TR_UDP, 0, 2000000);

	ssize_t n = px_stats_render(srv, PX_STATS_TEXT, &text);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(text));
	assert_true(strncmp(text, "queries_udp=5\n", 14) == 0); /* the first counter */
	assert_non_null(strstr(text, "\nopen_tcp=1\n"));
	assert_non_null(strstr(text, "\nanswers_rcode_nxdomain=1\n"));
	assert_non_null(strstr(text, "\nanswers_rcode_noerror=1\n"));
	assert_non_null(strstr(text, "\nchase_fail_loop=1\n"));
	assert_non_null(strstr(text, "\nlatency_udp_count=2\n"));
	assert_non_null(strstr(text, "\nlatency_udp_sum_us=2000040\n"));
	assert_non_null(strstr(text, "\nlatency_udp_le_50us=1\n"));
	assert_non_null(strstr(text, "\nlatency_udp_le_1000000us=1\n"));
	assert_non_null(strstr(text, "\nlatency_udp_le_2500000us=2\n"));
	assert_non_null(strstr(text, "\nworkers=2\n"));
	free(text);

	n = px_stats_render(srv, PX_STATS_PROMETHEUS, &text);
	assert_true(n > 0);
	assert_non_null(strstr(text, "# TYPE apexd_queries_udp_total counter\n"
	                             "apexd_queries_udp_total 5\n"));
	assert_non_null(strstr(text, "# TYPE apexd_open_tcp gauge\napexd_open_tcp 1\n"));
	assert_non_null(strstr(text, "apexd_answers_by_rcode_total{rcode=\"NXDOMAIN\"} 1\n"));
	assert_non_null(strstr(text, "apexd_answers_by_rcode_total{rcode=\"RCODE15\"} 0\n"));
	assert_non_null(strstr(text, "apexd_chase_failures_by_reason_total{reason=\"loop\"} 1\n"));
	assert_non_null(strstr(text, "apexd_answer_latency_seconds_bucket{transport=\"udp\","
	                             "le=\"0.000050\"} 1\n"));
	assert_non_null(strstr(text, "apexd_answer_latency_seconds_bucket{transport=\"udp\","
	                             "le=\"2.500000\"} 2\n"));
	assert_non_null(strstr(text, "apexd_answer_latency_seconds_bucket{transport=\"udp\","
	                             "le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(text, "apexd_answer_latency_seconds_sum{transport=\"udp\"} "
	                             "2.000040\n"));
	assert_non_null(strstr(text, "apexd_answer_latency_seconds_count{transport=\"tcp\"} 0\n"));
	assert_int_equal(text[n - 1], '\n');
	free(text);
	free_server(srv);
}

static void test_sbuf_grows_past_initial_size(void **state)
{
	(void)state;
	struct px_sbuf b = {0};
	char big[5000];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 10; i++)
		px_sbuf_put(&b, "%s", big);
	assert_false(b.oom);
	assert_int_equal(b.len, 10 * (sizeof(big) - 1));
	assert_int_equal(strlen(b.p), b.len);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stats_record_bucket_edges),
	        cmocka_unit_test(test_stats_answer_reads_rcode_from_header),
	        cmocka_unit_test(test_stats_render_sums_workers),
	        cmocka_unit_test(test_sbuf_grows_past_initial_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
