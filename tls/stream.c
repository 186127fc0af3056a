/* tls/stream.c - a TLS connection over two memory BIOs: ciphertext in
 * through tls_stream_feed(), out through io->send; plaintext out through
 * io->recv, in through tls_stream_write().
 */
#include "tls/stream.h"
#include "tls/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/*
 * A record carries at most 2^14 bytes of plaintext (RFC 8446 section 5.1,
 * RFC 5246 section 6.2.1): the read buffer size, and the unit in which
 * large writes are encrypted and handed to send.
 */
#define TLS_RECORD_PLAIN_MAX 16384

/* The plaintext read buffer of the thread's feeds: 16 KiB on the stack
 * of every feed (every DoT and DoH read) cost a page probe per 4 KiB
 * with -fstack-clash-protection. A feed nested in another stream's recv
 * callback on the same thread finds it busy and takes one from the heap. */
static _Thread_local uint8_t tl_plain[TLS_RECORD_PLAIN_MAX];
static _Thread_local bool tl_plain_busy;

/* Room for a summary plus OpenSSL's reasons; this only ever goes to a log line. */
#define TLS_ERRSTR_MAX 256

/* The first allocation of the pre-handshake write queue; it doubles from there. */
#define TLS_QUEUE_MIN 4096u

struct tls_stream {
	SSL *ssl;
	BIO *rbio;           /* ciphertext from the peer; owned by ssl */
	BIO *wbio;           /* ciphertext to the peer; owned by ssl */
	struct tls_ctx *ctx; /* one reference */
	struct tls_stream_io io;
	char *peer; /* client: the server name, key of the ctx's session memory */

	/* Plaintext written before the handshake completed. */
	uint8_t *queue;
	size_t queue_len, queue_cap;

	int err;      /* sticky, 0 while the stream works */
	bool feeding; /* inside tls_stream_feed(): nested feeds only add input */
	bool in_send; /* inside io.send, which holds a pointer into wbio */
	bool handshaken;
	bool shut; /* close_notify sent, or shutdown asked before the handshake */
	char errstr[TLS_ERRSTR_MAX];
};

/* Records the first error and its detail; later errors keep the first. */
static int stream_fail(struct tls_stream *s, int rc, const char *what)
{
	if (s->err != 0) {
		ERR_clear_error();
		return s->err;
	}
	s->err = rc;
	snprintf(s->errstr, sizeof(s->errstr), "%s", what);
	tls__err_append(s->errstr, sizeof(s->errstr));
	/* A failed verification says "certificate verify failed"; this says why. */
	long v = SSL_get_verify_result(s->ssl);
	if (rc == -EPROTO && !s->handshaken && v != X509_V_OK) {
		size_t used = strlen(s->errstr);
		snprintf(s->errstr + used, sizeof(s->errstr) - used, ": %s",
		         X509_verify_cert_error_string(v));
	}
	return rc;
}

/*
 * Hands everything in wbio to send in one call, without copying: send gets
 * a pointer into the BIO's buffer, which is why send may not call back
 * into the stream (a write could grow and move that buffer).
 */
static int drain(struct tls_stream *s)
{
	char *p;
	long n = BIO_get_mem_data(s->wbio, &p);

	if (n <= 0)
		return 0;
	s->in_send = true;
	int rc = s->io.send(s->io.arg, (const uint8_t *)p, (size_t)n);
	s->in_send = false;
	(void)BIO_reset(s->wbio);
	if (rc < 0) {
		char what[64];
		snprintf(what, sizeof(what), "send: %s", strerror(-rc));
		return stream_fail(s, rc, what);
	}
	return 0;
}

/* Maps the result r of an SSL call to 0 (wait for more input) or an error. */
static int ssl_status(struct tls_stream *s, int r, const char *what)
{
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		/* rbio is empty (its EOF return is -1 = retry); wbio never refuses. */
		ERR_clear_error();
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		/*
		 * The peer's close_notify. Answer with ours unless it is already
		 * out (RFC 5246 section 7.2.1 asks for it; TLS 1.3 only closes
		 * the peer's direction, but we have nothing more to say either).
		 */
		if (!s->shut) {
			s->shut = true;
			SSL_shutdown(s->ssl);
		}
		ERR_clear_error();
		return stream_fail(s, -ECONNRESET, "peer sent close_notify");
	default:
		return stream_fail(s, -EPROTO, what);
	}
}

/*
 * Encrypts one record at a time and drains after each, so wbio never
 * holds more than a record however large the write.
 */
