/* proxy/engine/query.c - what happens to a client message, whatever its transport.
 *
 * The message is validated once by codec_scan(). A readable header with
 * QR=0 that fails the scan gets FORMERR; anything shorter than a header,
 * and anything with QR=1 (answering a response invites reflection loops),
 * is dropped and counted. Everything that scans goes to the backend
 * unchanged, whatever its opcode, so BIND's own answer (NOTIFY, UPDATE,
 * NOTIMP for an unknown opcode, FORMERR for two questions) reaches the
 * client exactly as BIND wrote it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/build.h"
#include "flatten/rewrite.h"
#include "proxy/engine/query.h"
#include "proxy/backend/backend.h"
#include "proxy/engine/anscache.h"
#include "proxy/engine/rrl.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/log.h"
#include "proxy/ops/qlog.h"
#include "proxy/ops/stats.h"
#include "proxy/daemon/server.h"

/* Where a query came from and where its answer goes, for the steps. */
struct client {
	enum px_origin origin;
	struct px_udp_listener *ul;
	const struct sockaddr *peer;      /* UDP: where the answer goes */
	const struct sockaddr *addr;      /* UDP: who asked (a PROXY header's source, or peer) */
	const struct px_udp_local *local; /* UDP on a wildcard: the address asked */
	struct px_conn *conn;
	uint64_t rx_ns;
};

/* Who asked, as px_txn_client_addr() says it for a txn. */
static const struct sockaddr *client_addr(const struct client *c)
{
	return c->origin == PX_ORIGIN_UDP ? c->addr : px_conn_client(c->conn);
}

/* An answer written without a txn; q is the client's message and qv its
 * scan (NULL when it did not scan), for the query log. */
static void reply_direct(struct px_worker *w, const uint8_t *msg, size_t len,
                         const struct client *c, const uint8_t *q, size_t qlen,
                         const struct codec_view *qv)
{
	px_stats_answer(&w->stats, px_transport_of(c->origin, c->conn), msg, len, c->rx_ns);
	if (w->ql.on)
		px_qlog_direct(w, c->origin == PX_ORIGIN_UDP, client_addr(c), c->conn, q, qlen, qv,
		               msg, len);
	if (w->tap.on)
		px_dnstap_direct(w, c->origin, c->ul, c->local, client_addr(c), c->conn, q, qlen,
		                 msg, len, c->rx_ns);
	if (c->origin == PX_ORIGIN_UDP)
		px_udp_send(c->ul, c->peer, c->local, msg, len);
	else
		px_conn_send(c->conn, msg, len);
}

static bool is_xfr(const struct codec_view *v)
{
	return v->opcode == CODEC_OPCODE_QUERY && v->qdcount >= 1 &&
	       (v->qtype == CODEC_TYPE_AXFR || v->qtype == CODEC_TYPE_IXFR);
}

/* [limits] said slip: a truncated reply invites a retry over TCP. */
static void rrl_slip(struct px_worker *w, const uint8_t *msg, size_t len, const struct client *c)
{
	struct codec_view v;
	uint8_t out[PX_REPLY_MAX];
	ssize_t n = px_rrl_slip_reply(msg, len, codec_scan(msg, len, &v) == 0 ? &v : NULL, out,
	                              sizeof(out));

	if (n > 0) {
		PX_STAT_INC(&w->stats, rrl_slipped);
		if (w->tap.on)
			px_dnstap_direct(w, c->origin, c->ul, c->local, c->addr, NULL, msg, len,
			                 out, (size_t)n, c->rx_ns);
		px_udp_send(c->ul, c->peer, c->local, out, (size_t)n);
	}
}

/* Admit: counts the query and decides whether it gets anything at all.
 * [limits] is decided before anything else is spent on the query, so a
 * limited one costs neither BIND nor a chase. The replies of the rare
 * paths are built in functions of their own: their buffers would keep
 * the compiler from inlining the steps into px_query_handle. */
