/* tests/unit/test_codec_scan.c - codec_scan(), codec_question_equal(),
 * codec_answers_question() and the RR iterator over messages of every
 * shape, well formed and not.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "tests/unit/helpers.h"

/* 12-byte header: ID 0x1234, RD, one question. */
#define HDR_Q1 "1234 0100 0001 0000 0000 0000 "
/* www.example.com. IN A, 21 octets at offset 12. */
#define Q_WWW "03777777 076578616d706c65 03636f6d 00 0001 0001 "

static long hex(const char *text, uint8_t *out, size_t outlen)
{
	long n = th_hex(text, out, outlen);

	assert_true(n >= 0);
	return n;
}

static long pkt(const char *text, uint8_t *out, size_t outlen)
{
	long n = th_pkt(text, out, outlen);

	assert_true(n >= CODEC_HDR_LEN);
	return n;
}

static void test_scan_plain_query_fills_view(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = pkt("hdr 0x1234 0x0100\nqd www.example.com. IN A\n", m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.id, 0x1234);
	assert_int_equal(v.flags, CODEC_FLAG_RD);
	assert_int_equal(v.opcode, CODEC_OPCODE_QUERY);
	assert_int_equal(v.rcode, 0);
	assert_int_equal(v.qdcount, 1);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 0);
	assert_int_equal(v.qname_off, 12);
	assert_int_equal(v.qname_len, 17);
	assert_int_equal(v.qtype, CODEC_TYPE_A);
	assert_int_equal(v.qclass, CODEC_CLASS_IN);
	assert_int_equal(v.question_end, 33);
	assert_int_equal(v.an_off, 33);
	assert_int_equal(v.ns_off, 33);
	assert_int_equal(v.ar_off, 33);
	assert_int_equal(v.end, 33);
	assert_int_equal(n, 33);
	assert_false(v.has_opt);
	assert_false(v.do_bit);
	assert_false(v.has_tsig);
}

static void test_scan_edns_do_cookie_fills_opt(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = pkt("hdr 0xbeef 0x0100\nqd www.example.com. IN AAAA\n"
	             "edns 4096 do 000a0008 0102030405060708\n",
	             m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.arcount, 1);
	assert_int_equal(v.qtype, CODEC_TYPE_AAAA);
	assert_int_equal(v.ar_off, 33);
	assert_true(v.has_opt);
	assert_int_equal(v.opt_off, 33);
	assert_int_equal(v.opt_rdata_off, 44);
	assert_int_equal(v.opt_rdlen, 12);
	assert_int_equal(v.udp_size, 4096);
	assert_int_equal(v.ext_rcode, 0);
	assert_int_equal(v.edns_version, 0);
	assert_true(v.do_bit);
	assert_int_equal(v.end, 56);
	assert_int_equal(n, 56);
	/* The option area is where the view says. */
	assert_int_equal(codec_get_u16(m + v.opt_rdata_off), CODEC_EDNS_OPT_COOKIE);
	assert_int_equal(codec_get_u16(m + v.opt_rdata_off + 2), 8);
}

