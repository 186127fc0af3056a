/* tls/stream.h - one TLS connection as a byte-in / byte-out object.
 *
 * The stream runs OpenSSL over two memory BIOs and does no I/O itself:
 * the owner (proxy/ glues it to a uv_tcp_t) feeds the ciphertext it read
 * with tls_stream_feed(), and the stream hands back ciphertext to send
 * through io->send and plaintext through io->recv. It is driven from one
 * thread at a time (the worker owning the connection).
 *
 * Callback rules, for every callback of struct tls_stream_io:
 * - they run only inside tls_stream_feed(), tls_stream_write() or
 *   tls_stream_shutdown(), never later;
 * - recv and ready may call tls_stream_write() and tls_stream_shutdown(),
 *   and may ask the owner to close the connection; none may call
 *   tls_stream_free() - the owner frees after the outer call returns;
 * - send must not call into the stream at all (such calls get -EBUSY):
 *   it is handed a pointer into the stream's output buffer.
 *
 * Errors are sticky: once a call returned a negative code other than
 * -ENOBUFS/-EBUSY/-EPIPE, every later feed and write returns the same
 * code, and the owner should close the transport and free the stream.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls/ctx.h"

struct tls_stream;

/**
 * Plaintext written before the handshake completes is queued up to this
 * many bytes (a DoH client may send its first requests right behind the
 * handshake). Beyond it tls_stream_write() fails with -ENOBUFS rather than
 * buffer without bound for a peer that never finishes its handshake.
 */
#define TLS_STREAM_QUEUE_MAX (256u * 1024u)

/** Callbacks and their argument; copied by tls_stream_new*(). */
struct tls_stream_io {
	/**
	 * Ciphertext to send on the transport. p is borrowed and valid only
	 * during the call: copy it or write it out before returning. Returns
	 * 0, or a negative errno that the stream makes sticky and returns from
	 * the call that produced the data. Required.
	 */
	int (*send)(void *arg, const uint8_t *p, size_t n);
	/**
	 * Decrypted application data, in order; p is borrowed for the call.
	 * Chunks follow TLS records, not the peer's write boundaries. May still
	 * be called after tls_stream_shutdown(), until the peer's close_notify.
	 * Required.
	 */
	void (*recv)(void *arg, const uint8_t *p, size_t n);
	/**
	 * The handshake completed: tls_stream_alpn() and tls_stream_resumed()
	 * are known, and queued writes have been sent. Called once, before the
	 * first recv. Optional (NULL).
	 */
	void (*ready)(void *arg);
	void *arg;
};

/**
 * A server-side stream on a server context; it takes its own reference on
 * ctx, so the caller may drop or replace its own at any time (reload).
 * Nothing is sent until the client's first bytes are fed.
 * @return the stream, owned by the caller (tls_stream_free()); NULL with
 *      errno ENOMEM, or EINVAL if ctx is a client context or io lacks
 *      send or recv.
 */
struct tls_stream *tls_stream_new(struct tls_ctx *ctx, const struct tls_stream_io *io);

/**
 * A client-side stream on a client context (reference taken as above).
 * server_name (borrowed for the call) is sent as SNI when it is a host
 * name, and the certificate is verified against it - host name or IP
 * address literal - unless the context skips verification; NULL sends no
 * SNI and checks no name. A session remembered from server_name is
 * offered for resumption.
 * Call tls_stream_feed(s, NULL, 0) to send the ClientHello.
 * @return as tls_stream_new(), EINVAL also for a server context.
 */
struct tls_stream *tls_stream_new_client(struct tls_ctx *ctx, const struct tls_stream_io *io,
                                         const char *server_name);

/**
 * Takes n bytes of ciphertext read from the transport (copied; n may be 0
 * to just drive the state machine, as a client does to start). Drives the
 * handshake, calls ready once it completes, delivers every complete record
 * through recv and hands whatever must go out (handshake flights, alerts,
 * replies to close_notify or key updates) to send.
 * Called from inside recv or ready, it only queues the bytes for the
 * outer call to process.
 * @return 0 when all input is consumed and more is needed (a partial record
 *      stays buffered); -ECONNRESET when the peer sent close_notify (our
 *      close_notify reply has been handed to send; close the transport);
 *      -EPROTO on a TLS error: bad ClientHello, failed verification, no
 *      common version/cipher/ALPN, bad record (tls_stream_errstr() says
 *      which; the fatal alert has been handed to send); a negative errno
 *      from send; -ENOMEM; -EBUSY when called from send.
 */
int tls_stream_feed(struct tls_stream *s, const uint8_t *cipher, size_t n);

/**
 * Encrypts n bytes of plaintext (copied) and hands the records to send;
 * before the handshake completes, the bytes are queued and go out once it
 * does. Large writes go out one record (16 KiB) at a time, so the output
 * buffer stays small.
 * @return 0; -ENOBUFS if the queue would exceed TLS_STREAM_QUEUE_MAX
 *      (nothing queued); -EPIPE after tls_stream_shutdown(); -EBUSY from
 *      send; the sticky error of a failed stream; a negative errno from send.
 */
int tls_stream_write(struct tls_stream *s, const uint8_t *plain, size_t n);

/**
 * Sends close_notify (RFC 8446 section 6.1) through send; later writes fail
 * with -EPIPE, while feed still delivers what the peer sends until its own
 * close_notify (-ECONNRESET). Before the handshake completes, or on a
 * failed stream, nothing is sent and queued writes are dropped: there is
 * no session to close cleanly, so just close the transport. Idempotent.
 * @return 0, -EBUSY from send, or a negative errno from send.
 */
int tls_stream_shutdown(struct tls_stream *s);

/**
 * The negotiated ALPN protocol ("dot", "h2", ...) owned by the context, or
 * NULL before the handshake completes or when none was negotiated.
 */
const char *tls_stream_alpn(const struct tls_stream *s);

/** True once the handshake completed. */
bool tls_stream_ready(const struct tls_stream *s);

/** True once the handshake completed by resuming a session (ticket or session ID). */
bool tls_stream_resumed(const struct tls_stream *s);

/** "TLSv1.2" or "TLSv1.3" once the handshake completed, else NULL. Static string. */
const char *tls_stream_version(const struct tls_stream *s);

/**
 * True when the handshake failed because the peer's certificate did not
 * verify (expired, unknown issuer, another name...): a client's view of
 * "the server is up, but not for this name". False otherwise.
 */
bool tls_stream_cert_failed(const struct tls_stream *s);

/**
 * Detail of the last error for the log, with OpenSSL's reason text
 * ("" when there was none). Owned by the stream, valid until the next call
 * on it or tls_stream_free().
 */
const char *tls_stream_errstr(const struct tls_stream *s);

/**
 * Frees the stream and drops its context reference. Sends nothing: call
 * tls_stream_shutdown() first for a clean close. Not from a callback.
 * NULL is a no-op.
 */
void tls_stream_free(struct tls_stream *s);
