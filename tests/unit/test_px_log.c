/* tests/unit/test_px_log.c - proxy/log: levels, groups, rate limits.
 *
 * Lines are read back from stderr (redirected to a temporary file for
 * each test). The rate limiter counts per monotonic second, so the tests
 * that depend on it first wait for a second to begin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "proxy/ops/log.h"

struct capture {
	int saved;
	FILE *f;
};

static int capture_setup(void **state)
{
	struct capture *c = malloc(sizeof(*c));
	if (c == NULL)
		return -1;
	c->f = tmpfile();
	c->saved = dup(STDERR_FILENO);
	if (c->f == NULL || c->saved < 0 || dup2(fileno(c->f), STDERR_FILENO) < 0) {
		free(c);
		return -1;
	}
	atomic_store(&px_log_level, CFG_LOG_INFO);
	*state = c;
	return 0;
}

static int capture_teardown(void **state)
{
	struct capture *c = *state;
	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	fclose(c->f);
	free(c);
	atomic_store(&px_log_level, CFG_LOG_INFO);
	return 0;
}

/* Everything written so far, NUL-terminated (caller frees). */
static char *captured(struct capture *c)
{
	long n = lseek(fileno(c->f), 0, SEEK_END);
	char *s = calloc(1, (size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(pread(fileno(c->f), s, (size_t)n, 0), n);
	return s;
}

static unsigned count(const char *s, const char *what)
{
	unsigned n = 0;
	for (const char *p = strstr(s, what); p != NULL; p = strstr(p + 1, what))
		n++;
	return n;
}

/* Returns just after a second of the limiter's clock has begun, so the
 * next few calls all fall inside one second. */
static void wait_new_second(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &a);
	do {
		struct timespec nap = {0, 1000000};
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC_COARSE, &b);
	} while (b.tv_sec == a.tv_sec);
}

static int evaluated;
static const char *side_effect(void)
{
	evaluated++;
	return "x";
}

static void test_log_level_filters_before_evaluating_arguments(void **state)
{
	struct capture *c = *state;

	evaluated = 0;
	px_log(CFG_LOG_DEBUG, MAIN, "hidden %s", side_effect());
	assert_int_equal(evaluated, 0);
	px_log(CFG_LOG_INFO, MAIN, "shown %s", side_effect());
	assert_int_equal(evaluated, 1);
	atomic_store(&px_log_level, CFG_LOG_DEBUG);
	px_log(CFG_LOG_DEBUG, MAIN, "now shown %s", side_effect());
	char *s = captured(c);
	assert_null(strstr(s, "hidden"));
	assert_non_null(strstr(s, " info main: shown x\n"));
	assert_non_null(strstr(s, " debug main: now shown x\n"));
	free(s);
}

static void test_log_groups_are_named(void **state)
{
	struct capture *c = *state;

	px_log(CFG_LOG_WARNING, TLS, "a");
	px_log(CFG_LOG_WARNING, DOH, "b");
	px_log(CFG_LOG_WARNING, CHASE, "c");
	px_log(CFG_LOG_WARNING, CACHE, "d");
	px_log(CFG_LOG_WARNING, CTL, "e");
	px_log(CFG_LOG_ERROR, CFG, "f");
	char *s = captured(c);
	assert_non_null(strstr(s, " warning tls: a\n"));
	assert_non_null(strstr(s, " warning doh: b\n"));
	assert_non_null(strstr(s, " warning chase: c\n"));
	assert_non_null(strstr(s, " warning cache: d\n"));
	assert_non_null(strstr(s, " warning ctl: e\n"));
	assert_non_null(strstr(s, " error config: f\n"));
	free(s);
}

static void test_log_ratelimit_burst_then_count_of_held_lines(void **state)
{
	struct px_ratelimit rl;
	unsigned held = 99;

	(void)state;
	memset(&rl, 0, sizeof(rl));
	wait_new_second();
	for (int i = 0; i < PX_LOG_RL_BURST; i++) {
		assert_true(px_ratelimit_take(&rl, &held));
		assert_int_equal(held, 0);
	}
	for (int i = 0; i < 7; i++)
		assert_false(px_ratelimit_take(&rl, &held));
	wait_new_second();
	assert_true(px_ratelimit_take(&rl, &held));
	assert_int_equal(held, 7);
	assert_true(px_ratelimit_take(&rl, &held));
	assert_int_equal(held, 0);
}

static void rl_site(int i)
{
	px_log_rl(CFG_LOG_WARNING, UDP, "send on 127.0.0.1:53: error %d", i);
}

static void test_log_rl_writes_burst_then_suppressed_line(void **state)
{
	struct capture *c = *state;

	wait_new_second();
	for (int i = 0; i < 12; i++)
		rl_site(i);
	wait_new_second();
	rl_site(12);
	char *s = captured(c);
	assert_int_equal(count(s, " warning udp: send on 127.0.0.1:53: error "),
	                 PX_LOG_RL_BURST + 1);
	assert_non_null(strstr(s, "error 4\n"));
	assert_null(strstr(s, "error 5"));
	assert_non_null(strstr(s, "error 12 (7 similar messages suppressed)\n"));
	free(s);
}

static void test_log_rl_sites_are_independent(void **state)
{
	struct capture *c = *state;

	wait_new_second();
	for (int i = 0; i < 8; i++) {
		px_log_rl(CFG_LOG_WARNING, TCP, "site a %d", i);
		px_log_rl(CFG_LOG_WARNING, TCP, "site b %d", i);
	}
	char *s = captured(c);
	assert_int_equal(count(s, "site a "), PX_LOG_RL_BURST);
	assert_int_equal(count(s, "site b "), PX_LOG_RL_BURST);
	free(s);
}

static void test_log_rl_below_level_counts_nothing(void **state)
{
	struct capture *c = *state;

	atomic_store(&px_log_level, CFG_LOG_ERROR);
	for (int i = 0; i < 20; i++)
		px_log_rl(CFG_LOG_WARNING, BACKEND, "quiet %d", i);
	char *s = captured(c);
	assert_string_equal(s, "");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_log_level_filters_before_evaluating_arguments,
	                                        capture_setup, capture_teardown),
	        cmocka_unit_test_setup_teardown(test_log_groups_are_named, capture_setup,
	                                        capture_teardown),
	        cmocka_unit_test(test_log_ratelimit_burst_then_count_of_held_lines),
	        cmocka_unit_test_setup_teardown(test_log_rl_writes_burst_then_suppressed_line,
	                                        capture_setup, capture_teardown),
	        cmocka_unit_test_setup_teardown(test_log_rl_sites_are_independent, capture_setup,
	                                        capture_teardown),
	        cmocka_unit_test_setup_teardown(test_log_rl_below_level_counts_nothing,
	                                        capture_setup, capture_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
