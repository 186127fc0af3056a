/* tests/unit/test_codec_proxyv2.c - the PROXY protocol v2 header parser:
 * codec_pp2_parse() on the headers dnsdist and haproxy send, LOCAL,
 * the families and transports it must refuse or ignore, TLVs, partial
 * headers and the length bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "codec/proxyv2.h"
#include "tests/unit/helpers.h"

/* A header builder: signature, ver_cmd, fam, then body bytes; the length
 * field is the body's length unless len_override >= 0. */
struct hdr {
	uint8_t b[2048];
	size_t n;
};

static void hdr_start(struct hdr *h, uint8_t ver_cmd, uint8_t fam)
{
	memcpy(h->b, CODEC_PP2_SIG, CODEC_PP2_SIG_LEN);
	h->b[12] = ver_cmd;
	h->b[13] = fam;
	h->b[14] = h->b[15] = 0;
	h->n = CODEC_PP2_FIXED_LEN;
}

static void hdr_put(struct hdr *h, const void *p, size_t n)
{
	memcpy(h->b + h->n, p, n);
	h->n += n;
}

static void hdr_u16(struct hdr *h, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	hdr_put(h, b, 2);
}

static void hdr_tlv(struct hdr *h, uint8_t type, const void *v, uint16_t n)
{
	hdr_put(h, &type, 1);
	hdr_u16(h, n);
	hdr_put(h, v, n);
}

/* Sets the length field from what was put after the fixed part. */
static void hdr_end(struct hdr *h)
{
	size_t body = h->n - CODEC_PP2_FIXED_LEN;
	h->b[14] = (uint8_t)(body >> 8);
	h->b[15] = (uint8_t)body;
}

static void hdr_v4(struct hdr *h, uint8_t fam, const char *src, uint16_t sport, const char *dst,
                   uint16_t dport)
{
	struct in_addr a;

	hdr_start(h, 0x21, fam);
	assert_int_equal(inet_pton(AF_INET, src, &a), 1);
	hdr_put(h, &a, 4);
	assert_int_equal(inet_pton(AF_INET, dst, &a), 1);
	hdr_put(h, &a, 4);
	hdr_u16(h, sport);
	hdr_u16(h, dport);
}

static void hdr_v6(struct hdr *h, uint8_t fam, const char *src, uint16_t sport, const char *dst,
                   uint16_t dport)
{
	struct in6_addr a;

	hdr_start(h, 0x21, fam);
	assert_int_equal(inet_pton(AF_INET6, src, &a), 1);
	hdr_put(h, &a, 16);
	assert_int_equal(inet_pton(AF_INET6, dst, &a), 1);
	hdr_put(h, &a, 16);
	hdr_u16(h, sport);
	hdr_u16(h, dport);
}

static void assert_v4(const union codec_pp2_addr *a, const char *ip, uint16_t port)
{
	char text[INET_ADDRSTRLEN];

	assert_int_equal(a->sa.sa_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &a->in.sin_addr, text, sizeof(text)));
	assert_string_equal(text, ip);
	assert_int_equal(ntohs(a->in.sin_port), port);
}

static void assert_v6(const union codec_pp2_addr *a, const char *ip, uint16_t port)
{
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(a->sa.sa_family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, &a->in6.sin6_addr, text, sizeof(text)));
	assert_string_equal(text, ip);
	assert_int_equal(ntohs(a->in6.sin6_port), port);
}

static void test_pp2_tcp4_proxy_gives_addresses(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;

	hdr_v4(&h, 0x11, "198.51.100.7", 40000, "192.0.2.53", 53);
	hdr_end(&h);
	assert_int_equal(h.n, 28);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 28);
	assert_int_equal(p.len, 28);
	assert_int_equal(p.cmd, CODEC_PP2_PROXY);
	assert_true(p.has_addr);
	assert_v4(&p.src, "198.51.100.7", 40000);
	assert_v4(&p.dst, "192.0.2.53", 53);
}

