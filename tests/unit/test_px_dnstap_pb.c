/* Unit tests for proxy/ops/dnstap_pb: the dnstap protobuf writer.
 *
 * The first vector is worked out by hand from dnstap.proto's field
 * numbers and the protocol buffer wire format (comments give each field);
 * the others walk the encoder's output with a small reader of the wire
 * format that lives only here. The integration cases decode apexd's
 * stream with dnstap-ldns as well.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/ops/dnstap_pb.h"
#include "tests/unit/helpers.h"

static const uint8_t QUERY12[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};

static void sa4(struct sockaddr_in *in, const char *ip, uint16_t port)
{
	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	inet_pton(AF_INET, ip, &in->sin_addr);
}

static void sa6(struct sockaddr_in6 *in6, const char *ip, uint16_t port)
{
	memset(in6, 0, sizeof(*in6));
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &in6->sin6_addr);
}

static void test_dnstap_pb_auth_query_matches_hand_vector(void **state)
{
	(void)state;
	struct sockaddr_in client, server;
	sa4(&client, "192.0.2.1", 5353);
	sa4(&server, "198.51.100.7", 53);
	struct px_tap_msg m = {
	        .type = PX_TAP_AUTH_QUERY,
	        .proto = PX_TAP_UDP,
	        .query_sa = (const struct sockaddr *)&client,
	        .response_sa = (const struct sockaddr *)&server,
	        .query_time = {1700000000, 123456789},
	        .query = QUERY12,
	        .query_len = sizeof(QUERY12),
	};
	static const uint8_t want[] = {
	        0x0a, 0x03, 'n',  's',  '1',                       /* 1 identity */
	        0x12, 0x07, 'a',  'p',  'e',  'x',  'd', ' ', '1', /* 2 version */
	        0x72, 0x30,                                        /* 14 message, 48 bytes */
	        0x08, 0x01,                                        /*  1 type AUTH_QUERY */
	        0x10, 0x01,                                        /*  2 family INET */
	        0x18, 0x01,                                        /*  3 protocol UDP */
	        0x22, 0x04, 192,  0,    2,    1,                   /*  4 query_address */
	        0x2a, 0x04, 198,  51,   100,  7,                   /*  5 response_address */
	        0x30, 0xe9, 0x29,                                  /*  6 query_port 5353 */
	        0x38, 0x35,                                        /*  7 response_port 53 */
	        0x40, 0x80, 0xe2, 0xcf, 0xaa, 0x06,                /*  8 time_sec 1700000000 */
	        0x4d, 0x15, 0xcd, 0x5b, 0x07,                      /*  9 time_nsec, fixed32 */
	        0x52, 0x0c, 0x12, 0x34, 0x01, 0x00, 0,   1,   0,
	        0,    0,    0,    0,    0, /* 10 query_message */
	        0x78, 0x01,                /* 15 type MESSAGE */
	};
	uint8_t out[256];
	size_t n = px_tap_encode(out, sizeof(out), "ns1", 3, "apexd 1", 7, &m);

	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));
	assert_true(n <= px_tap_encode_max(&m, 3, 7));
}

/* --- a reader of the wire format, for the tests below ------------------ */

struct field {
	unsigned num, wt;
	uint64_t v;       /* varint, fixed32 */
	const uint8_t *p; /* bytes */
	size_t len;
};

static uint64_t rd_varint(const uint8_t *b, size_t n, size_t *pos)
{
	uint64_t v = 0;
	for (unsigned shift = 0; *pos < n && shift < 64; shift += 7) {
		uint8_t c = b[(*pos)++];
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return v;
	}
	fail_msg("varint runs off the end");
	return 0;
}

