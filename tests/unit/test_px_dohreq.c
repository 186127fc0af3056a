/* tests/unit/test_px_dohreq.c - px_doh_req_decode() and
 * px_doh_content_type_is_dns(): every HTTP status a DoH request can get,
 * from requests built the way doh.c collects them off HTTP/2 frames.
 *
 * Queries are built with th_pkt() and base64url-encoded here, so each GET
 * test states the message it carries rather than an opaque string.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/listen/dohreq.h"
#include "tests/unit/helpers.h"

#define PATH "/dns-query"
#define QUERY_WWW "hdr 0x1234 0x0100\nqd www.example.com. IN A\n"
#define CT_DNS "application/dns-message"

/* base64url (RFC 4648 5) without padding, NUL-terminated. */
static void b64url(const uint8_t *in, size_t n, char *out, size_t outlen)
{
	static const char abc[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xffffu;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			assert_true(o + 1 < outlen);
			out[o++] = abc[(acc >> bits) & 63];
		}
	}
	if (bits > 0) {
		assert_true(o + 1 < outlen);
		out[o++] = abc[(acc << (6 - bits)) & 63];
	}
	out[o] = '\0';
}

static long pkt(const char *text, uint8_t *out, size_t outlen)
{
	long n = th_pkt(text, out, outlen);

	assert_true(n >= 12);
	return n;
}

/* A GET request for path (NUL-terminated). */
static struct px_doh_req get_req(const char *path)
{
	struct px_doh_req r = {
	        .method = PX_DOH_METHOD_GET,
	        .path = path,
	        .path_len = strlen(path),
	};
	return r;
}

/* A POST request to PATH with the given content type (NULL: none). */
static struct px_doh_req post_req(const char *ct, const uint8_t *body, size_t len)
{
	struct px_doh_req r = {
	        .method = PX_DOH_METHOD_POST,
	        .path = PATH,
	        .path_len = strlen(PATH),
	        .ct_seen = ct != NULL,
	        .ct_dns = ct != NULL && px_doh_content_type_is_dns(ct, strlen(ct)),
	        .body = len > 0 ? body : NULL,
	        .body_len = len,
	};
	return r;
}

/* Decodes r against PATH; on a non-200 checks that the outputs were not
 * touched. */
static int decode(const struct px_doh_req *r, uint8_t *buf, size_t buf_len, const uint8_t **msg,
                  size_t *len)
{
	static const uint8_t sentinel;

	*msg = &sentinel;
	*len = 4242;
	int st = px_doh_req_decode(r, PATH, buf, buf_len, msg, len);
	if (st != PX_DOH_HTTP_OK) {
		assert_ptr_equal(*msg, &sentinel);
		assert_int_equal(*len, 4242);
	}
	return st;
}

/* The status of GET PATH?<prefix>dns=<base64url of wire[0,n)><suffix>. */
static int get_status(const uint8_t *wire, size_t n, const char *prefix, const char *suffix,
                      uint8_t *buf, const uint8_t **msg, size_t *len)
{
	char enc[1024], path[1200];

	b64url(wire, n, enc, sizeof(enc));
	snprintf(path, sizeof(path), PATH "?%sdns=%s%s", prefix, enc, suffix);
	struct px_doh_req r = get_req(path);
	return decode(&r, buf, PX_DOH_MSG_MAX, msg, len);
}

/* GET */

static void test_dohreq_get_valid_query_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	assert_int_equal(get_status(wire, (size_t)n, "", "", buf, &msg, &len), 200);
	assert_ptr_equal(msg, buf);
	assert_int_equal(len, n);
	assert_memory_equal(msg, wire, (size_t)n);
}

