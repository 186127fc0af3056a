/* tls/ctx.h - TLS contexts: certificates, protocol policy, ALPN, session
 * tickets, and reference counting for reload.
 *
 * A struct tls_ctx wraps one OpenSSL SSL_CTX, either for a server (DoT/DoH
 * listeners) or for a client (tests, and later TLS towards upstreams).
 * A context is immutable once built, except for its ticket keys, which
 * rotate by themselves; so one context is shared by every worker thread.
 *
 * Reload: build a new context with tls_ctx_new(); if that fails, keep the
 * old one (the error says why). If it succeeds, publish the new pointer to
 * the workers and tls_ctx_unref() the old one. Every stream holds its own
 * reference to the context it was created from, so connections accepted
 * before the reload finish on the old certificate, and the old context is
 * freed with its last stream. Pass the old context as tickets_from and
 * tickets issued before the reload still resume after it.
 *
 * Threads: every function here may be called from any thread. Publishing
 * the current context pointer to other threads (and taking a reference
 * while it cannot be swapped under you) is the caller's job.
 *
 * Nothing here logs: failures come back as negative errno plus a message
 * in the caller's err buffer, with OpenSSL's reason text.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct tls_ctx;

/** Protocol versions, as written in the configuration: 12 = TLS 1.2, 13 = TLS 1.3. */
#define TLS_VERSION_12 12
#define TLS_VERSION_13 13

/**
 * Default ticket key rotation period, in seconds. The key that encrypts
 * new tickets is replaced this often; the previous key still decrypts for
 * one more period (and such a ticket is replaced by a fresh one), and the
 * ticket lifetime equals the period, so every ticket is accepted for its
 * whole lifetime and no key outlives two periods. An hour bounds what a
 * leaked key can decrypt (TLS 1.2 resumption has no forward secrecy of its
 * own) while DoT/DoH stubs that reconnect after idle timeouts still resume.
 */
#define TLS_TICKET_ROTATE_SECS 3600u

/**
 * Server context options. Strings are borrowed for the duration of
 * tls_ctx_new() only; the context copies what it keeps.
 */
struct tls_ctx_opts {
	/** Certificate chain in PEM, leaf first (a "fullchain.pem"). */
	const char *cert_file;
	/** Private key of the leaf in PEM; must not be encrypted. */
	const char *key_file;
	/**
	 * In-memory PEM text used instead of cert_file/key_file when those
	 * are NULL (tests and the fuzz target build their certificate in code).
	 */
	const char *cert_pem;
	const char *key_pem;
	/** Lowest version accepted: TLS_VERSION_12 or TLS_VERSION_13; 0 means 12. */
	int min_version;
	/** Highest version: 12 or 13; 0 means 13. Lower than 13 only for tests. */
	int max_version;
	/**
	 * ALPN protocols in server preference order, comma separated, e.g.
	 * "dot" or "h2,dot". The first protocol of this list that the client
	 * offers is selected. A client offering ALPN without any overlap gets
	 * a fatal no_application_protocol alert (RFC 7301 section 3.2); a client
	 * that offers no ALPN is accepted and tls_stream_alpn() is NULL.
	 * NULL or "" disables ALPN: the client's list is ignored.
	 */
	const char *alpn;
	/** Ticket key rotation period in seconds; 0 means TLS_TICKET_ROTATE_SECS. */
	unsigned ticket_rotate_secs;
	/**
	 * Optional server context whose ticket keys this one shares (usually
	 * the context being replaced by a reload), so that tickets issued
	 * before the reload keep resuming. The keys, and their rotation
	 * period, are shared for good: rotating one context rotates both.
	 * NULL: fresh random keys.
	 */
	const struct tls_ctx *tickets_from;
	/**
	 * A DER OCSP response for the leaf (`openssl ocsp -respout`), stapled
	 * to every handshake that asks (RFC 6066 8); NULL or "" for none. It
	 * must be successful, about this certificate (the chain must hold the
	 * issuer), "good" and current, else the context fails to load. The
	 * owner refreshes the file and reloads (apexd: SIGHUP).
	 */
	const char *ocsp_file;
};

/**
 * Builds a server context.
 *
 * Policy: TLS 1.2 and 1.3 only (within min/max_version); TLS 1.2 with ECDHE
 * and AEAD ciphers only (AES-GCM, ChaCha20-Poly1305), TLS 1.3 with OpenSSL's
 * default suites; server cipher order with ChaCha20 first for clients that
 * prefer it (no AES hardware); groups X25519 and P-256; no compression, no
 * renegotiation, no 0-RTT. Session tickets on, encrypted with keys that
 * rotate every ticket_rotate_secs (our own key callback: OpenSSL's built-in
 * ticket key is made once per SSL_CTX and never rotates). Session-ID
 * resumption for TLS 1.2 clients without tickets uses a bounded cache.
 *
 * The leaf certificate must be within its validity period and match the
 * private key.
 *
 * @out receives the context with one reference, owned by the caller
 *      (release with tls_ctx_unref()); untouched on failure.
 * @err receives a NUL-terminated message on failure (may be NULL).
 * @return 0; -ENOENT/-EACCES/... (negative errno) when a file cannot be
 *      opened; -EINVAL for a bad option, an unparsable certificate or key,
 *      a key that does not match the certificate, or a certificate that is
 *      expired or not yet valid (err carries OpenSSL's reason); -ENOMEM.
 */
int tls_ctx_new(struct tls_ctx **out, const struct tls_ctx_opts *o, char *err, size_t errlen);

/** Client context options; strings are borrowed for the call only. */
struct tls_client_opts {
	/** CA certificates in PEM to verify the server with; NULL = system store. */
	const char *ca_file;
	/**
	 * Skip certificate verification: RFC 7858 section 4.1 "opportunistic
	 * privacy" only (and tests). Encrypts, authenticates nobody.
	 */
	bool no_verify;
	/** ALPN offered, comma separated in preference order ("dot"); NULL = none. */
	const char *alpn;
	/** As in struct tls_ctx_opts; 0 means 12 and 13. */
	int min_version;
	int max_version;
	/**
	 * Never resume a session: every handshake shows the server's
	 * certificate again (health checks, which must see it each time).
	 */
	bool no_resume;
};

/**
 * Builds a client context with the same protocol policy as the server.
 * It remembers the last session ticket it received, for the server name
 * it was received from, and offers it on the next tls_stream_new_client()
 * to that name: meant for one context per upstream server.
 *
 * @out, @err, @return as for tls_ctx_new() (-EINVAL for a bad option or an
 *      unreadable CA file, with OpenSSL's reason).
 */
int tls_ctx_new_client(struct tls_ctx **out, const struct tls_client_opts *o, char *err,
                       size_t errlen);

/** Takes one more reference. Atomic: any thread. */
void tls_ctx_ref(struct tls_ctx *c);

/**
 * Drops one reference; the last one frees the context and wipes its ticket
 * keys (unless another context still shares them). NULL is a no-op.
 * Atomic: any thread. The caller must not use c afterwards.
 */
void tls_ctx_unref(struct tls_ctx *c);

/** True for a context made by tls_ctx_new_client(). */
bool tls_ctx_is_client(const struct tls_ctx *c);

/**
 * Rotates the ticket keys now, as the timer would: the current key becomes
 * the previous one (still decrypting, its tickets get renewed) and a fresh
 * key encrypts from now on. Meant for an operator command and tests.
 * @return 0; -EINVAL for a client context; -EIO if the random generator
 *      failed (keys unchanged).
 */
int tls_ctx_rotate_tickets(struct tls_ctx *c);