static void test_scan_opt_ext_rcode_version_reported(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	/* Response with ext rcode 1 (BADVERS with header rcode 0), version 1,
	 * DO clear, payload 512, and a zero-length option. */
	long n = hex("1234 8000 0000 0000 0000 0001"
	             "00 0029 0200 01 01 0000 0004 0003 0000",
	             m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_true(v.has_opt);
	assert_int_equal(v.qdcount, 0);
	assert_int_equal(v.opt_off, 12);
	assert_int_equal(v.opt_rdata_off, 23);
	assert_int_equal(v.opt_rdlen, 4);
	assert_int_equal(v.udp_size, 512);
	assert_int_equal(v.ext_rcode, 1);
	assert_int_equal(v.edns_version, 1);
	assert_false(v.do_bit);
}

/* A response whose names are compressed; offsets worked out by hand. */
static const char *const resp_hex =
        "1234 8580 0001 0001 0001 0002"
        /* 12: example.com. IN A -> question_end 29 */
        "076578616d706c6503636f6d00 0001 0001"
        /* 29: example.com. 300 IN CNAME www.example.com. -> 47 */
        "c00c 0005 0001 0000012c 0006 03777777c00c"
        /* 47: example.com. 3600 IN NS ns1.example.com. (name at 59) -> 65 */
        "c00c 0002 0001 00000e10 0006 036e7331c00c"
        /* 65: ns1.example.com. 3600 IN A 192.0.2.53 -> 81 */
        "c03b 0001 0001 00000e10 0004 c0000235"
        /* 81: OPT 4096 DO -> 92 */
        "00 0029 1000 00 00 8000 0000";

static void test_scan_compressed_response_fills_offsets(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = hex(resp_hex, m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.flags, 0x8580);
	assert_int_equal(v.ancount, 1);
	assert_int_equal(v.nscount, 1);
	assert_int_equal(v.arcount, 2);
	assert_int_equal(v.qname_off, 12);
	assert_int_equal(v.qname_len, 13);
	assert_int_equal(v.question_end, 29);
	assert_int_equal(v.an_off, 29);
	assert_int_equal(v.ns_off, 47);
	assert_int_equal(v.ar_off, 65);
	assert_int_equal(v.opt_off, 81);
	assert_int_equal(v.opt_rdata_off, 92);
	assert_int_equal(v.opt_rdlen, 0);
	assert_int_equal(v.udp_size, 4096);
	assert_true(v.do_bit);
	assert_int_equal(v.end, 92);
	assert_int_equal(n, 92);
}

static void test_rr_iter_compressed_response_yields_each_rr(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	long n = hex(resp_hex, m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);

	codec_rr_iter_init(&it, m, (size_t)n, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.owner_off, 29);
	assert_int_equal(rr.type, CODEC_TYPE_CNAME);
	assert_int_equal(rr.rclass, CODEC_CLASS_IN);
	assert_int_equal(rr.ttl, 300);
	assert_int_equal(rr.ttl_off, 35);
	assert_int_equal(rr.rdlen, 6);
	assert_int_equal(rr.rdata_off, 41);
	assert_int_equal(codec_name_equal(m, (size_t)n, rr.owner_off, m, (size_t)n, v.qname_off),
	                 1);
	assert_int_equal(codec_rr_next(&it, &rr), 0);

	codec_rr_iter_init(&it, m, (size_t)n, &v, CODEC_SEC_AUTHORITY);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.owner_off, 47);
	assert_int_equal(rr.type, CODEC_TYPE_NS);
	assert_int_equal(rr.ttl, 3600);
	assert_int_equal(rr.rdata_off, 59);
	assert_int_equal(codec_rr_next(&it, &rr), 0);

	codec_rr_iter_init(&it, m, (size_t)n, &v, CODEC_SEC_ADDITIONAL);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.owner_off, 65);
	assert_int_equal(rr.type, CODEC_TYPE_A);
	assert_int_equal(rr.rdata_off, 77);
	assert_memory_equal(m + rr.rdata_off, "\xc0\x00\x02\x35", 4);
	/* The A owner points at the NS RDATA: same name, compressed. */
	assert_int_equal(codec_name_equal(m, (size_t)n, rr.owner_off, m, (size_t)n, 59), 1);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.owner_off, 81);
	assert_int_equal(rr.type, CODEC_TYPE_OPT);
	assert_int_equal(codec_rr_next(&it, &rr), 0);
	assert_int_equal(codec_rr_next(&it, &rr), 0);
}

static void test_rr_iter_truncated_buffer_reports_ebadmsg(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	long n = hex(resp_hex, m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	/* A view used with a shorter buffer than it was made from. */
	codec_rr_iter_init(&it, m, 40, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), -EBADMSG);
	assert_int_equal(codec_rr_next(&it, &rr), 0);
}

