/* tests/unit/test_codec_ecs.c - the EDNS Client Subnet option (RFC 7871):
 * strict parsing of what clients and resolvers send, writing, the prefix
 * arithmetic of the scope-keyed cache, and the text forms.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "codec/ecs.h"
#include "tests/unit/helpers.h"

static int parse_hex(const char *hex, bool query, struct codec_ecs *e)
{
	uint8_t b[64];
	long n = th_hex(hex, b, sizeof(b));
	assert_true(n >= 0);
	return codec_ecs_parse(b, (size_t)n, query, e);
}

static void test_parse_ipv4_and_ipv6(void **state)
{
	(void)state;
	struct codec_ecs e;

	assert_int_equal(parse_hex("0001 18 00 c00002", true, &e), 0);
	assert_int_equal(e.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(e.source, 24);
	assert_int_equal(e.scope, 0);
	assert_memory_equal(e.addr, "\xc0\x00\x02\x00", 4);

	/* 2001:db8:1::/48 with scope 40 in a response. */
	assert_int_equal(parse_hex("0002 30 28 20010db80001", false, &e), 0);
	assert_int_equal(e.family, CODEC_ECS_FAMILY_IP6);
	assert_int_equal(e.source, 48);
	assert_int_equal(e.scope, 40);
	for (int i = 6; i < 16; i++)
		assert_int_equal(e.addr[i], 0);

	/* Source 0: the client's "do not send my subnet". */
	assert_int_equal(parse_hex("0001 00 00", true, &e), 0);
	assert_int_equal(e.source, 0);
}

static void test_parse_rejects_malformed(void **state)
{
	(void)state;
	struct codec_ecs e;

	assert_int_equal(parse_hex("0001 18", true, &e), -EINVAL); /* short */
	assert_int_equal(parse_hex("0003 18 00 c00002", true, &e), -EAFNOSUPPORT);
	assert_int_equal(parse_hex("0001 21 00 c0000201ff", true, &e), -EINVAL); /* /33 */
	assert_int_equal(parse_hex("0001 18 00 c0000201", true, &e),
	                 -EINVAL);                                           /* 4 octets for /24 */
	assert_int_equal(parse_hex("0001 18 00 c000", true, &e), -EINVAL);   /* 2 octets */
	assert_int_equal(parse_hex("0001 17 00 c00003", true, &e), -EINVAL); /* bit 24 set */
	assert_int_equal(parse_hex("0001 18 10 c00002", true, &e), -EINVAL); /* scope in query */
	assert_int_equal(parse_hex("0001 18 10 c00002", false, &e), 0);
	assert_int_equal(parse_hex("0001 18 21 c00002", false, &e), -EINVAL); /* scope /33 */
	assert_int_equal(parse_hex("0002 81 00 00", true, &e), -EINVAL);      /* /129 */
}

static void test_find_in_message(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	struct codec_ecs e;

	long n = th_pkt("qd example. IN A\nedns 1232 000a0008 0102030405060708 0008 0007 "
	                "0001 18 00 c00002",
	                m, sizeof(m));
	assert_true(n > 0);
	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(codec_ecs_find(m, &v, true, &e), 1);
	assert_int_equal(e.source, 24);

	n = th_pkt("qd example. IN A\nedns 1232 000a0008 0102030405060708", m, sizeof(m));
	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(codec_ecs_find(m, &v, true, &e), 0);

	n = th_pkt("qd example. IN A", m, sizeof(m));
	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(codec_ecs_find(m, &v, true, &e), 0);

	n = th_pkt("qd example. IN A\nedns 1232 0008 0007 0001 17 00 c00003", m, sizeof(m));
	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(codec_ecs_find(m, &v, true, &e), -EINVAL);
}

static void test_write_round_trip_and_masks(void **state)
{
	(void)state;
	struct codec_ecs e = {.family = CODEC_ECS_FAMILY_IP4, .source = 20, .scope = 16};
	struct codec_ecs back;
	uint8_t out[CODEC_ECS_OPT_MAX];

	memcpy(e.addr, "\xc6\x33\x64\x7f", 4); /* bits past /20 set: the wire drops them */
	size_t n = codec_ecs_write(&e, out, sizeof(out));
	assert_int_equal(n, 8 + 3);
	assert_memory_equal(out, "\x00\x08\x00\x07\x00\x01\x14\x10\xc6\x33\x60", 11);
	assert_int_equal(codec_ecs_parse(out + 4, n - 4, false, &back), 0);
	assert_int_equal(back.source, 20);
	assert_int_equal(back.scope, 16);
	assert_int_equal(codec_ecs_write(&e, out, 10), 0);
	e.family = 3;
	assert_int_equal(codec_ecs_write(&e, out, sizeof(out)), 0);

	struct codec_ecs zero = {.family = CODEC_ECS_FAMILY_IP6};
	assert_int_equal(codec_ecs_write(&zero, out, sizeof(out)), 8);
}

