/* tests/unit/test_codec_build.c - codec_build_error(): replies parsed back
 * with codec_scan() and with ldns, checked byte by byte; codec_build_query()
 * and the OPT writer codec_wr_opt() byte by byte.
 */
#include <errno.h>
#include <string.h>

#include <ldns/ldns.h>

#include "codec/build.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "tests/unit/helpers.h"

struct query {
	uint8_t buf[512];
	size_t len;
	struct codec_view v;
};

static void make_query(struct query *q, const char *text)
{
	long n = th_pkt(text, q->buf, sizeof(q->buf));

	assert_true(n >= CODEC_HDR_LEN);
	q->len = (size_t)n;
	assert_int_equal(codec_scan(q->buf, q->len, &q->v), 0);
}

/* Parses a reply with ldns too: a second opinion that the bytes are a
 * well-formed message. */
static ldns_pkt *ldns_parse(const uint8_t *m, size_t n)
{
	ldns_pkt *p = NULL;

	assert_int_equal(ldns_wire2pkt(&p, m, n), LDNS_STATUS_OK);
	return p;
}

/* Finds the EDE option in a scanned reply; returns its option length. */
static int find_ede(const uint8_t *m, const struct codec_view *v, const uint8_t **body)
{
	size_t pos = v->opt_rdata_off;
	size_t end = pos + v->opt_rdlen;

	while (pos + 4 <= end) {
		uint16_t code = codec_get_u16(m + pos);
		uint16_t len = codec_get_u16(m + pos + 2);

		if (code == CODEC_EDNS_OPT_EDE) {
			*body = m + pos + 4;
			return len;
		}
		pos += 4 + (size_t)len;
	}
	return -1;
}

static void test_build_no_view_header_only(void **state)
{
	(void)state;
	/* ID 0xabcd, opcode NOTIFY, RD, CD, TC, one (unparsable) question. */
	const uint8_t query[] = {0xab, 0xcd, 0x23, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0xff};
	uint8_t out[64];
	const uint8_t want[] = {0xab, 0xcd, 0xa1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0};

	assert_int_equal(codec_build_error(query, sizeof(query), NULL, CODEC_RCODE_FORMERR,
	                                   CODEC_EDE_OTHER, "ignored", out, sizeof(out)),
	                 CODEC_HDR_LEN);
	assert_memory_equal(out, want, sizeof(want));
}

static void test_build_no_view_short_query_ebadmsg(void **state)
{
	(void)state;
	const uint8_t query[11] = {0};
	uint8_t out[64];

	assert_int_equal(codec_build_error(query, sizeof(query), NULL, CODEC_RCODE_FORMERR,
	                                   CODEC_EDE_NONE, NULL, out, sizeof(out)),
	                 -EBADMSG);
}

static void test_build_no_view_tiny_buffer_emsgsize(void **state)
{
	(void)state;
	const uint8_t query[12] = {0x12, 0x34};
	uint8_t out[11];

	assert_int_equal(codec_build_error(query, sizeof(query), NULL, CODEC_RCODE_FORMERR,
	                                   CODEC_EDE_NONE, NULL, out, sizeof(out)),
	                 -EMSGSIZE);
}

static void test_build_query_without_opt_echoes_question_no_opt(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;

	/* RD, AD and CD set in the query; AD must not come back. */
	make_query(&q, "hdr 0x5151 0x0130\nqd WwW.Example.COM. IN AAAA\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                              CODEC_EDE_NO_REACHABLE_AUTHORITY, "no reachable", out,
	                              sizeof(out));

	assert_int_equal(n, q.len);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.id, 0x5151);
	assert_int_equal(r.flags,
	                 CODEC_FLAG_QR | CODEC_FLAG_RD | CODEC_FLAG_CD | CODEC_RCODE_SERVFAIL);
	assert_int_equal(r.qdcount, 1);
	assert_int_equal(r.ancount, 0);
	assert_int_equal(r.nscount, 0);
	assert_int_equal(r.arcount, 0);
	assert_false(r.has_opt);
	assert_true(codec_question_equal(q.buf, q.len, &q.v, out, (size_t)n, &r));
	/* The question is echoed byte for byte, case included. */
	assert_memory_equal(out + CODEC_HDR_LEN, q.buf + CODEC_HDR_LEN, q.len - CODEC_HDR_LEN);

	ldns_pkt *p = ldns_parse(out, (size_t)n);

	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	assert_int_equal(ldns_pkt_id(p), 0x5151);
	assert_true(ldns_pkt_qr(p));
	assert_false(ldns_pkt_aa(p));
	assert_false(ldns_pkt_ad(p));
	assert_false(ldns_pkt_edns(p));
	ldns_pkt_free(p);
}

