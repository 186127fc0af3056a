/* tests/unit/test_tls_stream.c - tls_ctx and tls_stream, with a client and
 * a server stream wired back to back in memory.
 *
 * Certificates come from tests/data/tls/make-certs.sh, run once into a
 * temporary directory by the group setup; nothing secret is committed.
 */
#include "tests/unit/helpers.h"
#include "tls/ctx.h"
#include "tls/stream.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG (100u * 1024u)

static char certdir[PATH_MAX];
static char ca_pem[PATH_MAX + 32], chain_pem[PATH_MAX + 32], key_pem[PATH_MAX + 32];
static char other_key[PATH_MAX + 32], expired_pem[PATH_MAX + 32];

/* Fixture: certificates */

static int group_setup(void **state)
{
	(void)state;
	const char *data = getenv("APEX_TEST_DATA");
	if (data == NULL)
		data = "tests/data";
	snprintf(certdir, sizeof(certdir), "/tmp/apex-tls-XXXXXX");
	if (mkdtemp(certdir) == NULL)
		return -1;
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof(cmd), "sh '%s/tls/make-certs.sh' '%s'", data, certdir);
	if (system(cmd) != 0)
		return -1;
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", certdir);
	snprintf(chain_pem, sizeof(chain_pem), "%s/fullchain.pem", certdir);
	snprintf(key_pem, sizeof(key_pem), "%s/server.key", certdir);
	snprintf(other_key, sizeof(other_key), "%s/other.key", certdir);
	snprintf(expired_pem, sizeof(expired_pem), "%s/expired.pem", certdir);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct tls_ctx *server_ctx(int min_v, int max_v, const char *alpn)
{
	struct tls_ctx_opts o = {
	        .cert_file = chain_pem,
	        .key_file = key_pem,
	        .min_version = min_v,
	        .max_version = max_v,
	        .alpn = alpn,
	};
	struct tls_ctx *c = NULL;
	char err[256] = "";
	int rc = tls_ctx_new(&c, &o, err, sizeof(err));
	if (rc != 0)
		fail_msg("tls_ctx_new: %d %s", rc, err);
	return c;
}

static struct tls_ctx *client_ctx(int max_v, const char *alpn)
{
	struct tls_client_opts o = {.ca_file = ca_pem, .alpn = alpn, .max_version = max_v};
	struct tls_ctx *c = NULL;
	char err[256] = "";
	int rc = tls_ctx_new_client(&c, &o, err, sizeof(err));
	if (rc != 0)
		fail_msg("tls_ctx_new_client: %d %s", rc, err);
	return c;
}

/* Fixture: two ends wired back to back */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const uint8_t *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

struct end {
	struct tls_stream *s;
	struct buf out; /* ciphertext sent, not yet fed to the other end */
	struct buf got; /* plaintext received */
	int ready;
	int rc;             /* first nonzero result of a feed */
	bool echo;          /* write back what arrives, from inside recv */
	const char *greet;  /* written from inside ready */
	bool write_in_send; /* try to re-enter from send */
	int send_reentry_rc;
};

struct pair {
	struct end c, s;
};

static int end_send(void *arg, const uint8_t *p, size_t n)
{
	struct end *e = arg;

	assert_true(n > 0);
	if (e->write_in_send)
		e->send_reentry_rc = tls_stream_write(e->s, (const uint8_t *)"x", 1);
	buf_add(&e->out, p, n);
	return 0;
}

static void end_recv(void *arg, const uint8_t *p, size_t n)
{
	struct end *e = arg;

	assert_int_equal(e->ready, 1); /* ready comes before any data */
	buf_add(&e->got, p, n);
	if (e->echo)
		assert_int_equal(tls_stream_write(e->s, p, n), 0);
}

static void end_ready(void *arg)
{
	struct end *e = arg;

	e->ready++;
	assert_non_null(tls_stream_version(e->s));
	if (e->greet != NULL)
		assert_int_equal(
		        tls_stream_write(e->s, (const uint8_t *)e->greet, strlen(e->greet)), 0);
}

