/* Unit tests for proxy/rrl: the [limits] token buckets per client prefix
 * and the slip reply, without sockets (addresses are built by hand and
 * the clock is a number the test moves). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "codec/scan.h"
#include "codec/wire.h"
#include "proxy/engine/rrl.h"
#include "tests/unit/helpers.h"

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5353);
	assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(5353);
	assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static enum px_rrl_verdict check(struct px_rrl *r, const struct sockaddr_storage *ss, uint64_t ms)
{
	return px_rrl_check(r, (const struct sockaddr *)ss, ms);
}

static void test_rrl_key_is_v4_24_and_v6_56(void **state)
{
	(void)state;
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.254"), c = v4("192.0.3.1");
	assert_int_equal(px_rrl_key(SA(a)), px_rrl_key(SA(b)));
	assert_int_not_equal(px_rrl_key(SA(a)), px_rrl_key(SA(c)));

	struct sockaddr_storage d = v6("2001:db8:0:100::1"), e = v6("2001:db8:0:1ff:ffff::9"),
	                        f = v6("2001:db8:0:200::1");
	assert_int_equal(px_rrl_key(SA(d)), px_rrl_key(SA(e)));
	assert_int_not_equal(px_rrl_key(SA(d)), px_rrl_key(SA(f)));

	/* The same bits in the other family are another prefix. */
	struct sockaddr_storage g = v4("0.0.0.1"), h = v6("::1");
	assert_int_not_equal(px_rrl_key(SA(g)), px_rrl_key(SA(h)));
	assert_int_not_equal(px_rrl_key(SA(g)), 0);
	assert_int_not_equal(px_rrl_key(SA(h)), 0);

	/* Anything else has no prefix and is never limited. */
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	assert_int_equal(px_rrl_key((const struct sockaddr *)&un), 0);
}

static void test_rrl_rate_out_of_range_is_refused(void **state)
{
	(void)state;
	struct px_rrl *r = (struct px_rrl *)1;

	assert_int_equal(px_rrl_new(&r, 0, 2, 1), -EINVAL);
	assert_null(r);
	assert_int_equal(px_rrl_new(&r, PX_RRL_RATE_MAX + 1, 2, 1), -EINVAL);
	assert_int_equal(px_rrl_new(&r, PX_RRL_RATE_MAX, 2, 1), 0);
	px_rrl_free(r);
	px_rrl_free(NULL);
}

static void test_rrl_burst_then_drop_and_slip_every_second(void **state)
{
	(void)state;
	struct px_rrl *r;
	struct sockaddr_storage a = v4("198.51.100.7");

	assert_int_equal(px_rrl_new(&r, 5, 2, 42), 0);
	/* One second's worth passes at once: the bucket starts full. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(check(r, &a, 1000), PX_RRL_PASS);
	/* Then every second limited answer slips, the others drop. */
	unsigned drops = 0, slips = 0;
	for (int i = 0; i < 100; i++) {
		enum px_rrl_verdict v = check(r, &a, 1000);
		assert_int_equal(v, i % 2 == 0 ? PX_RRL_DROP : PX_RRL_SLIP);
		drops += v == PX_RRL_DROP;
		slips += v == PX_RRL_SLIP;
	}
	assert_int_equal(drops, 50);
	assert_int_equal(slips, 50);
	/* Another address in the same /24 shares the bucket ... */
	struct sockaddr_storage b = v4("198.51.100.200");
	assert_int_not_equal(check(r, &b, 1000), PX_RRL_PASS);
	/* ... another /24 does not. */
	struct sockaddr_storage c = v4("198.51.101.7");
	assert_int_equal(check(r, &c, 1000), PX_RRL_PASS);
	px_rrl_free(r);
}

