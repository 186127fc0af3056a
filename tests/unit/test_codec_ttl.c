/* tests/unit/test_codec_ttl.c - the shared TTL rules: codec_ttl_sane(),
 * codec_soa_neg_ttl(), codec_neg_ttl() and codec_min_ttl().
 */
#include <errno.h>
#include <string.h>

#include "codec/scan.h"
#include "codec/ttl.h"
#include "tests/unit/helpers.h"

#define SOA_RDATA "ns1.example.test. host.example.test. 1 7200 900 1209600"

static void test_ttl_sane_top_bit_reads_zero(void **state)
{
	(void)state;
	assert_int_equal(codec_ttl_sane(0), 0);
	assert_int_equal(codec_ttl_sane(CODEC_TTL_MAX), CODEC_TTL_MAX);
	assert_int_equal(codec_ttl_sane(0x80000000u), 0);
	assert_int_equal(codec_ttl_sane(UINT32_MAX), 0);
	assert_int_equal(codec_soa_neg_ttl(3600, 300), 300);
	assert_int_equal(codec_soa_neg_ttl(120, 600), 120);
	assert_int_equal(codec_soa_neg_ttl(120, 0x80000000u), 0);
}

static void test_neg_ttl_min_of_soa_ttl_and_minimum(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 0;

	/* ldns compresses the SOA names: the reader must follow them. */
	th_msg_pkt(&p, "hdr 1 0x8403\nqd www.example.test. IN A\n"
	               "ns example.test. 3600 IN SOA " SOA_RDATA " 300\n");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), 0);
	assert_int_equal(ttl, 300);
	th_msg_pkt(&p, "hdr 1 0x8400\nqd www.example.test. IN A\n"
	               "ns example.test. 120 IN SOA " SOA_RDATA " 600\n");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), 0);
	assert_int_equal(ttl, 120);
}

static void test_neg_ttl_without_authority_soa_enoent(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 7;

	th_msg_pkt(&p, "hdr 1 0x8400\nqd example.test. IN A\n"
	               "ns example.test. 300 IN NS ns1.example.test.\n");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), -ENOENT);
	/* An SOA in the answer section is data, not a negative answer. */
	th_msg_pkt(&p, "hdr 1 0x8400\nqd example.test. IN SOA\n"
	               "an example.test. 3600 IN SOA " SOA_RDATA " 300\n");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), -ENOENT);
	assert_int_equal(ttl, 7);
}

static void test_neg_ttl_skips_other_class_and_malformed_soa(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 0;

	th_msg_pkt(&p, "hdr 1 0x8400\nqd example.test. IN A\n"
	               "ns example.test. 60 CH SOA " SOA_RDATA " 10\n"
	               "ns example.test. 3600 IN SOA " SOA_RDATA " 900\n");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), 0);
	assert_int_equal(ttl, 900);
	/* First SOA: two root names and 19 counter octets; then a good one
	 * (root names, MINIMUM 0x64) with TTL 0x1f4. */
	th_msg_hex(
	        &p,
	        "0001 8400 0001 0000 0002 0000"
	        "07 6578616d706c65 04 74657374 00 0001 0001"
	        "c00c 0006 0001 0000000a 0015 00 00 00000001 00000002 00000003 00000004 000000"
	        "c00c 0006 0001 000001f4 0016 00 00 00000001 00000002 00000003 00000004 00000064");
	assert_int_equal(codec_neg_ttl(p.buf, p.len, &p.v, &ttl), 0);
	assert_int_equal(ttl, 100);
}

static void test_min_ttl_answer_section_only_or_all(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 0;

	th_msg_pkt(&p, "hdr 1 0x8400\nqd www.example.test. IN A\n"
	               "an www.example.test. 300 IN A 192.0.2.1\n"
	               "an www.example.test. 200 IN A 192.0.2.2\n"
	               "ns example.test. 100 IN NS ns1.example.test.\n"
	               "ar ns1.example.test. 50 IN A 192.0.2.53\n"
	               "edns 1232\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ANSWER, &ttl), 0);
	assert_int_equal(ttl, 200);
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_AUTHORITY, &ttl), 0);
	assert_int_equal(ttl, 100);
	/* The OPT's TTL field holds flags, not a TTL: 50 comes from the A. */
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ADDITIONAL, &ttl), 0);
	assert_int_equal(ttl, 50);
}

static void test_min_ttl_negative_capped_by_soa_minimum(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 0;

	th_msg_pkt(&p, "hdr 1 0x8403\nqd www.example.test. IN A\n"
	               "ns example.test. 3600 IN SOA " SOA_RDATA " 300\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ANSWER, &ttl), 0);
	assert_int_equal(ttl, 300);
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ADDITIONAL, &ttl), 0);
	assert_int_equal(ttl, 300);
	/* With answers, MINIMUM plays no part (it is no negative answer). */
	th_msg_pkt(&p, "hdr 1 0x8400\nqd www.example.test. IN A\n"
	               "an www.example.test. 3600 IN A 192.0.2.1\n"
	               "ns example.test. 3600 IN SOA " SOA_RDATA " 300\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_AUTHORITY, &ttl), 0);
	assert_int_equal(ttl, 3600);
}

static void test_min_ttl_nothing_to_go_by_enoent(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 7;

	th_msg_pkt(&p, "hdr 1 0x8402\nqd www.example.test. IN A\nedns 1232\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ANSWER, &ttl), -ENOENT);
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ADDITIONAL, &ttl), -ENOENT);
	/* A referral has TTLs, just not in the answer section. */
	th_msg_pkt(&p, "hdr 1 0x8000\nqd www.example.test. IN A\n"
	               "ns example.test. 100 IN NS ns1.example.test.\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ANSWER, &ttl), -ENOENT);
	assert_int_equal(ttl, 7);
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_AUTHORITY, &ttl), 0);
	assert_int_equal(ttl, 100);
}

static void test_min_ttl_top_bit_reads_zero(void **state)
{
	(void)state;
	struct th_msg p;
	uint32_t ttl = 7;

	th_msg_pkt(&p, "hdr 1 0x8400\nqd www.example.test. IN A\n"
	               "an www.example.test. 300 IN A 192.0.2.1\n"
	               "an www.example.test. 2147483648 IN A 192.0.2.2\n");
	assert_int_equal(codec_min_ttl(p.buf, p.len, &p.v, CODEC_SEC_ANSWER, &ttl), 0);
	assert_int_equal(ttl, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ttl_sane_top_bit_reads_zero),
	        cmocka_unit_test(test_neg_ttl_min_of_soa_ttl_and_minimum),
	        cmocka_unit_test(test_neg_ttl_without_authority_soa_enoent),
	        cmocka_unit_test(test_neg_ttl_skips_other_class_and_malformed_soa),
	        cmocka_unit_test(test_min_ttl_answer_section_only_or_all),
	        cmocka_unit_test(test_min_ttl_negative_capped_by_soa_minimum),
	        cmocka_unit_test(test_min_ttl_nothing_to_go_by_enoent),
	        cmocka_unit_test(test_min_ttl_top_bit_reads_zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