/* All fields of one message, in order; returns how many. */
static size_t rd_fields(const uint8_t *b, size_t n, struct field *f, size_t max)
{
	size_t pos = 0, k = 0;
	while (pos < n) {
		assert_true(k < max);
		uint64_t key = rd_varint(b, n, &pos);
		f[k].num = (unsigned)(key >> 3);
		f[k].wt = (unsigned)(key & 7);
		if (f[k].wt == 0) {
			f[k].v = rd_varint(b, n, &pos);
		} else if (f[k].wt == 2) {
			f[k].len = (size_t)rd_varint(b, n, &pos);
			assert_true(f[k].len <= n - pos);
			f[k].p = b + pos;
			pos += f[k].len;
		} else if (f[k].wt == 5) {
			assert_true(n - pos >= 4);
			f[k].v = (uint64_t)b[pos] | (uint64_t)b[pos + 1] << 8 |
			         (uint64_t)b[pos + 2] << 16 | (uint64_t)b[pos + 3] << 24;
			pos += 4;
		} else {
			fail_msg("wire type %u", f[k].wt);
		}
		k++;
	}
	assert_int_equal(pos, n);
	return k;
}

static const struct field *find(const struct field *f, size_t n, unsigned num)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].num == num)
			return &f[i];
	return NULL;
}

static void test_dnstap_pb_response_ipv6_fields(void **state)
{
	(void)state;
	struct sockaddr_in6 client, server;
	sa6(&client, "2001:db8::1", 40000);
	sa6(&server, "2001:db8::53", 853);
	/* 300 bytes: the length takes a two-byte varint. */
	uint8_t resp[300];
	for (size_t i = 0; i < sizeof(resp); i++)
		resp[i] = (uint8_t)i;
	struct px_tap_msg m = {
	        .type = PX_TAP_AUTH_RESPONSE,
	        .proto = PX_TAP_DOT,
	        .query_sa = (const struct sockaddr *)&client,
	        .response_sa = (const struct sockaddr *)&server,
	        .query_time = {1700000000, 1},
	        .response_time = {1700000001, 999999999},
	        .response = resp,
	        .response_len = sizeof(resp),
	};
	uint8_t out[1024];
	size_t n = px_tap_encode(out, sizeof(out), "host", 4, "apexd 0.1.0", 11, &m);
	struct field top[8], msg[20];

	assert_true(n > 0 && n <= px_tap_encode_max(&m, 4, 11));
	size_t nt = rd_fields(out, n, top, 8);
	assert_int_equal(nt, 4);
	assert_int_equal(top[0].num, 1);
	assert_int_equal(top[1].num, 2);
	assert_int_equal(top[2].num, 14);
	assert_int_equal(top[2].wt, 2);
	assert_int_equal(top[3].num, 15);
	assert_int_equal(top[3].v, 1);
	size_t nm = rd_fields(top[2].p, top[2].len, msg, 20);
	/* Field numbers ascend, as protobuf encoders write them. */
	for (size_t i = 1; i < nm; i++)
		assert_true(msg[i].num > msg[i - 1].num);
	assert_int_equal(find(msg, nm, 1)->v, 2); /* AUTH_RESPONSE */
	assert_int_equal(find(msg, nm, 2)->v, 2); /* INET6 */
	assert_int_equal(find(msg, nm, 3)->v, 3); /* DOT */
	assert_int_equal(find(msg, nm, 4)->len, 16);
	assert_memory_equal(find(msg, nm, 4)->p, &client.sin6_addr, 16);
	assert_memory_equal(find(msg, nm, 5)->p, &server.sin6_addr, 16);
	assert_int_equal(find(msg, nm, 6)->v, 40000);
	assert_int_equal(find(msg, nm, 7)->v, 853);
	assert_int_equal(find(msg, nm, 8)->v, 1700000000);
	assert_int_equal(find(msg, nm, 9)->wt, 5);
	assert_int_equal(find(msg, nm, 9)->v, 1);
	assert_null(find(msg, nm, 10)); /* no query message in a response */
	assert_int_equal(find(msg, nm, 12)->v, 1700000001);
	assert_int_equal(find(msg, nm, 13)->wt, 5);
	assert_int_equal(find(msg, nm, 13)->v, 999999999);
	assert_int_equal(find(msg, nm, 14)->len, sizeof(resp));
	assert_memory_equal(find(msg, nm, 14)->p, resp, sizeof(resp));
}

