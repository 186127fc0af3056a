/* tls/ctx.c - SSL_CTX construction for servers and clients, ALPN
 * selection, rotating session ticket keys, client session memory.
 */
#include "tls/ctx.h"
#include "tls/internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * TLS 1.2 suites: ECDHE only (forward secrecy) and AEAD only, as RFC 9325
 * section 4.2 recommends; AES-128 first because it is as safe in practice
 * and cheaper. TLS 1.3 suites are all AEAD already, so OpenSSL's default
 * list stays.
 */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Key exchange groups, preferred first (RFC 9325 section 4.2.1). */
#define TLS_GROUPS "X25519:P-256"

/*
 * Server session-ID cache entries, for TLS 1.2 clients that do not do
 * tickets (everyone else resumes statelessly). A cached session costs
 * well under 1 KiB, so this bounds the cache near a few MiB; OpenSSL's
 * default (20480) is sized for web servers with far more clients.
 */
#define TLS_SESS_CACHE_SIZE 8192

/*
 * ALPN limits: RFC 7301 section 3.1 allows names of 1..255 bytes. Our
 * lists are "dot" and "h2", so a short fixed bound keeps the context
 * free of extra allocations.
 */
#define TLS_ALPN_PROTOS_MAX 8
#define TLS_ALPN_NAME_MAX 255
#define TLS_ALPN_LIST_MAX 512

/* Session ID context: sessions cached by this program resume only here. */
#define TLS_SID_CTX "apexd"

/* Ticket keys: RFC 5077 section 4 layout, key name plus AES-256 and HMAC-SHA256 keys. */
#define TICKET_NAME_LEN 16
#define TICKET_KEY_LEN 32

struct ticket_key {
	unsigned char name[TICKET_NAME_LEN];
	unsigned char aes[TICKET_KEY_LEN];
	unsigned char hmac[TICKET_KEY_LEN];
};

/*
 * The ticket keys of a server context, shared (with their lock) between
 * a context and its reloaded successors so that tickets survive a reload.
 * Rotation is lazy: the key callback ages the ring whenever it runs, so
 * no timer is needed and an idle server does no work.
 */
struct ticket_ring {
	atomic_uint refs;
	pthread_mutex_t lock;
	struct ticket_key cur;  /* encrypts new tickets, decrypts */
	struct ticket_key prev; /* decrypts only, its tickets are renewed */
	bool have_prev;
	uint64_t rotated; /* CLOCK_MONOTONIC seconds of the last rotation */
	unsigned period;
};

struct tls_ctx {
	atomic_uint refs;
	SSL_CTX *ssl;
	bool client;
	struct ticket_ring *tickets; /* server only */

	/* ALPN names (pointing into alpn_buf) and their RFC 7301 wire form. */
	unsigned alpn_n;
	const char *alpn_name[TLS_ALPN_PROTOS_MAX];
	char alpn_buf[TLS_ALPN_LIST_MAX + 1];
	unsigned char alpn_wire[TLS_ALPN_LIST_MAX + 1];
	unsigned alpn_wire_len;

	/* Server only: the OCSP response stapled to every handshake that
	 * asks for one (RFC 6066 8), DER; NULL when none is configured. */
	unsigned char *ocsp;
	size_t ocsp_len;

	/* Client only: the last session received, and from whom. */
	pthread_mutex_t sess_lock;
	SSL_SESSION *sess;
	char *sess_peer;
};

/* Errors */

void tls__err_append(char *buf, size_t len)
{
	unsigned long e, last = 0;
	const char *data;
	int flags;

	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		size_t used = buf != NULL ? strnlen(buf, len) : len;
		/* Wrappers often repeat the reason of the error they wrap. */
		if (used + 1 >= len || e == last)
			continue;
		last = e;
		const char *reason = ERR_reason_error_string(e);
		char code[32];
		if (reason == NULL) {
			snprintf(code, sizeof(code), "error %#lx", e);
			reason = code;
		}
		bool detail = (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0';
		snprintf(buf + used, len - used, ": %s%s%s%s", reason, detail ? " (" : "",
		         detail ? data : "", detail ? ")" : "");
	}
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int rc,
                                                      const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
		tls__err_append(err, errlen);
	} else {
		ERR_clear_error();
	}
	return rc;
}

/* Ticket keys */

