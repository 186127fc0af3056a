/* proxy/ops/qlog.c - the query log: per-worker buffers, one shared file. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/name.h"
#include "codec/text.h"
#include "proxy/ops/qlog.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"

int px_qlog_open(const char *path, struct px_qlog_file **out)
{
	struct px_qlog_file *f = malloc(sizeof(*f));

	if (f == NULL)
		return -ENOMEM;
	f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (f->fd < 0) {
		int err = -errno;
		free(f);
		return err;
	}
	atomic_init(&f->refs, 1);
	*out = f;
	return 0;
}

static void qlog_file_ref(struct px_qlog_file *f)
{
	atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void px_qlog_file_unref(struct px_qlog_file *f)
{
	if (f == NULL)
		return;
	if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
		close(f->fd);
		free(f);
	}
}

void px_qlog_post(struct px_server *srv, struct px_qlog_file *f)
{
	for (unsigned i = 0; i < srv->n_workers; i++) {
		struct px_worker *w = &srv->workers[i];
		if (f != NULL)
			qlog_file_ref(f);
		uv_mutex_lock(&w->posts.mu);
		struct px_qlog_file *stale = w->ql.next;
		w->ql.next = f;
		w->ql.posted = true;
		uv_mutex_unlock(&w->posts.mu);
		/* A file posted before and not taken yet is superseded. */
		px_qlog_file_unref(stale);
		uv_async_send(&w->wake);
	}
}

void px_qlog_flush(struct px_worker *w)
{
	size_t off = 0;

	if (w->ql.len == 0)
		return;
	while (off < w->ql.len) {
		ssize_t n = write(w->ql.file->fd, w->ql.buf + off, w->ql.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			px_log_rl(CFG_LOG_WARNING, MAIN,
			          "query log: write failed, %zu bytes lost: %s", w->ql.len - off,
			          n < 0 ? strerror(errno) : "nothing written");
			break;
		}
		off += (size_t)n;
	}
	w->ql.len = 0;
}

void px_qlog_adopt(struct px_worker *w)
{
	struct px_qlog_file *f;

	uv_mutex_lock(&w->posts.mu);
	bool posted = w->ql.posted;
	f = w->ql.next;
	w->ql.next = NULL;
	w->ql.posted = false;
	uv_mutex_unlock(&w->posts.mu);
	if (!posted)
		return;
	/* Lines formatted before the switch belong to the old file. */
	if (w->ql.file != NULL)
		px_qlog_flush(w);
	px_qlog_file_unref(w->ql.file);
	w->ql.file = f;
	if (f != NULL && w->ql.buf == NULL) {
		w->ql.buf = malloc(PX_QLOG_BUF);
		if (w->ql.buf == NULL) {
			px_log(CFG_LOG_ERROR, MAIN, "worker %u: no memory for the query log: off",
			       w->idx);
			px_qlog_file_unref(f);
			w->ql.file = NULL;
		}
	}
	w->ql.on = w->ql.file != NULL;
}

void px_qlog_worker_deinit(struct px_worker *w)
{
	if (w->ql.file != NULL)
		px_qlog_flush(w);
	px_qlog_file_unref(w->ql.file);
	px_qlog_file_unref(w->ql.next);
	w->ql.file = w->ql.next = NULL;
	w->ql.on = false;
	free(w->ql.buf);
	w->ql.buf = NULL;
}

/* --- formatting ----------------------------------------------------------- */

static const char *type_name(uint16_t t, char *buf, size_t size)
{
	static const struct {
		uint16_t code;
		const char *name;
	} names[] = {
	        {1, "A"},      {2, "NS"},      {5, "CNAME"},  {6, "SOA"},    {12, "PTR"},
	        {13, "HINFO"}, {15, "MX"},     {16, "TXT"},   {28, "AAAA"},  {29, "LOC"},
	        {33, "SRV"},   {35, "NAPTR"},  {39, "DNAME"}, {43, "DS"},    {46, "RRSIG"},
	        {47, "NSEC"},  {48, "DNSKEY"}, {50, "NSEC3"}, {52, "TLSA"},  {64, "SVCB"},
	        {65, "HTTPS"}, {99, "SPF"},    {251, "IXFR"}, {252, "AXFR"}, {255, "ANY"},
	        {257, "CAA"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].code == t)
			return names[i].name;
	/* RFC 3597 form, as for ANAME's 65401. */
	snprintf(buf, size, "TYPE%u", t);
	return buf;
}

/* Copies text with blanks escaped as RFC 1035 "\\032", so the line
 * keeps its space-separated fields. */
