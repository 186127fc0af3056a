/* tests/unit/test_codec_svcb.c - SVCB/HTTPS RDATA: the RFC 9460 appendix D
 * test vectors (wire and presentation), the strict checks on each known
 * key's value, RRset streams, and output that does not fit.
 */
#include <errno.h>
#include <string.h>

#include "codec/svcb.h"
#include "tests/unit/helpers.h"

struct rd {
	uint8_t b[512];
	size_t n;
};

static void rd_hex(struct rd *r, const char *hex)
{
	long n = th_hex(hex, r->b, sizeof(r->b));

	assert_true(n >= 0);
	r->n = (size_t)n;
}

/* Parses hex, expects success, and compares the presentation form. */
static void expect_text(const char *hex, const char *text)
{
	struct rd r;
	struct codec_svcb sv;
	char out[1024];

	rd_hex(&r, hex);
	assert_int_equal(codec_svcb_parse(r.b, r.n, &sv), 0);
	int n = codec_svcb_to_text(r.b, r.n, out, sizeof(out));
	assert_string_equal(out, text);
	assert_int_equal(n, (int)strlen(text));
}

/* Parses hex and expects -EBADMSG with a reason. */
static void expect_bad(const char *hex)
{
	struct rd r;
	struct codec_svcb sv;
	char out[64];

	rd_hex(&r, hex);
	assert_int_equal(codec_svcb_parse(r.b, r.n, &sv), -EBADMSG);
	assert_non_null(sv.why);
	assert_int_equal(codec_svcb_to_text(r.b, r.n, out, sizeof(out)), -EBADMSG);
	assert_string_equal(out, "");
}

#define FOO_EXAMPLE_COM "03666f6f 076578616d706c65 03636f6d 00"
#define FOO_EXAMPLE_ORG "03666f6f 076578616d706c65 036f7267 00"

static void test_svcb_rfc9460_alias_mode(void **state)
{
	(void)state;
	struct rd r;
	struct codec_svcb sv;

	rd_hex(&r, "0000" FOO_EXAMPLE_COM);
	assert_int_equal(codec_svcb_parse(r.b, r.n, &sv), 0);
	assert_int_equal(sv.priority, 0);
	assert_int_equal(sv.target_off, 2);
	assert_int_equal(sv.target_len, 17);
	assert_int_equal(sv.params_off, r.n);
	assert_int_equal(sv.n_params, 0);
	expect_text("0000" FOO_EXAMPLE_COM, "0 foo.example.com.");
}

static void test_svcb_rfc9460_service_mode_vectors(void **state)
{
	(void)state;
	expect_text("0001 00", "1 .");
	expect_text("0010" FOO_EXAMPLE_COM "0003 0002 0035", "16 foo.example.com. port=53");
	expect_text("0001" FOO_EXAMPLE_COM "029b 0005 68656c6c6f",
	            "1 foo.example.com. key667=\"hello\"");
	expect_text("0001" FOO_EXAMPLE_COM "029b 0009 68656c6c6fd2717565",
	            "1 foo.example.com. key667=\"hello\\210que\"");
	expect_text("0001" FOO_EXAMPLE_COM "0006 0020"
	            "20010db8000000000000000000000001 20010db8000000000000000000530001",
	            "1 foo.example.com. ipv6hint=2001:db8::1,2001:db8::53:1");
	expect_text("0001 076578616d706c6503636f6d00 0006 0010 20010db8 0000 0000 0000 0000 "
	            "c6336442",
	            "1 example.com. ipv6hint=2001:db8::c633:6442");
	/* Keys in wire order (ascending), whatever order the zone wrote. */
	expect_text("0010" FOO_EXAMPLE_ORG "0000 0004 0001 0004"
	            "0001 0009 02 6832 05 68332d3139"
	            "0004 0004 c0000201",
	            "16 foo.example.org. mandatory=alpn,ipv4hint alpn=h2,h3-19 ipv4hint=192.0.2.1");
	/* alpn="f\\\\oo\\,bar,h2": one alpn-id holds '\' and ','. */
	expect_text("0010" FOO_EXAMPLE_ORG "0001 000c 08 665c6f6f2c626172 02 6832",
	            "16 foo.example.org. alpn=f\\\\\\\\oo\\\\,bar,h2");
}

