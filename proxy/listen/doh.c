/* proxy/listen/doh.c - DNS over HTTPS (RFC 8484) on HTTP/2 (nghttp2).
 *
 * The session is I/O-free in nghttp2's sense: decrypted bytes from the
 * connection's TLS stream go into nghttp2_session_mem_recv(), and after
 * every receive and every submitted response the output of
 * nghttp2_session_mem_send() is coalesced into one buffer and written to
 * the TLS stream at once.
 *
 * A request becomes a DNS query when its stream ends: GET with ?dns=
 * (base64url, no padding) or POST with application/dns-message. Each
 * goes through px_query_handle() like a TCP query, so it reaches BIND
 * over UDP (TCP only when BIND truncates), never on a new connection.
 * Bad requests get a 4xx and the connection lives on: 400 undecodable or
 * malformed, 404 another path, 405 another method, 413 a body over 65535
 * bytes, 415 another content type. Those decisions are made by
 * px_doh_req_decode() (dohreq.c), which this file only feeds.
 *
 * Bounds: SETTINGS_MAX_CONCURRENT_STREAMS streams per connection, one
 * body of at most 65535 bytes and one answer per stream, so memory per
 * connection is bounded; nghttp2 enforces flow control.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "codec/rr.h"
#include "tls/stream.h"
#include "codec/ttl.h"
#include "proxy/listen/doh.h"
#include "proxy/engine/query.h"
#include "proxy/engine/txn.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/dohreq.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"
#include "proxy/engine/worker.h"

/* Streams in flight per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
#define PX_DOH_MAX_STREAMS 100
/* nghttp2 output is coalesced up to this much per TLS write. */
#define PX_DOH_OUT_CHUNK 65536

struct doh_stream {
	int32_t id;
	enum px_doh_method method;
	bool path_too_long;
	bool ct_dns; /* content-type: application/dns-message */
	bool ct_seen;
	bool too_big;
	bool answered;
	char *path; /* as long as the client sent, up to PX_DOH_PATH_MAX */
	size_t path_len;
	uint8_t *body;
	size_t body_len;
	uint8_t *resp; /* the answer being sent */
	size_t resp_len, resp_off;
	struct doh_stream *prev, *next; /* the session's streams, freed with it */
};

struct px_doh {
	struct px_conn *c;
	nghttp2_session *session;
	bool in_recv;
	bool goaway;
	uint8_t *out;
	size_t out_len;
	struct doh_stream *streams;
};

static void doh_flush(struct px_doh *d);

static void stream_free(struct px_doh *d, struct doh_stream *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->streams = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s->body);
	free(s->resp);
	free(s->path);
	free(s);
}

/* --- responses ---------------------------------------------------------- */

static ssize_t resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
	struct doh_stream *s = source->ptr;
	size_t n = s->resp_len - s->resp_off;
	(void)session;
	(void)stream_id;
	(void)user_data;

	if (n > length)
		n = length;
	memcpy(buf, s->resp + s->resp_off, n);
	s->resp_off += n;
	if (s->resp_off == s->resp_len)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