static void test_scan_ldns_response_sections_match_counts(void **state)
{
	(void)state;
	uint8_t m[1024];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	long n = pkt("hdr 7 0x8400\nqd apex.example. IN A\n"
	             "an apex.example. 300 IN CNAME cdn.example.net.\n"
	             "an cdn.example.net. 60 IN A 198.51.100.1\n"
	             "an cdn.example.net. 60 IN A 198.51.100.2\n"
	             "ns example. 3600 IN NS ns1.example.\n"
	             "ns example. 3600 IN NS ns2.example.\n"
	             "ar ns1.example. 3600 IN A 192.0.2.1\n"
	             "ar ns2.example. 3600 IN AAAA 2001:db8::2\n"
	             "edns 1232\n",
	             m, sizeof(m));
	const unsigned want[3] = {3, 2, 3};

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.end, n);
	for (int s = 0; s < 3; s++) {
		unsigned count = 0;
		int rc;

		codec_rr_iter_init(&it, m, (size_t)n, &v, (enum codec_section)s);
		while ((rc = codec_rr_next(&it, &rr)) == 1)
			count++;
		assert_int_equal(rc, 0);
		assert_int_equal(count, want[s]);
	}
	assert_true(v.has_opt);
	assert_int_equal(v.udp_size, 1232);
	assert_false(v.do_bit);
}

static void test_scan_notify_with_soa_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	long n = pkt("hdr 0x4242 0x2400\nqd example. IN SOA\n"
	             "an example. 3600 IN SOA ns1.example. host.example. 2024010101 7200 3600 "
	             "1209600 300\n",
	             m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.opcode, CODEC_OPCODE_NOTIFY);
	assert_int_equal(v.flags, 0x2400);
	assert_int_equal(v.qtype, CODEC_TYPE_SOA);
	assert_int_equal(v.ancount, 1);
	codec_rr_iter_init(&it, m, (size_t)n, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.type, CODEC_TYPE_SOA);
	assert_int_equal(rr.ttl, 3600);
	assert_int_equal(rr.rdata_off + rr.rdlen, n);
}

static void test_scan_update_shape_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	/* Zone, a prerequisite with class ANY and no RDATA, two updates. */
	long n = pkt("hdr 0x0001 0x2800\nqd example. IN SOA\n"
	             "an example. 0 ANY SOA\n"
	             "ns www.example. 300 IN A 192.0.2.1\n"
	             "ns old.example. 0 ANY ANY\n",
	             m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.opcode, CODEC_OPCODE_UPDATE);
	assert_int_equal(v.qdcount, 1);
	assert_int_equal(v.ancount, 1);
	assert_int_equal(v.nscount, 2);
	assert_int_equal(v.qtype, CODEC_TYPE_SOA);
	assert_int_equal(v.end, n);
}

static void test_scan_qdcount_zero_cookie_query_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = pkt("hdr 0x0102 0x0000\nedns 1232 000a0008 0001020304050607\n", m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.qdcount, 0);
	assert_int_equal(v.qname_off, 0);
	assert_int_equal(v.qname_len, 0);
	assert_int_equal(v.question_end, 12);
	assert_int_equal(v.an_off, 12);
	assert_int_equal(v.ar_off, 12);
	assert_int_equal(v.opt_off, 12);
	assert_true(v.has_opt);
	assert_int_equal(v.opt_rdlen, 12);
}

/* key. ANY TSIG hmac-sha256. with a 4-byte MAC: 16 + 33 RDATA octets. */
#define TSIG_RR                                                                                    \
	"036b657900 00fa 00ff 00000000 0021"                                                       \
	"0b686d61632d73686132353600 000065538100 012c 0004 00010203 1234 0000 0000"

static void test_scan_tsig_last_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = hex("1234 0000 0001 0000 0000 0002" Q_WWW "00 0029 04d0 0000 0000 0000" TSIG_RR, m,
	             sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_true(v.has_opt);
	assert_true(v.has_tsig);
	assert_int_equal(v.end, n);
}

