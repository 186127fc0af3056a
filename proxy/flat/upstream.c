/* proxy/flat/upstream.c - queries apexd asks on its own behalf.
 *
 * ANAME-presence probes, chase steps and SOA lookups go to BIND or to a
 * resolver through here, never through the ID-preserving backend client:
 * each query gets a fresh socket bound to a kernel-chosen random port and
 * a random ID from the caller (RFC 5452 defences against spoofed answers),
 * and the answer is offered to the caller's callback, which says whether
 * it belongs to the query (a mismatched datagram is ignored and the query
 * keeps waiting until its timeout).
 *
 * This is the slow path (a cache miss), so one small allocation per query
 * is fine. TCP is one connection per query: it is used only after a
 * truncated UDP answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "proxy/flat/upstream.h"
#include "codec/name.h"
#include "proxy/engine/worker.h"
#include "proxy/io/frame.h"
#include "proxy/io/rbuf.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/dnstap_part.h"
#include "proxy/ops/stats.h"

struct px_up {
	struct px_up_home home;
	bool tcp;
	bool done;
	unsigned handles_open;
	union {
		uv_udp_t udp;
		uv_tcp_t tcp;
	} h;
	uv_connect_t creq;
	uv_timer_t timer;
	px_up_cb *cb;
	void *arg;
	struct px_rbuf in;
	struct px_up *prev, *next; /* worker's list, for shutdown */
	/* dnstap (home.tap set and on): both ends and when it left. */
	bool tapped;
	struct px_tap_time tap_sent;
	struct sockaddr_storage tap_local, tap_server;
	uint16_t qlen;
	uint8_t q[]; /* the query; framed (2-byte prefix) for TCP */
};

/* IDs come from the kernel's CSPRNG 128 at a time, per thread: one
 * getrandom() per 128 queries instead of one each. The bytes are the
 * same unpredictable output, only fetched ahead; each is used once and
 * wiped. (apexd does not fork after its threads start, so no two
 * processes share a buffer.) */
#define PX_UP_ID_BATCH 256 /* bytes: getrandom() requests <= 256 are atomic */

static _Thread_local struct {
	uint8_t b[PX_UP_ID_BATCH];
	unsigned left; /* unused bytes at the end of b */
} id_pool;

uint16_t px_up_random_id(void)
{
	uint16_t id;

	if (id_pool.left < sizeof(id)) {
		/* Never blocks after boot and cannot be cut short. */
		if (getrandom(id_pool.b, sizeof(id_pool.b), 0) != (ssize_t)sizeof(id_pool.b))
			return (uint16_t)rand();
		id_pool.left = sizeof(id_pool.b);
	}
	id_pool.left -= sizeof(id);
	memcpy(&id, id_pool.b + id_pool.left, sizeof(id));
	memset(id_pool.b + id_pool.left, 0, sizeof(id));
	return id;
}

static void up_handle_closed(uv_handle_t *h)
{
	struct px_up *u = h->data;

	if (--u->handles_open > 0)
		return;
	free(u->in.buf);
	free(u);
}

static void up_finish(struct px_up *u)
{
	const struct px_up_home *home = &u->home;

	if (u->done)
		return;
	u->done = true;
	home->own->n_ups--;
	if (u->prev != NULL)
		u->prev->next = u->next;
	else
		home->own->ups = u->next;
	if (u->next != NULL)
		u->next->prev = u->prev;
	uv_close((uv_handle_t *)&u->timer, up_handle_closed);
	uv_close((uv_handle_t *)&u->h, up_handle_closed);
}

/* FORWARDER_QUERY once the query is on its way: the socket's own
 * address is known then. */
static void up_tap_query(struct px_up *u, const struct sockaddr *server)
{
	int len = sizeof(u->tap_local);
	int rc = u->tcp ? uv_tcp_getsockname(&u->h.tcp, (struct sockaddr *)&u->tap_local, &len)
	                : uv_udp_getsockname(&u->h.udp, (struct sockaddr *)&u->tap_local, &len);

	if (rc < 0)
		u->tap_local.ss_family = AF_UNSPEC;
	memcpy(&u->tap_server, server,
	       server->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                     : sizeof(struct sockaddr_in));
	u->tapped = true;
	px_dnstap_now(&u->tap_sent);
	size_t hdr = u->tcp ? 2 : 0;
	px_dnstap_forward(u->home.tap, u->tcp, (const struct sockaddr *)&u->tap_local, server,
	                  &u->tap_sent, u->q + hdr, u->qlen - hdr, NULL, 0);
}