static void test_pp2_udp6_proxy_gives_addresses(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	uint8_t dgram[128];

	hdr_v6(&h, 0x22, "2001:db8::7", 5353, "2001:db8:1::53", 53);
	hdr_end(&h);
	assert_int_equal(h.n, 52);
	/* A datagram: the DNS message follows the header. */
	memcpy(dgram, h.b, h.n);
	memset(dgram + h.n, 0xab, 40);
	assert_int_equal(codec_pp2_parse(dgram, h.n + 40, &p), 52);
	assert_true(p.has_addr);
	assert_v6(&p.src, "2001:db8::7", 5353);
	assert_v6(&p.dst, "2001:db8:1::53", 53);
}

static void test_pp2_v4_mapped_v6_given_as_v4(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;

	hdr_v6(&h, 0x21, "::ffff:203.0.113.9", 1234, "::ffff:192.0.2.1", 853);
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 52);
	assert_v4(&p.src, "203.0.113.9", 1234);
	assert_v4(&p.dst, "192.0.2.1", 853);
}

static void test_pp2_local_ignores_family_and_block(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	uint8_t junk[40];

	/* What balancers send for health checks: LOCAL, UNSPEC, length 0. */
	hdr_start(&h, 0x20, 0x00);
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 16);
	assert_int_equal(p.cmd, CODEC_PP2_LOCAL);
	assert_false(p.has_addr);

	/* The length must be honoured even for LOCAL, and what the block
	 * holds (an unassigned family here, bytes no TLV walk accepts) is
	 * the sender's business. */
	memset(junk, 0xff, sizeof(junk));
	hdr_start(&h, 0x20, 0xff);
	hdr_put(&h, junk, sizeof(junk));
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 56);
	assert_int_equal(p.cmd, CODEC_PP2_LOCAL);
	assert_false(p.has_addr);
}

static void test_pp2_unspec_and_unix_name_no_client(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	uint8_t path[216] = "/run/haproxy.sock";

	hdr_start(&h, 0x21, 0x00); /* PROXY, UNSPEC: use the real peer */
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 16);
	assert_int_equal(p.cmd, CODEC_PP2_PROXY);
	assert_false(p.has_addr);

	hdr_start(&h, 0x21, 0x10); /* AF_INET over an UNSPEC transport */
	hdr_put(&h, path, 12);
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 28);
	assert_false(p.has_addr);

	hdr_start(&h, 0x21, 0x31); /* UNIX stream: 2 * 108 bytes of paths */
	hdr_put(&h, path, sizeof(path));
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 16 + 216);
	assert_false(p.has_addr);

	hdr_start(&h, 0x21, 0x32); /* UNIX datagram, block cut short */
	hdr_put(&h, path, 100);
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EINVAL);
}

static void test_pp2_tlvs_skipped_and_bounded(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	uint8_t ssl[] = {0x01, 0, 0, 0, 0, 0x21, 0, 7, 'T', 'L', 'S', 'v', '1', '.', '3'};

	/* What haproxy's send-proxy-v2-ssl and a NOOP pad look like. */
	hdr_v4(&h, 0x11, "198.51.100.7", 40000, "192.0.2.53", 853);
	hdr_tlv(&h, 0x01, "dot", 3);
	hdr_tlv(&h, 0x02, "dns.example.test", 16);
	hdr_tlv(&h, 0x20, ssl, sizeof(ssl));
	hdr_tlv(&h, 0x04, "", 0);
	hdr_tlv(&h, 0xe3, "custom", 6); /* an application's own type */
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), (int)h.n);
	assert_v4(&p.src, "198.51.100.7", 40000);

	/* A TLV whose value runs past the header. */
	hdr_v4(&h, 0x11, "198.51.100.7", 40000, "192.0.2.53", 853);
	hdr_tlv(&h, 0x01, "dot", 3);
	hdr_end(&h);
	h.b[h.n - 4] = 4; /* value length 4 where 3 bytes are left */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EILSEQ);

	/* Bytes left over that cannot be a TLV head. */
	hdr_v4(&h, 0x11, "198.51.100.7", 40000, "192.0.2.53", 853);
	hdr_put(&h, "\x04\x00", 2);
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EILSEQ);
}