static void test_scan_root_qname_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = pkt("hdr 1 0\nqd . IN NS\n", m, sizeof(m));

	assert_int_equal(codec_scan(m, (size_t)n, &v), 0);
	assert_int_equal(v.qname_off, 12);
	assert_int_equal(v.qname_len, 1);
	assert_int_equal(v.qtype, CODEC_TYPE_NS);
	assert_int_equal(v.end, 17);
}

/* Writes a header with one question, then a name of labels of the given
 * lengths (filled with 'a'), then type A class IN. */
static size_t build_long_name(uint8_t *m, const unsigned *labels, size_t nlabels)
{
	size_t pos = (size_t)hex(HDR_Q1, m, CODEC_HDR_LEN);

	for (size_t i = 0; i < nlabels; i++) {
		m[pos++] = (uint8_t)labels[i];
		memset(m + pos, 'a', labels[i]);
		pos += labels[i];
	}
	m[pos++] = 0;
	pos += (size_t)hex("0001 0001", m + pos, 4);
	return pos;
}

static void test_scan_name_255_octets_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	const unsigned labels[] = {63, 63, 63, 61};
	size_t n = build_long_name(m, labels, 4);

	assert_int_equal(codec_scan(m, n, &v), 0);
	assert_int_equal(v.qname_len, 255);
}

static void test_scan_name_256_octets_rejected(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	const unsigned labels[] = {63, 63, 63, 62};
	size_t n = build_long_name(m, labels, 4);

	assert_int_equal(codec_scan(m, n, &v), -EBADMSG);
}

/* Question of three 63-octet labels (193 octets) at 12; one answer whose
 * owner is one more label of first_label octets plus a pointer to it. */
static size_t build_long_compressed(uint8_t *m, unsigned first_label)
{
	const unsigned labels[] = {63, 63, 63};
	size_t pos = build_long_name(m, labels, 3);

	codec_put_u16(m + 6, 1);
	m[pos++] = (uint8_t)first_label;
	memset(m + pos, 'b', first_label);
	pos += first_label;
	pos += (size_t)hex("c00c 0001 0001 00000000 0000", m + pos, 12);
	return pos;
}

static void test_scan_name_255_after_decompression_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	size_t n = build_long_compressed(m, 61);

	assert_int_equal(codec_scan(m, n, &v), 0);
	codec_rr_iter_init(&it, m, n, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(codec_name_skip(m, n, rr.owner_off, NULL), 255);
}

static void test_scan_name_over_255_after_decompression_rejected(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	size_t n = build_long_compressed(m, 62);

	assert_int_equal(codec_scan(m, n, &v), -EBADMSG);
}

static void test_scan_label_63_accepted(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	const unsigned labels[] = {63, 3};
	size_t n = build_long_name(m, labels, 2);

	assert_int_equal(codec_scan(m, n, &v), 0);
	assert_int_equal(v.qname_len, 69);
}

/* Question "." at 12, then one RR whose RDATA is a chain of pointers, each
 * pointing at the one before, the first at the root; a second RR's owner
 * points at the last link. Following that owner costs chain + 1 hops. */
static size_t build_pointer_chain(uint8_t *m, unsigned chain)
{
	size_t pos = (size_t)hex("1234 0000 0001 0002 0000 0000 00 0001 0001", m, 17);
	size_t prev = 12;

	pos += (size_t)hex("00 0001 0001 00000000", m + pos, 9);
	codec_put_u16(m + pos, (uint16_t)(2 * chain));
	pos += 2;
	for (unsigned i = 0; i < chain; i++) {
		codec_put_u16(m + pos, (uint16_t)(0xc000 | prev));
		prev = pos;
		pos += 2;
	}
	codec_put_u16(m + pos, (uint16_t)(0xc000 | prev));
	pos += 2;
	pos += (size_t)hex("0001 0001 00000000 0000", m + pos, 10);
	return pos;
}

