/* proxy/health/probe.c - one check of one address, on the checker's loop.
 *
 * tcp: the connect completes. tls: the handshake completes with SNI =
 * the owner name and a certificate that verifies for it (tls/stream.c
 * over memory BIOs, a client context with the default trust store and
 * no resumption, so every check sees the certificate). http: a plain
 * HTTP/1.1 GET whose final status is 2xx or 3xx. A timer bounds each
 * check by [health] timeout. The connection goes only to the address
 * being checked, on the check's port; nothing is sent but the
 * ClientHello or the one request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "proxy/health/internal.h"
#include "tls/stream.h"

struct probe {
	struct px_health *h;
	uint32_t idx, gen;
	enum cfg_check_kind kind;
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t conn;
	int open; /* handles not closed yet */
	bool done;
	enum px_health_result res;
	char why[96];
	struct tls_stream *tls;
	char host[256];
	char path[CFG_CHECK_PATH_MAX + 1];
	uint8_t rd[4096]; /* TLS: each read, fed at once */
	uint8_t head[PX_HEALTH_HTTP_MAX];
	size_t head_len;
};

struct wreq {
	uv_write_t req;
	uint8_t data[];
};

static void probe_closed(uv_handle_t *hd)
{
	struct probe *p = hd->data;

	if (--p->open > 0)
		return;
	tls_stream_free(p->tls);
	px_health_verdict(p->h, p->idx, p->gen, p->res, p->why);
	free(p);
}

__attribute__((format(printf, 3, 4))) static void finish(struct probe *p, enum px_health_result r,
                                                         const char *fmt, ...)
{
	va_list ap;

	if (p->done)
		return;
	p->done = true;
	p->res = r;
	va_start(ap, fmt);
	vsnprintf(p->why, sizeof(p->why), fmt, ap);
	va_end(ap);
	uv_close((uv_handle_t *)&p->timer, probe_closed);
	uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

static void write_done(uv_write_t *req, int status)
{
	(void)status; /* a failed write shows up as a read error or the timeout */
	free(req->data);
}

static int send_bytes(struct probe *p, const uint8_t *data, size_t n)
{
	if (p->done)
		return 0;
	struct wreq *w = malloc(sizeof(*w) + n);
	if (w == NULL)
		return -ENOMEM;
	memcpy(w->data, data, n);
	w->req.data = w;
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
	int rc = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, write_done);
	if (rc < 0) {
		free(w);
		return rc;
	}
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	struct probe *p = t->data;

	finish(p, PX_HR_TIMEOUT, "no verdict within the timeout");
}

/* ---- tls: --------------------------------------------------------------- */

static int tls_send(void *arg, const uint8_t *data, size_t n)
{
	return send_bytes(arg, data, n);
}

static void tls_recv(void *arg, const uint8_t *data, size_t n)
{
	(void)arg;
	(void)data;
	(void)n;
}

static void tls_ready(void *arg)
{
	finish(arg, PX_HR_OK, "TLS handshake done");
}

static void tls_failed(struct probe *p, int rc)
{
	if (tls_stream_cert_failed(p->tls))
		finish(p, PX_HR_CERT, "certificate: %s", tls_stream_errstr(p->tls));
	else if (rc == -EPROTO)
		finish(p, PX_HR_TLS, "TLS handshake: %s", tls_stream_errstr(p->tls));
	else
		finish(p, PX_HR_TLS, "TLS handshake: %s", strerror(-rc));
}

/* ---- reading ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
	struct probe *p = hd->data;

	(void)hint;
	if (p->kind == CFG_CHECK_TLS)
		*buf = uv_buf_init((char *)p->rd, sizeof(p->rd));
	else
		*buf = uv_buf_init((char *)p->head + p->head_len,
		                   (unsigned)(sizeof(p->head) - p->head_len));
}

static void http_judge(struct probe *p, bool eof)
{
	int code = px_health_http_final(p->head, p->head_len);

	if (code >= 200 && code <= 399)
		finish(p, PX_HR_OK, "HTTP status %d", code);
	else if (code > 0)
		finish(p, PX_HR_HTTP_STATUS, "HTTP status %d", code);
	else if (code < 0)
		finish(p, PX_HR_HTTP_BAD, "not an HTTP/1.x status line");
	else if (p->head_len == sizeof(p->head))
		finish(p, PX_HR_HTTP_BAD, "no final status line in %zu bytes", sizeof(p->head));
	else if (eof)
		finish(p, PX_HR_CLOSED, "closed before a status line");
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct probe *p = s->data;

	(void)buf;
	if (p->done || n == 0)
		return;
	if (n < 0) {
		if (p->kind == CFG_CHECK_HTTP && n == UV_EOF)
			http_judge(p, true);
		else if (n == UV_EOF)
			finish(p, PX_HR_CLOSED, "closed during the TLS handshake");
		else
			finish(p, PX_HR_CONNECT, "read: %s", uv_strerror((int)n));
		return;
	}
	if (p->kind == CFG_CHECK_HTTP) {
		p->head_len += (size_t)n;
		http_judge(p, false);
		return;
	}
	int rc = tls_stream_feed(p->tls, p->rd, (size_t)n);
	if (rc < 0)
		tls_failed(p, rc);
}

/* ---- connect ------------------------------------------------------------ */

