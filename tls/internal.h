/* tls/internal.h - what tls/stream.c needs from tls/ctx.c. Not for use
 * outside tls/: it exposes OpenSSL types, which the rest of apexd never
 * sees.
 */
#pragma once
#include <stddef.h>
#include <openssl/ssl.h>

struct tls_ctx;

/** The wrapped SSL_CTX; borrowed, lives as long as the tls_ctx. */
SSL_CTX *tls__ctx_ssl(const struct tls_ctx *c);

/**
 * Maps the ALPN protocol OpenSSL selected (p, n: not NUL-terminated) to
 * the context's own NUL-terminated copy of that name, which lives as long
 * as the context. NULL if n == 0 or the name is not in the context's list.
 */
const char *tls__ctx_alpn_name(const struct tls_ctx *c, const unsigned char *p, unsigned n);

/**
 * Client contexts: the remembered session for peer (the name given to
 * tls_stream_new_client()), with a new reference for the caller to
 * SSL_SESSION_free(), or NULL when there is none that can resume. A TLS 1.3
 * ticket is handed out once (RFC 8446 appendix C.4: a ticket reused across
 * connections links them); the server sends fresh ones on every handshake.
 *
 * The context learns sessions by itself: a client SSL's app data must be
 * its peer name (a NUL-terminated string that outlives the SSL, or NULL),
 * which the context's new-session callback reads.
 */
SSL_SESSION *tls__ctx_session_get(struct tls_ctx *c, const char *peer);

/**
 * Appends the thread's OpenSSL error queue, oldest (the root cause) first,
 * to the NUL-terminated text in buf as ": reason (detail)" items, then
 * clears the queue so the next operation on this thread starts clean.
 */
void tls__err_append(char *buf, size_t len);