static void test_scan_pointer_hops_at_limit_accepted(void **state)
{
	(void)state;
	uint8_t m[1024];
	struct codec_view v;
	size_t n = build_pointer_chain(m, CODEC_MAX_PTR_HOPS - 1);

	assert_int_equal(codec_scan(m, n, &v), 0);
	assert_int_equal(v.ancount, 2);
}

static void test_scan_pointer_hops_over_limit_rejected(void **state)
{
	(void)state;
	uint8_t m[1024];
	struct codec_view v;
	size_t n = build_pointer_chain(m, CODEC_MAX_PTR_HOPS);

	assert_int_equal(codec_scan(m, n, &v), -EBADMSG);
}

static void test_scan_over_65535_octets_rejected(void **state)
{
	(void)state;
	size_t n = CODEC_MAX_MSG + 1;
	uint8_t *m = calloc(1, n);
	struct codec_view v;

	assert_non_null(m);
	/* A valid query followed by an OPT padding option filling the rest,
	 * so that only the size is wrong. */
	size_t pos =
	        (size_t)hex("1234 0000 0001 0000 0000 0001" Q_WWW "00 0029 04d0 0000 0000", m, n);
	codec_put_u16(m + pos, (uint16_t)(n - pos - 2));
	pos += 2;
	codec_put_u16(m + pos, 12);
	codec_put_u16(m + pos + 2, (uint16_t)(n - pos - 4));
	assert_int_equal(codec_scan(m, n, &v), -EBADMSG);
	assert_int_equal(v.id, 0x1234);
	/* The same message one octet shorter is fine. */
	codec_put_u16(m + pos - 2, (uint16_t)(n - 1 - pos));
	codec_put_u16(m + pos + 2, (uint16_t)(n - 1 - pos - 4));
	assert_int_equal(codec_scan(m, n - 1, &v), 0);
	assert_int_equal(v.end, CODEC_MAX_MSG);
	free(m);
}

struct bad_case {
	const char *what;
	const char *hex;
};