/* Offers msg to the caller; true when the query is over. */
static bool up_deliver(struct px_up *u, int status, const uint8_t *msg, size_t len)
{
	/* Whatever arrived, before the caller judges (and may end) it. */
	if (u->tapped && status == 0)
		px_dnstap_forward(u->home.tap, u->tcp, (const struct sockaddr *)&u->tap_local,
		                  (const struct sockaddr *)&u->tap_server, &u->tap_sent, NULL, 0,
		                  msg, len);
	int rc = u->cb(u->arg, status, msg, len);

	if (rc == PX_UP_WAIT && status == 0)
		return false;
	up_finish(u);
	return true;
}

static void up_timer_cb(uv_timer_t *h)
{
	struct px_up *u = h->data;

	if (!u->done)
		up_deliver(u, UV_ETIMEDOUT, NULL, 0);
}

static void up_udp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_up *u = h->data;
	(void)suggested;
	buf->base = (char *)u->home.own->rx;
	buf->len = PX_UDP_DGRAM_MAX;
}

static void up_udp_recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                           unsigned flags)
{
	struct px_up *u = h->data;
	(void)flags;

	if (u->done)
		return;
	if (n < 0) {
		/* ECONNREFUSED: nothing listens at that address. */
		up_deliver(u, (int)n, NULL, 0);
		return;
	}
	if (from == NULL)
		return;
	up_deliver(u, 0, (const uint8_t *)buf->base, (size_t)n);
}

static void up_tcp_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct px_up *u = h->data;
	(void)suggested;
	px_rbuf_alloc(&u->in, buf);
}

static void up_tcp_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct px_up *u = s->data;
	struct px_rbuf *in = &u->in;
	(void)buf;

	if (u->done || n == 0)
		return;
	if (n < 0) {
		up_deliver(u, n == UV_EOF ? UV_ECONNRESET : (int)n, NULL, 0);
		return;
	}
	in->end += (size_t)n;
	size_t off, flen;
	while (!u->done && px_frame_next(in->buf + in->start, in->end - in->start, &off, &flen)) {
		const uint8_t *msg = in->buf + in->start + off;
		in->start += off + flen;
		up_deliver(u, 0, msg, flen);
	}
}

static void up_write_cb(uv_write_t *req, int status)
{
	struct px_up *u = req->data;

	free(req);
	if (status < 0 && !u->done)
		up_deliver(u, status, NULL, 0);
}

static void up_connect_cb(uv_connect_t *req, int status)
{
	struct px_up *u = req->data;

	if (u->done)
		return;
	if (status < 0) {
		up_deliver(u, status, NULL, 0);
		return;
	}
	uv_write_t *wr = malloc(sizeof(*wr));
	if (wr == NULL) {
		up_deliver(u, UV_ENOMEM, NULL, 0);
		return;
	}
	wr->data = u;
	uv_buf_t b = uv_buf_init((char *)u->q, u->qlen);
	int rc = uv_write(wr, (uv_stream_t *)&u->h.tcp, &b, 1, up_write_cb);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&u->h.tcp, up_tcp_alloc_cb, up_tcp_read_cb);
	else
		free(wr);
	if (rc < 0) {
		up_deliver(u, rc, NULL, 0);
		return;
	}
	if (u->home.tap != NULL && u->home.tap->on) {
		struct sockaddr_storage server;
		int len = sizeof(server);
		if (uv_tcp_getpeername(&u->h.tcp, (struct sockaddr *)&server, &len) == 0)
			up_tap_query(u, (const struct sockaddr *)&server);
	}
}