static void pair_open(struct pair *p, struct tls_ctx *sctx, struct tls_ctx *cctx,
                      const char *server_name)
{
	memset(p, 0, sizeof(*p));
	struct tls_stream_io sio = {end_send, end_recv, end_ready, &p->s};
	struct tls_stream_io cio = {end_send, end_recv, end_ready, &p->c};
	p->s.s = tls_stream_new(sctx, &sio);
	p->c.s = tls_stream_new_client(cctx, &cio, server_name);
	assert_non_null(p->s.s);
	assert_non_null(p->c.s);
}

/* Feeds the ciphertext in w to `to`, step bytes at a time (0: all at once). */
static void feed(struct end *to, struct buf *w, size_t step)
{
	size_t off = 0;
	int rc = 0;

	/* Take the bytes first: feeding may make `to` answer into its own buffer. */
	struct buf in = *w;
	memset(w, 0, sizeof(*w));
	while (off < in.len && rc == 0) {
		size_t n = step != 0 && in.len - off > step ? step : in.len - off;
		rc = tls_stream_feed(to->s, in.p + off, n);
		off += n;
	}
	if (to->rc == 0)
		to->rc = rc;
	free(in.p);
}

static void pump(struct pair *p, size_t step)
{
	for (int i = 0; i < 10000 && (p->c.out.len > 0 || p->s.out.len > 0); i++) {
		if (p->c.out.len > 0)
			feed(&p->s, &p->c.out, step);
		if (p->s.out.len > 0)
			feed(&p->c, &p->s.out, step);
	}
	assert_int_equal(p->c.out.len, 0);
	assert_int_equal(p->s.out.len, 0);
}

/* Client sends its ClientHello; both sides run until nothing moves. */
static void pair_run(struct pair *p, size_t step)
{
	assert_int_equal(tls_stream_feed(p->c.s, NULL, 0), 0);
	pump(p, step);
}

static void pair_close(struct pair *p)
{
	tls_stream_free(p->c.s);
	tls_stream_free(p->s.s);
	free(p->c.out.p);
	free(p->c.got.p);
	free(p->s.out.p);
	free(p->s.got.p);
}

static void assert_established(struct pair *p, const char *version, const char *alpn)
{
	assert_int_equal(p->s.rc, 0);
	assert_int_equal(p->c.rc, 0);
	assert_int_equal(p->s.ready, 1);
	assert_int_equal(p->c.ready, 1);
	assert_string_equal(tls_stream_version(p->s.s), version);
	assert_string_equal(tls_stream_version(p->c.s), version);
	if (alpn == NULL) {
		assert_null(tls_stream_alpn(p->s.s));
		assert_null(tls_stream_alpn(p->c.s));
	} else {
		assert_string_equal(tls_stream_alpn(p->s.s), alpn);
		assert_string_equal(tls_stream_alpn(p->c.s), alpn);
	}
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
	return p;
}

/* One full handshake between fresh contexts; returns the pair still open. */
static void connect_once(struct pair *p, struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	pair_open(p, sctx, cctx, "localhost");
	pair_run(p, 0);
	assert_int_equal(p->s.rc, 0);
	assert_int_equal(p->c.rc, 0);
}

/* Handshakes and ALPN */