static void test_build_query_with_opt_adds_opt_and_ede(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;
	const char *text = "resolver timed out";
	const uint8_t *ede = NULL;

	make_query(&q, "hdr 0x0a0b 0x0100\nqd apex.example. IN A\n"
	               "edns 4096 do 000a0008 0102030405060708\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                              CODEC_EDE_NO_REACHABLE_AUTHORITY, text, out, sizeof(out));

	assert_true(n > 0);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.id, 0x0a0b);
	assert_int_equal(r.flags, CODEC_FLAG_QR | CODEC_FLAG_RD | CODEC_RCODE_SERVFAIL);
	assert_int_equal(r.qdcount, 1);
	assert_int_equal(r.arcount, 1);
	assert_true(codec_question_equal(q.buf, q.len, &q.v, out, (size_t)n, &r));
	assert_true(r.has_opt);
	assert_int_equal(r.udp_size, CODEC_EDNS_UDP_SIZE);
	assert_int_equal(r.edns_version, 0);
	assert_int_equal(r.ext_rcode, 0);
	assert_true(r.do_bit);
	/* Only the EDE: a client cookie alone is not echoed. */
	assert_int_equal(r.opt_rdlen, 4 + 2 + strlen(text));
	assert_int_equal(find_ede(out, &r, &ede), 2 + strlen(text));
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_NO_REACHABLE_AUTHORITY);
	assert_memory_equal(ede + 2, text, strlen(text));
	assert_int_equal(n, r.opt_rdata_off + r.opt_rdlen);

	/* The exact OPT bytes: root, type 41, 1232, ext rcode 0, version 0,
	 * DO, rdlen. */
	const uint8_t opt_hdr[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 24};

	assert_memory_equal(out + r.opt_off, opt_hdr, sizeof(opt_hdr));

	ldns_pkt *p = ldns_parse(out, (size_t)n);

	assert_true(ldns_pkt_edns(p));
	assert_int_equal(ldns_pkt_edns_udp_size(p), CODEC_EDNS_UDP_SIZE);
	assert_true(ldns_pkt_edns_do(p));
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_SERVFAIL);
	ldns_pkt_free(p);
}

/* A client and server cookie pair comes back before the EDE, whole, and
 * a long EDE text makes room for it. */
static void test_build_echoes_cookie_pair(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;
	size_t off;
	uint16_t len;
	const uint8_t *ede = NULL;
	static const uint8_t pair[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	char text[600];

	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = 0;
	make_query(&q, "hdr 7 0x0100\nqd apex.example. IN A\n"
	               "edns 1232 000a0010 0102030405060708 090a0b0c0d0e0f10\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                              CODEC_EDE_NO_REACHABLE_AUTHORITY, text, out, sizeof(out));
	assert_true(n > 0 && n <= (ssize_t)sizeof(out));
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_true(codec_edns_option(out, &r, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_int_equal(len, sizeof(pair));
	assert_memory_equal(out + off, pair, sizeof(pair));
	assert_true(find_ede(out, &r, &ede) > 2);
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_NO_REACHABLE_AUTHORITY);
	ldns_pkt_free(ldns_parse(out, (size_t)n));
}

static void test_build_do_clear_stays_clear(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;

	make_query(&q, "hdr 1 0\nqd example. IN SOA\nedns 1400\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_REFUSED, CODEC_EDE_PROHIBITED,
	                              NULL, out, sizeof(out));

	assert_true(n > 0);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.flags, CODEC_FLAG_QR | CODEC_RCODE_REFUSED);
	assert_true(r.has_opt);
	assert_false(r.do_bit);
	/* NULL text: the option holds the INFO-CODE only. */
	const uint8_t *ede = NULL;

	assert_int_equal(find_ede(out, &r, &ede), 2);
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_PROHIBITED);
	assert_int_equal(r.opt_rdlen, 6);
}

static void test_build_ede_none_gives_empty_opt(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;

	make_query(&q, "hdr 1 0x0100\nqd example. IN A\nedns 1232 do\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_NONE,
	                              "not sent", out, sizeof(out));

	assert_int_equal(n, q.len);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_true(r.has_opt);
	assert_true(r.do_bit);
	assert_int_equal(r.opt_rdlen, 0);
}

static void test_build_qdcount_zero_no_question(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;

	make_query(&q, "hdr 0x7777 0\nedns 1232 000a0008 0001020304050607\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_FORMERR, CODEC_EDE_OTHER, "x",
	                              out, sizeof(out));

	assert_int_equal(n, CODEC_HDR_LEN + 11 + 6 + 1);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.qdcount, 0);
	assert_int_equal(r.arcount, 1);
	assert_int_equal(r.opt_off, CODEC_HDR_LEN);
}