static void test_svcb_cdn_record_all_known_keys(void **state)
{
	(void)state;
	/* 1 . alpn=h3,h2 no-default-alpn port=8443 ipv4hint=192.0.2.1,192.0.2.2
	 *     ech=<a list of one config: version fe0d, 3 octets> ipv6hint=2001:db8::1 */
	expect_text("0001 00"
	            "0001 0006 026833 026832"
	            "0002 0000"
	            "0003 0002 20fb"
	            "0004 0008 c0000201 c0000202"
	            "0005 0009 0007 fe0d 0003 010203"
	            "0006 0010 20010db8000000000000000000000001",
	            "1 . alpn=h3,h2 no-default-alpn port=8443 ipv4hint=192.0.2.1,192.0.2.2 "
	            "ech=AAf+DQADAQID ipv6hint=2001:db8::1");
}

static void test_svcb_rfc9460_failure_vectors(void **state)
{
	(void)state;
	/* D.3: keys out of order; duplicate key; mandatory naming a key that
	 * is absent; mandatory listing itself; a TargetName that is a
	 * pointer; no TargetName at all. */
	expect_bad("0001 00 0003 0002 0035 0001 0003 026832");
	expect_bad("0001 00 0003 0002 0035 0003 0002 0036");
	expect_bad("0001 00 0000 0002 0004 0001 0003 026832");
	expect_bad("0001 00 0000 0004 0000 0001 0001 0003 026832");
	expect_bad("0001 c00c");
	expect_bad("0001");
	expect_bad("");
	/* The name runs out of the RDATA, a label over 63 octets. */
	expect_bad("0001 03666f6f");
	expect_bad("0001 40");
}

static void test_svcb_known_key_values_strict(void **state)
{
	(void)state;
	expect_bad("0001 00 0001 0000");                            /* alpn empty */
	expect_bad("0001 00 0001 0003 00 6832");                    /* empty alpn-id */
	expect_bad("0001 00 0001 0003 03 6832");                    /* alpn-id runs out */
	expect_bad("0001 00 0001 0006 026833 026832 0002 0001 00"); /* no-default-alpn value */
	expect_bad("0001 00 0003 0001 35");                         /* port 1 octet */
	expect_bad("0001 00 0003 0003 000035");                     /* port 3 octets */
	expect_bad("0001 00 0004 0000");                            /* ipv4hint empty */
	expect_bad("0001 00 0004 0005 c000020101");                 /* ipv4hint 5 octets */
	expect_bad("0001 00 0006 0004 20010db8");                   /* ipv6hint 4 octets */
	expect_bad("0001 00 0005 0003 010203");                     /* ech without list length */
	expect_bad("0001 00 0005 0006 0005 fe0d00 01");             /* list length disagrees */
	expect_bad("0001 00 0005 0008 0006 fe0d 0003 01");          /* config runs out */
	expect_bad("0001 00 0000 0001 00");                         /* mandatory odd length */
	expect_bad("0001 00 0000 0000");                            /* mandatory empty */
	expect_bad("0001 00 ffff 0000");                            /* key65535 */
	expect_bad("0001 00 0003 0002");                            /* value runs out */
	expect_bad("0001 00 00");                                   /* half a key */
	/* Unknown keys are opaque, empty values included. */
	expect_text("0001 00 0007 0000 fde8 0001 41", "1 . key7 key65000=\"A\"");
}

static void test_svcb_alias_mode_params_checked_not_refused(void **state)
{
	(void)state;
	/* RFC 9460 2.4.2: a client ignores SvcParams in AliasMode; a
	 * well-formed one is no reason to reject the RRset. */
	expect_text("0000" FOO_EXAMPLE_COM "0003 0002 01bb", "0 foo.example.com. port=443");
	expect_bad("0000" FOO_EXAMPLE_COM "0003 0001 01");
}