static void test_pp2_bad_fields_rejected(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;

	hdr_v4(&h, 0x11, "198.51.100.7", 1, "192.0.2.53", 53);
	hdr_end(&h);
	h.b[12] = 0x11; /* version 1 in the binary format */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EPROTONOSUPPORT);
	h.b[12] = 0x22; /* command 2 */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EOPNOTSUPP);
	h.b[12] = 0x21;
	h.b[13] = 0x41; /* family 4 */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EAFNOSUPPORT);
	h.b[13] = 0x13; /* transport 3 */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EAFNOSUPPORT);
	h.b[13] = 0x21; /* AF_INET6 with a 12-byte block */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EINVAL);
	h.b[13] = 0x11;
	h.b[0] = '\n'; /* signature */
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EBADMSG);
	/* The version 1 text format is another protocol: not accepted. */
	const char *v1 = "PROXY TCP4 198.51.100.7 192.0.2.53 40000 53\r\n";
	assert_int_equal(codec_pp2_parse((const uint8_t *)v1, strlen(v1), &p), -EBADMSG);
}

static void test_pp2_partial_needs_more_dns_fails_at_once(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	/* A DNS query over TCP starts with its length, then the ID. */
	const uint8_t dns[] = {0x00, 0x1d, 0x12, 0x34, 0x01, 0x00};

	hdr_v4(&h, 0x11, "198.51.100.7", 40000, "192.0.2.53", 53);
	hdr_end(&h);
	for (size_t n = 0; n < h.n; n++)
		assert_int_equal(codec_pp2_parse(h.b, n, &p), 0);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), 28);
	assert_int_equal(codec_pp2_parse(dns, 1, &p), -EBADMSG);
	assert_int_equal(codec_pp2_parse(dns, sizeof(dns), &p), -EBADMSG);
	/* A wrong version is known from 13 bytes. */
	h.b[12] = 0x31;
	assert_int_equal(codec_pp2_parse(h.b, 13, &p), -EPROTONOSUPPORT);
}

static void test_pp2_length_bound(void **state)
{
	(void)state;
	struct hdr h;
	struct codec_pp2 p;
	uint8_t pad[CODEC_PP2_MAX_LEN];

	memset(pad, 0, sizeof(pad));
	/* The longest accepted: one NOOP TLV filling the rest. */
	hdr_v4(&h, 0x11, "198.51.100.7", 1, "192.0.2.53", 53);
	hdr_tlv(&h, 0x04, pad, (uint16_t)(CODEC_PP2_MAX_LEN - 28 - 3));
	hdr_end(&h);
	assert_int_equal(h.n, CODEC_PP2_MAX_LEN);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), CODEC_PP2_MAX_LEN);

	/* One byte more is refused from the first 16 bytes alone. */
	hdr_v4(&h, 0x11, "198.51.100.7", 1, "192.0.2.53", 53);
	hdr_tlv(&h, 0x04, pad, (uint16_t)(CODEC_PP2_MAX_LEN - 28 - 2));
	hdr_end(&h);
	assert_int_equal(codec_pp2_parse(h.b, 16, &p), -EMSGSIZE);
	assert_int_equal(codec_pp2_parse(h.b, h.n, &p), -EMSGSIZE);
	h.b[14] = h.b[15] = 0xff;
	assert_int_equal(codec_pp2_parse(h.b, 16, &p), -EMSGSIZE);
}

static void test_pp2_strerror_names_each_code(void **state)
{
	(void)state;
	const int codes[] = {0,       -EBADMSG, -EPROTONOSUPPORT, -EOPNOTSUPP, -EAFNOSUPPORT,
	                     -EINVAL, -EILSEQ,  -EMSGSIZE};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_non_null(strstr(codec_pp2_strerror(codes[i]), "PROXY"));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(codec_pp2_strerror(codes[i]),
			                        codec_pp2_strerror(codes[j]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_pp2_tcp4_proxy_gives_addresses),
	        cmocka_unit_test(test_pp2_udp6_proxy_gives_addresses),
	        cmocka_unit_test(test_pp2_v4_mapped_v6_given_as_v4),
	        cmocka_unit_test(test_pp2_local_ignores_family_and_block),
	        cmocka_unit_test(test_pp2_unspec_and_unix_name_no_client),
	        cmocka_unit_test(test_pp2_tlvs_skipped_and_bounded),
	        cmocka_unit_test(test_pp2_bad_fields_rejected),
	        cmocka_unit_test(test_pp2_partial_needs_more_dns_fails_at_once),
	        cmocka_unit_test(test_pp2_length_bound),
	        cmocka_unit_test(test_pp2_strerror_names_each_code),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