static void test_stream_tls13_handshake_alpn_dot(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot,h2");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	assert_null(tls_stream_alpn(p.s.s));
	assert_null(tls_stream_version(p.s.s));
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	assert_false(tls_stream_resumed(p.s.s));
	assert_string_equal(tls_stream_errstr(p.s.s), "");
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_tls12_handshake_alpn_h2(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot,h2");
	struct tls_ctx *cctx = client_ctx(TLS_VERSION_12, "h2");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.2", "h2");
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_alpn_server_preference_wins(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot,h2");
	struct tls_ctx *cctx = client_ctx(0, "h2,dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_alpn_mismatch_fails_with_alert(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot,h2");
	struct tls_ctx *cctx = client_ctx(0, "http/1.1");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	pair_run(&p, 0);
	assert_int_equal(p.s.rc, -EPROTO);
	assert_int_equal(p.c.rc, -EPROTO);
	assert_int_equal(p.s.ready, 0);
	assert_int_equal(p.c.ready, 0);
	/* The server names the failure; the client learns it from the alert. */
	assert_non_null(strstr(tls_stream_errstr(p.s.s), "no application protocol"));
	assert_non_null(strstr(tls_stream_errstr(p.c.s), "no application protocol"));
	/* Sticky: the failed stream refuses more work with the same code. */
	assert_int_equal(tls_stream_feed(p.s.s, (const uint8_t *)"x", 1), -EPROTO);
	assert_int_equal(tls_stream_write(p.s.s, (const uint8_t *)"x", 1), -EPROTO);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_client_without_alpn_accepted(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, NULL);
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", NULL);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_min_version_13_refuses_tls12_client(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(TLS_VERSION_13, 0, "dot");
	struct tls_ctx *cctx = client_ctx(TLS_VERSION_12, "dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	pair_run(&p, 0);
	assert_int_equal(p.s.rc, -EPROTO);
	assert_int_equal(p.c.rc, -EPROTO);
	assert_non_null(strstr(tls_stream_errstr(p.s.s), "unsupported protocol"));
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_garbage_client_hello_eproto(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct pair p;
	struct tls_stream_io sio = {end_send, end_recv, end_ready, &p.s};
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

	memset(&p, 0, sizeof(p));
	p.s.s = tls_stream_new(sctx, &sio);
	assert_non_null(p.s.s);
	assert_int_equal(tls_stream_feed(p.s.s, (const uint8_t *)garbage, sizeof(garbage) - 1),
	                 -EPROTO);
	assert_true(strlen(tls_stream_errstr(p.s.s)) > 0);
	assert_int_equal(p.s.ready, 0);
	assert_int_equal(p.s.got.len, 0);

	/* A record header with a ClientHello type but a broken body fails the same way. */
	struct tls_stream *s2 = tls_stream_new(sctx, &sio);
	static const uint8_t bad_hello[] = {0x16, 0x03, 0x01, 0x00, 0x05,
	                                    0x01, 0x00, 0x00, 0x01, 0xff};
	assert_int_equal(tls_stream_feed(s2, bad_hello, sizeof(bad_hello)), -EPROTO);
	assert_true(strlen(tls_stream_errstr(s2)) > 0);
	tls_stream_free(s2);

	pair_close(&p);
	tls_ctx_unref(sctx);
}

static void test_stream_client_verifies_server_name(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	/* The SAN holds IP:127.0.0.1 and IP:::1 too. */
	pair_open(&p, sctx, cctx, "127.0.0.1");
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	pair_close(&p);

	pair_open(&p, sctx, cctx, "example.com");
	pair_run(&p, 0);
	assert_int_equal(p.c.rc, -EPROTO);
	assert_int_equal(p.s.rc, -EPROTO); /* the client's bad_certificate alert */
	assert_non_null(strstr(tls_stream_errstr(p.c.s), "hostname mismatch"));
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

/* Data */

static void test_stream_data_both_ways_with_100k_write(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;
	uint8_t *big = pattern(BIG, 7);

	pair_open(&p, sctx, cctx, "localhost");
	p.s.echo = true;
	p.s.greet = "hello from ready";
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	assert_int_equal(p.c.got.len, strlen(p.s.greet));
	assert_memory_equal(p.c.got.p, p.s.greet, p.c.got.len);
	p.c.got.len = 0;

	/* Client to server, echoed back from inside recv. */
	assert_int_equal(tls_stream_write(p.c.s, big, BIG), 0);
	pump(&p, 0);
	assert_int_equal(p.s.got.len, BIG);
	assert_memory_equal(p.s.got.p, big, BIG);
	assert_int_equal(p.c.got.len, BIG);
	assert_memory_equal(p.c.got.p, big, BIG);

	/* Server to client, unsolicited. */
	p.c.got.len = 0;
	assert_int_equal(tls_stream_write(p.s.s, big, BIG), 0);
	pump(&p, 0);
	assert_int_equal(p.c.got.len, BIG);
	assert_memory_equal(p.c.got.p, big, BIG);
	assert_int_equal(p.s.rc, 0);
	assert_int_equal(p.c.rc, 0);

	free(big);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_one_byte_at_a_time(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot,h2");
	struct tls_ctx *cctx = client_ctx(0, "h2");
	struct pair p;
	uint8_t *data = pattern(20000, 3); /* two records, both split everywhere */

	pair_open(&p, sctx, cctx, "localhost");
	p.s.echo = true;
	pair_run(&p, 1);
	assert_established(&p, "TLSv1.3", "h2");
	assert_int_equal(tls_stream_write(p.c.s, data, 20000), 0);
	pump(&p, 1);
	assert_int_equal(p.s.got.len, 20000);
	assert_memory_equal(p.s.got.p, data, 20000);
	assert_int_equal(p.c.got.len, 20000);
	assert_memory_equal(p.c.got.p, data, 20000);

	free(data);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_tls12_one_byte_at_a_time(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(TLS_VERSION_12, "dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	p.s.echo = true;
	pair_run(&p, 1);
	assert_established(&p, "TLSv1.2", "dot");
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"ping", 4), 0);
	pump(&p, 1);
	assert_int_equal(p.c.got.len, 4);
	assert_memory_equal(p.c.got.p, "ping", 4);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_write_before_handshake_queued_and_bounded(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;
	uint8_t *data = pattern(TLS_STREAM_QUEUE_MAX, 11);

	pair_open(&p, sctx, cctx, "localhost");
	assert_int_equal(tls_stream_write(p.c.s, data, TLS_STREAM_QUEUE_MAX - 10), 0);
	assert_int_equal(tls_stream_write(p.c.s, data, 11), -ENOBUFS);
	assert_int_equal(tls_stream_write(p.c.s, data + TLS_STREAM_QUEUE_MAX - 10, 10), 0);
	assert_int_equal(tls_stream_write(p.c.s, data, 1), -ENOBUFS);
	assert_int_equal(p.c.out.len, 0); /* nothing sent before the ClientHello */
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	assert_int_equal(p.s.got.len, TLS_STREAM_QUEUE_MAX);
	assert_memory_equal(p.s.got.p, data, TLS_STREAM_QUEUE_MAX);
	/* After the handshake, writes are not bounded by the queue. */
	assert_int_equal(tls_stream_write(p.c.s, data, TLS_STREAM_QUEUE_MAX), 0);
	assert_int_equal(tls_stream_write(p.c.s, data, 1), 0);

	free(data);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_send_callback_cannot_reenter(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	p.c.write_in_send = true;
	pair_run(&p, 0);
	assert_established(&p, "TLSv1.3", "dot");
	assert_int_equal(p.c.send_reentry_rc, -EBUSY);
	assert_int_equal(p.s.got.len, 0); /* the refused write sent nothing */
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

/* Closing */

static void test_stream_close_notify_gives_econnreset(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	connect_once(&p, sctx, cctx);
	/* Data then close_notify in one flight: the data is delivered first. */
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"last", 4), 0);
	assert_int_equal(tls_stream_shutdown(p.c.s), 0);
	assert_int_equal(tls_stream_shutdown(p.c.s), 0);
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"more", 4), -EPIPE);
	feed(&p.s, &p.c.out, 0);
	assert_int_equal(p.s.rc, -ECONNRESET);
	assert_int_equal(p.s.got.len, 4);
	assert_memory_equal(p.s.got.p, "last", 4);
	assert_non_null(strstr(tls_stream_errstr(p.s.s), "close_notify"));
	assert_int_equal(tls_stream_write(p.s.s, (const uint8_t *)"x", 1), -ECONNRESET);
	/* The server answered with its own close_notify. */
	assert_true(p.s.out.len > 0);
	feed(&p.c, &p.s.out, 0);
	assert_int_equal(p.c.rc, -ECONNRESET);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void end_recv_then_shutdown(void *arg, const uint8_t *p, size_t n)
{
	struct end *e = arg;

	buf_add(&e->got, p, n);
	assert_int_equal(tls_stream_write(e->s, (const uint8_t *)"bye", 3), 0);
	assert_int_equal(tls_stream_shutdown(e->s), 0);
}

static void test_stream_shutdown_from_recv_callback(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	memset(&p, 0, sizeof(p));
	struct tls_stream_io sio = {end_send, end_recv_then_shutdown, NULL, &p.s};
	struct tls_stream_io cio = {end_send, end_recv, end_ready, &p.c};
	p.s.s = tls_stream_new(sctx, &sio);
	p.c.s = tls_stream_new_client(cctx, &cio, "localhost");
	assert_non_null(p.s.s);
	assert_non_null(p.c.s);
	pair_run(&p, 0);
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"q", 1), 0);
	pump(&p, 0);
	/* The client got "bye" then close_notify, and answered with its own. */
	assert_int_equal(p.c.rc, -ECONNRESET);
	assert_int_equal(p.c.got.len, 3);
	assert_memory_equal(p.c.got.p, "bye", 3);
	assert_int_equal(p.s.rc, -ECONNRESET);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_shutdown_before_handshake_sends_nothing(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair p;

	pair_open(&p, sctx, cctx, "localhost");
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"q", 1), 0);
	assert_int_equal(tls_stream_shutdown(p.c.s), 0);
	assert_int_equal(p.c.out.len, 0);
	assert_int_equal(tls_stream_write(p.c.s, (const uint8_t *)"q", 1), -EPIPE);
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

/* Resumption and ticket keys */

static bool resumes(struct tls_ctx *sctx, struct tls_ctx *cctx)
{
	struct pair p;

	connect_once(&p, sctx, cctx);
	bool resumed = tls_stream_resumed(p.s.s);
	assert_int_equal(tls_stream_resumed(p.c.s), resumed);
	pair_close(&p);
	return resumed;
}

static void test_stream_ticket_resumption_tls13(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");

	assert_false(resumes(sctx, cctx));
	assert_true(resumes(sctx, cctx));
	assert_true(resumes(sctx, cctx)); /* the resumed handshake brought a fresh ticket */
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_ticket_resumption_tls12(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(TLS_VERSION_12, "dot");
	struct pair p;

	assert_false(resumes(sctx, cctx));
	connect_once(&p, sctx, cctx);
	assert_true(tls_stream_resumed(p.s.s));
	assert_string_equal(tls_stream_version(p.s.s), "TLSv1.2");
	assert_string_equal(tls_stream_alpn(p.s.s), "dot");
	pair_close(&p);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_stream_ticket_survives_one_rotation_not_two(void **state)
{
	(void)state;
	struct tls_ctx *sctx = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");

	assert_false(resumes(sctx, cctx));
	assert_int_equal(tls_ctx_rotate_tickets(sctx), 0);
	assert_true(resumes(sctx, cctx)); /* previous key still decrypts */
	assert_int_equal(tls_ctx_rotate_tickets(sctx), 0);
	assert_int_equal(tls_ctx_rotate_tickets(sctx), 0);
	assert_false(resumes(sctx, cctx)); /* that key is gone: full handshake */
	assert_true(resumes(sctx, cctx));
	assert_int_equal(tls_ctx_rotate_tickets(cctx), -EINVAL);
	tls_ctx_unref(cctx);
	tls_ctx_unref(sctx);
}

static void test_ctx_reload_keeps_tickets_when_shared(void **state)
{
	(void)state;
	struct tls_ctx *old = server_ctx(0, 0, "dot");
	struct tls_ctx *ca = client_ctx(0, "dot");
	struct tls_ctx *cb = client_ctx(0, "dot");
	struct tls_ctx_opts o = {.cert_file = chain_pem, .key_file = key_pem, .alpn = "dot"};
	struct tls_ctx *shared = NULL, *fresh = NULL;
	char err[256];

	/* Both clients hold a ticket from the context about to be replaced. */
	assert_false(resumes(old, ca));
	assert_false(resumes(old, cb));
	o.tickets_from = old;
	assert_int_equal(tls_ctx_new(&shared, &o, err, sizeof(err)), 0);
	o.tickets_from = NULL;
	assert_int_equal(tls_ctx_new(&fresh, &o, err, sizeof(err)), 0);
	tls_ctx_unref(old);

	assert_true(resumes(shared, ca));
	assert_false(resumes(fresh, cb));

	tls_ctx_unref(cb);
	tls_ctx_unref(ca);
	tls_ctx_unref(fresh);
	tls_ctx_unref(shared);
}

/* Contexts */

static void test_ctx_mismatched_key_fails_readably(void **state)
{
	(void)state;
	struct tls_ctx_opts o = {.cert_file = chain_pem, .key_file = other_key};
	struct tls_ctx *c = NULL;
	char err[256] = "";

	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, "does not match"));
	assert_non_null(strstr(err, "key values mismatch")); /* OpenSSL's reason */
	assert_non_null(strstr(err, other_key));
}

static void test_ctx_missing_file_gives_errno(void **state)
{
	(void)state;
	char missing[PATH_MAX + 32];
	snprintf(missing, sizeof(missing), "%s/nope.pem", certdir);
	struct tls_ctx_opts o = {.cert_file = missing, .key_file = key_pem};
	struct tls_ctx *c = NULL;
	char err[PATH_MAX + 64] = "";

	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, missing));

	o.cert_file = chain_pem;
	o.key_file = missing;
	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -ENOENT);

	struct tls_client_opts co = {.ca_file = missing};
	assert_int_equal(tls_ctx_new_client(&c, &co, err, sizeof(err)), -ENOENT);
	assert_null(c);
}

static void test_ctx_not_pem_fails(void **state)
{
	(void)state;
	struct tls_ctx_opts o = {.cert_pem = "not a certificate", .key_pem = "nor a key"};
	struct tls_ctx *c = NULL;
	char err[256] = "";

	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "no PEM certificate"));
	/* A certificate given as the key. */
	o.cert_file = chain_pem;
	o.key_file = ca_pem;
	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "private key"));
	assert_null(c);
}

