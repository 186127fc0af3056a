/* tests/fuzz/fuzz_px_h2.c - a DoH client's HTTP/2 bytes through nghttp2
 * into proxy/listen/doh.c's callbacks, the DoH request path down to the query,
 * and the answers back out as HTTP/2, with no socket, TLS or event loop.
 *
 * Link seam: doh.c is the production file, unchanged. What it calls on the
 * rest of apexd (px_query_handle, px_conn_close, px_conn_unref,
 * px_conn_queue_flush, px_conn_backlogged from engine/ and listen/conn.c,
 * tls_stream_write from tls/) is defined here; archive linking takes these definitions, so those
 * files are never pulled in. Should a new reference in doh.c pull one of
 * them in after all, the link fails with a duplicate symbol rather than
 * testing something else.
 *
 * The backend double answers each query it is handed, built from the
 * query: an error reply, A records (many with the big-answer bit, to
 * exercise DATA frames and flow control), NXDOMAIN with an SOA, or bytes
 * that do not scan (apexd relays BIND's answers without scanning them).
 *
 * Input layout:
 *   byte 0   bits 0-1 when answers come: 0 at once, inside
 *            px_query_handle (an answer-cache hit or apexd's own error
 *            reply); 1 after the read that carried the query, as BIND's
 *            answer in a later loop turn; 2 never (the connection ends
 *            with streams open); 3 alternating at once and later
 *            bit 2 prepend the client connection preface
 *            bit 3 graceful shutdown (GOAWAY) after the first read
 *            bits 4-6 read size: all at once, 1, 7, 9, 16, 100, 1000, 4096
 *            bit 7 big answers
 *   byte 1   bits 0-3 output budget in units of 64 octets: past it,
 *            tls_stream_write() fails with -ENOBUFS, as when a client
 *            that stops reading fills the TLS stream's queue (0: none);
 *            bits 4-7 unused
 *   rest     what the client sends after the TLS handshake
 *
 * Checked: every query handed on scans, is not a response, comes from a
 * client stream (odd ID) not asked before, and is handed on with the
 * connection and TCP origin; references balance; nothing is written after
 * close. The output is parsed as HTTP/2: whole frames of at most 16384
 * octets, our SETTINGS first, responses only on client streams, header
 * blocks that HPACK-decode with a known :status, and each 200 carrying
 * application/dns-message with a content-length equal to its DATA, which
 * is exactly the answer given for that stream.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "codec/build.h"
#include "codec/scan.h"
#include "codec/wire.h"
#include "tls/stream.h"
#include "proxy/engine/query.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/doh.h"
#include "proxy/listen/dohreq.h"
#include "proxy/listen/listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CTL_WHEN 0x03
#define CTL_PREFACE 0x04
#define CTL_GOAWAY 0x08
#define CTL_READ_SHIFT 4
#define CTL_BIG 0x80

enum { WHEN_NOW, WHEN_LATER, WHEN_NEVER, WHEN_ALTERNATE };

/* nghttp2's DATA payload and our small HEADERS stay within the smallest
 * SETTINGS_MAX_FRAME_SIZE (RFC 9113 4.2), whatever the client allows. */
#define H2_FRAME_MAX 16384
#define H2_HDR_LEN 9
/* Streams tracked per input; one input cannot open more than this many
 * with the bytes libFuzzer gives it (each HEADERS frame is 10+ octets). */
#define MAX_STREAMS 1024
/* Answers of many records: beyond one DATA frame and the default window. */
#define BIG_ANSWER_RECORDS 4000

static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct stream_rec {
	int32_t id;
	uint8_t *answer; /* what the double answered, for comparing DATA */
	size_t answer_len;
	bool pending; /* answer not handed to doh.c yet */
	int status;   /* from our response HEADERS, 0 before them */
	long clen;    /* content-length of a 200, -1 when absent */
	size_t data;  /* DATA octets seen on the stream */
	bool ended;
};