static int write_records(struct tls_stream *s, const uint8_t *p, size_t n)
{
	while (n > 0) {
		int chunk = n > TLS_RECORD_PLAIN_MAX ? TLS_RECORD_PLAIN_MAX : (int)n;
		ERR_clear_error();
		int r = SSL_write(s->ssl, p, chunk);
		/* Without partial writes and with a memory wbio, anything but chunk is fatal. */
		if (r != chunk)
			return stream_fail(s, -EPROTO, "TLS write failed");
		p += chunk;
		n -= (size_t)chunk;
		int rc = drain(s);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void queue_drop(struct tls_stream *s)
{
	free(s->queue);
	s->queue = NULL;
	s->queue_len = s->queue_cap = 0;
}

static int queue_add(struct tls_stream *s, const uint8_t *p, size_t n)
{
	if (n > TLS_STREAM_QUEUE_MAX - s->queue_len)
		return -ENOBUFS;
	if (s->queue_len + n > s->queue_cap) {
		size_t cap = s->queue_cap ? s->queue_cap : TLS_QUEUE_MIN;
		while (cap < s->queue_len + n)
			cap *= 2;
		uint8_t *q = realloc(s->queue, cap);
		if (q == NULL)
			return -ENOMEM;
		s->queue = q;
		s->queue_cap = cap;
	}
	memcpy(s->queue + s->queue_len, p, n);
	s->queue_len += n;
	return 0;
}

/* Hands every plaintext byte SSL_read has to io.recv. Returns 1 when the
 * callback failed the stream (s->err), else what ssl_status says of the
 * read that found nothing more. */
static int read_plain(struct tls_stream *s)
{
	bool own = !tl_plain_busy;
	uint8_t *buf = own ? tl_plain : malloc(TLS_RECORD_PLAIN_MAX);
	int rc;

	if (buf == NULL)
		return stream_fail(s, -ENOMEM, "read buffer");
	tl_plain_busy = true;
	for (;;) {
		ERR_clear_error();
		int r = SSL_read(s->ssl, buf, TLS_RECORD_PLAIN_MAX);
		if (r <= 0) {
			rc = ssl_status(s, r, "TLS read failed");
			break;
		}
		s->io.recv(s->io.arg, buf, (size_t)r);
		/* The callback's writes may have failed the stream. */
		if (s->err != 0) {
			rc = 1;
			break;
		}
	}
	if (own)
		tl_plain_busy = false;
	else
		free(buf);
	return rc;
}

/* Runs the handshake, then reads records until the input runs out. */
static int pump(struct tls_stream *s)
{
	int rc = 0;

	if (!s->handshaken) {
		ERR_clear_error();
		int r = SSL_do_handshake(s->ssl);
		if (r != 1) {
			rc = ssl_status(s, r, "TLS handshake failed");
			/* The next flight, or the fatal alert that explains the failure. */
			int drc = drain(s);
			return rc < 0 ? rc : drc;
		}
		s->handshaken = true;
		/* Our last flight (and a TLS 1.3 server's tickets) before queued data. */
		rc = drain(s);
		if (rc == 0 && s->queue_len > 0) {
			rc = write_records(s, s->queue, s->queue_len);
			queue_drop(s);
		}
		if (rc < 0)
			return rc;
		if (s->io.ready != NULL)
			s->io.ready(s->io.arg);
		if (s->err != 0)
			return s->err;
	}

	rc = read_plain(s);
	if (rc > 0)
		return s->err;
	/* Post-handshake output: close_notify reply, key update, alerts. */
	int drc = drain(s);
	return rc < 0 ? rc : drc;
}

int tls_stream_feed(struct tls_stream *s, const uint8_t *cipher, size_t n)
{
	if (s->in_send)
		return -EBUSY;
	if (s->err != 0)
		return s->err;
	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;
		if (BIO_write(s->rbio, cipher, chunk) != chunk)
			return stream_fail(s, -ENOMEM, "input buffer");
		cipher += chunk;
		n -= (size_t)chunk;
	}
	/* Nested in recv or ready: the outer call's read loop will get to it. */
	if (s->feeding)
		return 0;
	s->feeding = true;
	int rc = pump(s);
	s->feeding = false;
	return rc;
}

int tls_stream_write(struct tls_stream *s, const uint8_t *plain, size_t n)
{
	if (s->in_send)
		return -EBUSY;
	if (s->err != 0)
		return s->err;
	if (s->shut)
		return -EPIPE;
	if (n == 0)
		return 0;
	if (!s->handshaken)
		return queue_add(s, plain, n);
	return write_records(s, plain, n);
}

int tls_stream_shutdown(struct tls_stream *s)
{
	if (s->in_send)
		return -EBUSY;
	if (s->shut)
		return 0;
	s->shut = true;
	queue_drop(s);
	if (!s->handshaken || s->err != 0)
		return 0;
	ERR_clear_error();
	/* Returns 0 (ours sent, the peer's to come) or 1; it cannot block on memory BIOs. */
	SSL_shutdown(s->ssl);
	ERR_clear_error();
	return drain(s);
}

const char *tls_stream_alpn(const struct tls_stream *s)
{
	const unsigned char *p = NULL;
	unsigned n = 0;

	if (!s->handshaken)
		return NULL;
	SSL_get0_alpn_selected(s->ssl, &p, &n);
	return tls__ctx_alpn_name(s->ctx, p, n);
}

bool tls_stream_ready(const struct tls_stream *s)
{
	return s->handshaken;
}

bool tls_stream_resumed(const struct tls_stream *s)
{
	return s->handshaken && SSL_session_reused(s->ssl) == 1;
}

bool tls_stream_cert_failed(const struct tls_stream *s)
{
	return s->err != 0 && !s->handshaken && SSL_get_verify_result(s->ssl) != X509_V_OK;
}

const char *tls_stream_version(const struct tls_stream *s)
{
	return s->handshaken ? SSL_get_version(s->ssl) : NULL;
}

const char *tls_stream_errstr(const struct tls_stream *s)
{
	return s->errstr;
}

void tls_stream_free(struct tls_stream *s)
{
	if (s == NULL)
		return;
	/*
	 * OpenSSL forgets the session of a connection freed without having
	 * sent close_notify, which TLS 1.0 asked for. Since TLS 1.1 (RFC 5246
	 * section 7.2.1) a connection closed without it may still be resumed,
	 * and DoT clients routinely just drop TCP. Fatal errors do invalidate
	 * the session (section 7.2.2), but OpenSSL does that when the alert is
	 * sent or received, not here.
	 */
	SSL_set_shutdown(s->ssl, SSL_get_shutdown(s->ssl) | SSL_SENT_SHUTDOWN);
	SSL_free(s->ssl); /* and both BIOs; before peer, which the SSL points to */
	tls_ctx_unref(s->ctx);
	free(s->peer);
	free(s->queue);
	free(s);
}

static struct tls_stream *stream_new(struct tls_ctx *ctx, const struct tls_stream_io *io,
                                     bool client)
{
	if (io == NULL || io->send == NULL || io->recv == NULL ||
	    tls_ctx_is_client(ctx) != client) {
		errno = EINVAL;
		return NULL;
	}
	struct tls_stream *s = calloc(1, sizeof(*s));
	BIO *r = BIO_new(BIO_s_mem());
	BIO *w = BIO_new(BIO_s_mem());
	if (s != NULL)
		s->ssl = SSL_new(tls__ctx_ssl(ctx));
	if (s == NULL || s->ssl == NULL || r == NULL || w == NULL) {
		BIO_free(r);
		BIO_free(w);
		if (s != NULL)
			SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		errno = ENOMEM;
		return NULL;
	}
	/* An empty rbio means "no more input yet", never end of stream. */
	BIO_set_mem_eof_return(r, -1);
	SSL_set_bio(s->ssl, r, w);
	s->rbio = r;
	s->wbio = w;
	tls_ctx_ref(ctx);
	s->ctx = ctx;
	s->io = *io;
	return s;
}

struct tls_stream *tls_stream_new(struct tls_ctx *ctx, const struct tls_stream_io *io)
{
	struct tls_stream *s = stream_new(ctx, io, false);

	if (s != NULL)
		SSL_set_accept_state(s->ssl);
	return s;
}

static bool is_ip_literal(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

struct tls_stream *tls_stream_new_client(struct tls_ctx *ctx, const struct tls_stream_io *io,
                                         const char *server_name)
{
	struct tls_stream *s = stream_new(ctx, io, true);

	if (s == NULL)
		return NULL;
	SSL_set_connect_state(s->ssl);
	if (server_name == NULL)
		return s;

	s->peer = strdup(server_name);
	bool ok = s->peer != NULL;
	if (ok && is_ip_literal(server_name)) {
		/* RFC 6066 section 3: no IP literals in SNI; check the SAN iPAddress instead. */
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), server_name) == 1;
	} else if (ok) {
		ok = SSL_set_tlsext_host_name(s->ssl, server_name) == 1 &&
		     SSL_set1_host(s->ssl, server_name) == 1;
	}
	if (!ok) {
		/* With the copy made, only a malformed name can have failed. */
		int e = s->peer != NULL ? EINVAL : ENOMEM;
		tls_stream_free(s);
		ERR_clear_error();
		errno = e;
		return NULL;
	}
	SSL_set_app_data(s->ssl, s->peer);
	SSL_SESSION *sess = tls__ctx_session_get(ctx, s->peer);
	if (sess != NULL) {
		SSL_set_session(s->ssl, sess);
		SSL_SESSION_free(sess);
	}
	return s;
}
