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
#include "proxy/ops/log.h"
#include "proxy/ops/qlog.h"
#include "proxy/ops/stats.h"
#include "proxy/daemon/server.h"

/* An answer written without a txn; q is the client's message and qv its
 * scan (NULL when it did not scan), for the query log. */
static void reply_direct(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                         struct px_udp_listener *ul, const struct sockaddr *peer,
                         struct px_conn *conn, const uint8_t *q, size_t qlen,
                         const struct codec_view *qv, uint64_t rx_ns)
{
	px_stats_answer(&w->stats, px_transport_of(origin, conn), msg, len, rx_ns);
	if (w->qlog_on)
		px_qlog_direct(w, origin == PX_ORIGIN_UDP, peer, conn, q, qlen, qv, msg, len);
	if (origin == PX_ORIGIN_UDP)
		px_udp_send(ul, peer, msg, len);
	else
		px_conn_send(conn, msg, len);
}

static bool is_xfr(const struct codec_view *v)
{
	return v->opcode == CODEC_OPCODE_QUERY && v->qdcount >= 1 &&
	       (v->qtype == CODEC_TYPE_AXFR || v->qtype == CODEC_TYPE_IXFR);
}

void px_query_handle(struct px_worker *w, const uint8_t *msg, size_t len, enum px_origin origin,
                     struct px_udp_listener *ul, const struct sockaddr *peer, struct px_conn *conn)
{
	struct codec_view v;
	struct sockaddr_storage ss;
	uint8_t out[PX_REPLY_MAX];
	ssize_t n;
	/* One vDSO clock read per query: the loop's millisecond clock is too
	 * coarse for answers that take tens of microseconds. */
	uint64_t rx_ns = uv_hrtime();

	if (origin == PX_ORIGIN_UDP)
		PX_STAT_INC(&w->stats, queries_udp);
	else if (conn->kind == PX_CONN_TCP)
		PX_STAT_INC(&w->stats, queries_tcp); /* DoT and DoH count their own */

	if (len < CODEC_HDR_LEN || codec_hdr_qr(msg)) {
		PX_STAT_INC(&w->stats, malformed_dropped);
		return;
	}
	/* [limits]: decided before anything else is spent on the query, so
	 * a limited one costs neither BIND nor a chase. */
	if (origin == PX_ORIGIN_UDP && w->rrl != NULL) {
		enum px_rrl_verdict rv = px_rrl_check(w->rrl, peer, px_now(w));
		if (rv == PX_RRL_DROP) {
			PX_STAT_INC(&w->stats, rrl_dropped);
			return;
		}
		if (rv == PX_RRL_SLIP) {
			n = px_rrl_slip_reply(msg, len, codec_scan(msg, len, &v) == 0 ? &v : NULL,
			                      out, sizeof(out));
			if (n > 0) {
				PX_STAT_INC(&w->stats, rrl_slipped);
				px_udp_send(ul, peer, out, (size_t)n);
			}
			return;
		}
	}
	if (codec_scan(msg, len, &v) < 0) {
		n = codec_build_error(msg, len, NULL, CODEC_RCODE_FORMERR, CODEC_EDE_NONE, NULL,
		                      out, sizeof(out));
		if (n > 0) {
			PX_STAT_INC(&w->stats, formerr_sent);
			reply_direct(w, out, (size_t)n, origin, ul, peer, conn, msg, len, NULL,
			             rx_ns);
		}
		return;
	}

	if (v.opcode == CODEC_OPCODE_NOTIFY) {
		const struct sockaddr *from =
		        origin == PX_ORIGIN_UDP ? peer : px_conn_peer(conn, &ss);
		/* A zone changed: no answer cache may serve what BIND had. */
		if (w->anscache != NULL && px_from_backend(w, from))
			atomic_fetch_add_explicit(&w->srv->anscache_gen, 1, memory_order_relaxed);
		if (px_flat_notify(w, msg, len, &v, from, origin, ul, conn))
			return;
	}