static const struct bad_case bad_cases[] = {
        {"empty", ""},
        {"11-byte header", "1234 0100 0001 0000 0000 00"},
        {"qdcount beyond data", "1234 0100 0002 0000 0000 0000" Q_WWW},
        {"ancount beyond data", "1234 0100 0001 0001 0000 0000" Q_WWW},
        {"arcount beyond data", "1234 0100 0001 0000 0000 0001" Q_WWW},
        {"question cut in qclass", HDR_Q1 "03777777 076578616d706c65 03636f6d 00 0001 00"},
        {"name without root label", HDR_Q1 "03777777"},
        {"label runs past the end", HDR_Q1 "08777777"},
        {"forward pointer", HDR_Q1 "c00e 0001 0001 00 0001 0001"},
        {"self pointer", HDR_Q1 "c00c 0001 0001"},
        {"pointer into the header",
         "1234 0100 0001 0001 0000 0000" Q_WWW "c005 0001 0001 00000000 0000"},
        {"pointer to own name start",
         "1234 0100 0001 0001 0000 0000" Q_WWW "0161 c021 0001 0001 00000000 0000"},
        {"pointer into own name",
         "1234 0100 0001 0001 0000 0000" Q_WWW "0161 0162 c023 0001 0001 00000000 0000"},
        {"pointer cut after first octet", HDR_Q1 "03777777 c0"},
        /* 0xc00c owners skip the walk only when a question is there. */
        {"answer owner c00c without a question",
         "1234 0100 0000 0001 0000 0000 c00c 0001 0001 00000000 0000"},
        {"answer owner c00c cut after first octet", "1234 0100 0001 0001 0000 0000" Q_WWW "c0"},
        {"answer owner c00c without fixed part", "1234 0100 0001 0001 0000 0000" Q_WWW "c00c"},
        {"label type 01 (length 64)", HDR_Q1 "40 00 0001 0001"},
        {"label type 01 (0x7f)", HDR_Q1 "7f 00 0001 0001"},
        {"label type 10", HDR_Q1 "80 00 0001 0001"},
        {"RR fixed part cut", "1234 0100 0001 0001 0000 0000" Q_WWW "c00c 0001 0001 0000"},
        {"RDATA past the end",
         "1234 0100 0001 0001 0000 0000" Q_WWW "c00c 0001 0001 00000000 000a c0000201"},
        {"trailing byte", HDR_Q1 Q_WWW "00"},
        {"trailing RR not counted", HDR_Q1 Q_WWW "c00c 0001 0001 00000000 0004 c0000201"},
        {"two OPTs", "1234 0100 0001 0000 0000 0002" Q_WWW
                     "00 0029 04d0 0000 0000 0000 00 0029 04d0 0000 0000 0000"},
        {"OPT in answer", "1234 0100 0001 0001 0000 0000" Q_WWW "00 0029 04d0 0000 0000 0000"},
        {"OPT in authority", "1234 0100 0001 0000 0001 0000" Q_WWW "00 0029 04d0 0000 0000 0000"},
        {"OPT with non-root owner",
         "1234 0100 0001 0000 0000 0001" Q_WWW "016100 0029 04d0 0000 0000 0000"},
        {"OPT owner pointer to root", "1234 0100 0001 0000 0000 0001 00 0002 0001"
                                      "c00c 0029 04d0 0000 0000 0000"},
        {"OPT option longer than RDATA",
         "1234 0100 0001 0000 0000 0001" Q_WWW "00 0029 04d0 0000 0000 0005 000a 0002 01"},
        {"OPT option header cut",
         "1234 0100 0001 0000 0000 0001" Q_WWW "00 0029 04d0 0000 0000 0007 000a 0000 000a 00"},
        {"TSIG before OPT",
         "1234 0000 0001 0000 0000 0002" Q_WWW TSIG_RR "00 0029 04d0 0000 0000 0000"},
        {"TSIG in answer", "1234 0000 0001 0001 0000 0000" Q_WWW TSIG_RR},
        {"two TSIGs", "1234 0000 0001 0000 0000 0002" Q_WWW TSIG_RR TSIG_RR},
};

static void test_scan_malformed_table_rejected(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		uint8_t m[1024];
		struct codec_view v;
		long n = th_hex(bad_cases[i].hex, m, sizeof(m));

		if (n < 0)
			fail_msg("case '%s': bad hex", bad_cases[i].what);
		int rc = codec_scan(m, (size_t)n, &v);

		if (rc != -EBADMSG)
			fail_msg("case '%s': codec_scan returned %d, want -EBADMSG",
			         bad_cases[i].what, rc);
		/* The header is reported even for a bad message, for logs
		 * and for a FORMERR reply. */
		if (n >= CODEC_HDR_LEN && (v.id != 0x1234 || v.flags != codec_hdr_flags(m)))
			fail_msg("case '%s': id/flags not set", bad_cases[i].what);
	}
}

/* A valid message cut anywhere is rejected: counts always promise more. */
static void test_scan_every_truncation_rejected(void **state)
{
	(void)state;
	uint8_t m[512];
	struct codec_view v;
	long n = hex(resp_hex, m, sizeof(m));

	for (long cut = 0; cut < n; cut++) {
		uint8_t *copy = malloc((size_t)cut + 1);

		assert_non_null(copy);
		memcpy(copy, m, (size_t)cut);
		assert_int_equal(codec_scan(copy, (size_t)cut, &v), -EBADMSG);
		free(copy);
	}
}

static void test_question_equal_same_question_true(void **state)
{
	(void)state;
	uint8_t a[512], b[512];
	struct codec_view va, vb;
	long na = pkt("hdr 1 0x0100\nqd WwW.Example.com. IN A\n", a, sizeof(a));
	long nb = pkt("hdr 1 0x8180\nqd WwW.Example.com. IN A\n"
	              "an WwW.Example.com. 30 IN A 192.0.2.1\n",
	              b, sizeof(b));

	assert_int_equal(codec_scan(a, (size_t)na, &va), 0);
	assert_int_equal(codec_scan(b, (size_t)nb, &vb), 0);
	assert_true(codec_question_equal(a, (size_t)na, &va, b, (size_t)nb, &vb));
}