static void test_ctx_expired_certificate_rejected(void **state)
{
	(void)state;
	struct tls_ctx_opts o = {.cert_file = expired_pem, .key_file = key_pem};
	struct tls_ctx *c = NULL;
	char err[256] = "";

	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "expired"));
	assert_null(c);
}

static void test_ctx_bad_options_rejected(void **state)
{
	(void)state;
	struct tls_ctx_opts o = {.cert_file = chain_pem, .key_file = key_pem};
	struct tls_ctx *c = NULL;
	char err[256] = "";

	o.min_version = 11;
	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "min_version"));
	o.min_version = TLS_VERSION_13;
	o.max_version = TLS_VERSION_12;
	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	o.min_version = o.max_version = 0;
	o.alpn = "dot,,h2";
	assert_int_equal(tls_ctx_new(&c, &o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "alpn"));
	o.alpn = NULL;
	struct tls_ctx *client = client_ctx(0, NULL);
	o.tickets_from = client;
	assert_int_equal(tls_ctx_new(&c, &o, NULL, 0), -EINVAL);
	assert_null(c);

	/* Streams refuse the wrong kind of context. */
	struct end e = {0};
	struct tls_stream_io io = {end_send, end_recv, NULL, &e};
	errno = 0;
	assert_null(tls_stream_new(client, &io));
	assert_int_equal(errno, EINVAL);
	struct tls_ctx *server = server_ctx(0, 0, NULL);
	assert_null(tls_stream_new_client(server, &io, "localhost"));
	io.recv = NULL;
	assert_null(tls_stream_new(server, &io));
	tls_ctx_unref(server);
	tls_ctx_unref(client);
}

