/* proxy/listen/dohreq.c - DNS over HTTPS request decoding (RFC 8484), see dohreq.h.
 *
 * Everything works on lengths, never on NUL termination: the path and the
 * header values come from HTTP/2 frames, and the fuzz target feeds them
 * raw.
 */
#include <string.h>

#include "codec/scan.h"
#include "proxy/listen/dohreq.h"

static const char doh_media_type[] = "application/dns-message";

static unsigned char ascii_lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

bool px_doh_content_type_is_dns(const char *v, size_t n)
{
	size_t wl = sizeof(doh_media_type) - 1;

	if (v == NULL || n < wl)
		return false;
	for (size_t i = 0; i < wl; i++)
		if (ascii_lower((unsigned char)v[i]) != (unsigned char)doh_media_type[i])
			return false;
	/* Parameters such as charset do not change the media type. The space
	 * admits "application/dns-message ; x", as clients write it. */
	return n == wl || v[wl] == ';' || v[wl] == ' ';
}

static int b64url_val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* base64url without padding (RFC 4648 5, RFC 8484 4.1). Clients that pad
 * anyway are not worth a 400, so trailing '=' are dropped first.
 * Returns the decoded length, or -1 on a bad character, a dangling
 * character, non-zero leftover bits, or overflow of outlen. */
static long b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t o = 0;

	while (n > 0 && in[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64url_val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		/* At most 12 pending bits are read back; keep acc small. */
		acc = ((acc << 6) | (uint32_t)v) & 0xffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == outlen)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* One character alone (6 bits) encodes no byte; 2 or 4 leftover bits
	 * must be the zero padding of the last group, so that every query
	 * has exactly one spelling. */
	if (bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (long)o;
}

/* The value of the first dns= parameter of a query string (the part after
 * '?'), or NULL. Parameters are '&'-separated; names are case-sensitive and
 * values are not percent-decoded, since base64url needs no escaping. */
static const char *query_param_dns(const char *qs, size_t n, size_t *len)
{
	const char *p = qs, *end = qs + n;

	for (;;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t plen = amp != NULL ? (size_t)(amp - p) : (size_t)(end - p);

		if (plen >= 4 && memcmp(p, "dns=", 4) == 0) {
			*len = plen - 4;
			return p + 4;
		}
		if (amp == NULL)
			return NULL;
		p = amp + 1;
	}
}

int px_doh_req_decode(const struct px_doh_req *r, const char *doh_path, uint8_t *buf,
                      size_t buf_len, const uint8_t **msg, size_t *msg_len)
{
	const uint8_t *m;
	size_t mlen;

	if (r->method != PX_DOH_METHOD_GET && r->method != PX_DOH_METHOD_POST)
		return PX_DOH_HTTP_BAD_METHOD;

	/* The path is compared up to the query string, byte for byte. */
	const char *path = r->path_len > 0 ? r->path : "";
	const char *q = memchr(path, '?', r->path_len);
	size_t base = q != NULL ? (size_t)(q - path) : r->path_len;
	size_t want = strlen(doh_path);

	/* A GET carries the query in the URI: 16 KiB holds any query of up to
	 * 12 KiB, far beyond real ones; longer is 414 (RFC 9110 15.5.15). */
	if (r->path_too_long || r->path_len > PX_DOH_PATH_MAX)
		return PX_DOH_HTTP_URI_TOO_LONG;
	if (base != want || memcmp(path, doh_path, base) != 0)
		return PX_DOH_HTTP_NOT_FOUND;

	if (r->method == PX_DOH_METHOD_GET) {
		size_t vlen = 0;
		const char *v = NULL;

		if (q != NULL)
			v = query_param_dns(q + 1, r->path_len - base - 1, &vlen);
		if (buf_len > PX_DOH_MSG_MAX)
			buf_len = PX_DOH_MSG_MAX;
		long n = v != NULL ? b64url_decode(v, vlen, buf, buf_len) : -1;
		if (n < 0)
			return PX_DOH_HTTP_BAD_REQUEST;
		m = buf;
		mlen = (size_t)n;
	} else {
		/* A missing content type is not the DNS one either. */
		if (!r->ct_dns)
			return PX_DOH_HTTP_BAD_MEDIA_TYPE;
		if (r->too_big || r->body_len > PX_DOH_MSG_MAX)
			return PX_DOH_HTTP_TOO_LARGE;
		m = r->body;
		mlen = r->body_len;
	}

	/* Only queries go to the backend: a response (QR=1) sent back to
	 * us could loop, and codec_scan() rejects whatever would trip up the
	 * rest of the query path. */
	struct codec_view view;

	if (m == NULL || mlen < CODEC_HDR_LEN || codec_hdr_qr(m) || codec_scan(m, mlen, &view) < 0)
		return PX_DOH_HTTP_BAD_REQUEST;
	*msg = m;
	*msg_len = mlen;
	return PX_DOH_HTTP_OK;
}