static void escape_blanks(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (const char *s = in; *s != '\0' && o + 5 < size; s++) {
		if (*s == ' ') {
			memcpy(out + o, "\\032", 4);
			o += 4;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
}

/* The question name as text, or "-". */
static void name_text(const uint8_t *q, size_t qlen, const struct codec_view *qv, char *out,
                      size_t size)
{
	char raw[CODEC_MAX_NAME * 4 + 1];

	if (qv == NULL || qv->qdcount == 0 || (size_t)qv->qname_off + qv->qname_len > qlen ||
	    codec_name_to_text(q + qv->qname_off, qv->qname_len, raw, sizeof(raw)) < 0) {
		snprintf(out, size, "-");
		return;
	}
	escape_blanks(raw, out, size);
}

static void peer_text(const struct sockaddr *sa, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port;

	if (sa == NULL) {
		snprintf(out, size, "-");
		return;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	} else {
		snprintf(out, size, "-");
		return;
	}
	/* BIND's query log writes address#port: no bracket rules for IPv6. */
	snprintf(out, size, "%s#%u", ip, port);
}

static const char *transport_name(bool udp, const struct px_conn *c)
{
	if (udp || c == NULL)
		return "udp";
	return c->kind == PX_CONN_DOT ? "dot" : c->kind == PX_CONN_DOH ? "doh" : "tcp";
}

static void flat_text(unsigned how, char *out, size_t size)
{
	static const char *const kinds[] = {
	        [PX_FLAT_NO] = "no",       [PX_FLAT_CNAME] = "cname", [PX_FLAT_ANAME] = "aname",
	        [PX_FLAT_ALIAS] = "alias", [PX_FLAT_LOCAL] = "local",
	};
	unsigned k = how & PX_FLAT_HOW_MASK;
	snprintf(out, size, "%s%s%s%s", k < sizeof(kinds) / sizeof(kinds[0]) ? kinds[k] : "?",
	         how & PX_FLAT_STALE ? ",stale" : "", how & PX_FLAT_SIBLING ? ",sibling" : "",
	         how & PX_FLAT_FAILED ? ",failed" : "");
}

static void append_line(struct px_worker *w, bool udp, const struct sockaddr *client,
                        struct px_conn *conn, const uint8_t *q, size_t qlen,
                        const struct codec_view *qv, const uint8_t *ans, size_t len, unsigned how,
                        const char *chain, uint64_t start_ns)
{
	char name[CODEC_MAX_NAME * 5 + 1], ctext[INET6_ADDRSTRLEN + 8], tbuf[16], rbuf[16],
	        flat[40];
	struct timespec ts;

	if (w->ql.len + PX_QLOG_LINE_MAX > PX_QLOG_BUF)
		px_qlog_flush(w);
	clock_gettime(CLOCK_REALTIME, &ts);
	if ((uint64_t)ts.tv_sec != w->ql.sec || w->ql.stamp[0] == '\0') {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		strftime(w->ql.stamp, sizeof(w->ql.stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		w->ql.sec = (uint64_t)ts.tv_sec;
	}
	name_text(q, qlen, qv, name, sizeof(name));
	peer_text(client, ctext, sizeof(ctext));
	flat_text(how, flat, sizeof(flat));
	const char *type =
	        qv != NULL && qv->qdcount > 0 ? type_name(qv->qtype, tbuf, sizeof(tbuf)) : "-";
	const char *rcode = len >= CODEC_HDR_LEN ? codec_rcode_text(ans[3] & CODEC_RCODE_MASK, rbuf,
	                                                            sizeof(rbuf))
	                                         : "-";
	uint64_t us = start_ns != 0 ? (uv_hrtime() - start_ns) / 1000 : 0;
	int n = snprintf(w->ql.buf + w->ql.len, PX_QLOG_BUF - w->ql.len,
	                 "%s.%03ldZ %s %s %s %s %s flat=%s chain=%s %llu.%llums\n", w->ql.stamp,
	                 ts.tv_nsec / 1000000, transport_name(udp, conn), ctext, name, type, rcode,
	                 flat, chain, (unsigned long long)(us / 1000),
	                 (unsigned long long)(us % 1000 / 100));
	if (n > 0 && (size_t)n < PX_QLOG_BUF - w->ql.len)
		w->ql.len += (size_t)n;
}

void px_qlog_txn(struct px_worker *w, struct px_txn *t, const uint8_t *ans, size_t len)
{
	char raw[CODEC_MAX_NAME * 8 + 16], chain[CODEC_MAX_NAME * 10 + 16];

	t->ql.logged = true;
	px_flat_chain_text(t, raw, sizeof(raw));
	escape_blanks(raw, chain, sizeof(chain));
	append_line(w, t->origin == PX_ORIGIN_UDP, px_txn_client_addr(&t->cl), t->cl.conn, t->q,
	            t->qlen, &t->qv, ans, len, t->flat.how, chain, t->ql.start_ns);
}

void px_qlog_direct(struct px_worker *w, bool udp, const struct sockaddr *client,
                    struct px_conn *conn, const uint8_t *q, size_t qlen,
                    const struct codec_view *qv, const uint8_t *ans, size_t len)
{
	/* Answered in the same callback that read it: 0.0 ms. */
	append_line(w, udp, client, conn, q, qlen, qv, ans, len, PX_FLAT_NO, "-", 0);
}
