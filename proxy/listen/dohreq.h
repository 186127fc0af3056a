/* proxy/listen/dohreq.h - DNS over HTTPS requests (RFC 8484) decoded as a pure unit.
 *
 * doh.c collects a request from nghttp2 callbacks (method, path,
 * content-type, body) into a struct px_doh_req; px_doh_req_decode() turns
 * it into an HTTP status and, on 200, the DNS query it carries. Keeping
 * this apart from the HTTP/2 session lets unit tests and a fuzz target
 * reach every status without a TLS handshake or an event loop.
 *
 * Owns: nothing; everything is borrowed for the call. No nghttp2, no
 * libuv, no logging. Threads: any, the functions keep no state.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

/* A DNS message is at most 65535 bytes (RFC 8484 section 6): larger POST
 * bodies get 413, and a GET never decodes to more. */
#define PX_DOH_MSG_MAX CODEC_MAX_MSG
/* Longest :path kept; a longer one cannot be ours (the configured doh-path
 * is at most 128 bytes) and gets 404. It also bounds a GET query to about
 * 768 decoded bytes. */
#define PX_DOH_PATH_MAX 16384

/* HTTP statuses px_doh_req_decode() returns (RFC 9110 section 15). */
#define PX_DOH_HTTP_OK 200
#define PX_DOH_HTTP_BAD_REQUEST 400
#define PX_DOH_HTTP_NOT_FOUND 404
#define PX_DOH_HTTP_BAD_METHOD 405
#define PX_DOH_HTTP_TOO_LARGE 413
#define PX_DOH_HTTP_URI_TOO_LONG 414
#define PX_DOH_HTTP_BAD_MEDIA_TYPE 415

/** The request method, as far as DoH cares. */
enum px_doh_method {
	PX_DOH_METHOD_NONE = 0, /**< no :method header seen */
	PX_DOH_METHOD_GET,
	PX_DOH_METHOD_POST,
	PX_DOH_METHOD_OTHER, /**< anything else: PUT, DELETE, HEAD, ... */
};

/** A request as the HTTP layer collected it; all pointers are borrowed. */
struct px_doh_req {
	enum px_doh_method method;
	const char *path; /**< :path bytes, not NUL-terminated; NULL when path_len is 0 */
	size_t path_len;
	bool path_too_long;  /**< :path was over PX_DOH_PATH_MAX and was dropped */
	bool ct_dns;         /**< content-type is application/dns-message */
	bool ct_seen;        /**< a content-type header was present (absent is 415 too) */
	bool too_big;        /**< the body went over PX_DOH_MSG_MAX and was dropped */
	const uint8_t *body; /**< POST body; NULL when empty */
	size_t body_len;
};

/**
 * Tells whether a content-type value names the DNS media type: the
 * media type "application/dns-message" compared case-insensitively
 * (RFC 9110 8.3.1), followed by the end, ';' (parameters, ignored) or a
 * space. v need not be NUL-terminated; it may be NULL when n is 0.
 */
bool px_doh_content_type_is_dns(const char *v, size_t n);

/**
 * Decides the HTTP status of a DoH request and extracts its DNS query.
 *
 * Checks, in this order: the method (GET or POST, else 405); the path up
 * to the first '?' equals doh_path exactly (else 404, also when
 * path_too_long); for GET, the first "dns=" parameter of the '&'-separated
 * query string decodes as base64url (RFC 4648 section 5; trailing '='
 * tolerated, leftover bits must be zero) into buf (else 400); for POST,
 * the content type is the DNS one (else 415) and the body fit (else 413).
 * Finally the message must be a query codec_scan() accepts: at least a
 * header, QR clear (else 400).
 *
 * @param r         the collected request
 * @param doh_path  the configured path, NUL-terminated (cfg listen.doh_path)
 * @param buf       where a GET query is decoded; unused for POST
 * @param buf_len   its size; PX_DOH_MSG_MAX always suffices, and a smaller
 *                  buffer turns a GET query that does not fit into 400
 * @param msg       on 200: the query, pointing into buf (GET) or r->body
 *                  (POST, not copied); valid as long as both are
 * @param msg_len   on 200: its length
 * @return PX_DOH_HTTP_OK, or the 4xx status to answer with; *msg and
 *         *msg_len are left alone then.
 */
int px_doh_req_decode(const struct px_doh_req *r, const char *doh_path, uint8_t *buf,
                      size_t buf_len, const uint8_t **msg, size_t *msg_len);