static void test_question_equal_case_differs_false(void **state)
{
	(void)state;
	uint8_t a[512], b[512];
	struct codec_view va, vb;
	long na = pkt("hdr 1 0\nqd WwW.Example.com. IN A\n", a, sizeof(a));
	long nb = pkt("hdr 1 0\nqd www.example.com. IN A\n", b, sizeof(b));

	assert_int_equal(codec_scan(a, (size_t)na, &va), 0);
	assert_int_equal(codec_scan(b, (size_t)nb, &vb), 0);
	assert_false(codec_question_equal(a, (size_t)na, &va, b, (size_t)nb, &vb));
}

static void test_question_equal_type_or_class_differs_false(void **state)
{
	(void)state;
	uint8_t a[512], b[512], c[512];
	struct codec_view va, vb, vc;
	long na = pkt("hdr 1 0\nqd www.example.com. IN A\n", a, sizeof(a));
	long nb = pkt("hdr 1 0\nqd www.example.com. IN AAAA\n", b, sizeof(b));
	long nc = pkt("hdr 1 0\nqd www.example.com. CH A\n", c, sizeof(c));

	assert_int_equal(codec_scan(a, (size_t)na, &va), 0);
	assert_int_equal(codec_scan(b, (size_t)nb, &vb), 0);
	assert_int_equal(codec_scan(c, (size_t)nc, &vc), 0);
	assert_false(codec_question_equal(a, (size_t)na, &va, b, (size_t)nb, &vb));
	assert_false(codec_question_equal(a, (size_t)na, &va, c, (size_t)nc, &vc));
}

static void test_question_equal_second_question_compressed_compares_decompressed(void **state)
{
	(void)state;
	uint8_t a[512], b[512];
	struct codec_view va, vb;
	long na = pkt("hdr 1 0\nqd www.example.com. IN A\n", a, sizeof(a));
	/* Two questions; the view describes the first, plain one. A third
	 * message whose first question is www + pointer is built by hand. */
	long nb = hex("0001 0000 0002 0000 0000 0000"
	              "076578616d706c6503636f6d00 0001 0001"
	              "03777777c00c 0001 0001",
	              b, sizeof(b));

	assert_int_equal(codec_scan(a, (size_t)na, &va), 0);
	assert_int_equal(codec_scan(b, (size_t)nb, &vb), 0);
	assert_false(codec_question_equal(a, (size_t)na, &va, b, (size_t)nb, &vb));
	/* Point the view at the compressed second question. */
	vb.qname_off = 29;
	assert_true(codec_question_equal(a, (size_t)na, &va, b, (size_t)nb, &vb));
}

static void test_question_equal_qdcount_zero_false(void **state)
{
	(void)state;
	uint8_t a[512];
	struct codec_view va;
	long na = pkt("hdr 1 0\nedns 1232\n", a, sizeof(a));

	assert_int_equal(codec_scan(a, (size_t)na, &va), 0);
	assert_false(codec_question_equal(a, (size_t)na, &va, a, (size_t)na, &va));
}

static void test_answers_question_own_query_echoed_true(void **state)
{
	(void)state;
	static const uint8_t name[] = "\3www\7example\3com";
	uint8_t m[512];
	/* A resolver may echo the name in another case (0x20 mixing). */
	long n = pkt("hdr 0x4242 0x8180\nqd WwW.Example.com. IN AAAA\n"
	             "an WwW.Example.com. 30 IN AAAA 2001:db8::1\n",
	             m, sizeof(m));

	assert_true(codec_answers_question(m, (size_t)n, 0x4242, name, sizeof(name),
	                                   CODEC_TYPE_AAAA, CODEC_CLASS_IN));
}