static void test_build_opcode_copied(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;

	make_query(&q, "hdr 9 0x2000\nqd example. IN SOA\n");
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_NOTIMP, CODEC_EDE_NONE, NULL,
	                              out, sizeof(out));

	assert_true(n > 0);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.opcode, CODEC_OPCODE_NOTIFY);
	assert_int_equal(r.rcode, CODEC_RCODE_NOTIMP);
	assert_int_equal(r.flags, CODEC_FLAG_QR | 0x2000 | CODEC_RCODE_NOTIMP);
}

static void test_build_compressed_question_echoed_decompressed(void **state)
{
	(void)state;
	uint8_t query[64];
	uint8_t out[128];
	struct codec_view v, r;
	/* Two questions; the view is pointed at the second, compressed one. */
	long qn = th_hex("0001 0100 0002 0000 0000 0000"
	                 "076578616d706c6503636f6d00 0001 0001"
	                 "03777777c00c 001c 0001",
	                 query, sizeof(query));

	assert_int_equal(codec_scan(query, (size_t)qn, &v), 0);
	v.qname_off = 29;
	v.qtype = CODEC_TYPE_AAAA;
	ssize_t n = codec_build_error(query, (size_t)qn, &v, CODEC_RCODE_SERVFAIL, CODEC_EDE_NONE,
	                              NULL, out, sizeof(out));

	assert_int_equal(n, CODEC_HDR_LEN + 17 + 4);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(r.qname_len, 17);
	assert_int_equal(r.qtype, CODEC_TYPE_AAAA);
	assert_memory_equal(out + 12,
	                    "\x03www\x07"
	                    "example\x03"
	                    "com",
	                    17);
}

static void test_build_long_text_truncated_to_fit(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;
	const uint8_t *ede = NULL;
	const char *text = "0123456789abcdefghijklmnopqrstuvwxyz";

	make_query(&q, "hdr 1 0\nqd example. IN A\nedns 1232\n");
	/* Room for the header, question, OPT, EDE header and 10 text octets. */
	size_t outlen = q.len + 6 + 10;
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                              CODEC_EDE_NETWORK_ERROR, text, out, outlen);

	assert_int_equal(n, outlen);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(find_ede(out, &r, &ede), 2 + 10);
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_NETWORK_ERROR);
	assert_memory_equal(ede + 2, text, 10);
	/* No room for any text: the option holds the code alone. */
	n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_NETWORK_ERROR,
	                      text, out, q.len + 6);
	assert_int_equal(n, q.len + 6);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(find_ede(out, &r, &ede), 2);
	ldns_pkt_free(ldns_parse(out, (size_t)n));
}

static void test_build_truncation_keeps_utf8_whole(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];
	struct codec_view r;
	const uint8_t *ede = NULL;
	/* "ab" then three 2-octet characters (U+00E9). */
	const char *text = "ab\xc3\xa9\xc3\xa9\xc3\xa9";

	make_query(&q, "hdr 1 0\nqd example. IN A\nedns 1232\n");
	/* 5 octets of room would split the second U+00E9: keep 4. */
	ssize_t n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_OTHER,
	                              text, out, q.len + 6 + 5);

	assert_int_equal(n, q.len + 6 + 4);
	assert_int_equal(codec_scan(out, (size_t)n, &r), 0);
	assert_int_equal(find_ede(out, &r, &ede), 2 + 4);
	assert_memory_equal(ede + 2, "ab\xc3\xa9", 4);
	/* A 4-octet character (U+1F600) with 3 octets of room: dropped. */
	n = codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_OTHER,
	                      "\xf0\x9f\x98\x80", out, q.len + 6 + 3);
	assert_int_equal(n, q.len + 6);
}

