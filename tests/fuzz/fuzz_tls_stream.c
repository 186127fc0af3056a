/* tests/fuzz/fuzz_tls_stream.c - arbitrary bytes from a "client" into a
 * server tls_stream: ClientHellos, records, garbage. It must never crash,
 * leak or read out of bounds, whatever arrives; errors are expected.
 *
 * The server needs a certificate: a self-signed P-256 one is made in
 * memory once, so the target runs without files (libFuzzer and the
 * corpus replay alike).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "tls/ctx.h"
#include "tls/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tls_ctx *ctx;

/* NUL-terminated copy of what a memory BIO holds. */
static char *bio_text(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;

	if (s != NULL) {
		memcpy(s, p, (size_t)n);
		s[n] = '\0';
	}
	return s;
}

static struct tls_ctx *make_ctx(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	BIO *cb = BIO_new(BIO_s_mem());
	BIO *kb = BIO_new(BIO_s_mem());
	char *cert = NULL, *key = NULL;
	struct tls_ctx *c = NULL;

	if (k == NULL || x == NULL || cb == NULL || kb == NULL)
		goto out;
	X509_NAME *name = X509_get_subject_name(x);
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
	                               -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 || X509_set_pubkey(x, k) != 1 ||
	    X509_sign(x, k, EVP_sha256()) == 0 || PEM_write_bio_X509(cb, x) != 1 ||
	    PEM_write_bio_PrivateKey(kb, k, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	cert = bio_text(cb);
	key = bio_text(kb);
	struct tls_ctx_opts o = {.cert_pem = cert, .key_pem = key, .alpn = "dot,h2"};
	if (cert == NULL || key == NULL || tls_ctx_new(&c, &o, NULL, 0) != 0)
		c = NULL;
out:
	free(cert);
	free(key);
	BIO_free(cb);
	BIO_free(kb);
	X509_free(x);
	EVP_PKEY_free(k);
	return c;
}

static void free_ctx(void)
{
	tls_ctx_unref(ctx);
}

static int sink_send(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
	return 0;
}

static void sink_recv(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ctx == NULL) {
		ctx = make_ctx();
		if (ctx == NULL)
			abort();
		atexit(free_ctx);
	}
	struct tls_stream_io io = {.send = sink_send, .recv = sink_recv};
	struct tls_stream *s = tls_stream_new(ctx, &io);
	if (s == NULL)
		return 0;
	/*
	 * Two feeds, cut where the first byte says, so that records split
	 * across calls are exercised along with whole ones.
	 */
	size_t cut = size > 0 ? data[0] % size : 0;
	int rc = tls_stream_feed(s, data, cut);
	if (rc == 0)
		rc = tls_stream_feed(s, data + cut, size - cut);
	if (rc == 0) {
		(void)tls_stream_write(s, (const uint8_t *)"x", 1);
		(void)tls_stream_shutdown(s);
	}
	(void)tls_stream_alpn(s);
	(void)tls_stream_errstr(s);
	tls_stream_free(s);
	return 0;
}