static void test_dohreq_get_every_length_mod_3_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	/* 29, 30 and 31 bytes: 2, 0 and 4 spare bits in the last character. */
	static const char *texts[] = {
	        "hdr 1 0\nqd example.com. IN A\n",
	        "hdr 1 0\nqd aexample.com. IN A\n",
	        "hdr 1 0\nqd abexample.com. IN A\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		long n = pkt(texts[i], wire, sizeof(wire));
		assert_int_equal(get_status(wire, (size_t)n, "", "", buf, &msg, &len), 200);
		assert_int_equal(len, n);
		assert_memory_equal(msg, wire, (size_t)n);
	}
}

static void test_dohreq_get_padding_tolerated_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	/* 34 bytes: padded base64 ends in "==". */
	long n = pkt("hdr 0x1234 0x0100\nqd wwwx.example.com. IN A\n", wire, sizeof(wire));

	assert_int_equal(n % 3, 1);
	assert_int_equal(get_status(wire, (size_t)n, "", "==", buf, &msg, &len), 200);
	assert_int_equal(len, n);
	assert_memory_equal(msg, wire, (size_t)n);
}

static void test_dohreq_get_other_params_around_dns_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	assert_int_equal(get_status(wire, (size_t)n, "ct=x&", "", buf, &msg, &len), 200);
	assert_int_equal(get_status(wire, (size_t)n, "", "&ct=x", buf, &msg, &len), 200);
	assert_int_equal(get_status(wire, (size_t)n, "a=1&b&dnsx=2&", "&c=3", buf, &msg, &len),
	                 200);
	assert_int_equal(len, n);
	assert_memory_equal(msg, wire, (size_t)n);
	/* An empty parameter and a name that only starts like dns= are skipped. */
	assert_int_equal(get_status(wire, (size_t)n, "&xdns=AAAA&", "", buf, &msg, &len), 200);
}

static void test_dohreq_get_first_dns_param_wins(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	/* A later, broken dns= is not looked at. */
	assert_int_equal(get_status(wire, (size_t)n, "", "&dns=!!", buf, &msg, &len), 200);
	/* An earlier broken one decides. */
	assert_int_equal(get_status(wire, (size_t)n, "dns=!!&", "", buf, &msg, &len), 400);
}

static void test_dohreq_get_missing_dns_gives_400(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	static const char *paths[] = {
	        PATH, PATH "?", PATH "?ct=x", PATH "?DNS=AAAA", PATH "?dns", PATH "?&&",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct px_doh_req r = get_req(paths[i]);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	}
}

static void test_dohreq_get_empty_dns_gives_400(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = get_req(PATH "?dns=");

	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	r = get_req(PATH "?dns=&x=1");
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	r = get_req(PATH "?dns====");
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
}

static void test_dohreq_get_bad_characters_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	char enc[256], path[512];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	/* Plain base64's alphabet, percent escapes, padding in the middle,
	 * whitespace and bytes above ASCII are all outside base64url. */
	static const char bad[] = {'+', '/', '%', '=', ' ', '.', '\x80', '\xff'};

	b64url(wire, (size_t)n, enc, sizeof(enc));
	for (size_t i = 0; i < sizeof(bad); i++) {
		char e[256];
		memcpy(e, enc, strlen(enc) + 1);
		e[5] = bad[i];
		snprintf(path, sizeof(path), PATH "?dns=%s", e);
		struct px_doh_req r = get_req(path);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	}
}

static void test_dohreq_get_nonzero_trailing_bits_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	char enc[256], path[512];
	const uint8_t *msg;
	size_t len;
	/* 29 bytes leave 2 spare bits in the last character, 31 bytes 4. */
	static const char *texts[] = {
	        "hdr 1 0\nqd example.com. IN A\n",
	        "hdr 1 0\nqd abexample.com. IN A\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		long n = pkt(texts[i], wire, sizeof(wire));
		assert_int_not_equal(n % 3, 0);
		b64url(wire, (size_t)n, enc, sizeof(enc));
		size_t last = strlen(enc) - 1;
		/* The encoder left the spare bits zero, so the character's
		 * index is even and the next one in the alphabet (never across
		 * a Z/a, z/0 or 9/- seam) differs in the lowest spare bit. */
		enc[last] = (char)(enc[last] + 1);
		snprintf(path, sizeof(path), PATH "?dns=%s", enc);
		struct px_doh_req r = get_req(path);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	}
}