static void test_build_tiny_buffer_emsgsize(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[512];

	make_query(&q, "hdr 1 0\nqd www.example.com. IN A\nedns 1232\n");
	/* Header only. */
	assert_int_equal(codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                                   CODEC_EDE_OTHER, "t", out, CODEC_HDR_LEN),
	                 -EMSGSIZE);
	/* Header and question, but not the OPT. */
	assert_int_equal(codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                                   CODEC_EDE_OTHER, "t", out, 33),
	                 -EMSGSIZE);
	/* The OPT but not the EDE option header. */
	assert_int_equal(codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL,
	                                   CODEC_EDE_OTHER, "t", out, 33 + 11 + 5),
	                 -EMSGSIZE);
	/* Without EDE the bare OPT fits exactly. */
	assert_int_equal(codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_NONE,
	                                   "t", out, 33 + 11),
	                 33 + 11);
	assert_int_equal(codec_build_error(q.buf, q.len, &q.v, CODEC_RCODE_SERVFAIL, CODEC_EDE_NONE,
	                                   "t", out, 0),
	                 -EMSGSIZE);
}

static void test_build_own_query_bytes_exact(void **state)
{
	(void)state;
	static const uint8_t name[] = "\3www\7example";
	uint8_t out[CODEC_QUERY_MAX];
	uint8_t want[64];
	long wn = th_hex("1234 0100 0001 0000 0000 0001"          /* RD, one question, the OPT */
	                 "03777777 076578616d706c65 00 001c 0001" /* www.example. AAAA IN */
	                 "00 0029 04d0 00 00 0000 0000",          /* OPT: 1232, v0, DO=0 */
	                 want, sizeof(want));

	assert_int_equal(codec_build_query(out, 0x1234, true, name, sizeof(name), CODEC_TYPE_AAAA),
	                 wn);
	assert_memory_equal(out, want, (size_t)wn);
}

static void test_wr_opt_cookie_then_ede_text_cut_to_room(void **state)
{
	(void)state;
	struct query q;
	uint8_t out[64];
	uint8_t want[64];
	struct codec_wr wr;

	make_query(&q, "hdr 7 0\nqd example. IN A\n"
	               "edns 1232 do 000a0010 0102030405060708 090a0b0c0d0e0f10\n");
	/* Three octets already written, then room for the OPT (11), the
	 * cookie (4 + 16), the EDE header (6) and 2 octets of text. */
	codec_wr_init(&wr, out, 3 + 11 + 20 + 6 + 2);
	codec_wr_bytes(&wr, "abc", 3);
	codec_wr_opt(&wr, q.buf, &q.v, CODEC_EDE_STALE_ANSWER, "stale");
	long wn = th_hex("616263 00 0029 04d0 00 00 8000 001c"
	                 "000a 0010 0102030405060708 090a0b0c0d0e0f10"
	                 "000f 0004 0003 7374",
	                 want, sizeof(want));
	assert_int_equal(wr.err, 0);
	assert_int_equal(wr.pos, wn);
	assert_memory_equal(out, want, (size_t)wn);
	/* One octet less than the fixed parts: the sticky error. */
	codec_wr_init(&wr, out, 3 + 11 + 20 + 6 - 1);
	codec_wr_bytes(&wr, "abc", 3);
	codec_wr_opt(&wr, q.buf, &q.v, CODEC_EDE_STALE_ANSWER, "stale");
	assert_int_equal(wr.err, -EMSGSIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_build_no_view_header_only),
	        cmocka_unit_test(test_build_no_view_short_query_ebadmsg),
	        cmocka_unit_test(test_build_no_view_tiny_buffer_emsgsize),
	        cmocka_unit_test(test_build_query_without_opt_echoes_question_no_opt),
	        cmocka_unit_test(test_build_query_with_opt_adds_opt_and_ede),
	        cmocka_unit_test(test_build_echoes_cookie_pair),
	        cmocka_unit_test(test_build_do_clear_stays_clear),
	        cmocka_unit_test(test_build_ede_none_gives_empty_opt),
	        cmocka_unit_test(test_build_qdcount_zero_no_question),
	        cmocka_unit_test(test_build_opcode_copied),
	        cmocka_unit_test(test_build_compressed_question_echoed_decompressed),
	        cmocka_unit_test(test_build_long_text_truncated_to_fit),
	        cmocka_unit_test(test_build_truncation_keeps_utf8_whole),
	        cmocka_unit_test(test_build_tiny_buffer_emsgsize),
	        cmocka_unit_test(test_build_own_query_bytes_exact),
	        cmocka_unit_test(test_wr_opt_cookie_then_ede_text_cut_to_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