#define NV(name, value)                                                                            \
	{                                                                                          \
		(uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, strlen(value),            \
		        NGHTTP2_NV_FLAG_NONE                                                       \
	}

static void submit_error(struct px_doh *d, struct doh_stream *s, int status)
{
	char st[8];

	snprintf(st, sizeof(st), "%d", status);
	/* nghttp2 copies header names and values, so st may be local. */
	nghttp2_nv hdrs[] = {
	        NV(":status", st),
	        NV("content-length", "0"),
	        NV("allow", "GET, POST"),
	};
	size_t n = status == PX_DOH_HTTP_BAD_METHOD ? 3 : 2;

	s->answered = true;
	PX_STAT_INC(&d->c->w->stats, doh_http_errors);
	nghttp2_submit_response(d->session, s->id, hdrs, n, NULL);
}

/* RFC 8484 5.1: the freshness lifetime is at most the smallest TTL in the
 * answer section; for a negative answer, that of the SOA (RFC 2308).
 * Returns -1 when the message has no record to take it from. */
static long answer_min_ttl(const uint8_t *msg, size_t len)
{
	struct codec_view v;
	uint32_t ttl;

	if (codec_scan(msg, len, &v) < 0 || codec_min_ttl(msg, len, &v, CODEC_SEC_ANSWER, &ttl) < 0)
		return -1;
	return ttl;
}

void px_doh_reply(struct px_conn *c, int32_t stream, const uint8_t *msg, size_t len)
{
	struct px_doh *d = c->doh;
	char clen[16], cc[32];

	if (d == NULL || c->closing)
		return;
	struct doh_stream *s = nghttp2_session_get_stream_user_data(d->session, stream);
	if (s == NULL || s->answered)
		return; /* the client reset the stream meanwhile */
	s->resp = malloc(len);
	if (s->resp == NULL) {
		submit_error(d, s, 500);
		doh_flush(d);
		return;
	}
	memcpy(s->resp, msg, len);
	s->resp_len = len;
	s->answered = true;
	snprintf(clen, sizeof(clen), "%zu", len);
	long ttl = answer_min_ttl(msg, len);
	snprintf(cc, sizeof(cc), "max-age=%ld", ttl);
	nghttp2_nv hdrs[] = {
	        NV(":status", "200"),
	        NV("content-type", "application/dns-message"),
	        NV("content-length", clen),
	        NV("cache-control", cc),
	};
	nghttp2_data_provider prd = {.source.ptr = s, .read_callback = resp_read_cb};
	nghttp2_submit_response(d->session, stream, hdrs, ttl >= 0 ? 4 : 3, &prd);
	/* Answers of one loop turn leave together (px_conn_flush_all). */
	px_conn_queue_flush(c);
}

/* --- requests ----------------------------------------------------------- */

static void request_done(struct px_doh *d, struct doh_stream *s)
{
	struct px_conn *c = d->c;
	const uint8_t *msg = NULL;
	size_t msg_len = 0;

	if (s->answered)
		return;
	struct px_doh_req r = {
	        .method = s->method,
	        .path = s->path,
	        .path_len = s->path_len,
	        .path_too_long = s->path_too_long,
	        .ct_dns = s->ct_dns,
	        .ct_seen = s->ct_seen,
	        .too_big = s->too_big,
	        .body = s->body,
	        .body_len = s->body_len,
	};
	/* A GET query decodes shorter than its path, into a per-worker
	 * buffer: 16 KiB on the stack of every request cost a page probe
	 * per 4 KiB (-fstack-clash-protection). A POST's query is its body. */
	struct px_worker *w = c->w;
	uint8_t *getbuf = r.method == PX_DOH_METHOD_GET ? px_outbuf_get(w) : NULL;
	int status = px_doh_req_decode(&r, w->cfg->listen.doh_path, getbuf,
	                               getbuf != NULL ? PX_DOH_PATH_MAX : 0, &msg, &msg_len);
	if (status != PX_DOH_HTTP_OK) {
		px_outbuf_put(w, getbuf);
		submit_error(d, s, status);
		return;
	}
	PX_STAT_INC(&w->stats, queries_doh);
	uv_timer_stop(&c->idle);
	c->cur_stream = s->id;
	px_query_handle(w, msg, msg_len, PX_ORIGIN_TCP, NULL, NULL, NULL, NULL, c);
	px_outbuf_put(w, getbuf);
}

/* --- nghttp2 callbacks -------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct px_doh *d = user_data;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct doh_stream *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	s->id = frame->hd.stream_id;
	s->next = d->streams;
	if (d->streams != NULL)
		d->streams->prev = s;
	d->streams = s;
	nghttp2_session_set_stream_user_data(session, s->id, s);
	return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
	(void)flags;
	(void)user_data;
	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	struct doh_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s == NULL)
		return 0;
	if (namelen == 7 && memcmp(name, ":method", 7) == 0) {
		if (valuelen == 3 && memcmp(value, "GET", 3) == 0)
			s->method = PX_DOH_METHOD_GET;
		else if (valuelen == 4 && memcmp(value, "POST", 4) == 0)
			s->method = PX_DOH_METHOD_POST;
		else
			s->method = PX_DOH_METHOD_OTHER;
	} else if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
		char *p = valuelen <= PX_DOH_PATH_MAX && s->path == NULL ? malloc(valuelen + 1)
		                                                         : NULL;
		if (p == NULL) {
			s->path_too_long = true;
		} else {
			memcpy(p, value, valuelen);
			p[valuelen] = '\0';
			s->path = p;
			s->path_len = valuelen;
		}
	} else if (namelen == 12 && memcmp(name, "content-type", 12) == 0) {
		s->ct_seen = true;
		s->ct_dns = px_doh_content_type_is_dns((const char *)value, valuelen);
	}
	return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
	(void)flags;
	(void)user_data;
	struct doh_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s == NULL || s->too_big)
		return 0;
	if (s->body_len + len > PX_DOH_MSG_MAX) {
		/* Stop keeping it; 413 when the stream ends. */
		s->too_big = true;
		free(s->body);
		s->body = NULL;
		s->body_len = 0;
		return 0;
	}
	uint8_t *nb = realloc(s->body, s->body_len + len);
	if (nb == NULL)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	memcpy(nb + s->body_len, data, len);
	s->body = nb;
	s->body_len += len;
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct px_doh *d = user_data;

	if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
	    !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	struct doh_stream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
	if (s != NULL)
		request_done(d, s);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
	(void)error_code;
	struct doh_stream *s = nghttp2_session_get_stream_user_data(session, stream_id);
	if (s != NULL) {
		nghttp2_session_set_stream_user_data(session, stream_id, NULL);
		stream_free(user_data, s);
	}
	return 0;
}