static void test_dohreq_get_dangling_character_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	char enc[256], path[512];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	/* One character more than a whole number of groups encodes 6 bits,
	 * which is no byte at all. */
	b64url(wire, (size_t)n, enc, sizeof(enc));
	snprintf(path, sizeof(path), PATH "?dns=%sA", enc);
	struct px_doh_req r = get_req(path);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
}

static void test_dohreq_get_decoded_too_short_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	assert_int_equal(get_status(wire, 11, "", "", buf, &msg, &len), 400);
	assert_int_equal(get_status(wire, 1, "", "", buf, &msg, &len), 400);
	/* A header alone with qdcount 1 is short of its question. */
	assert_int_equal(get_status(wire, 12, "", "", buf, &msg, &len), 400);
	assert_int_equal(get_status(wire, (size_t)n - 1, "", "", buf, &msg, &len), 400);
}

static void test_dohreq_get_response_qr1_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt("hdr 0x1234 0x8180\nqd www.example.com. IN A\n", wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	assert_int_equal(get_status(wire, (size_t)n, "", "", buf, &msg, &len), 400);
}

static void test_dohreq_get_malformed_message_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	/* A label length that runs past the end of the message. */
	wire[12] = 60;
	assert_int_equal(get_status(wire, (size_t)n, "", "", buf, &msg, &len), 400);
	/* Trailing garbage after the question. */
	n = pkt(QUERY_WWW, wire, sizeof(wire));
	wire[n] = 0;
	assert_int_equal(get_status(wire, (size_t)n + 1, "", "", buf, &msg, &len), 400);
}

static void test_dohreq_get_buffer_too_small_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	char enc[256], path[512];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	b64url(wire, (size_t)n, enc, sizeof(enc));
	snprintf(path, sizeof(path), PATH "?dns=%s", enc);
	struct px_doh_req r = get_req(path);
	assert_int_equal(decode(&r, buf, (size_t)n - 1, &msg, &len), 400);
	assert_int_equal(decode(&r, buf, (size_t)n, &msg, &len), 200);
}

/* POST */

static void test_dohreq_post_valid_query_gives_200_without_copy(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);

	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 200);
	assert_ptr_equal(msg, wire);
	assert_int_equal(len, n);
}

static void test_dohreq_post_wrong_content_type_gives_415(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	static const char *cts[] = {
	        "application/dns-udpwireformat",
	        "application/json",
	        "text/plain",
	        "application/dns",
	        "application/dns-messages",
	        "",
	        NULL,
	};

	for (size_t i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		struct px_doh_req r = post_req(cts[i], wire, (size_t)n);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 415);
	}
}

static void test_dohreq_post_content_type_parameters_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	static const char *cts[] = {
	        "application/dns-message; charset=x",
	        "application/dns-message;charset=utf-8",
	        "application/dns-message ; q=1",
	        "Application/DNS-Message",
	};

	for (size_t i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		struct px_doh_req r = post_req(cts[i], wire, (size_t)n);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 200);
	}
}

static void test_dohreq_post_too_big_gives_413(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	/* doh.c drops the body once it would pass 65535 bytes. */
	struct px_doh_req r = post_req(CT_DNS, NULL, 0);

	r.too_big = true;
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 413);

	/* A caller that kept a longer body gets the same answer. */
	uint8_t *big = calloc(1, PX_DOH_MSG_MAX + 1);
	assert_non_null(big);
	r = post_req(CT_DNS, big, PX_DOH_MSG_MAX + 1);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 413);
	free(big);
}