static void test_svcb_param_next_walks_in_order(void **state)
{
	(void)state;
	struct rd r;
	struct codec_svcb sv;
	struct codec_svcb_param p;

	rd_hex(&r, "0001 00 0001 0003 026832 0003 0002 01bb");
	assert_int_equal(codec_svcb_parse(r.b, r.n, &sv), 0);
	assert_int_equal(sv.n_params, 2);
	size_t pos = sv.params_off;
	assert_int_equal(codec_svcb_param_next(r.b, r.n, &pos, &p), 1);
	assert_int_equal(p.key, CODEC_SVCB_KEY_ALPN);
	assert_int_equal(p.len, 3);
	assert_memory_equal(p.val, "\x02h2", 3);
	assert_int_equal(codec_svcb_param_next(r.b, r.n, &pos, &p), 1);
	assert_int_equal(p.key, CODEC_SVCB_KEY_PORT);
	assert_int_equal(codec_svcb_param_next(r.b, r.n, &pos, &p), 0);
}

static void test_svcb_check_set_stream(void **state)
{
	(void)state;
	struct rd r;
	unsigned count = 99;
	const char *why = NULL;

	rd_hex(&r, "0003 000100  0009 0002 00 0003 0002 01bb");
	assert_int_equal(codec_svcb_check_set(r.b, r.n, &count, &why), 0);
	assert_int_equal(count, 2);
	assert_int_equal(codec_svcb_check_set(r.b, 0, &count, NULL), 0);
	assert_int_equal(count, 0);
	/* A length past the end, and a malformed second RDATA. */
	assert_int_equal(codec_svcb_check_set(r.b, r.n - 1, &count, &why), -EBADMSG);
	assert_non_null(why);
	assert_int_equal(count, 0);
	rd_hex(&r, "0003 000100  0008 0002 00 0003 0001 01");
	why = NULL;
	assert_int_equal(codec_svcb_check_set(r.b, r.n, NULL, &why), -EBADMSG);
	assert_string_equal(why, "port not 2 octets");
	rd_hex(&r, "00");
	assert_int_equal(codec_svcb_check_set(r.b, r.n, NULL, NULL), -EBADMSG);
}

static void test_svcb_to_text_short_buffer_cut_whole_items(void **state)
{
	(void)state;
	struct rd r;
	char out[16];

	rd_hex(&r, "0001 00 0001 0006 026833 026832 0003 0002 01bb");
	assert_int_equal(codec_svcb_to_text(r.b, r.n, out, sizeof(out)), -EMSGSIZE);
	assert_string_equal(out, "1 . alpn=h3,h2");
	assert_int_equal(codec_svcb_to_text(r.b, r.n, out, 0), -EMSGSIZE);
}

static void test_svcb_key_names(void **state)
{
	(void)state;
	char buf[16];

	assert_string_equal(codec_svcb_key_name(CODEC_SVCB_KEY_MANDATORY, buf, sizeof(buf)),
	                    "mandatory");
	assert_string_equal(codec_svcb_key_name(CODEC_SVCB_KEY_IPV6HINT, buf, sizeof(buf)),
	                    "ipv6hint");
	assert_string_equal(codec_svcb_key_name(7, buf, sizeof(buf)), "key7");
	assert_string_equal(codec_svcb_key_name(65535, buf, sizeof(buf)), "key65535");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_svcb_rfc9460_alias_mode),
	        cmocka_unit_test(test_svcb_rfc9460_service_mode_vectors),
	        cmocka_unit_test(test_svcb_cdn_record_all_known_keys),
	        cmocka_unit_test(test_svcb_rfc9460_failure_vectors),
	        cmocka_unit_test(test_svcb_known_key_values_strict),
	        cmocka_unit_test(test_svcb_alias_mode_params_checked_not_refused),
	        cmocka_unit_test(test_svcb_param_next_walks_in_order),
	        cmocka_unit_test(test_svcb_check_set_stream),
	        cmocka_unit_test(test_svcb_to_text_short_buffer_cut_whole_items),
	        cmocka_unit_test(test_svcb_key_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