static struct {
	struct px_conn conn;
	struct px_worker w;
	struct cfg cfg;
	uint8_t ctl;
	unsigned queries;
	size_t out_total, out_budget;
	unsigned refs_floor;
	struct stream_rec st[MAX_STREAMS];
	size_t n_st;
	/* Output parser: the frame being read and the HPACK decoder. */
	uint8_t fh[H2_HDR_LEN];
	size_t fh_have;
	uint8_t *payload;
	size_t payload_len, payload_have;
	unsigned frames;
	nghttp2_hd_inflater *inflater;
} g;

static void check(int cond)
{
	if (!cond)
		abort();
}

static struct stream_rec *find_stream(int32_t id)
{
	for (size_t i = 0; i < g.n_st; i++)
		if (g.st[i].id == id)
			return &g.st[i];
	return NULL;
}

/* --- the backend double ------------------------------------------------- */

static size_t put_rr(uint8_t *p, uint16_t type, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	p[0] = 0xc0; /* the question's name */
	p[1] = CODEC_HDR_LEN;
	codec_put_u16(p + 2, type);
	codec_put_u16(p + 4, CODEC_CLASS_IN);
	codec_put_u32(p + 6, ttl);
	codec_put_u16(p + 10, rdlen);
	memcpy(p + 12, rdata, rdlen);
	return 12 + (size_t)rdlen;
}

/* An answer to q as the backend might give it; its length, into out. */
static size_t make_answer(const uint8_t *q, size_t qlen, const struct codec_view *v, uint8_t *out)
{
	unsigned kind = v->id & 3;
	size_t n;

	if (kind == 0 || v->qdcount != 1 || v->qname_off != CODEC_HDR_LEN) {
		ssize_t r = codec_build_error(q, qlen, v, CODEC_RCODE_SERVFAIL,
		                              CODEC_EDE_NO_REACHABLE_AUTHORITY, "fuzz", out,
		                              CODEC_MAX_MSG);
		check(r >= CODEC_HDR_LEN);
		return (size_t)r;
	}
	/* Header and question of the query, as a response. */
	n = v->question_end;
	memcpy(out, q, n);
	out[2] |= 0x84; /* QR, AA */
	out[3] &= 0xf0;
	codec_put_u16(out + 6, 0);
	codec_put_u16(out + 8, 0);
	codec_put_u16(out + 10, 0);
	if (kind == 1) {
		unsigned count = (g.ctl & CTL_BIG) ? BIG_ANSWER_RECORDS : 1u + (v->id >> 8 & 7);

		for (unsigned i = 0; i < count; i++) {
			uint8_t a[4] = {192, 0, (uint8_t)(i >> 8), (uint8_t)i};
			n += put_rr(out + n, CODEC_TYPE_A, 300u + (v->id >> 2 & 63) * i, a, 4);
		}
		codec_put_u16(out + 6, (uint16_t)count);
	} else if (kind == 2) {
		static const uint8_t soa[] = {
		        2, 'n',  's',  0, 4, 'h',  'o',  's', 't',  0,    0,    0, 0, 1,    0,
		        0, 0x0e, 0x10, 0, 0, 0x07, 0x08, 0,   0x09, 0x3a, 0x80, 0, 0, 0x01, 0x2c,
		};
		out[3] |= CODEC_RCODE_NXDOMAIN;
		n += put_rr(out + n, CODEC_TYPE_SOA, 3600, soa, sizeof(soa));
		codec_put_u16(out + 8, 1);
	} else {
		/* Says it has an answer, has garbage instead. */
		static const uint8_t junk[] = {0xc0, 0xff, 0, 1, 0, 1, 0xff, 0xff};
		codec_put_u16(out + 6, 3);
		memcpy(out + n, junk, sizeof(junk));
		n += sizeof(junk);
	}
	return n;
}

static void give_answer(struct stream_rec *r)
{
	r->pending = false;
	px_doh_reply(&g.conn, r->id, r->answer, r->answer_len);
}

/* The worker's answer buffers (engine/worker.c): a GET query is decoded
 * into one. Heap buffers, so that ASan sees a GET decoded past its end. */
uint8_t *px_outbuf_get(struct px_worker *w)
{
	check(w == &g.w);
	return malloc(CODEC_MAX_MSG);
}