static uint64_t now_secs(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

static int ring_rotate_locked(struct ticket_ring *r, uint64_t now)
{
	struct ticket_key k;

	if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
		return -EIO;
	r->prev = r->cur;
	r->have_prev = true;
	r->cur = k;
	r->rotated = now;
	OPENSSL_cleanse(&k, sizeof(k));
	return 0;
}

static void ring_age_locked(struct ticket_ring *r, uint64_t now)
{
	uint64_t age = now - r->rotated;

	if (age < r->period)
		return;
	/*
	 * If the random generator fails, keep the old keys: tickets a bit past
	 * their rotation are better than a server that cannot resume at all.
	 */
	if (ring_rotate_locked(r, now) < 0)
		return;
	/* Idle for two periods or more: the old current key is too old to decrypt, too. */
	if (age >= 2 * (uint64_t)r->period) {
		OPENSSL_cleanse(&r->prev, sizeof(r->prev));
		r->have_prev = false;
	}
}

static int ring_new(struct ticket_ring **out, unsigned period)
{
	struct ticket_ring *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return -ENOMEM;
	if (RAND_bytes((unsigned char *)&r->cur, sizeof(r->cur)) != 1) {
		free(r);
		return -EIO;
	}
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	r->period = period;
	r->rotated = now_secs();
	*out = r;
	return 0;
}

static void ring_unref(struct ticket_ring *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&r->lock);
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/*
 * OpenSSL's key callback for ticket encryption (enc = 1) and decryption.
 * Returns 1 to use the key, 2 to accept a ticket and issue a fresh one
 * under the current key, 0 to issue no ticket / do a full handshake.
 * Decryption falls back to the previous key, so a ticket stays valid for
 * one to two rotation periods, and one decrypted that way is renewed.
 */
static int ticket_key_cb(SSL *ssl, unsigned char name[TICKET_NAME_LEN], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	static char digest[] = "SHA256";
	const struct tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	struct ticket_ring *r = c->tickets;
	struct ticket_key k;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	ring_age_locked(r, now_secs());
	if (enc || memcmp(name, r->cur.name, TICKET_NAME_LEN) == 0) {
		k = r->cur;
		rc = 1;
	} else if (r->have_prev && memcmp(name, r->prev.name, TICKET_NAME_LEN) == 0) {
		k = r->prev;
		rc = 2;
	}
	pthread_mutex_unlock(&r->lock);
	if (rc == 0)
		return 0; /* a key we never had or already dropped */
	/*
	 * TLS 1.3 clients use a ticket once (RFC 8446 appendix C.4), so every
	 * resumption must bring a replacement; OpenSSL sends one only when
	 * asked to renew, as its built-in key callback does for TLS 1.3.
	 */
	if (!enc && SSL_version(ssl) == TLS1_3_VERSION)
		rc = 2;

	if (enc) {
		memcpy(name, k.name, TICKET_NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
			rc = 0;
	}
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, k.hmac, sizeof(k.hmac)),
	        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	        OSSL_PARAM_construct_end(),
	};
	if (rc != 0 && (EVP_MAC_CTX_set_params(hctx, params) != 1 ||
	                EVP_CipherInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv, enc) != 1))
		rc = 0;
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int tls_ctx_rotate_tickets(struct tls_ctx *c)
{
	if (c->tickets == NULL)
		return -EINVAL;
	pthread_mutex_lock(&c->tickets->lock);
	int rc = ring_rotate_locked(c->tickets, now_secs());
	pthread_mutex_unlock(&c->tickets->lock);
	return rc;
}

/* ALPN */

static int alpn_parse(struct tls_ctx *c, const char *csv, char *err, size_t errlen)
{
	size_t len = csv != NULL ? strlen(csv) : 0;

	if (len == 0)
		return 0;
	if (len > TLS_ALPN_LIST_MAX)
		return fail(err, errlen, -EINVAL, "alpn: list longer than %d bytes",
		            TLS_ALPN_LIST_MAX);
	memcpy(c->alpn_buf, csv, len + 1);
	for (char *p = c->alpn_buf;;) {
		char *comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		size_t n = strlen(p);
		if (n == 0 || n > TLS_ALPN_NAME_MAX)
			return fail(err, errlen, -EINVAL,
			            "alpn: \"%s\": protocol names are 1 to %d bytes", csv,
			            TLS_ALPN_NAME_MAX);
		if (c->alpn_n == TLS_ALPN_PROTOS_MAX)
			return fail(err, errlen, -EINVAL, "alpn: \"%s\": more than %d protocols",
			            csv, TLS_ALPN_PROTOS_MAX);
		c->alpn_name[c->alpn_n++] = p;
		c->alpn_wire[c->alpn_wire_len++] = (unsigned char)n;
		memcpy(c->alpn_wire + c->alpn_wire_len, p, n);
		c->alpn_wire_len += (unsigned)n;
		if (comma == NULL)
			return 0;
		p = comma + 1;
	}
}