static void test_rrl_refills_at_the_rate(void **state)
{
	(void)state;
	struct px_rrl *r;
	struct sockaddr_storage a = v6("2001:db8:aa:bb00::53");

	assert_int_equal(px_rrl_new(&r, 5, 0, 7), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(check(r, &a, 5000), PX_RRL_PASS);
	assert_int_equal(check(r, &a, 5000), PX_RRL_DROP);
	/* 5 per second: one token per 200 ms. */
	assert_int_equal(check(r, &a, 5199), PX_RRL_DROP);
	assert_int_equal(check(r, &a, 5200), PX_RRL_PASS);
	assert_int_equal(check(r, &a, 5200), PX_RRL_DROP);
	/* A clock that goes back adds nothing. */
	assert_int_equal(check(r, &a, 4000), PX_RRL_DROP);
	/* After a quiet second the bucket is full again, never fuller. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(check(r, &a, 60000), PX_RRL_PASS);
	assert_int_equal(check(r, &a, 60000), PX_RRL_DROP);
	/* Over ten seconds at exactly the rate, every answer passes. */
	for (uint64_t t = 61000; t < 71000; t += 200)
		assert_int_equal(check(r, &a, t), PX_RRL_PASS);
	px_rrl_free(r);
}

static void test_rrl_slip_zero_never_one_always(void **state)
{
	(void)state;
	struct px_rrl *r0, *r1, *r3;
	struct sockaddr_storage a = v4("203.0.113.9");

	assert_int_equal(px_rrl_new(&r0, 1, 0, 1), 0);
	assert_int_equal(px_rrl_new(&r1, 1, 1, 1), 0);
	assert_int_equal(px_rrl_new(&r3, 1, 3, 1), 0);
	assert_int_equal(check(r0, &a, 0), PX_RRL_PASS);
	assert_int_equal(check(r1, &a, 0), PX_RRL_PASS);
	assert_int_equal(check(r3, &a, 0), PX_RRL_PASS);
	for (int i = 1; i <= 30; i++) {
		assert_int_equal(check(r0, &a, 0), PX_RRL_DROP);
		assert_int_equal(check(r1, &a, 0), PX_RRL_SLIP);
		assert_int_equal(check(r3, &a, 0), i % 3 == 0 ? PX_RRL_SLIP : PX_RRL_DROP);
	}
	px_rrl_free(r0);
	px_rrl_free(r1);
	px_rrl_free(r3);
}

/* A spoofer sending from many new prefixes must not flush the entry of
 * the prefix being limited (which would give it a full bucket again). */
static void test_rrl_flood_of_new_prefixes_keeps_a_limited_one(void **state)
{
	(void)state;
	struct px_rrl *r;
	struct sockaddr_storage victim = v4("192.0.2.10");

	assert_int_equal(px_rrl_new(&r, 10, 0, 0x1234567890abcdefu), 0);
	for (int i = 0; i < 10; i++)
		assert_int_equal(check(r, &victim, 100), PX_RRL_PASS);
	assert_int_equal(check(r, &victim, 100), PX_RRL_DROP);
	/* Four times as many prefixes as the table holds, one answer each. */
	for (uint32_t i = 0; i < 4u * PX_RRL_ENTRIES; i++) {
		struct sockaddr_storage ss;
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		sin->sin_family = AF_INET;
		/* 64.0.0.0/6: 2^18 distinct /24s, none the victim's. */
		sin->sin_addr.s_addr = htonl((64u << 24) | (i << 8));
		assert_int_equal(check(r, &ss, 100), PX_RRL_PASS);
	}
	assert_int_equal(check(r, &victim, 100), PX_RRL_DROP);
	px_rrl_free(r);
}

static void test_rrl_slip_reply_is_question_only_with_tc(void **state)
{
	(void)state;
	uint8_t q[512], out[512];
	struct codec_view v, rv;
	long qlen = th_pkt("hdr 0xbeef 0x0110\n"
	                   "qd Example.COM. IN A\n"
	                   "edns 4096 do\n",
	                   q, sizeof(q));

	assert_true(qlen > 0);
	assert_int_equal(codec_scan(q, (size_t)qlen, &v), 0);
	ssize_t n = px_rrl_slip_reply(q, (size_t)qlen, &v, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(codec_scan(out, (size_t)n, &rv), 0);
	assert_int_equal(rv.id, 0xbeef);
	assert_int_equal(rv.flags & (CODEC_FLAG_QR | CODEC_FLAG_TC | CODEC_FLAG_AA),
	                 CODEC_FLAG_QR | CODEC_FLAG_TC);
	assert_true(rv.flags & CODEC_FLAG_RD);
	assert_true(rv.flags & CODEC_FLAG_CD);
	assert_int_equal(rv.rcode, CODEC_RCODE_NOERROR);
	assert_int_equal(rv.qdcount, 1);
	assert_int_equal(rv.ancount, 0);
	assert_int_equal(rv.nscount, 0);
	assert_true(rv.has_opt);
	/* The client's spelling of the question, byte for byte. */
	assert_memory_equal(out + CODEC_HDR_LEN, q + CODEC_HDR_LEN, v.question_end - CODEC_HDR_LEN);
	/* Never bigger than what asked for it. */
	assert_true((size_t)n <= (size_t)qlen);

	/* A query that did not scan gets a bare header. */
	n = px_rrl_slip_reply(q, (size_t)qlen, NULL, out, sizeof(out));
	assert_int_equal(n, CODEC_HDR_LEN);
	assert_int_equal(codec_get_u16(out + 2) & CODEC_FLAG_TC, CODEC_FLAG_TC);
	assert_int_equal(codec_get_u16(out + 4), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rrl_key_is_v4_24_and_v6_56),
	        cmocka_unit_test(test_rrl_rate_out_of_range_is_refused),
	        cmocka_unit_test(test_rrl_burst_then_drop_and_slip_every_second),
	        cmocka_unit_test(test_rrl_refills_at_the_rate),
	        cmocka_unit_test(test_rrl_slip_zero_never_one_always),
	        cmocka_unit_test(test_rrl_flood_of_new_prefixes_keeps_a_limited_one),
	        cmocka_unit_test(test_rrl_slip_reply_is_question_only_with_tc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
