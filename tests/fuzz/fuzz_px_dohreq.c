/* tests/fuzz/fuzz_px_dohreq.c - libFuzzer target for DoH request decoding
 * (px_doh_req_decode, px_doh_content_type_is_dns).
 *
 * Input layout, chosen so that seeds can be written by hand:
 *
 *   byte 0     bits 0-1 method (0 none, 1 GET, 2 POST, 3 other),
 *              bit 2 path_too_long, bit 3 too_big
 *   then       <path> '\n' <content-type> '\n' <body>
 *
 * A missing '\n' ends the request early (no content type, no body). Each
 * field is copied into its own allocation of exact size, so reading past
 * a field is an AddressSanitizer report, not a silent read of the next.
 *
 * Checked: the status is one of the documented ones and agrees with the
 * method; a 200 carries a query codec_scan() accepts, in buf or the body;
 * a GET query re-encoded as base64url decodes to the same bytes. The path
 * is also tried as a GET, and with a buffer too small for most queries.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/scan.h"
#include "proxy/listen/dohreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DOH_PATH "/dns-query"

static void check(int cond)
{
	if (!cond)
		abort();
}

/* An exact-size copy; NULL for an empty field (malloc(0) may be either). */
static char *dup_field(const uint8_t *p, size_t n)
{
	if (n == 0)
		return NULL;
	char *c = malloc(n);
	check(c != NULL);
	memcpy(c, p, n);
	return c;
}

static size_t b64url_encode(const uint8_t *in, size_t n, char *out)
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
			out[o++] = abc[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	return o;
}

static bool valid_status(int st)
{
	return st == PX_DOH_HTTP_OK || st == PX_DOH_HTTP_BAD_REQUEST ||
	       st == PX_DOH_HTTP_NOT_FOUND || st == PX_DOH_HTTP_BAD_METHOD ||
	       st == PX_DOH_HTTP_TOO_LARGE || st == PX_DOH_HTTP_BAD_MEDIA_TYPE ||
	       st == PX_DOH_HTTP_URI_TOO_LONG;
}

/* The message of a 200 must be what the backend can take. */
static void check_query(const uint8_t *msg, size_t len)
{
	struct codec_view v;

	check(len >= CODEC_HDR_LEN && len <= PX_DOH_MSG_MAX);
	check(!codec_hdr_qr(msg));
	check(codec_scan(msg, len, &v) == 0);
}

/* A GET query, spelled canonically, must come back byte for byte. The
 * canonical path is never longer than the one that was accepted. */
static void check_roundtrip(const char *doh_path, const uint8_t *msg, size_t len)
{
	size_t pre = strlen(doh_path) + 5;
	size_t plen = pre + (len * 4 + 2) / 3;
	char *path = malloc(plen);
	static uint8_t buf[PX_DOH_MSG_MAX];
	const uint8_t *m2;
	size_t l2;

	check(path != NULL);
	if (plen > PX_DOH_PATH_MAX) {
		/* Too long for a URI (414): only POST can carry this one. */
		free(path);
		return;
	}
	memcpy(path, doh_path, pre - 5);
	memcpy(path + pre - 5, "?dns=", 5);
	check(pre + b64url_encode(msg, len, path + pre) == plen);
	struct px_doh_req r = {.method = PX_DOH_METHOD_GET, .path = path, .path_len = plen};
	check(px_doh_req_decode(&r, doh_path, buf, sizeof(buf), &m2, &l2) == PX_DOH_HTTP_OK);
	check(m2 == buf && l2 == len && memcmp(m2, msg, len) == 0);
	free(path);
}

static void run(const struct px_doh_req *r, const char *doh_path, uint8_t *buf, size_t buf_len)
{
	const uint8_t *msg = NULL;
	size_t len = 0;
	int st = px_doh_req_decode(r, doh_path, buf, buf_len, &msg, &len);

	check(valid_status(st));
	bool known = r->method == PX_DOH_METHOD_GET || r->method == PX_DOH_METHOD_POST;
	check((st == PX_DOH_HTTP_BAD_METHOD) == !known);
	if (r->path_too_long)
		check(st == PX_DOH_HTTP_URI_TOO_LONG || st == PX_DOH_HTTP_BAD_METHOD);
	if (r->method == PX_DOH_METHOD_GET)
		check(st != PX_DOH_HTTP_TOO_LARGE && st != PX_DOH_HTTP_BAD_MEDIA_TYPE);
	if (st != PX_DOH_HTTP_OK) {
		check(msg == NULL && len == 0);
		return;
	}
	check_query(msg, len);
	if (r->method == PX_DOH_METHOD_GET) {
		check(msg == buf && len <= buf_len);
		check_roundtrip(doh_path, msg, len);
	} else {
		check(r->ct_dns && !r->too_big);
		check(msg == r->body && len == r->body_len);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[PX_DOH_MSG_MAX];

	if (size < 1)
		return 0;
	const uint8_t *p = data + 1, *end = data + size;
	const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
	const uint8_t *path_end = nl != NULL ? nl : end;
	char *path = dup_field(p, (size_t)(path_end - p));
	size_t path_len = (size_t)(path_end - p);
	char *ct = NULL;
	size_t ct_len = 0;
	uint8_t *body = NULL;
	size_t body_len = 0;
	bool ct_seen = false;

	if (nl != NULL) {
		p = nl + 1;
		nl = memchr(p, '\n', (size_t)(end - p));
		const uint8_t *ct_end = nl != NULL ? nl : end;
		ct_seen = true;
		ct_len = (size_t)(ct_end - p);
		ct = dup_field(p, ct_len);
		if (nl != NULL) {
			body_len = (size_t)(end - (nl + 1));
			body = (uint8_t *)dup_field(nl + 1, body_len);
		}
	}

	bool ct_dns = px_doh_content_type_is_dns(ct, ct_len);
	struct px_doh_req r = {
	        .method = (enum px_doh_method)(data[0] & 3),
	        .path = path,
	        .path_len = path_len,
	        .path_too_long = (data[0] & 4) != 0,
	        .ct_dns = ct_dns,
	        .ct_seen = ct_seen,
	        .too_big = (data[0] & 8) != 0,
	        .body = body,
	        .body_len = body_len,
	};

	run(&r, DOH_PATH, buf, sizeof(buf));
	/* Another configured path; "/" makes every "/?..." path ours. */
	run(&r, "/", buf, sizeof(buf));
	/* The path as a GET, whatever the method was, and with a buffer
	 * smaller than most queries: a query that does not fit is a 400. */
	r.method = PX_DOH_METHOD_GET;
	run(&r, DOH_PATH, buf, sizeof(buf));
	run(&r, DOH_PATH, buf, 32);

	free(path);
	free(ct);
	free(body);
	return 0;
}
