/* tests/unit/test_cfg_prefix.c - [listen] proxy-protocol-from: address
 * prefixes read from the file (good and bad forms, the exact errors with
 * their lines, empty = off, the entry bound) and matched against peers
 * with cfg_prefix_list_match().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

#define BASE "[backend]\naddress = 127.0.0.1:5300\n[listen]\nudp = 127.0.0.1:5353\n"

static struct cfg *load_ok(const char *text)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;
	int rc = cfg_load_mem("t.ini", text, strlen(text), &cfg, &err);

	if (rc != 0)
		fail_msg("load failed (%d):\n%s", rc, err.msg);
	assert_non_null(cfg);
	return cfg;
}

static void load_fails(const char *text, const char *msg)
{
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;

	assert_int_equal(cfg_load_mem("t.ini", text, strlen(text), &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.msg, msg);
}

static const struct sockaddr *sa4(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	in->sin_port = htons(4242);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return (const struct sockaddr *)ss;
}

static const struct sockaddr *sa6(struct sockaddr_storage *ss, const char *ip)
{
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(4242);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return (const struct sockaddr *)ss;
}

static void test_prefix_default_and_empty_are_off(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	struct cfg *cfg = load_ok(BASE);

	assert_int_equal(cfg->listen.proxy_from.n, 0);
	assert_false(cfg_prefix_list_match(&cfg->listen.proxy_from, sa4(&ss, "127.0.0.1")));
	cfg_free(cfg);
	cfg = load_ok(BASE "proxy-protocol-from =\n");
	assert_int_equal(cfg->listen.proxy_from.n, 0);
	cfg_free(cfg);
}

static void test_prefix_list_parsed_and_normalised(void **state)
{
	(void)state;
	struct cfg *cfg =
	        load_ok(BASE "proxy-protocol-from = 10.0.0.0/8, 2001:DB8::/32,192.0.2.1 , "
	                     "2001:db8:0:0::7, 0.0.0.0/0, ::/0, 198.51.100.128/25, "
	                     "::ffff:203.0.113.0/120\n");
	const struct cfg_prefix_list *l = &cfg->listen.proxy_from;
	const char *want[] = {"10.0.0.0/8", "2001:db8::/32", "192.0.2.1/32",      "2001:db8::7/128",
	                      "0.0.0.0/0",  "::/0",          "198.51.100.128/25", "203.0.113.0/24"};

	assert_int_equal(l->n, 8);
	for (size_t i = 0; i < l->n; i++)
		assert_string_equal(l->v[i].text, want[i]);
	assert_int_equal(l->v[0].family, AF_INET);
	assert_int_equal(l->v[0].len, 8);
	assert_int_equal(l->v[1].family, AF_INET6);
	assert_int_equal(l->v[1].len, 32);
	/* An IPv4-mapped prefix is kept as the IPv4 prefix it is. */
	assert_int_equal(l->v[7].family, AF_INET);
	assert_int_equal(l->v[7].len, 24);
	struct sockaddr_storage ss;
	assert_true(cfg_prefix_list_match(l, sa4(&ss, "203.0.113.5")));
	assert_true(cfg_prefix_list_match(l, sa6(&ss, "::ffff:203.0.113.5")));
	cfg_free(cfg);
}

static void test_prefix_match_v4_v6_and_mapped(void **state)
{
	(void)state;
	struct sockaddr_storage ss;
	struct cfg *cfg =
	        load_ok(BASE "proxy-protocol-from = 10.0.0.0/8, 2001:db8::/32, 192.0.2.1, "
	                     "198.51.100.128/25, 2001:db9:fffe::/47\n");
	const struct cfg_prefix_list *l = &cfg->listen.proxy_from;

	assert_true(cfg_prefix_list_match(l, sa4(&ss, "10.0.0.0")));
	assert_true(cfg_prefix_list_match(l, sa4(&ss, "10.255.255.255")));
	assert_false(cfg_prefix_list_match(l, sa4(&ss, "11.0.0.0")));
	assert_false(cfg_prefix_list_match(l, sa4(&ss, "9.255.255.255")));
	assert_true(cfg_prefix_list_match(l, sa4(&ss, "192.0.2.1")));
	assert_false(cfg_prefix_list_match(l, sa4(&ss, "192.0.2.2")));
	/* /25: the bit inside the last byte decides. */
	assert_true(cfg_prefix_list_match(l, sa4(&ss, "198.51.100.128")));
	assert_true(cfg_prefix_list_match(l, sa4(&ss, "198.51.100.255")));
	assert_false(cfg_prefix_list_match(l, sa4(&ss, "198.51.100.127")));
	assert_true(cfg_prefix_list_match(l, sa6(&ss, "2001:db8::1")));
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "2001:db7:ffff::1")));
	/* /47: the last bit of the third group decides. */
	assert_true(cfg_prefix_list_match(l, sa6(&ss, "2001:db9:fffe::")));
	assert_true(cfg_prefix_list_match(l, sa6(&ss, "2001:db9:ffff:ffff::1")));
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "2001:db9:fffd:ffff::1")));
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "2001:db9::1")));
	/* An IPv4 client on a dual-stack socket; never an IPv6 prefix's. */
	assert_true(cfg_prefix_list_match(l, sa6(&ss, "::ffff:10.1.2.3")));
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "::ffff:11.1.2.3")));
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "::a01:203")));
	/* Families are apart: 10.0.0.0/8 says nothing of 0a00::/8. */
	assert_false(cfg_prefix_list_match(l, sa6(&ss, "a00::1")));
	struct sockaddr un = {.sa_family = AF_UNIX};
	assert_false(cfg_prefix_list_match(l, &un));
	cfg_free(cfg);

	cfg = load_ok(BASE "proxy-protocol-from = ::/0\n");
	assert_true(cfg_prefix_list_match(&cfg->listen.proxy_from, sa6(&ss, "2001:db8::1")));
	assert_false(cfg_prefix_list_match(&cfg->listen.proxy_from, sa4(&ss, "10.0.0.1")));
	cfg_free(cfg);
}