static void test_answers_question_anything_else_false(void **state)
{
	(void)state;
	static const uint8_t name[] = "\3www\7example\3com";
	static const uint8_t shorter[] = "\3www\7example";
	uint8_t m[512], q[512], two[512];
	long n = pkt("hdr 7 0x8180\nqd www.example.com. IN A\n", m, sizeof(m));
	long nq = pkt("hdr 7 0x0100\nqd www.example.com. IN A\n", q, sizeof(q));
	long n2 = pkt("hdr 7 0x8180\nqd www.example.com. IN A\nqd www.example.com. IN A\n", two,
	              sizeof(two));

	assert_true(codec_answers_question(m, (size_t)n, 7, name, sizeof(name), CODEC_TYPE_A,
	                                   CODEC_CLASS_IN));
	assert_false(codec_answers_question(m, (size_t)n, 8, name, sizeof(name), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
	assert_false(codec_answers_question(q, (size_t)nq, 7, name, sizeof(name), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
	assert_false(codec_answers_question(two, (size_t)n2, 7, name, sizeof(name), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
	assert_false(codec_answers_question(m, (size_t)n, 7, name, sizeof(name), CODEC_TYPE_AAAA,
	                                    CODEC_CLASS_IN));
	assert_false(codec_answers_question(m, (size_t)n, 7, name, sizeof(name), CODEC_TYPE_A, 3));
	assert_false(codec_answers_question(m, (size_t)n, 7, shorter, sizeof(shorter), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
	/* Cut inside QCLASS, and a bare header: never read past len. */
	assert_false(codec_answers_question(m, (size_t)n - 1, 7, name, sizeof(name), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
	assert_false(codec_answers_question(m, CODEC_HDR_LEN, 7, name, sizeof(name), CODEC_TYPE_A,
	                                    CODEC_CLASS_IN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scan_plain_query_fills_view),
	        cmocka_unit_test(test_scan_edns_do_cookie_fills_opt),
	        cmocka_unit_test(test_scan_opt_ext_rcode_version_reported),
	        cmocka_unit_test(test_scan_compressed_response_fills_offsets),
	        cmocka_unit_test(test_rr_iter_compressed_response_yields_each_rr),
	        cmocka_unit_test(test_rr_iter_truncated_buffer_reports_ebadmsg),
	        cmocka_unit_test(test_scan_ldns_response_sections_match_counts),
	        cmocka_unit_test(test_scan_notify_with_soa_accepted),
	        cmocka_unit_test(test_scan_update_shape_accepted),
	        cmocka_unit_test(test_scan_qdcount_zero_cookie_query_accepted),
	        cmocka_unit_test(test_scan_tsig_last_accepted),
	        cmocka_unit_test(test_scan_root_qname_accepted),
	        cmocka_unit_test(test_scan_name_255_octets_accepted),
	        cmocka_unit_test(test_scan_name_256_octets_rejected),
	        cmocka_unit_test(test_scan_name_255_after_decompression_accepted),
	        cmocka_unit_test(test_scan_name_over_255_after_decompression_rejected),
	        cmocka_unit_test(test_scan_label_63_accepted),
	        cmocka_unit_test(test_scan_pointer_hops_at_limit_accepted),
	        cmocka_unit_test(test_scan_pointer_hops_over_limit_rejected),
	        cmocka_unit_test(test_scan_over_65535_octets_rejected),
	        cmocka_unit_test(test_scan_malformed_table_rejected),
	        cmocka_unit_test(test_scan_every_truncation_rejected),
	        cmocka_unit_test(test_question_equal_same_question_true),
	        cmocka_unit_test(test_question_equal_case_differs_false),
	        cmocka_unit_test(test_question_equal_type_or_class_differs_false),
	        cmocka_unit_test(
	                test_question_equal_second_question_compressed_compares_decompressed),
	        cmocka_unit_test(test_question_equal_qdcount_zero_false),
	        cmocka_unit_test(test_answers_question_own_query_echoed_true),
	        cmocka_unit_test(test_answers_question_anything_else_false),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