void px_outbuf_put(struct px_worker *w, uint8_t *buf)
{
	check(w == &g.w);
	free(buf);
}

void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                     struct px_udp_listener *ul, const struct sockaddr *peer,
                     const struct sockaddr *client, const struct px_udp_local *local,
                     struct px_conn *conn)
{
	static uint8_t out[CODEC_MAX_MSG];
	struct codec_view v;

	check(w == &g.w && conn == &g.conn && origin == PX_ORIGIN_TCP && ul == NULL &&
	      peer == NULL && client == NULL && local == NULL);
	check(len >= CODEC_HDR_LEN && len <= PX_DOH_MSG_MAX);
	check(codec_scan(msg, len, &v) == 0 && !codec_hdr_qr(msg));
	check(conn->cur_stream > 0 && (conn->cur_stream & 1) == 1);
	check(find_stream(conn->cur_stream) == NULL);
	if (g.n_st == MAX_STREAMS)
		return;
	struct stream_rec *r = &g.st[g.n_st++];
	r->id = conn->cur_stream;
	r->clen = -1;
	r->answer_len = make_answer(msg, len, &v, out);
	r->answer = malloc(r->answer_len);
	check(r->answer != NULL);
	memcpy(r->answer, out, r->answer_len);
	r->pending = true;

	unsigned when = g.ctl & CTL_WHEN;
	if (when == WHEN_ALTERNATE)
		when = g.queries & 1 ? WHEN_LATER : WHEN_NOW;
	g.queries++;
	if (when == WHEN_NOW)
		give_answer(r);
}

/* --- the connection double ---------------------------------------------- */

void px_conn_close(struct px_conn *c)
{
	check(c == &g.conn);
	c->closing = true;
}

void px_conn_unref(struct px_conn *c)
{
	check(c == &g.conn && c->refs > g.refs_floor);
	c->refs--;
}

void px_conn_queue_flush(struct px_conn *c)
{
	check(c == &g.conn && !c->closing);
	c->flush_queued = true;
}

/* Has the client stopped reading? doh.c asks listen/conn.c before each
 * write; declared here as well so that the double also builds against an
 * internal.h that does not declare it yet. A client whose output budget
 * (byte 1) is spent has stopped reading. */
bool px_conn_backlogged(const struct px_conn *c);

bool px_conn_backlogged(const struct px_conn *c)
{
	check(c == &g.conn);
	return g.out_budget > 0 && g.out_total >= g.out_budget;
}

/* --- the output, parsed as HTTP/2 --------------------------------------- */

static bool known_status(int st)
{
	return st == PX_DOH_HTTP_OK || st == PX_DOH_HTTP_BAD_REQUEST ||
	       st == PX_DOH_HTTP_NOT_FOUND || st == PX_DOH_HTTP_BAD_METHOD ||
	       st == PX_DOH_HTTP_TOO_LARGE || st == PX_DOH_HTTP_BAD_MEDIA_TYPE ||
	       st == PX_DOH_HTTP_URI_TOO_LONG || st == 500;
}

