/* Unit tests for proxy/ctlreq: control requests and names as text. */
#include <errno.h>
#include <string.h>

#include "proxy/ops/ctlreq.h"
#include "tests/unit/helpers.h"

static int parse(const char *line, struct px_ctl_req *req, char *err, size_t errlen)
{
	return px_ctl_parse(line, strlen(line), req, err, errlen);
}

static void test_ctlreq_commands_parsed(void **state)
{
	(void)state;
	struct px_ctl_req r;
	char err[256];

	assert_int_equal(parse("stats", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, PX_CTL_STATS);
	assert_false(r.has_name);
	assert_int_equal(parse("  RELOAD\r", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, PX_CTL_RELOAD);
	assert_int_equal(parse("flush", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, PX_CTL_FLUSH);
	assert_false(r.has_name);
	assert_int_equal(parse("flush\tWWW.Example.COM.", &r, err, sizeof(err)), 0);
	assert_true(r.has_name);
	assert_int_equal(r.name_len, 17);
	assert_memory_equal(r.name, "\3www\7example\3com", 17);
	assert_int_equal(parse("explain example.com", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, PX_CTL_EXPLAIN);
	assert_int_equal(r.qtype, CODEC_TYPE_A);
	assert_int_equal(parse("explain example.com aaaa", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, CODEC_TYPE_AAAA);
	assert_int_equal(parse("explain .", &r, err, sizeof(err)), 0);
	assert_int_equal(r.name_len, 1);
	assert_int_equal(r.name[0], 0);
}

static void test_ctlreq_workers(void **state)
{
	(void)state;
	struct px_ctl_req r;
	char err[256];

	assert_int_equal(parse("workers", &r, err, sizeof(err)), 0);
	assert_int_equal(r.cmd, PX_CTL_WORKERS);
	assert_false(r.has_workers);
	assert_int_equal(parse("WORKERS 2", &r, err, sizeof(err)), 0);
	assert_true(r.has_workers);
	assert_int_equal(r.workers, 2);
	assert_int_equal(parse("workers AUTO", &r, err, sizeof(err)), 0);
	assert_true(r.has_workers);
	assert_int_equal(r.workers, 0);
	assert_int_equal(parse("workers 256", &r, err, sizeof(err)), 0);
	assert_int_equal(r.workers, PX_CTL_WORKERS_MAX);
	/* Out of range, not a number, one argument too many. */
	static const char *const bad[] = {"workers 0",  "workers 257", "workers 99999999999",
	                                  "workers 2x", "workers -1",  "workers +1",
	                                  "workers two"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &r, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, "bad workers argument; allowed: a number from 1 to 256, "
		                         "or auto");
	}
	assert_int_equal(parse("workers 2 now", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	                    "too many arguments for workers; allowed: stats, reload, flush "
	                    "[NAME], explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]");
}

static void test_ctlreq_errors_say_what_is_allowed(void **state)
{
	(void)state;
	struct px_ctl_req r;
	char err[256];

	assert_int_equal(parse("", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "empty request; allowed: stats, reload, flush [NAME], explain "
	                         "NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]");
	assert_int_equal(parse("status", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	                    "unknown command \"status\"; allowed: stats, reload, flush "
	                    "[NAME], explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]");
	assert_int_equal(parse("stats now", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err,
	                    "too many arguments for stats; allowed: stats, reload, flush "
	                    "[NAME], explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]");
	assert_int_equal(parse("explain", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "explain needs a NAME; allowed: stats, reload, flush [NAME], "
	                         "explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]");
	assert_int_equal(parse("explain x MX", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad TYPE; allowed: A, AAAA, HTTPS, SVCB (before SUBNET)");
	assert_int_equal(parse("flush a..b", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad NAME: empty label; allowed: a domain name like "
	                         "www.example.com");
	assert_int_equal(parse("flush a b", &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(px_ctl_parse("st\0ats", 6, &r, err, sizeof(err)), -EINVAL);
	/* A cut error buffer is still a string. */
	assert_int_equal(parse("bogus", &r, err, 8), -EINVAL);
	assert_string_equal(err, "unknown");
}

/* explain NAME [TYPE] [SUBNET]: the subnet is told apart by its digits. */
static void test_ctlreq_explain_subnet(void **state)
{
	(void)state;
	struct px_ctl_req r;
	char err[256];

	assert_int_equal(parse("explain example.com AAAA 2001:db8:1:2::/48", &r, err, sizeof(err)),
	                 0);
	assert_int_equal(r.qtype, CODEC_TYPE_AAAA);
	assert_true(r.has_subnet);
	assert_int_equal(r.subnet.family, CODEC_ECS_FAMILY_IP6);
	assert_int_equal(r.subnet.source, 48);
	assert_memory_equal(r.subnet.addr, "\x20\x01\x0d\xb8\x00\x01\0\0", 8);
	assert_int_equal(parse("explain example.com 10.1.2.3", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, CODEC_TYPE_A);
	assert_int_equal(r.subnet.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(r.subnet.source, 32);
	assert_int_equal(parse("explain example.com A 10.1.2.3/16", &r, err, sizeof(err)), 0);
	assert_int_equal(r.subnet.source, 16);
	assert_memory_equal(r.subnet.addr, "\x0a\x01\0\0", 4);
	assert_int_equal(parse("explain example.com A 10.1.2.3/33", &r, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "bad SUBNET; allowed: an address with an optional prefix length, "
	                         "like 192.0.2.0/24 or 2001:db8::/56");
	assert_int_equal(parse("explain example.com 10.0.0.0/8 A", &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse("explain example.com 10.0.0.0/8 10.0.0.0/8", &r, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(parse("flush example.com 10.0.0.0/8", &r, err, sizeof(err)), -EINVAL);
}

/* explain NAME HTTPS|SVCB [SUBNET]: RFC 9460 records at a flattened owner. */
static void test_ctlreq_explain_https_svcb(void **state)
{
	(void)state;
	struct px_ctl_req r;
	char err[256];

	assert_int_equal(parse("explain example.com HTTPS", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, 65);
	assert_false(r.has_subnet);
	assert_int_equal(parse("explain example.com https 192.0.2.0/24", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, 65);
	assert_true(r.has_subnet);
	assert_int_equal(r.subnet.source, 24);
	assert_int_equal(parse("explain example.com Svcb", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, 64);
	assert_int_equal(parse("explain example.com SVCB 2001:db8::/56", &r, err, sizeof(err)), 0);
	assert_int_equal(r.qtype, 64);
	assert_int_equal(r.subnet.family, CODEC_ECS_FAMILY_IP6);
	/* Neither a prefix nor a longer word, nor after the subnet. */
	assert_int_equal(parse("explain example.com HTTP", &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse("explain example.com HTTPSS", &r, err, sizeof(err)), -EINVAL);
	assert_int_equal(parse("explain example.com 10.0.0.0/8 HTTPS", &r, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "bad TYPE; allowed: A, AAAA, HTTPS, SVCB (before SUBNET)");
}

static void test_ctlreq_name_escapes_and_limits(void **state)
{
	(void)state;
	uint8_t out[CODEC_MAX_NAME];
	const char *why = NULL;
	char text[400];

	assert_int_equal(px_ctl_name_parse("a\\.b.C", 6, out, &why), 7);
	assert_memory_equal(out, "\3a.b\1c", 7);
	assert_int_equal(px_ctl_name_parse("\\065\\000x", 9, out, &why), 5);
	assert_memory_equal(out, "\3a\0x\0", 5);
	assert_int_equal(px_ctl_name_parse("\\25", 3, out, &why), -EINVAL);
	assert_string_equal(why, "\\DDD escape needs three digits");
	assert_int_equal(px_ctl_name_parse("\\256", 4, out, &why), -EINVAL);
	assert_int_equal(px_ctl_name_parse("a\\", 2, out, &why), -EINVAL);
	assert_int_equal(px_ctl_name_parse("a b", 3, out, &why), -EINVAL);
	assert_int_equal(px_ctl_name_parse("..", 2, out, &why), -EINVAL);
	assert_int_equal(px_ctl_name_parse("", 0, out, &why), -EINVAL);
	/* 63-byte labels are fine, 64 is not. */
	memset(text, 'a', 64);
	assert_int_equal(px_ctl_name_parse(text, 63, out, &why), 65);
	assert_int_equal(px_ctl_name_parse(text, 64, out, &why), -EINVAL);
	assert_string_equal(why, "label longer than 63 octets");
	/* 255 octets in all: four labels of 63 (4 * 64 = 256) are one too many;
	 * three of 63 and one of 61 (254 + root) fit exactly. */
	size_t o = 0;
	for (int l = 0; l < 4; l++) {
		memset(text + o, 'b', 63);
		o += 63;
		text[o++] = '.';
	}
	assert_int_equal(px_ctl_name_parse(text, o - 1, out, &why), -EINVAL);
	assert_string_equal(why, "name longer than 255 octets");
	assert_int_equal(px_ctl_name_parse(text, o - 3, out, &why), 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ctlreq_commands_parsed),
	        cmocka_unit_test(test_ctlreq_errors_say_what_is_allowed),
	        cmocka_unit_test(test_ctlreq_workers),
	        cmocka_unit_test(test_ctlreq_explain_subnet),
	        cmocka_unit_test(test_ctlreq_explain_https_svcb),
	        cmocka_unit_test(test_ctlreq_name_escapes_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
