/* tests/unit/test_cfg_health.c - config/: [health] and [zone] check (issue 17). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

#define BASE "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"

static struct cfg *load_ok(const char *text)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	if (cfg_load_mem("t.ini", text, strlen(text), &cfg, &err) != 0)
		fail_msg("load failed:\n%s", err.msg);
	return cfg;
}

static void load_fails(const char *text, const char *msg)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	assert_int_equal(cfg_load_mem("t.ini", text, strlen(text), &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.msg, msg);
}

static void test_health_defaults(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[zone a.example]\n");

	assert_int_equal(cfg->health.check.kind, CFG_CHECK_NONE);
	assert_int_equal(cfg->health.interval_ms, 10000);
	assert_int_equal(cfg->health.timeout_ms, 2000);
	assert_int_equal(cfg->health.fall, 3);
	assert_int_equal(cfg->health.rise, 2);
	assert_int_equal(cfg->zones[0].check.kind, CFG_CHECK_NONE);
	cfg_free(cfg);
}

/* [health] check is every zone's unless the zone sets its own, wherever
 * [health] stands in the file. */
static void test_health_zone_override(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[zone a.example]\n[zone b.example]\ncheck = http:8080\n"
	                               "[zone c.example]\ncheck = none\n"
	                               "[health]\ncheck = TLS:443\ninterval = 200ms\n"
	                               "timeout = 200ms\nfall = 2\nrise = 1\n");
	char t[64];

	assert_int_equal(cfg->health.check.kind, CFG_CHECK_TLS);
	assert_int_equal(cfg->health.check.port, 443);
	assert_int_equal(cfg->health.interval_ms, 200);
	assert_int_equal(cfg->health.timeout_ms, 200);
	assert_int_equal(cfg->health.fall, 2);
	assert_int_equal(cfg->health.rise, 1);
	assert_true(cfg_check_equal(&cfg->zones[0].check, &cfg->health.check));
	assert_int_equal(cfg->zones[1].check.kind, CFG_CHECK_HTTP);
	assert_int_equal(cfg->zones[1].check.port, 8080);
	assert_string_equal(cfg->zones[1].check.path, "/");
	assert_int_equal(cfg->zones[2].check.kind, CFG_CHECK_NONE);
	cfg_check_text(&cfg->zones[0].check, t, sizeof(t));
	assert_string_equal(t, "tls:443");
	cfg_check_text(&cfg->zones[1].check, t, sizeof(t));
	assert_string_equal(t, "http:8080/");
	cfg_check_text(&cfg->zones[2].check, t, sizeof(t));
	assert_string_equal(t, "none");
	cfg_free(cfg);

	cfg = load_ok(BASE "[health]\ncheck = http:80/health?x=1\n");
	assert_string_equal(cfg->health.check.path, "/health?x=1");
	assert_false(cfg_check_equal(
	        &cfg->health.check,
	        &(struct cfg_check){.kind = CFG_CHECK_HTTP, .port = 80, .path = "/"}));
	cfg_free(cfg);
}

#define ALLOWED                                                                                    \
	"allowed: none, tcp:PORT, tls:PORT or http:PORT/PATH (PORT 1..65535), like tls:443 or "    \
	"http:80/health\n"

static void test_health_bad_values(void **state)
{
	(void)state;
	load_fails(BASE "[health]\ncheck = ping\n", "t.ini:6: [health] check: \"ping\" is not a "
	                                            "check; " ALLOWED);
	load_fails(BASE "[health]\ncheck = udp:53\n",
	           "t.ini:6: [health] check: \"udp:53\" is not a check kind; " ALLOWED);
	load_fails(BASE "[health]\ncheck = tcp:\n",
	           "t.ini:6: [health] check: \"tcp:\" has no port; " ALLOWED);
	load_fails(BASE "[health]\ncheck = tcp:0\n",
	           "t.ini:6: [health] check: \"tcp:0\" has a port outside 1..65535; " ALLOWED);
	load_fails(BASE "[health]\ncheck = tls:65536\n",
	           "t.ini:6: [health] check: \"tls:65536\" has a port outside 1..65535; " ALLOWED);
	load_fails(BASE "[health]\ncheck = tls:443/x\n",
	           "t.ini:6: [health] check: \"tls:443/x\" has something after the port; " ALLOWED);
	load_fails(BASE "[zone a.example]\ncheck = http:80x\n",
	           "t.ini:6: [zone a.example] check: \"http:80x\" has something after the port "
	           "that is not a path; " ALLOWED);
	load_fails(BASE "[zone a.example]\ncheck = http:80/a b\n",
	           "t.ini:6: [zone a.example] check: \"http:80/a b\" has a path with a blank, "
	           "'#' or a byte that is not printable ASCII; " ALLOWED);
	load_fails(BASE "[health]\nfall = 0\nrise = 101\ninterval = 50ms\n",
	           "t.ini:6: [health] fall: \"0\" is out of range; allowed: 1..100\n"
	           "t.ini:7: [health] rise: \"101\" is out of range; allowed: 1..100\n"
	           "t.ini:8: [health] interval: \"50ms\" is out of range; allowed: 100ms..1h, "
	           "like 250ms, 5s, 10m, 1h or 1d\n");
	/* The default timeout (2s) outlasts a short interval: said at the
	 * interval, which is the line that made it so. */
	load_fails(BASE "[health]\ninterval = 1s\n",
	           "t.ini:6: [health] timeout: 2s is longer than interval 1s; allowed: a timeout "
	           "of at most the interval\n");
	load_fails(BASE "[health]\ninterval = 1s\ntimeout = 1500ms\n",
	           "t.ini:7: [health] timeout: 1500ms is longer than interval 1s; allowed: a "
	           "timeout of at most the interval\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_health_defaults),
	        cmocka_unit_test(test_health_zone_override),
	        cmocka_unit_test(test_health_bad_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