static void test_from_sockaddr_cuts_and_unmaps(void **state)
{
	(void)state;
	struct sockaddr_in s4 = {.sin_family = AF_INET};
	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
	struct codec_ecs e;

	inet_pton(AF_INET, "198.51.100.77", &s4.sin_addr);
	assert_int_equal(codec_ecs_from_sockaddr((struct sockaddr *)&s4, 24, 56, &e), 0);
	assert_int_equal(e.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(e.source, 24);
	assert_memory_equal(e.addr, "\xc6\x33\x64\x00", 4);

	inet_pton(AF_INET6, "::ffff:198.51.100.77", &s6.sin6_addr);
	assert_int_equal(codec_ecs_from_sockaddr((struct sockaddr *)&s6, 40, 56, &e), 0);
	assert_int_equal(e.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(e.source, 32);

	inet_pton(AF_INET6, "2001:db8:aaaa:bbcc::1", &s6.sin6_addr);
	assert_int_equal(codec_ecs_from_sockaddr((struct sockaddr *)&s6, 24, 52, &e), 0);
	assert_int_equal(e.family, CODEC_ECS_FAMILY_IP6);
	assert_int_equal(e.source, 52);
	assert_memory_equal(e.addr, "\x20\x01\x0d\xb8\xaa\xaa\xb0\x00", 8);

	struct sockaddr su = {.sa_family = AF_UNIX};
	assert_int_equal(codec_ecs_from_sockaddr(&su, 24, 56, &e), -EAFNOSUPPORT);
	assert_int_equal(e.family, 0);
}

static void test_cut_matches_covers(void **state)
{
	(void)state;
	struct codec_ecs c, r;

	assert_int_equal(codec_ecs_from_text("192.0.2.200/32", &c), 0);
	codec_ecs_cut(&c, 24);
	assert_int_equal(c.source, 24);
	assert_memory_equal(c.addr, "\xc0\x00\x02\x00", 4);
	codec_ecs_cut(&c, 28); /* never lengthens */
	assert_int_equal(c.source, 24);

	r = c;
	r.scope = 16;
	assert_true(codec_ecs_matches(&c, &r));
	r.source = 23;
	assert_false(codec_ecs_matches(&c, &r));
	r = c;
	r.addr[2] = 3;
	assert_false(codec_ecs_matches(&c, &r));
	r = c;
	r.family = CODEC_ECS_FAMILY_IP6;
	assert_false(codec_ecs_matches(&c, &r));

	const uint8_t net16[4] = {192, 0, 0, 0};
	assert_true(codec_ecs_covers(CODEC_ECS_FAMILY_IP4, 16, net16, &c));
	assert_true(codec_ecs_covers(CODEC_ECS_FAMILY_IP4, 0, net16, &c));
	assert_false(
	        codec_ecs_covers(CODEC_ECS_FAMILY_IP4, 25, c.addr, &c)); /* longer than source */
	const uint8_t other[4] = {192, 1, 0, 0};
	assert_false(codec_ecs_covers(CODEC_ECS_FAMILY_IP4, 16, other, &c));
	assert_true(
	        codec_ecs_covers(CODEC_ECS_FAMILY_IP4, 15, other, &c)); /* 192.0/15 holds 192.1 */
	assert_false(codec_ecs_covers(CODEC_ECS_FAMILY_IP6, 0, net16, &c));
}

static void test_text_forms(void **state)
{
	(void)state;
	struct codec_ecs e;
	char out[80];

	assert_int_equal(codec_ecs_from_text("2001:db8::1/48", &e), 0);
	assert_int_equal(e.source, 48);
	e.scope = 40;
	assert_int_equal(codec_ecs_format(&e, true, out, sizeof(out)),
	                 (int)strlen("2001:db8::/48/40"));
	assert_string_equal(out, "2001:db8::/48/40");
	codec_ecs_format(&e, false, out, sizeof(out));
	assert_string_equal(out, "2001:db8::/48");

	assert_int_equal(codec_ecs_from_text("192.0.2.9", &e), 0);
	assert_int_equal(e.source, 32);
	assert_int_equal(codec_ecs_from_text("192.0.2.9/0", &e), 0);
	assert_int_equal(e.source, 0);
	codec_ecs_format(&e, false, out, sizeof(out));
	assert_string_equal(out, "0.0.0.0/0");

	assert_int_equal(codec_ecs_from_text("192.0.2.9/33", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("192.0.2.9/", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("192.0.2.9/-1", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("192.0.2.9/24x", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("example.com", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("", &e), -EINVAL);
	assert_int_equal(codec_ecs_from_text("::/0129", &e), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_ipv4_and_ipv6),
	        cmocka_unit_test(test_parse_rejects_malformed),
	        cmocka_unit_test(test_find_in_message),
	        cmocka_unit_test(test_write_round_trip_and_masks),
	        cmocka_unit_test(test_from_sockaddr_cuts_and_unmaps),
	        cmocka_unit_test(test_cut_matches_covers),
	        cmocka_unit_test(test_text_forms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