static void start_tls(struct probe *p)
{
	struct tls_stream_io io = {
	        .send = tls_send, .recv = tls_recv, .ready = tls_ready, .arg = p};

	if (p->h->tls == NULL) {
		finish(p, PX_HR_ERROR, "no TLS client context (see the log at startup)");
		return;
	}
	p->tls = tls_stream_new_client(p->h->tls, &io, p->host);
	if (p->tls == NULL) {
		finish(p, PX_HR_ERROR, "TLS: %s", strerror(errno));
		return;
	}
	int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);
	if (rc == 0)
		rc = tls_stream_feed(p->tls, NULL, 0); /* the ClientHello */
	if (rc < 0)
		tls_failed(p, rc);
}

static void start_http(struct probe *p)
{
	char req[CFG_CHECK_PATH_MAX + 400];
	int n = snprintf(req, sizeof(req),
	                 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: apexd-health\r\n"
	                 "Accept: */*\r\nConnection: close\r\n\r\n",
	                 p->path, p->host);
	int rc = uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read);

	if (rc == 0)
		rc = send_bytes(p, (const uint8_t *)req, (size_t)n);
	if (rc < 0)
		finish(p, PX_HR_ERROR, "HTTP request: %s", uv_strerror(rc));
}

static void on_connect(uv_connect_t *c, int status)
{
	struct probe *p = c->data;

	if (p->done)
		return;
	if (status == UV_ECONNREFUSED) {
		finish(p, PX_HR_REFUSED, "connection refused");
		return;
	}
	if (status < 0) {
		finish(p, PX_HR_CONNECT, "connect: %s", uv_strerror(status));
		return;
	}
	switch (p->kind) {
	case CFG_CHECK_TLS:
		start_tls(p);
		break;
	case CFG_CHECK_HTTP:
		start_http(p);
		break;
	default:
		finish(p, PX_HR_OK, "connected");
		break;
	}
}

static void sockaddr_of(const struct px_health *h, uint32_t idx, uint16_t qtype, uint16_t port,
                        struct sockaddr_storage *ss)
{
	const struct px_health_slot *s = &h->slots[idx];
	uint64_t a[2] = {atomic_load_explicit(&s->a[0], memory_order_relaxed),
	                 atomic_load_explicit(&s->a[1], memory_order_relaxed)};

	memset(ss, 0, sizeof(*ss));
	if (qtype == 28) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, a, 16);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, a, 4);
	}
}

void px_health_probe_abort(uv_handle_t *hd)
{
	struct probe *p = hd->data;

	if (!uv_is_closing(hd))
		finish(p, PX_HR_ERROR, "apexd is stopping");
}

int px_health_probe_start(struct px_health *h, uint32_t idx)
{
	const struct px_health_ent *e = &h->ents[idx];
	const struct px_health_owner *o = &h->owners[e->owner];
	struct sockaddr_storage ss;
	struct probe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	p->h = h;
	p->idx = idx;
	p->gen = e->gen;
	p->kind = o->check.kind;
	snprintf(p->host, sizeof(p->host), "%s", o->host);
	snprintf(p->path, sizeof(p->path), "%s", o->check.path);
	int rc = uv_tcp_init(&h->loop, &p->tcp);
	if (rc < 0) {
		free(p);
		return rc;
	}
	uv_timer_init(&h->loop, &p->timer);
	p->open = 2;
	p->tcp.data = p->timer.data = p->conn.data = p;
	uv_timer_start(&p->timer, on_timeout, h->c_timeout, 0);
	sockaddr_of(h, idx, o->qtype, o->check.port, &ss);
	rc = uv_tcp_connect(&p->conn, &p->tcp, (const struct sockaddr *)&ss, on_connect);
	if (rc < 0)
		finish(p, rc == UV_ECONNREFUSED ? PX_HR_REFUSED : PX_HR_CONNECT, "connect: %s",
		       uv_strerror(rc));
	h->inflight++;
	return 0;
}