static void test_dohreq_post_too_big_wrong_type_gives_415(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req("text/plain", NULL, 0);

	/* The media type is checked first, as before the refactoring. */
	r.too_big = true;
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 415);
}

static void test_dohreq_post_empty_body_gives_400(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req(CT_DNS, NULL, 0);

	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
}

static void test_dohreq_post_bad_message_gives_400(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt("hdr 0x1234 0x8180\nqd www.example.com. IN A\n", wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);

	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	n = pkt(QUERY_WWW, wire, sizeof(wire));
	r = post_req(CT_DNS, wire, 11);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
	r = post_req(CT_DNS, wire, (size_t)n - 3);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 400);
}

static void test_dohreq_post_path_with_query_gives_200(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);

	/* Only the part before '?' names the resource; a POST ignores dns=. */
	r.path = PATH "?dns=garbage!";
	r.path_len = strlen(r.path);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 200);
	assert_ptr_equal(msg, wire);
	r.path = PATH "?";
	r.path_len = strlen(r.path);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 200);
}

/* Path and method */

static void test_dohreq_wrong_path_gives_404(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	static const char *paths[] = {
	        "/",
	        "/dns-query2",
	        "/dns-quer",
	        "/dns",
	        "/DNS-QUERY",
	        "/dns-query/",
	        "dns-query",
	        "//dns-query",
	        "/other?dns=AAAA",
	        "/dns-query#x",
	};

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);
		r.path = paths[i];
		r.path_len = strlen(paths[i]);
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 404);
		r.method = PX_DOH_METHOD_GET;
		assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 404);
	}
}

static void test_dohreq_prefix_path_with_query_gives_404(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	char enc[256], path[512];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));

	b64url(wire, (size_t)n, enc, sizeof(enc));
	snprintf(path, sizeof(path), "/dns-query2?dns=%s", enc);
	struct px_doh_req r = get_req(path);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 404);
	snprintf(path, sizeof(path), "/dns-quer?dns=%s", enc);
	r = get_req(path);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 404);
}

static void test_dohreq_missing_path_gives_404(void **state)
{
	(void)state;
	uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = {.method = PX_DOH_METHOD_GET};

	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 404);
}

static void test_dohreq_path_too_long_gives_414(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	char enc[256], path[512];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;

	/* doh.c drops a :path over PX_DOH_PATH_MAX and sets the flag; any
	 * path it still holds does not count then. */
	b64url(wire, (size_t)n, enc, sizeof(enc));
	snprintf(path, sizeof(path), PATH "?dns=%s", enc);
	struct px_doh_req r = get_req(path);
	r.path_too_long = true;
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 414);

	/* A longer path handed over as is gets the same. */
	char *lp = malloc(PX_DOH_PATH_MAX + 2);
	assert_non_null(lp);
	memset(lp, 'A', PX_DOH_PATH_MAX + 1);
	memcpy(lp, path, strlen(path));
	lp[PX_DOH_PATH_MAX + 1] = '\0';
	r = get_req(lp);
	assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 414);
	free(lp);
}

static void test_dohreq_other_method_gives_405(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	/* PUT, DELETE, HEAD and the rest all arrive as OTHER; a request
	 * without :method as NONE. The method is checked before the path. */
	static const enum px_doh_method ms[] = {PX_DOH_METHOD_OTHER, PX_DOH_METHOD_NONE};
	static const char *paths[] = {PATH, "/elsewhere"};

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
			struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);
			r.method = ms[i];
			r.path = paths[k];
			r.path_len = strlen(paths[k]);
			assert_int_equal(decode(&r, buf, sizeof(buf), &msg, &len), 405);
		}
	}
}