const char *tls__ctx_alpn_name(const struct tls_ctx *c, const unsigned char *p, unsigned n)
{
	for (unsigned i = 0; i < c->alpn_n; i++)
		if (strlen(c->alpn_name[i]) == n && memcmp(c->alpn_name[i], p, n) == 0)
			return c->alpn_name[i];
	return NULL;
}

/*
 * Server side: the first of our protocols that the client offers, i.e.
 * server preference. OpenSSL has already checked that the client's list
 * is well formed, but walking it stays bounded anyway.
 */
static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned inlen, void *arg)
{
	const struct tls_ctx *c = arg;

	(void)ssl;
	for (unsigned i = 0; i < c->alpn_n; i++) {
		size_t n = strlen(c->alpn_name[i]);
		for (unsigned off = 0; off < inlen && in[off] <= inlen - off - 1;
		     off += 1u + in[off]) {
			if (in[off] == n && memcmp(in + off + 1, c->alpn_name[i], n) == 0) {
				*out = (const unsigned char *)c->alpn_name[i];
				*outlen = (unsigned char)n;
				return SSL_TLSEXT_ERR_OK;
			}
		}
	}
	/* OpenSSL turns this into the no_application_protocol alert RFC 7301 asks for. */
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* Client session memory */

static int client_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	const char *peer = SSL_get_app_data(ssl);

	if (peer == NULL)
		return 0; /* nobody to resume with: OpenSSL drops its reference */
	char *copy = strdup(peer);
	if (copy == NULL)
		return 0;
	pthread_mutex_lock(&c->sess_lock);
	SSL_SESSION *old = c->sess;
	char *old_peer = c->sess_peer;
	c->sess = sess;
	c->sess_peer = copy;
	pthread_mutex_unlock(&c->sess_lock);
	SSL_SESSION_free(old);
	free(old_peer);
	return 1; /* we keep OpenSSL's reference */
}

SSL_SESSION *tls__ctx_session_get(struct tls_ctx *c, const char *peer)
{
	SSL_SESSION *s = NULL;

	if (peer == NULL)
		return NULL;
	pthread_mutex_lock(&c->sess_lock);
	if (c->sess != NULL && strcmp(c->sess_peer, peer) == 0 &&
	    SSL_SESSION_is_resumable(c->sess)) {
		s = c->sess;
		if (SSL_SESSION_get_protocol_version(s) == TLS1_3_VERSION)
			c->sess = NULL; /* single use: our reference moves to the caller */
		else if (SSL_SESSION_up_ref(s) != 1)
			s = NULL;
	}
	pthread_mutex_unlock(&c->sess_lock);
	return s;
}

/* Contexts */

SSL_CTX *tls__ctx_ssl(const struct tls_ctx *c)
{
	return c->ssl;
}

bool tls_ctx_is_client(const struct tls_ctx *c)
{
	return c->client;
}