static int up_start_udp(struct px_up *u, const struct sockaddr *server)
{
	struct sockaddr_storage any;
	int rc;

	memset(&any, 0, sizeof(any));
	any.ss_family = server->sa_family;
	rc = uv_udp_init(u->home.loop, &u->h.udp);
	if (rc < 0)
		return rc;
	u->handles_open++;
	/* Port 0: the kernel picks a random ephemeral port per socket. */
	rc = uv_udp_bind(&u->h.udp, (const struct sockaddr *)&any, 0);
	if (rc == 0)
		rc = uv_udp_connect(&u->h.udp, server);
	if (rc == 0)
		rc = uv_udp_recv_start(&u->h.udp, up_udp_alloc_cb, up_udp_recv_cb);
	if (rc == 0) {
		uv_buf_t b = uv_buf_init((char *)u->q, u->qlen);
		rc = uv_udp_try_send(&u->h.udp, &b, 1, NULL);
		if (rc > 0)
			rc = 0;
	}
	return rc;
}

static int up_start_tcp(struct px_up *u, const struct sockaddr *server)
{
	int rc = uv_tcp_init(u->home.loop, &u->h.tcp);

	if (rc < 0)
		return rc;
	u->handles_open++;
	u->creq.data = u;
	return uv_tcp_connect(&u->creq, &u->h.tcp, server, up_connect_cb);
}

void px_up_home_of(struct px_up_home *home, struct px_worker *w)
{
	home->loop = &w->loop;
	home->own = &w->own;
	home->stats = &w->stats;
	home->tap = NULL;
}

int px_up_send(const struct px_up_home *home, const struct sockaddr *server, const uint8_t *q,
               size_t qlen, bool tcp, uint64_t timeout_ms, px_up_cb *cb, void *arg)
{
	size_t room = tcp ? qlen + 2 : qlen;
	struct px_up *u;
	int rc;

	if (qlen < CODEC_HDR_LEN || qlen > CODEC_MAX_MSG)
		return -EINVAL;
	if (home->own->n_ups >= PX_UP_MAX_INFLIGHT) {
		if (home->stats != NULL)
			PX_STAT_INC(home->stats, upstream_busy);
		return -EBUSY;
	}
	u = calloc(1, sizeof(*u) + room);
	if (u == NULL)
		return -ENOMEM;
	u->home = *home;
	u->tcp = tcp;
	u->cb = cb;
	u->arg = arg;
	if (tcp) {
		codec_put_u16(u->q, (uint16_t)qlen);
		memcpy(u->q + 2, q, qlen);
	} else {
		memcpy(u->q, q, qlen);
	}
	u->qlen = (uint16_t)room;
	u->h.udp.data = u;
	u->timer.data = u;
	uv_timer_init(home->loop, &u->timer);
	u->handles_open = 1;

	rc = tcp ? up_start_tcp(u, server) : up_start_udp(u, server);
	if (rc < 0) {
		/* libuv's rule, kept here: a failed start never calls back. */
		u->done = true;
		uv_close((uv_handle_t *)&u->timer, up_handle_closed);
		if (u->handles_open > 1)
			uv_close((uv_handle_t *)&u->h, up_handle_closed);
		return rc;
	}
	uv_timer_start(&u->timer, up_timer_cb, timeout_ms, 0);
	if (!tcp && home->tap != NULL && home->tap->on)
		up_tap_query(u, server);
	u->next = home->own->ups;
	if (home->own->ups != NULL)
		home->own->ups->prev = u;
	home->own->ups = u;
	home->own->n_ups++;
	return 0;
}

int px_up_query(struct px_worker *w, const struct sockaddr *server, const uint8_t *q, size_t qlen,
                bool tcp, uint64_t timeout_ms, px_up_cb *cb, void *arg)
{
	struct px_up_home home;

	px_up_home_of(&home, w);
	return px_up_send(&home, server, q, qlen, tcp, timeout_ms, cb, arg);
}

void px_up_cancel_home(const struct px_up_home *home)
{
	while (home->own->ups != NULL)
		up_deliver(home->own->ups, UV_ECANCELED, NULL, 0);
}

void px_up_cancel_all(struct px_worker *w)
{
	struct px_up_home home;

	px_up_home_of(&home, w);
	px_up_cancel_home(&home);
}
