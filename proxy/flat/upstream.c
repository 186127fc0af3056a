/* proxy/flat/upstream.c - queries apexd asks on its own behalf.
 *
 * ANAME-presence probes, chase steps and SOA lookups go to BIND or to a
 * resolver through here, never through the ID-preserving backend client.
 * Each query has a random ID from the caller and leaves from a UDP socket
 * bound to a kernel-chosen random port and connected to the server, so
 * the kernel drops datagrams from anywhere else (RFC 5452 defences
 * against spoofed answers); the answer is offered to the caller's
 * callback, which says whether it belongs to the query (a mismatched
 * datagram is ignored and the query keeps waiting until its timeout).
 *
 * Sockets are shared: a fresh socket per query cost socket, bind,
 * connect, two epoll_ctl and close per probe, more than the query
 * itself. A home keeps up to PX_UP_SOCKS_PER_SERVER sockets per server,
 * each on its own random port; a query goes out on one picked at random
 * (a new one is opened while there are fewer), and its answer is matched
 * by ID among the queries waiting on that socket. A socket takes at most
 * PX_UP_SOCK_USES queries, then is retired (no new ones) and closes with
 * its last query; any socket closes when no query waits on it. So an
 * off-path attacker still has to hit a random port and a random ID: with
 * k queries in flight spread over the pool the chance per forged datagram
 * is the same k / (ports * 65536) as with one socket each, and a port
 * lives for at most PX_UP_SOCK_USES queries, which bounds what learning
 * one (a side channel, say) is worth. docs/security.md has the
 * reasoning. An ICMP error on a socket (nothing listens there) fails
 * every query waiting on it: they all went to that server.
 *
 * TCP is one connection per query: it is used only after a truncated
 * UDP answer.
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

/* Ended UDP queries a worker keeps (with room for a query this long),
 * so that probes and chase steps do not each go through malloc. */
#define PX_UP_SPARE_MAX 256
#define PX_UP_SPARE_ROOM 512

/* Sockets per server and home, and queries per socket before it retires. */
#define PX_UP_SOCKS_PER_SERVER 4
#define PX_UP_SOCK_USES 64

struct px_up_sock {
	uv_udp_t h;
	struct px_own_queries *own;
	struct sockaddr_storage server;
	struct px_up *waiting;          /* queries sent from here, not over */
	unsigned uses;                  /* queries sent from here */
	bool retired;                   /* takes no new queries */
	struct px_up_sock *prev, *next; /* own->socks (open, not closing) */
};

struct px_up {
	struct px_up_home home;
	bool tcp;
	bool done;
	bool spare_ok; /* has PX_UP_SPARE_ROOM and a home that keeps spares */
	unsigned handles_open;
	uint16_t id;                 /* UDP: the query's ID, to match answers */
	struct px_up_sock *sock;     /* UDP: where it went */
	struct px_up *sprev, *snext; /* sock->waiting */
	struct {
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
	struct px_own_queries *own = u->home.own;
	if (u->spare_ok && own->n_spare < PX_UP_SPARE_MAX) {
		u->next = own->spare;
		own->spare = u;
		own->n_spare++;
		return;
	}
	free(u);
}

void px_up_spare_free(struct px_own_queries *own)
{
	while (own->spare != NULL) {
		struct px_up *u = own->spare;
		own->spare = u->next;
		free(u);
	}
	own->n_spare = 0;
}

/* A zeroed query with room for room bytes: a kept one if it fits. */
static struct px_up *up_alloc(struct px_own_queries *own, bool tcp, size_t room)
{
	bool spare_ok = !tcp && own->keep_spare && room <= PX_UP_SPARE_ROOM;
	struct px_up *u = spare_ok ? own->spare : NULL;