static bool admit(struct px_worker *w, const uint8_t *msg, size_t len, const struct client *c)
{
	if (c->origin == PX_ORIGIN_UDP)
		PX_STAT_INC(&w->stats, queries_udp);
	else if (c->conn->kind == PX_CONN_TCP)
		PX_STAT_INC(&w->stats, queries_tcp); /* DoT and DoH count their own */

	if (len < CODEC_HDR_LEN || codec_hdr_qr(msg)) {
		PX_STAT_INC(&w->stats, malformed_dropped);
		return false;
	}
	if (c->origin != PX_ORIGIN_UDP || w->rrl == NULL)
		return true;
	enum px_rrl_verdict rv = px_rrl_check(w->rrl, c->addr, px_now(w));
	if (rv == PX_RRL_DROP) {
		PX_STAT_INC(&w->stats, rrl_dropped);
		return false;
	}
	if (rv == PX_RRL_SLIP) {
		rrl_slip(w, msg, len, c);
		return false;
	}
	return true;
}

static void reply_formerr(struct px_worker *w, const uint8_t *msg, size_t len,
                          const struct client *c)
{
	uint8_t out[PX_REPLY_MAX];
	ssize_t n = codec_build_error(msg, len, NULL, CODEC_RCODE_FORMERR, CODEC_EDE_NONE, NULL,
	                              out, sizeof(out));

	if (n > 0) {
		PX_STAT_INC(&w->stats, formerr_sent);
		reply_direct(w, out, (size_t)n, c, msg, len, NULL);
	}
}

/* Scan: false when msg does not scan; it got FORMERR then. */
static bool scan(struct px_worker *w, const uint8_t *msg, size_t len, struct codec_view *v,
                 const struct client *c)
{
	if (codec_scan(msg, len, v) == 0)
		return true;
	reply_formerr(w, msg, len, c);
	return false;
}

/* Shortcut: true when the query was answered without a transaction
 * (a NOTIFY apexd handles itself, or the answer cache). */
static bool shortcut(struct px_worker *w, const uint8_t *msg, size_t len,
                     const struct codec_view *v, const struct client *c)
{
	if (v->opcode == CODEC_OPCODE_NOTIFY) {
		const struct sockaddr *from = client_addr(c);
		/* A zone changed: no answer cache may serve what BIND had. */
		if (w->anscache != NULL && px_from_backend(w, from))
			atomic_fetch_add_explicit(&w->srv->anscache_gen, 1, memory_order_relaxed);
		if (px_flat_notify(w, msg, len, v, from, c->peer, c->origin, c->ul, c->local,
		                   c->conn))
			return true;
	}
	if (w->anscache == NULL)
		return false;
	size_t max = flat_rewrite_max_size(v, c->origin == PX_ORIGIN_TCP);
	uint32_t gen = atomic_load_explicit(&w->srv->anscache_gen, memory_order_relaxed);
	ssize_t n = px_anscache_get(w->anscache, msg, v, px_now(w), gen, max, w->ac_out);
	if (n <= 0)
		return false;
	PX_STAT_INC(&w->stats, answers_cached);
	reply_direct(w, w->ac_out, (size_t)n, c, msg, len, v);
	return true;
}

static void reply_overloaded(struct px_worker *w, const uint8_t *msg, size_t len,
                             const struct codec_view *v, const struct client *c)
{
	uint8_t out[PX_REPLY_MAX];
	ssize_t n;

	PX_STAT_INC(&w->stats, txn_full);
	PX_STAT_INC(&w->stats, servfail_sent);
	n = codec_build_error(msg, len, v, CODEC_RCODE_SERVFAIL, CODEC_EDE_OTHER,
	                      "apexd is overloaded: no transaction slot free", out, sizeof(out));
	if (n > 0)
		reply_direct(w, out, (size_t)n, c, msg, len, v);
}

/* A transaction for the query, tied to its client; NULL when none is
 * free (the client got SERVFAIL then). */