void tls_ctx_ref(struct tls_ctx *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void tls_ctx_unref(struct tls_ctx *c)
{
	/* Release/acquire so the freeing thread sees every other user's writes. */
	if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
		return;
	SSL_CTX_free(c->ssl);
	free(c->ocsp);
	ring_unref(c->tickets);
	SSL_SESSION_free(c->sess);
	free(c->sess_peer);
	pthread_mutex_destroy(&c->sess_lock);
	free(c);
}

static int proto_version(int v, int dflt, int *out)
{
	if (v == 0)
		v = dflt;
	if (v == TLS_VERSION_12)
		*out = TLS1_2_VERSION;
	else if (v == TLS_VERSION_13)
		*out = TLS1_3_VERSION;
	else
		return -EINVAL;
	return 0;
}

/* What servers and clients share: versions, suites, groups, options, ALPN. */
static int ctx_alloc(struct tls_ctx **out, bool client, int min_v, int max_v, const char *alpn,
                     char *err, size_t errlen)
{
	int min, max;

	ERR_clear_error();
	if (proto_version(min_v, TLS_VERSION_12, &min) < 0 ||
	    proto_version(max_v, TLS_VERSION_13, &max) < 0 || min > max)
		return fail(err, errlen, -EINVAL,
		            "min_version %d / max_version %d: versions are 12 or 13, min <= max",
		            min_v, max_v);

	struct tls_ctx *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return fail(err, errlen, -ENOMEM, "out of memory");
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->sess_lock, NULL);
	c->client = client;
	c->ssl = SSL_CTX_new(client ? TLS_client_method() : TLS_server_method());
	if (c->ssl == NULL) {
		free(c);
		return fail(err, errlen, -ENOMEM, "SSL_CTX_new");
	}
	/* From here on tls_ctx_unref() can clean up. */
	*out = c;

	SSL_CTX *s = c->ssl;
	SSL_CTX_set_app_data(s, c);
	/*
	 * Renegotiation is off in both directions (OpenSSL 3 refuses a client's
	 * by default; NO_RENEGOTIATION covers ours and the peer's HelloRequest):
	 * DNS never needs it and it has a history of attacks. Compression is
	 * off against CRIME.
	 * RELEASE_BUFFERS returns the 34 KiB of record buffers of idle
	 * connections, which is most DoT connections most of the time.
	 */
	SSL_CTX_set_options(s, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_min_proto_version(s, min) != 1 ||
	    SSL_CTX_set_max_proto_version(s, max) != 1 ||
	    SSL_CTX_set_cipher_list(s, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set1_groups_list(s, TLS_GROUPS) != 1)
		return fail(err, errlen, -EINVAL, "TLS policy rejected by OpenSSL");
	return alpn_parse(c, alpn, err, errlen);
}

static int no_password_cb(char *buf, int size, int rwflag, void *u)
{
	/* Never prompt on a terminal from a daemon: encrypted keys just fail. */
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

/* A BIO over a file (keeping fopen's errno for the caller) or over PEM text. */
static int open_pem(BIO **out, const char *path, const char *pem, const char *what, char *err,
                    size_t errlen)
{
	if (path != NULL) {
		FILE *f = fopen(path, "r");
		if (f == NULL) {
			int e = errno;
			return fail(err, errlen, -e, "%s %s: %s", what, path, strerror(e));
		}
		*out = BIO_new_fp(f, BIO_CLOSE);
		if (*out == NULL)
			fclose(f);
	} else if (pem != NULL) {
		*out = BIO_new_mem_buf(pem, -1);
	} else {
		return fail(err, errlen, -EINVAL, "no %s configured", what);
	}
	return *out != NULL ? 0 : fail(err, errlen, -ENOMEM, "%s: BIO", what);
}

static void time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	if (b != NULL && ASN1_TIME_print(b, t) == 1)
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/*
 * Refuses a leaf outside its validity period: every client would reject
 * it, and on a reload keeping the old context is the better outcome.
 */
static int check_validity(X509 *x, const char *name, char *err, size_t errlen)
{
	char when[64];

	if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
		time_str(X509_get0_notBefore(x), when, sizeof(when));
		return fail(err, errlen, -EINVAL, "certificate %s is not valid before %s", name,
		            when);
	}
	if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
		time_str(X509_get0_notAfter(x), when, sizeof(when));
		return fail(err, errlen, -EINVAL, "certificate %s expired at %s", name, when);
	}
	return 0;
}

/* Leaf then chain, as SSL_CTX_use_certificate_chain_file() does, from any BIO. */
static int load_chain(SSL_CTX *s, BIO *b, const char *name, char *err, size_t errlen)
{
	X509 *leaf = PEM_read_bio_X509_AUX(b, NULL, no_password_cb, NULL);
	if (leaf == NULL)
		return fail(err, errlen, -EINVAL, "certificate %s: no PEM certificate", name);
	int rc = 0;
	if (SSL_CTX_use_certificate(s, leaf) != 1)
		rc = fail(err, errlen, -EINVAL, "certificate %s: rejected", name);
	else
		rc = check_validity(leaf, name, err, errlen);
	X509_free(leaf);
	if (rc < 0)
		return rc;

	X509 *ca;
	while ((ca = PEM_read_bio_X509(b, NULL, no_password_cb, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(s, ca) != 1) {
			X509_free(ca);
			return fail(err, errlen, -EINVAL, "certificate %s: chain rejected", name);
		}
	}
	/* The loop ends on "no start line" at the end of the text; anything else is damage. */
	unsigned long e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
		ERR_clear_error();
	else if (e != 0)
		return fail(err, errlen, -EINVAL, "certificate %s: bad chain certificate", name);
	return 0;
}

static int load_key(SSL_CTX *s, BIO *b, const char *name, const char *cert, char *err,
                    size_t errlen)
{
	EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password_cb, NULL);
	if (k == NULL)
		return fail(err, errlen, -EINVAL, "private key %s: no unencrypted PEM private key",
		            name);
	/* SSL_CTX_use_PrivateKey() already compares with the certificate loaded before. */
	int ok = SSL_CTX_use_PrivateKey(s, k) == 1 && SSL_CTX_check_private_key(s) == 1;
	EVP_PKEY_free(k);
	if (!ok)
		return fail(err, errlen, -EINVAL, "private key %s does not match certificate %s",
		            name, cert);
	return 0;
}