static void test_dnstap_pb_no_addresses_leaves_family_out(void **state)
{
	(void)state;
	struct sockaddr_in server;
	sa4(&server, "127.0.0.1", 53);
	struct px_tap_msg m = {.type = PX_TAP_FORWARDER_QUERY, .proto = PX_TAP_TCP};
	uint8_t out[256];
	struct field top[8], msg[20];

	size_t n = px_tap_encode(out, sizeof(out), NULL, 0, NULL, 0, &m);
	size_t nt = rd_fields(out, n, top, 8);
	assert_int_equal(nt, 2); /* message and type: no identity, no version */
	size_t nm = rd_fields(top[0].p, top[0].len, msg, 20);
	assert_int_equal(nm, 2); /* type and protocol only */
	assert_int_equal(msg[0].v, 7);
	assert_int_equal(msg[1].num, 3);
	assert_int_equal(msg[1].v, 2);

	/* Only the response side known: the family follows it. */
	m.response_sa = (const struct sockaddr *)&server;
	n = px_tap_encode(out, sizeof(out), NULL, 0, NULL, 0, &m);
	rd_fields(out, n, top, 8);
	nm = rd_fields(top[0].p, top[0].len, msg, 20);
	assert_int_equal(find(msg, nm, 2)->v, 1);
	assert_null(find(msg, nm, 4));
	assert_null(find(msg, nm, 6));
	assert_int_equal(find(msg, nm, 7)->v, 53);
}

static void test_dnstap_pb_short_buffer_gives_zero(void **state)
{
	(void)state;
	struct px_tap_msg m = {
	        .type = PX_TAP_AUTH_QUERY,
	        .proto = PX_TAP_UDP,
	        .query = QUERY12,
	        .query_len = sizeof(QUERY12),
	};
	uint8_t out[128];
	size_t n = px_tap_encode(out, sizeof(out), "x", 1, "y", 1, &m);

	assert_true(n > 0);
	for (size_t cap = 0; cap < n; cap++)
		assert_int_equal(px_tap_encode(out, cap, "x", 1, "y", 1, &m), 0);
	assert_int_equal(px_tap_encode(out, n, "x", 1, "y", 1, &m), n);
}

static void test_dnstap_pb_largest_messages_fit_the_bound(void **state)
{
	(void)state;
	struct sockaddr_in6 a;
	sa6(&a, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	size_t big = 65535;
	uint8_t *q = calloc(1, big), *r = calloc(1, big);
	char ident[255];
	memset(ident, 'h', sizeof(ident));
	struct px_tap_msg m = {
	        .type = PX_TAP_FORWARDER_RESPONSE,
	        .proto = PX_TAP_DOH,
	        .query_sa = (const struct sockaddr *)&a,
	        .response_sa = (const struct sockaddr *)&a,
	        .query_time = {UINT64_MAX, 999999999},
	        .response_time = {UINT64_MAX, 999999999},
	        .query = q,
	        .query_len = big,
	        .response = r,
	        .response_len = big,
	};
	size_t max = px_tap_encode_max(&m, sizeof(ident), 64);
	uint8_t *out = malloc(max);

	assert_non_null(q);
	assert_non_null(r);
	assert_non_null(out);
	size_t n = px_tap_encode(out, max, ident, sizeof(ident), ident, 64, &m);
	assert_true(n > 2 * big);
	assert_true(n <= max);
	free(out);
	free(q);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dnstap_pb_auth_query_matches_hand_vector),
	        cmocka_unit_test(test_dnstap_pb_response_ipv6_fields),
	        cmocka_unit_test(test_dnstap_pb_no_addresses_leaves_family_out),
	        cmocka_unit_test(test_dnstap_pb_short_buffer_gives_zero),
	        cmocka_unit_test(test_dnstap_pb_largest_messages_fit_the_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