static struct px_txn *txn_open(struct px_worker *w, const uint8_t *msg, size_t len,
                               const struct codec_view *v, const struct client *c)
{
	struct px_txn *t = px_txn_new(w);

	if (t == NULL || px_txn_set_query(t, msg, len, v) < 0) {
		if (t != NULL)
			px_txn_free(w, t);
		reply_overloaded(w, msg, len, v, c);
		return NULL;
	}
	t->origin = c->origin;
	t->rx_ns = c->rx_ns;
	/* The same clock read serves the latency histogram. */
	if (w->ql.on)
		t->ql.start_ns = c->rx_ns;
	if (c->origin == PX_ORIGIN_UDP) {
		t->cl.ul = c->ul;
		c->ul->txns++; /* a removed listener stays open for this answer */
		memcpy(&t->cl.peer, c->peer,
		       c->peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                      : sizeof(struct sockaddr_in));
		if (c->addr != c->peer) {
			t->cl.proxied = true;
			memcpy(&t->cl.client, c->addr,
			       c->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
			                                      : sizeof(struct sockaddr_in));
		}
		if (c->local != NULL)
			t->cl.local = *c->local; /* for answers that come later */
	} else {
		t->cl.conn = c->conn;
		t->cl.doh_stream = c->conn->cur_stream;
		c->conn->refs++;
		c->conn->inflight++;
	}
	return t;
}

/* Dispatch: the query goes to BIND, over TCP where it must. */
static void dispatch(struct px_worker *w, struct px_txn *t, const uint8_t *msg,
                     const struct codec_view *v)
{
	size_t ka_off;
	uint16_t ka_len;
	int rc;

	if (t->origin == PX_ORIGIN_TCP && is_xfr(v)) {
		/* A transfer is many messages on one stream: TCP end to end. */
		t->xfr = true;
		PX_STAT_INC(&w->stats, xfr_relayed);
		rc = px_backend_send_tcp(w, t);
	} else if (t->origin == PX_ORIGIN_TCP &&
	           codec_edns_option(msg, v, CODEC_EDNS_OPT_TCP_KEEPALIVE, &ka_off, &ka_len)) {
		/* RFC 7828 3.2.1: edns-tcp-keepalive must not travel over UDP;
		 * over TCP BIND answers it, and apexd puts in its own timeout. */
		t->keepalive = true;
		rc = px_backend_send_tcp(w, t);
	} else {
		rc = px_backend_send(w, t);
	}
	if (rc == UV_EMSGSIZE && t->origin == PX_ORIGIN_TCP) {
		/* Bigger than a UDP datagram may be (65507): a TCP client's
		 * query of up to 65535 bytes goes to BIND over TCP. */
		rc = px_backend_send_tcp(w, t);
	}
	if (rc == -EADDRINUSE) {
		PX_STAT_INC(&w->stats, id_busy);
		px_txn_fail(w, t, CODEC_EDE_OTHER,
		            "too many queries in flight with this message ID");
	} else if (rc < 0) {
		px_txn_fail_backend(w, t, "cannot send to ", "", rc);
	}
}

void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                     struct px_udp_listener *ul, const struct sockaddr *peer,
                     const struct sockaddr *client, const struct px_udp_local *local,
                     struct px_conn *conn)
{
	/* One vDSO clock read per query: the loop's millisecond clock is too
	 * coarse for answers that take tens of microseconds. */
	const struct client c = {origin, ul, peer, client, local, conn, uv_hrtime()};
	struct codec_view v;

	if (!admit(w, msg, len, &c) || !scan(w, msg, len, &v, &c) || shortcut(w, msg, len, &v, &c))
		return;
	struct px_txn *t = txn_open(w, msg, len, &v, &c);
	if (t == NULL)
		return;
	px_txn_arm(w, t, w->cfg->backend.timeout_ms);
	/* ANAME probes go out before the query so their answers come first.
	 * A known ANAME or [alias] owner whose target is cached is answered
	 * right here, without BIND. */
	if (px_flat_query(w, t))
		return;
	dispatch(w, t, msg, &v);
}