	if (u != NULL) {
		own->spare = u->next;
		own->n_spare--;
		memset(u, 0, sizeof(*u));
	} else {
		u = calloc(1, sizeof(*u) + (spare_ok ? PX_UP_SPARE_ROOM : room));
		if (u == NULL)
			return NULL;
	}
	u->spare_ok = spare_ok;
	return u;
}

static void sock_closed(uv_handle_t *h)
{
	free(h->data);
}

/* Takes s out of its home's list (no new queries) and closes it. */
static void sock_close(struct px_up_sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		s->own->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	s->retired = true;
	uv_close((uv_handle_t *)&s->h, sock_closed);
}

static void sock_unlink(struct px_up *u)
{
	struct px_up_sock *s = u->sock;

	if (u->sprev != NULL)
		u->sprev->snext = u->snext;
	else
		s->waiting = u->snext;
	if (u->snext != NULL)
		u->snext->sprev = u->sprev;
	u->sock = NULL;
	/* An idle home holds no sockets (and a closing loop none to leak). */
	if (s->waiting == NULL && !uv_is_closing((uv_handle_t *)&s->h))
		sock_close(s);
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
	if (u->tcp)
		uv_close((uv_handle_t *)&u->h.tcp, up_handle_closed);
	else if (u->sock != NULL)
		sock_unlink(u);
}

/* FORWARDER_QUERY once the query is on its way: the socket's own
 * address is known then. */
static void up_tap_query(struct px_up *u, const struct sockaddr *server)
{
	int len = sizeof(u->tap_local);
	int rc = u->tcp ? uv_tcp_getsockname(&u->h.tcp, (struct sockaddr *)&u->tap_local, &len)
	                : uv_udp_getsockname(&u->sock->h, (struct sockaddr *)&u->tap_local, &len);

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
	struct px_up_sock *s = h->data;
	(void)suggested;
	buf->base = (char *)s->own->rx;
	buf->len = PX_UDP_DGRAM_MAX;
}

static void up_udp_recv_cb(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                           unsigned flags)
{
	struct px_up_sock *s = h->data;
	(void)flags;

	if (n < 0) {
		/* ECONNREFUSED: nothing listens at the server's address, for
		 * any query here. Each delivery ends its query; the last
		 * closes the socket. */
		s->retired = true;
		while (s->waiting != NULL)
			up_deliver(s->waiting, (int)n, NULL, 0);
		return;
	}
	if (from == NULL || n < 2)
		return;
	const uint8_t *msg = (const uint8_t *)buf->base;
	uint16_t id = (uint16_t)(msg[0] << 8 | msg[1]);
	/* Two queries here may share an ID: the first whose callback takes
	 * the answer (it checks the question) ends the search. */
	for (struct px_up *u = s->waiting, *next; u != NULL; u = next) {
		next = u->snext;
		if (u->id == id && up_deliver(u, 0, msg, (size_t)n))
			break;
	}
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

static bool same_server(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET6)
		return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
	const struct sockaddr_in *x = (const struct sockaddr_in *)a;
	const struct sockaddr_in *y = (const struct sockaddr_in *)b;
	return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* A new socket on a kernel-chosen random port, connected to server. */
static struct px_up_sock *sock_open(struct px_own_queries *own, uv_loop_t *loop,
                                    const struct sockaddr *server, int *rc)
{
	struct px_up_sock *s = calloc(1, sizeof(*s));
	struct sockaddr_storage any;

	if (s == NULL) {
		*rc = UV_ENOMEM;
		return NULL;
	}
	memset(&any, 0, sizeof(any));
	any.ss_family = server->sa_family;
	*rc = uv_udp_init(loop, &s->h);
	if (*rc < 0) {
		free(s);
		return NULL;
	}
	s->h.data = s;
	s->own = own;
	memcpy(&s->server, server,
	       server->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                     : sizeof(struct sockaddr_in));
	/* Port 0: the kernel picks a random ephemeral port. */
	*rc = uv_udp_bind(&s->h, (const struct sockaddr *)&any, 0);
	if (*rc == 0)
		*rc = uv_udp_connect(&s->h, server);
	if (*rc == 0)
		*rc = uv_udp_recv_start(&s->h, up_udp_alloc_cb, up_udp_recv_cb);
	if (*rc < 0) {
		uv_close((uv_handle_t *)&s->h, sock_closed);
		return NULL;
	}
	s->next = own->socks;
	if (own->socks != NULL)
		own->socks->prev = s;
	own->socks = s;
	return s;
}

/* The socket for a query to server: a new one while the server has
 * fewer than PX_UP_SOCKS_PER_SERVER, else one of those at random (pick,
 * from the query's random ID). */
static struct px_up_sock *sock_for(struct px_own_queries *own, uv_loop_t *loop,
                                   const struct sockaddr *server, unsigned pick, int *rc)
{
	struct px_up_sock *open[PX_UP_SOCKS_PER_SERVER];
	unsigned n = 0;

	for (struct px_up_sock *s = own->socks; s != NULL && n < PX_UP_SOCKS_PER_SERVER;
	     s = s->next)
		if (!s->retired && same_server(&s->server, server))
			open[n++] = s;
	if (n < PX_UP_SOCKS_PER_SERVER)
		return sock_open(own, loop, server, rc);
	return open[pick % n];
}

static int up_start_udp(struct px_up *u, const struct sockaddr *server)
{
	int rc;
	struct px_up_sock *s = sock_for(u->home.own, u->home.loop, server, u->id, &rc);

	if (s == NULL)
		return rc;
	uv_buf_t b = uv_buf_init((char *)u->q, u->qlen);
	rc = uv_udp_try_send(&s->h, &b, 1, NULL);
	if (rc < 0) {
		/* Whatever broke the socket (an ICMP error queued on it, say)
		 * keeps it from the next query. */
		s->retired = true;
		if (s->waiting == NULL && !uv_is_closing((uv_handle_t *)&s->h))
			sock_close(s);
		return rc;
	}
	if (++s->uses >= PX_UP_SOCK_USES)
		s->retired = true;
	u->sock = s;
	u->snext = s->waiting;
	if (s->waiting != NULL)
		s->waiting->sprev = u;
	s->waiting = u;
	return 0;
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
	u = up_alloc(home->own, tcp, room);
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
	u->id = (uint16_t)(q[0] << 8 | q[1]);
	u->h.tcp.data = u;
	u->timer.data = u;
	uv_timer_init(home->loop, &u->timer);
	u->handles_open = 1;

	rc = tcp ? up_start_tcp(u, server) : up_start_udp(u, server);
	if (rc < 0) {
		/* libuv's rule, kept here: a failed start never calls back. */
		u->done = true;
		uv_close((uv_handle_t *)&u->timer, up_handle_closed);
		if (u->handles_open > 1)
			uv_close((uv_handle_t *)&u->h.tcp, up_handle_closed);
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