/* --- session ------------------------------------------------------------ */

static void doh_flush(struct px_doh *d)
{
	struct px_conn *c = d->c;

	/* nghttp2 forbids mem_send inside its callbacks: the receive path
	 * flushes once mem_recv returns. */
	if (d->in_recv || c->closing)
		return;
	for (;;) {
		const uint8_t *data;
		/* A client that reads nothing: frames wait inside nghttp2,
		 * which bounds them (streams, flow control, its flood
		 * checks); the connection's write callback comes back. */
		if (px_conn_backlogged(c))
			break;
		ssize_t n = nghttp2_session_mem_send(d->session, &data);
		if (n < 0) {
			px_conn_close(c);
			return;
		}
		if (n == 0)
			break;
		if (d->out_len + (size_t)n > PX_DOH_OUT_CHUNK && d->out_len > 0) {
			if (tls_stream_write(c->tls, d->out, d->out_len) < 0) {
				px_conn_close(c);
				return;
			}
			d->out_len = 0;
		}
		if ((size_t)n > PX_DOH_OUT_CHUNK) {
			if (tls_stream_write(c->tls, data, (size_t)n) < 0) {
				px_conn_close(c);
				return;
			}
			continue;
		}
		memcpy(d->out + d->out_len, data, (size_t)n);
		d->out_len += (size_t)n;
	}
	if (d->out_len > 0) {
		int rc = tls_stream_write(c->tls, d->out, d->out_len);
		d->out_len = 0;
		if (rc < 0) {
			px_conn_close(c);
			return;
		}
	}
	if (!nghttp2_session_want_read(d->session) && !nghttp2_session_want_write(d->session))
		px_conn_close(c);
}

void px_doh_recv(struct px_conn *c, const uint8_t *p, size_t n)
{
	struct px_doh *d = c->doh;

	if (d == NULL)
		return;
	d->in_recv = true;
	c->refs++;
	ssize_t rc = nghttp2_session_mem_recv(d->session, p, n);
	d->in_recv = false;
	if (rc < 0) {
		px_log(CFG_LOG_DEBUG, DOH, "%s", nghttp2_strerror((int)rc));
		/* Let nghttp2 say GOAWAY (protocol error) before closing. */
		doh_flush(d);
		px_conn_close(c);
	} else {
		doh_flush(d);
	}
	px_conn_unref(c);
}

int px_doh_start(struct px_conn *c)
{
	nghttp2_session_callbacks *cbs;
	struct px_doh *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	d->out = malloc(PX_DOH_OUT_CHUNK);
	if (d->out == NULL || nghttp2_session_callbacks_new(&cbs) != 0) {
		free(d->out);
		free(d);
		return -ENOMEM;
	}
	nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
	int rc = nghttp2_session_server_new(&d->session, cbs, d);
	nghttp2_session_callbacks_del(cbs);
	if (rc != 0) {
		free(d->out);
		free(d);
		return -ENOMEM;
	}
	d->c = c;
	c->doh = d;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, PX_DOH_MAX_STREAMS},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_DOH_MSG_MAX},
	};
	nghttp2_submit_settings(d->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
	doh_flush(d);
	return 0;
}

void px_doh_flush(struct px_conn *c)
{
	if (c->doh != NULL)
		doh_flush(c->doh);
}

void px_doh_goaway(struct px_conn *c)
{
	struct px_doh *d = c->doh;

	if (d == NULL || d->goaway)
		return;
	d->goaway = true;
	nghttp2_submit_goaway(d->session, NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(d->session), NGHTTP2_NO_ERROR,
	                      NULL, 0);
	doh_flush(d);
}

void px_doh_free(struct px_conn *c)
{
	struct px_doh *d = c->doh;

	if (d == NULL)
		return;
	nghttp2_session_del(d->session);
	while (d->streams != NULL)
		stream_free(d, d->streams);
	free(d->out);
	free(d);
	c->doh = NULL;
}