static long parse_num(const uint8_t *p, size_t n)
{
	long v = 0;

	check(n > 0 && n <= 9);
	for (size_t i = 0; i < n; i++) {
		check(p[i] >= '0' && p[i] <= '9');
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static void response_headers(int32_t id, const uint8_t *blk, size_t n)
{
	struct stream_rec *r = find_stream(id);
	bool ct_dns = false;

	/* Errors (4xx) answer streams that never became queries. */
	if (r == NULL && g.n_st < MAX_STREAMS) {
		r = &g.st[g.n_st++];
		r->id = id;
		r->clen = -1;
	}
	check(r == NULL || r->status == 0);
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(g.inflater, &nv, &fl, blk, n, 1);

		check(rv >= 0);
		blk += rv;
		n -= (size_t)rv;
		if (fl & NGHTTP2_HD_INFLATE_EMIT) {
			if (r == NULL)
				continue;
			if (nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0)
				r->status = (int)parse_num(nv.value, nv.valuelen);
			else if (nv.namelen == 14 && memcmp(nv.name, "content-length", 14) == 0)
				r->clen = parse_num(nv.value, nv.valuelen);
			else if (nv.namelen == 12 && memcmp(nv.name, "content-type", 12) == 0)
				ct_dns = nv.valuelen == 23 &&
				         memcmp(nv.value, "application/dns-message", 23) == 0;
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(g.inflater);
			break;
		}
		if (rv == 0 && n == 0)
			break;
	}
	check(n == 0);
	if (r == NULL)
		return;
	check(known_status(r->status));
	if (r->status == PX_DOH_HTTP_OK) {
		check(ct_dns && r->answer != NULL && r->clen == (long)r->answer_len);
	} else {
		check(r->clen == 0);
	}
}

static void response_data(int32_t id, const uint8_t *p, size_t n, bool end)
{
	struct stream_rec *r = find_stream(id);

	if (r == NULL)
		return;
	check(r->status == PX_DOH_HTTP_OK && !r->ended);
	check(r->data + n <= r->answer_len);
	check(memcmp(p, r->answer + r->data, n) == 0);
	r->data += n;
	if (end) {
		r->ended = true;
		check(r->data == r->answer_len);
	}
}

static void output_frame(const uint8_t *h, const uint8_t *p, size_t n)
{
	uint8_t type = h[3], flags = h[4];
	int32_t id = (int32_t)(codec_get_u32(h + 5) & 0x7fffffffu);

	if (g.frames++ == 0) {
		/* Our SETTINGS: 100 streams, a window of one whole message. */
		check(type == NGHTTP2_SETTINGS && id == 0 && !(flags & NGHTTP2_FLAG_ACK));
		check(n == 12);
		check(codec_get_u16(p) == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
		check(codec_get_u16(p + 6) == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE &&
		      codec_get_u32(p + 8) == PX_DOH_MSG_MAX);
		return;
	}
	switch (type) {
	case NGHTTP2_HEADERS:
		/* Never padded or prioritised, one block, on a client stream. */
		check(id > 0 && (id & 1) == 1);
		check((flags & (NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY)) == 0);
		check(flags & NGHTTP2_FLAG_END_HEADERS);
		response_headers(id, p, n);
		if (flags & NGHTTP2_FLAG_END_STREAM) {
			struct stream_rec *r = find_stream(id);
			if (r != NULL) {
				check(r->status != PX_DOH_HTTP_OK || r->answer_len == 0);
				r->ended = true;
			}
		}
		break;
	case NGHTTP2_DATA:
		check(id > 0 && (id & 1) == 1 && !(flags & NGHTTP2_FLAG_PADDED));
		response_data(id, p, n, (flags & NGHTTP2_FLAG_END_STREAM) != 0);
		break;
	case NGHTTP2_PUSH_PROMISE:
	case NGHTTP2_CONTINUATION:
		check(0);
		break;
	default:
		/* SETTINGS ACK, PING ACK, WINDOW_UPDATE, RST_STREAM, GOAWAY. */
		break;
	}
}

int tls_stream_write(struct tls_stream *s, const uint8_t *p, size_t n)
{
	(void)s;
	/* doh.c writes nothing once it has closed the connection. */
	check(!g.conn.closing && n > 0);
	if (g.out_budget > 0 && g.out_total + n > g.out_budget)
		return -ENOBUFS;
	g.out_total += n;
	while (n > 0) {
		if (g.fh_have < H2_HDR_LEN) {
			size_t take = H2_HDR_LEN - g.fh_have < n ? H2_HDR_LEN - g.fh_have : n;
			memcpy(g.fh + g.fh_have, p, take);
			g.fh_have += take;
			p += take;
			n -= take;
			if (g.fh_have < H2_HDR_LEN)
				break;
			g.payload_len = (size_t)g.fh[0] << 16 | (size_t)g.fh[1] << 8 | g.fh[2];
			check(g.payload_len <= H2_FRAME_MAX);
			g.payload_have = 0;
		}
		size_t take =
		        g.payload_len - g.payload_have < n ? g.payload_len - g.payload_have : n;
		memcpy(g.payload + g.payload_have, p, take);
		g.payload_have += take;
		p += take;
		n -= take;
		if (g.payload_have == g.payload_len) {
			output_frame(g.fh, g.payload, g.payload_len);
			g.fh_have = 0;
		}
	}
	return 0;
}

/* --- the session -------------------------------------------------------- */

/* The worker's check phase: answers that arrived meanwhile leave now. */
static void loop_turn(void)
{
	for (size_t i = 0; i < g.n_st; i++)
		if (g.st[i].pending && (g.ctl & CTL_WHEN) != WHEN_NEVER)
			give_answer(&g.st[i]);
	if (g.conn.flush_queued) {
		g.conn.flush_queued = false;
		if (!g.conn.closing)
			px_doh_flush(&g.conn);
	}
}

static void reset(void)
{
	for (size_t i = 0; i < g.n_st; i++)
		free(g.st[i].answer);
	memset(g.st, 0, sizeof(g.st));
	g.n_st = 0;
	g.queries = 0;
	g.out_total = 0;
	g.fh_have = 0;
	g.frames = 0;
	/* Only the fields doh.c uses; conn.idle stays a real, idle timer
	 * (doh.c stops it when a query goes out). */
	g.conn.closing = false;
	g.conn.flush_queued = false;
	g.conn.cur_stream = 0;
	g.conn.doh = NULL;
	g.conn.refs = 1; /* the handles' reference */
	g.refs_floor = 1;
	if (g.inflater != NULL)
		nghttp2_hd_inflate_del(g.inflater);
	g.inflater = NULL;
	check(nghttp2_hd_inflate_new(&g.inflater) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t reads[] = {0, 1, 7, 9, 16, 100, 1000, 4096};

	if (size < 2)
		return 0;
	if (g.payload == NULL) {
		g.payload = malloc(H2_FRAME_MAX);
		check(g.payload != NULL);
		g.w.cfg = &g.cfg;
		check(uv_loop_init(&g.w.loop) == 0);
		check(uv_timer_init(&g.w.loop, &g.conn.idle) == 0);
		g.conn.w = &g.w;
		g.conn.kind = PX_CONN_DOH;
		memcpy(g.cfg.listen.doh_path, "/dns-query", sizeof("/dns-query"));
	}
	g.ctl = data[0];
	reset();
	g.out_budget = (size_t)(data[1] & 0x0f) * 64;
	check(px_doh_start(&g.conn) == 0 && g.conn.doh != NULL);
	check(g.frames == 1);

	size_t chunk = reads[g.ctl >> CTL_READ_SHIFT & 7];
	bool first = true;

	if (g.ctl & CTL_PREFACE)
		px_doh_recv(&g.conn, preface, sizeof(preface) - 1);
	data += 2;
	size -= 2;
	while (size > 0 && !g.conn.closing) {
		size_t n = chunk == 0 || chunk > size ? size : chunk;

		px_doh_recv(&g.conn, data, n);
		check(g.conn.refs == 1);
		data += n;
		size -= n;
		if (first && (g.ctl & CTL_GOAWAY) && !g.conn.closing)
			px_doh_goaway(&g.conn);
		first = false;
		if (!g.conn.closing)
			loop_turn();
	}
	if (!g.conn.closing)
		loop_turn();
	/* Whatever the session sent ends on a frame boundary. */
	check(g.fh_have == 0);
	for (size_t i = 0; i < g.n_st; i++) {
		const struct stream_rec *r = &g.st[i];
		check(r->data <= r->answer_len);
		/* FUZZ_VERBOSE=1 shows what a seed did, for writing seeds. */
		if (getenv("FUZZ_VERBOSE") != NULL)
			fprintf(stderr, "stream %d: status %d, answer %zu, data %zu%s\n", r->id,
			        r->status, r->answer_len, r->data, r->ended ? ", ended" : "");
	}
	px_doh_free(&g.conn);
	check(g.conn.doh == NULL);
	return 0;
}