static int load_cert_and_key(SSL_CTX *s, const struct tls_ctx_opts *o, char *err, size_t errlen)
{
	const char *cname = o->cert_file != NULL ? o->cert_file : "(in memory)";
	const char *kname = o->key_file != NULL ? o->key_file : "(in memory)";
	BIO *b;

	int rc = open_pem(&b, o->cert_file, o->cert_pem, "certificate", err, errlen);
	if (rc < 0)
		return rc;
	rc = load_chain(s, b, cname, err, errlen);
	BIO_free(b);
	if (rc < 0)
		return rc;

	rc = open_pem(&b, o->key_file, o->key_pem, "private key", err, errlen);
	if (rc < 0)
		return rc;
	rc = load_key(s, b, kname, cname, err, errlen);
	BIO_free(b);
	return rc;
}

/* Server side of status_request: staple the configured response. OpenSSL
 * frees what it is handed, so each handshake gets its own copy. */
static int ocsp_status_cb(SSL *ssl, void *arg)
{
	const struct tls_ctx *c = arg;

	if (c->ocsp == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	unsigned char *copy = OPENSSL_malloc(c->ocsp_len);
	if (copy == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	memcpy(copy, c->ocsp, c->ocsp_len);
	if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)c->ocsp_len) != 1) {
		OPENSSL_free(copy);
		return SSL_TLSEXT_ERR_NOACK;
	}
	return SSL_TLSEXT_ERR_OK;
}

/*
 * Reads a DER OCSP response (as `openssl ocsp -respout` writes it) and
 * checks that it is one a client will take: status successful, a basic
 * response whose single answer is about our leaf certificate, "good",
 * and not past its nextUpdate. A stale or wrong staple makes strict
 * clients fail the handshake, so it stops loading instead.
 */
static int load_ocsp(struct tls_ctx *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		int e = errno;
		return fail(err, errlen, -e, "OCSP response %s: %s", path, strerror(e));
	}
	unsigned char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	const unsigned char *p = buf;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)n);
	OCSP_BASICRESP *basic = NULL;
	OCSP_CERTID *id = NULL;
	int rc = -EINVAL;

	if (resp == NULL || (size_t)(p - buf) != n) {
		fail(err, errlen, -EINVAL, "OCSP response %s: not a DER OCSP response", path);
		goto out;
	}
	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
	    (basic = OCSP_response_get1_basic(resp)) == NULL) {
		fail(err, errlen, -EINVAL, "OCSP response %s: responder status is not successful",
		     path);
		goto out;
	}
	X509 *leaf = SSL_CTX_get0_certificate(c->ssl);
	X509 *issuer = NULL;
	STACK_OF(X509) *chain = NULL;
	SSL_CTX_get0_chain_certs(c->ssl, &chain);
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);
		if (X509_check_issued(x, leaf) == X509_V_OK) {
			issuer = x;
			break;
		}
	}
	if (leaf == NULL || issuer == NULL || (id = OCSP_cert_to_id(NULL, leaf, issuer)) == NULL) {
		fail(err, errlen, -EINVAL,
		     "OCSP response %s: the certificate file must hold the issuer after the leaf",
		     path);
		goto out;
	}
	int status, reason;
	ASN1_GENERALIZEDTIME *thisupd, *nextupd;
	if (OCSP_resp_find_status(basic, id, &status, &reason, NULL, &thisupd, &nextupd) != 1) {
		fail(err, errlen, -EINVAL, "OCSP response %s: not about this certificate", path);
		goto out;
	}
	if (status != V_OCSP_CERTSTATUS_GOOD) {
		fail(err, errlen, -EINVAL, "OCSP response %s: the certificate is %s", path,
		     OCSP_cert_status_str(status));
		goto out;
	}
	/* Five minutes of clock skew, as OpenSSL's own checks allow. */
	if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1) {
		fail(err, errlen, -EINVAL, "OCSP response %s: outside its validity period", path);
		goto out;
	}
	c->ocsp = malloc(n);
	if (c->ocsp == NULL) {
		rc = fail(err, errlen, -ENOMEM, "OCSP response %s", path);
		goto out;
	}
	memcpy(c->ocsp, buf, n);
	c->ocsp_len = n;
	SSL_CTX_set_tlsext_status_cb(c->ssl, ocsp_status_cb);
	SSL_CTX_set_tlsext_status_arg(c->ssl, c);
	rc = 0;