#define ALLOWED                                                                                    \
	"; allowed: at most 64 addresses or prefixes like 10.0.0.0/8, 192.0.2.1, 2001:db8::/32; "  \
	"empty for none\n"

static void test_prefix_bad_values_reported_with_line(void **state)
{
	(void)state;
	load_fails(BASE "proxy-protocol-from = 10.0.0.1/8\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"10.0.0.1/8\" has bits set past /8; "
	           "the prefix is 10.0.0.0/8" ALLOWED);
	load_fails(BASE "proxy-protocol-from = 10.0.0.0/33\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"10.0.0.0/33\" prefix length must be "
	           "0..32" ALLOWED);
	load_fails(BASE "proxy-protocol-from = 2001:db8::/129\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"2001:db8::/129\" prefix length must "
	           "be 0..128" ALLOWED);
	load_fails(BASE "proxy-protocol-from = 10.0.0.0/\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"10.0.0.0/\" prefix length must be "
	           "0..32" ALLOWED);
	load_fails(BASE "proxy-protocol-from = lb.example.net\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"lb.example.net\" is not an IPv4 or "
	           "IPv6 address" ALLOWED);
	load_fails(BASE "proxy-protocol-from = 127.0.0.1:53\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"127.0.0.1:53\" is not an IPv4 or IPv6 "
	           "address" ALLOWED);
	load_fails(BASE "proxy-protocol-from = /8\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"/8\" has no address before the "
	           "'/'" ALLOWED);
	load_fails(BASE "proxy-protocol-from = 10.0.0.0/8,,192.0.2.1\n",
	           "t.ini:5: [listen] proxy-protocol-from: \"10.0.0.0/8,,192.0.2.1\" has an empty "
	           "list element" ALLOWED);
	load_fails(BASE "\nproxy-protocol-from = 10.0.0.0/8, 10.0.0.0/8\n",
	           "t.ini:6: [listen] proxy-protocol-from: \"10.0.0.0/8\" is listed twice; "
	           "allowed: each prefix once\n");
	load_fails(BASE "proxy-protocol-from = 10.0.0.0/8\nproxy-protocol-from = 192.0.2.1\n",
	           "t.ini:6: [listen] proxy-protocol-from: duplicate key (first set at line 5); "
	           "allowed: one value per key\n");
}

static void test_prefix_list_bounded(void **state)
{
	(void)state;
	char text[4096];
	size_t o = (size_t)snprintf(text, sizeof(text), "%s", BASE "proxy-protocol-from = ");

	for (int i = 0; i < CFG_PREFIXES_MAX; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "%s10.0.%d.0/24", i ? ", " : "",
		                      i);
	snprintf(text + o, sizeof(text) - o, "\n");
	struct cfg *cfg = load_ok(text);
	assert_int_equal(cfg->listen.proxy_from.n, CFG_PREFIXES_MAX);
	cfg_free(cfg);

	snprintf(text + o, sizeof(text) - o, ", 192.0.2.1, 192.0.2.2\n");
	load_fails(text, "t.ini:5: [listen] proxy-protocol-from: more than 64 entries" ALLOWED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prefix_default_and_empty_are_off),
	        cmocka_unit_test(test_prefix_list_parsed_and_normalised),
	        cmocka_unit_test(test_prefix_match_v4_v6_and_mapped),
	        cmocka_unit_test(test_prefix_bad_values_reported_with_line),
	        cmocka_unit_test(test_prefix_list_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