static void test_ctx_refcount_keeps_old_ctx_after_reload(void **state)
{
	(void)state;
	struct tls_ctx *current = server_ctx(0, 0, "dot");
	struct tls_ctx *cctx = client_ctx(0, "dot");
	struct pair old, new;

	/* A connection accepted before the reload... */
	pair_open(&old, current, cctx, "localhost");
	assert_int_equal(tls_stream_feed(old.c.s, NULL, 0), 0);

	/* ...the reload swaps in a new context and drops the owner's reference... */
	struct tls_ctx *reloaded = server_ctx(0, 0, "dot,h2");
	tls_ctx_unref(current);
	current = reloaded;

	/* ...and the old connection completes on the old context, ALPN name included. */
	pump(&old, 0);
	assert_established(&old, "TLSv1.3", "dot");
	old.s.echo = true;
	assert_int_equal(tls_stream_write(old.c.s, (const uint8_t *)"q", 1), 0);
	pump(&old, 0);
	assert_int_equal(old.c.got.len, 1);

	connect_once(&new, current, cctx);
	assert_established(&new, "TLSv1.3", "dot");

	/* Extra references are balanced like any other. */
	tls_ctx_ref(current);
	tls_ctx_unref(current);
	pair_close(&new);
	pair_close(&old); /* frees the old context with its last stream (LSan checks) */
	tls_ctx_unref(current);
	tls_ctx_unref(cctx);
	tls_ctx_unref(NULL);
	tls_stream_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stream_tls13_handshake_alpn_dot),
	        cmocka_unit_test(test_stream_tls12_handshake_alpn_h2),
	        cmocka_unit_test(test_stream_alpn_server_preference_wins),
	        cmocka_unit_test(test_stream_alpn_mismatch_fails_with_alert),
	        cmocka_unit_test(test_stream_client_without_alpn_accepted),
	        cmocka_unit_test(test_stream_min_version_13_refuses_tls12_client),
	        cmocka_unit_test(test_stream_garbage_client_hello_eproto),
	        cmocka_unit_test(test_stream_client_verifies_server_name),
	        cmocka_unit_test(test_stream_data_both_ways_with_100k_write),
	        cmocka_unit_test(test_stream_one_byte_at_a_time),
	        cmocka_unit_test(test_stream_tls12_one_byte_at_a_time),
	        cmocka_unit_test(test_stream_write_before_handshake_queued_and_bounded),
	        cmocka_unit_test(test_stream_send_callback_cannot_reenter),
	        cmocka_unit_test(test_stream_close_notify_gives_econnreset),
	        cmocka_unit_test(test_stream_shutdown_from_recv_callback),
	        cmocka_unit_test(test_stream_shutdown_before_handshake_sends_nothing),
	        cmocka_unit_test(test_stream_ticket_resumption_tls13),
	        cmocka_unit_test(test_stream_ticket_resumption_tls12),
	        cmocka_unit_test(test_stream_ticket_survives_one_rotation_not_two),
	        cmocka_unit_test(test_ctx_reload_keeps_tickets_when_shared),
	        cmocka_unit_test(test_ctx_mismatched_key_fails_readably),
	        cmocka_unit_test(test_ctx_missing_file_gives_errno),
	        cmocka_unit_test(test_ctx_not_pem_fails),
	        cmocka_unit_test(test_ctx_expired_certificate_rejected),
	        cmocka_unit_test(test_ctx_bad_options_rejected),
	        cmocka_unit_test(test_ctx_refcount_keeps_old_ctx_after_reload),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