static void test_dohreq_configured_path_is_used(void **state)
{
	(void)state;
	uint8_t wire[512], buf[PX_DOH_MSG_MAX];
	long n = pkt(QUERY_WWW, wire, sizeof(wire));
	const uint8_t *msg;
	size_t len;
	struct px_doh_req r = post_req(CT_DNS, wire, (size_t)n);

	r.path = "/custom?x";
	r.path_len = strlen(r.path);
	assert_int_equal(px_doh_req_decode(&r, "/custom", buf, sizeof(buf), &msg, &len), 200);
	assert_int_equal(px_doh_req_decode(&r, "/dns-query", buf, sizeof(buf), &msg, &len), 404);
	/* The path is counted, not NUL-terminated: a shorter path_len cuts. */
	r.path_len = 4;
	assert_int_equal(px_doh_req_decode(&r, "/cus", buf, sizeof(buf), &msg, &len), 200);
}

/* px_doh_content_type_is_dns */

static void test_dohreq_content_type_variants_match_as_documented(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		bool want;
	} cases[] = {
	        {"application/dns-message", true},  {"APPLICATION/DNS-MESSAGE", true},
	        {"application/dns-message;", true}, {"application/dns-message; charset=x", true},
	        {"application/dns-message ", true}, {"application/dns-message2", false},
	        {"application/dns-messag", false},  {" application/dns-message", false},
	        {"application/dns+message", false}, {"", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(px_doh_content_type_is_dns(cases[i].v, strlen(cases[i].v)),
		                 cases[i].want);
	assert_false(px_doh_content_type_is_dns(NULL, 0));
	/* Counted, not NUL-terminated. */
	assert_true(px_doh_content_type_is_dns("application/dns-messageXYZ", 23));
	assert_false(px_doh_content_type_is_dns("application/dns-message", 22));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dohreq_get_valid_query_gives_200),
	        cmocka_unit_test(test_dohreq_get_every_length_mod_3_gives_200),
	        cmocka_unit_test(test_dohreq_get_padding_tolerated_gives_200),
	        cmocka_unit_test(test_dohreq_get_other_params_around_dns_gives_200),
	        cmocka_unit_test(test_dohreq_get_first_dns_param_wins),
	        cmocka_unit_test(test_dohreq_get_missing_dns_gives_400),
	        cmocka_unit_test(test_dohreq_get_empty_dns_gives_400),
	        cmocka_unit_test(test_dohreq_get_bad_characters_gives_400),
	        cmocka_unit_test(test_dohreq_get_nonzero_trailing_bits_gives_400),
	        cmocka_unit_test(test_dohreq_get_dangling_character_gives_400),
	        cmocka_unit_test(test_dohreq_get_decoded_too_short_gives_400),
	        cmocka_unit_test(test_dohreq_get_response_qr1_gives_400),
	        cmocka_unit_test(test_dohreq_get_malformed_message_gives_400),
	        cmocka_unit_test(test_dohreq_get_buffer_too_small_gives_400),
	        cmocka_unit_test(test_dohreq_post_valid_query_gives_200_without_copy),
	        cmocka_unit_test(test_dohreq_post_wrong_content_type_gives_415),
	        cmocka_unit_test(test_dohreq_post_content_type_parameters_gives_200),
	        cmocka_unit_test(test_dohreq_post_too_big_gives_413),
	        cmocka_unit_test(test_dohreq_post_too_big_wrong_type_gives_415),
	        cmocka_unit_test(test_dohreq_post_empty_body_gives_400),
	        cmocka_unit_test(test_dohreq_post_bad_message_gives_400),
	        cmocka_unit_test(test_dohreq_post_path_with_query_gives_200),
	        cmocka_unit_test(test_dohreq_wrong_path_gives_404),
	        cmocka_unit_test(test_dohreq_prefix_path_with_query_gives_404),
	        cmocka_unit_test(test_dohreq_missing_path_gives_404),
	        cmocka_unit_test(test_dohreq_path_too_long_gives_414),
	        cmocka_unit_test(test_dohreq_other_method_gives_405),
	        cmocka_unit_test(test_dohreq_configured_path_is_used),
	        cmocka_unit_test(test_dohreq_content_type_variants_match_as_documented),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