	if (w->anscache != NULL) {
		size_t max = flat_rewrite_max_size(&v, origin == PX_ORIGIN_TCP);
		uint32_t gen = atomic_load_explicit(&w->srv->anscache_gen, memory_order_relaxed);
		n = px_anscache_get(w->anscache, msg, &v, px_now(w), gen, max, w->ac_out);
		if (n > 0) {
			PX_STAT_INC(&w->stats, answers_cached);
			reply_direct(w, w->ac_out, (size_t)n, origin, ul, peer, conn, msg, len, &v,
			             rx_ns);
			return;
		}
	}

	struct px_txn *t = px_txn_new(w);
	if (t == NULL || px_txn_set_query(t, msg, len, &v) < 0) {
		if (t != NULL)
			px_txn_free(w, t);
		PX_STAT_INC(&w->stats, txn_full);
		PX_STAT_INC(&w->stats, servfail_sent);
		n = codec_build_error(msg, len, &v, CODEC_RCODE_SERVFAIL, CODEC_EDE_OTHER,
		                      "apexd is overloaded: no transaction slot free", out,
		                      sizeof(out));
		if (n > 0)
			reply_direct(w, out, (size_t)n, origin, ul, peer, conn, msg, len, &v,
			             rx_ns);
		return;
	}
	t->origin = origin;
	t->rx_ns = rx_ns;
	/* The same clock read serves the latency histogram. */
	if (w->qlog_on)
		t->qlog_start_ns = rx_ns;
	if (origin == PX_ORIGIN_UDP) {
		t->ul = ul;
		ul->txns++; /* a removed listener stays open for this answer */
		memcpy(&t->peer, peer,
		       peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                   : sizeof(struct sockaddr_in));
	} else {
		t->conn = conn;
		t->doh_stream = conn->cur_stream;
		conn->refs++;
		conn->inflight++;
	}

	px_txn_arm(w, t, w->cfg->backend.timeout_ms);
	/* ANAME probes go out before the query so their answers come first.
	 * A known ANAME or [alias] owner whose target is cached is answered
	 * right here, without BIND. */
	if (px_flat_query(w, t))
		return;
	size_t ka_off;
	uint16_t ka_len;
	int rc;
	if (origin == PX_ORIGIN_TCP && is_xfr(&v)) {
		/* A transfer is many messages on one stream: TCP end to end. */
		t->xfr = true;
		PX_STAT_INC(&w->stats, xfr_relayed);
		rc = px_backend_send_tcp(w, t);
	} else if (origin == PX_ORIGIN_TCP &&
	           codec_edns_option(msg, &v, CODEC_EDNS_OPT_TCP_KEEPALIVE, &ka_off, &ka_len)) {
		/* RFC 7828 3.2.1: edns-tcp-keepalive must not travel over UDP;
		 * over TCP BIND answers it, and apexd puts in its own timeout. */
		t->keepalive = true;
		rc = px_backend_send_tcp(w, t);
	} else {
		rc = px_backend_send(w, t);
	}
	if (rc == UV_EMSGSIZE && origin == PX_ORIGIN_TCP) {
		/* Bigger than a UDP datagram may be (65507): a TCP client's
		 * query of up to 65535 bytes goes to BIND over TCP. */
		rc = px_backend_send_tcp(w, t);
	}
	if (rc == -EADDRINUSE) {
		PX_STAT_INC(&w->stats, id_busy);
		px_txn_fail(w, t, CODEC_EDE_OTHER,
		            "too many queries in flight with this message ID");
	} else if (rc < 0) {
		char why[160];
		snprintf(why, sizeof(why), "cannot send to backend %s: %s",
		         w->cfg->backend.address.text, uv_strerror(rc));
		px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
		PX_STAT_INC(&w->stats, backend_errors);
		px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
	}
}