out:
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(basic);
	OCSP_RESPONSE_free(resp);
	return rc;
}

int tls_ctx_new(struct tls_ctx **out, const struct tls_ctx_opts *o, char *err, size_t errlen)
{
	struct tls_ctx *c = NULL;

	if (o->tickets_from != NULL && o->tickets_from->tickets == NULL)
		return fail(err, errlen, -EINVAL, "tickets_from is not a server context");
	int rc = ctx_alloc(&c, false, o->min_version, o->max_version, o->alpn, err, errlen);
	if (rc < 0)
		goto fail;

	SSL_CTX *s = c->ssl;
	/*
	 * Our order, not the client's; ChaCha20 still goes first for clients
	 * that put it first, as they do when they lack AES hardware.
	 */
	SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);

	if (o->tickets_from != NULL) {
		c->tickets = o->tickets_from->tickets;
		atomic_fetch_add(&c->tickets->refs, 1);
	} else {
		unsigned period =
		        o->ticket_rotate_secs ? o->ticket_rotate_secs : TLS_TICKET_ROTATE_SECS;
		rc = ring_new(&c->tickets, period);
		if (rc < 0) {
			fail(err, errlen, rc, "ticket keys");
			goto fail;
		}
	}
	/* The session lifetime is also the ticket lifetime hint: one rotation period. */
	SSL_CTX_set_timeout(s, (long)c->tickets->period);
	if (SSL_CTX_set_tlsext_ticket_key_evp_cb(s, ticket_key_cb) != 1) {
		rc = fail(err, errlen, -EINVAL, "ticket key callback");
		goto fail;
	}
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(s, TLS_SESS_CACHE_SIZE);
	SSL_CTX_set_session_id_context(s, (const unsigned char *)TLS_SID_CTX,
	                               sizeof(TLS_SID_CTX) - 1);

	if (c->alpn_n > 0)
		SSL_CTX_set_alpn_select_cb(s, alpn_select_cb, c);

	rc = load_cert_and_key(s, o, err, errlen);
	if (rc < 0)
		goto fail;
	if (o->ocsp_file != NULL && o->ocsp_file[0] != '\0') {
		rc = load_ocsp(c, o->ocsp_file, err, errlen);
		if (rc < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	tls_ctx_unref(c);
	return rc;
}

int tls_ctx_new_client(struct tls_ctx **out, const struct tls_client_opts *o, char *err,
                       size_t errlen)
{
	struct tls_ctx *c = NULL;

	int rc = ctx_alloc(&c, true, o->min_version, o->max_version, o->alpn, err, errlen);
	if (rc < 0)
		goto fail;

	SSL_CTX *s = c->ssl;
	SSL_CTX_set_verify(s, o->no_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (o->ca_file != NULL) {
		if (access(o->ca_file, R_OK) != 0) {
			int e = errno;
			rc = fail(err, errlen, -e, "CA file %s: %s", o->ca_file, strerror(e));
			goto fail;
		}
		if (SSL_CTX_load_verify_file(s, o->ca_file) != 1) {
			rc = fail(err, errlen, -EINVAL, "CA file %s", o->ca_file);
			goto fail;
		}
	} else if (!o->no_verify && SSL_CTX_set_default_verify_paths(s) != 1) {
		rc = fail(err, errlen, -EINVAL, "system CA store");
		goto fail;
	}
	/* Note the inverted convention: SSL_CTX_set_alpn_protos() returns 0 on success. */
	if (c->alpn_n > 0 && SSL_CTX_set_alpn_protos(s, c->alpn_wire, c->alpn_wire_len) != 0) {
		rc = fail(err, errlen, -ENOMEM, "alpn");
		goto fail;
	}
	if (o->no_resume) {
		/* Nothing kept, nothing offered: a full handshake each time. */
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
		*out = c;
		return 0;
	}
	/* Sessions are kept by client_new_session_cb, not OpenSSL's internal cache. */
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(s, client_new_session_cb);
	*out = c;
	return 0;
fail:
	tls_ctx_unref(c);
	return rc;
}
