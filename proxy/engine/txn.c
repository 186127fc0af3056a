/* proxy/engine/txn.c - fixed transaction slots and their deadlines.
 *
 * The deadline list is kept sorted; since almost every txn is armed with
 * the backend timeout, insertion lands at the tail in O(1). One timer per
 * worker watches the head. Removal is O(1); a timer that fires for a txn
 * already gone finds nothing to expire and re-arms for the new head.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "proxy/engine/txn.h"
#include "proxy/backend/backend.h"
#include "proxy/daemon/gen.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/log.h"
#include "proxy/ops/qlog.h"
#include "proxy/ops/stats.h"

struct px_txn *px_txn_new(struct px_worker *w)
{
	struct px_txn *t = w->slots.free;

	if (t == NULL)
		return NULL;
	w->slots.free = t->free_next;
	uint32_t idx = t->idx, gen = t->gen + 1;
	/* Clear the bookkeeping; the inline query buffer (last) is
	 * overwritten anyway. */
	memset(t, 0, offsetof(struct px_txn, qinline));
	t->idx = idx;
	t->gen = gen; /* tells a late wake-up for the slot's previous query apart */
	t->busy = true;
	t->g = px_gen_hold(w, w->gen);
	w->slots.inflight++;
	return t;
}

void px_txn_free(struct px_worker *w, struct px_txn *t)
{
	if (px_fails_assert(t->busy))
		return;
	px_txn_disarm(w, t);
	px_flat_free(w, t);
	px_gen_release(w, t->g);
	t->g = NULL;
	if (t->origin == PX_ORIGIN_UDP && t->cl.ul != NULL) {
		px_udp_release(t->cl.ul);
		t->cl.ul = NULL;
	}
	if (t->q != t->qinline)
		free(t->q);
	t->q = NULL;
	t->busy = false;
	t->free_next = w->slots.free;
	w->slots.free = t;
	w->slots.inflight--;
}

int px_txn_set_query(struct px_txn *t, const uint8_t *q, size_t len, const struct codec_view *v)
{
	if (len <= sizeof(t->qinline)) {
		t->q = t->qinline;
	} else {
		t->q = malloc(len);
		if (t->q == NULL)
			return -ENOMEM;
	}
	memcpy(t->q, q, len);
	t->qlen = (uint16_t)len;
	t->qv = *v;
	t->be.bid = v->id;
	return 0;
}

static void dl_unlink(struct px_worker *w, struct px_txn *t)
{
	if (t->dl_prev != NULL)
		t->dl_prev->dl_next = t->dl_next;
	else
		w->slots.dl_head = t->dl_next;
	if (t->dl_next != NULL)
		t->dl_next->dl_prev = t->dl_prev;
	else
		w->slots.dl_tail = t->dl_prev;
	t->dl_prev = t->dl_next = NULL;
}

void px_txn_disarm(struct px_worker *w, struct px_txn *t)
{
	if (t->deadline_ms == 0)
		return;
	dl_unlink(w, t);
	t->deadline_ms = 0;
}

void px_txn_arm(struct px_worker *w, struct px_txn *t, uint64_t timeout_ms)
{
	px_txn_disarm(w, t);
	t->deadline_ms = px_now(w) + timeout_ms;
	/* Nearly every txn has the same timeout, so the right place is
	 * almost always the tail; walk back from there otherwise. */
	struct px_txn *after = w->slots.dl_tail;
	while (after != NULL && after->deadline_ms > t->deadline_ms)
		after = after->dl_prev;
	t->dl_prev = after;
	t->dl_next = after != NULL ? after->dl_next : w->slots.dl_head;
	if (t->dl_next != NULL)
		t->dl_next->dl_prev = t;
	else
		w->slots.dl_tail = t;
	if (after != NULL)
		after->dl_next = t;
	else
		w->slots.dl_head = t;
	/* The timer watches the head; a new head may be earlier. */
	if (w->slots.dl_head == t || !uv_is_active((uv_handle_t *)&w->deadline_timer))
		uv_timer_start(&w->deadline_timer, px_deadline_cb,
		               w->slots.dl_head->deadline_ms - px_now(w), 0);
}

void px_deadline_cb(uv_timer_t *h)
{
	struct px_worker *w = h->data;
	uint64_t now = px_now(w);

	while (w->slots.dl_head != NULL && w->slots.dl_head->deadline_ms <= now) {
		struct px_txn *t = w->slots.dl_head;
		px_txn_disarm(w, t);
		if (t->xfr && t->be.xfr_msgs > 0) {
			/* Mid-transfer there is no way to say SERVFAIL: the
			 * client sees the connection close instead. */
			PX_STAT_INC(&w->stats, backend_timeouts);
			px_log_rl(CFG_LOG_WARNING, XFR, "zone transfer stalled after %u messages",
			          t->be.xfr_msgs);
			px_txn_cut(w, t);
			continue;
		}
		if (px_flat_probe_tick(w, t))
			continue;
		if (px_flat_active(t)) {
			px_flat_deadline(w, t);
			continue;
		}
		char why[128];
		snprintf(why, sizeof(why), "backend %s did not answer within %llu ms",
		         w->cfg->backend.address.text,
		         (unsigned long long)w->cfg->backend.timeout_ms);
		PX_STAT_INC(&w->stats, backend_timeouts);
		px_txn_fail(w, t, CODEC_EDE_NO_REACHABLE_AUTHORITY, why);
	}
	if (w->slots.dl_head != NULL)
		uv_timer_start(&w->deadline_timer, px_deadline_cb,
		               w->slots.dl_head->deadline_ms - now, 0);
}

/* The client's connection is apexd's, so the keepalive timeout it is
 * told must be apexd's tcp-idle-timeout, not BIND's (RFC 7828 3.3.2).
 * A TSIG-signed answer is left alone: editing it would break it. */
static const uint8_t *keepalive_rewrite(struct px_worker *w, const uint8_t *msg, size_t len,
                                        uint8_t *buf)
{
	struct codec_view v;

	size_t off;
	uint16_t olen;

	if (codec_scan(msg, len, &v) < 0 || v.has_tsig ||
	    !codec_edns_option(msg, &v, CODEC_EDNS_OPT_TCP_KEEPALIVE, &off, &olen) || olen != 2)
		return msg;
	uint64_t units = w->cfg->listen.tcp_idle_timeout_ms / 100; /* 100 ms units */
	memcpy(buf, msg, len);
	codec_put_u16(buf + off, units > 0xffff ? 0xffff : (uint16_t)units);
	return buf;
}

void px_txn_reply(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	uint8_t *ka = NULL;
	bool first = !t->answered; /* a zone transfer answers many times */

	if (!t->answered) {
		t->answered = true;
		px_stats_answer(&w->stats, px_transport_of(t->origin, t->cl.conn), msg, len,
		                t->rx_ns);
	}
	/* Without a buffer the option goes out as the client sent it. */
	if (t->keepalive && t->origin == PX_ORIGIN_TCP && (ka = px_outbuf_get(w)) != NULL)
		msg = keepalive_rewrite(w, msg, len, ka);
	if (w->ql.on && !t->ql.logged)
		px_qlog_txn(w, t, msg, len);
	if (w->tap.on)
		px_dnstap_txn(w, t, msg, len, first);
	if (t->origin == PX_ORIGIN_UDP)
		px_udp_send(t->cl.ul, (const struct sockaddr *)&t->cl.peer, &t->cl.local, msg, len);
	else if (!t->cl.conn->closing) {
		t->cl.conn->cur_stream = t->cl.doh_stream;
		px_conn_send(t->cl.conn, msg, len);
	}
	px_outbuf_put(w, ka);
}

void px_txn_done(struct px_worker *w, struct px_txn *t)
{
	px_backend_forget(w, t);
	struct px_conn *c = t->origin == PX_ORIGIN_TCP ? t->cl.conn : NULL;
	px_txn_free(w, t);
	if (c != NULL) {
		c->inflight--;
		px_conn_query_done(c);
		px_conn_unref(c);
	}
	if (w->draining)
		px_worker_maybe_finish(w);
}

void px_txn_cut(struct px_worker *w, struct px_txn *t)
{
	if (t->cl.conn != NULL)
		px_conn_close(t->cl.conn);
	px_txn_done(w, t);
}

void px_txn_fail_backend(struct px_worker *w, struct px_txn *t, const char *pre, const char *post,
                         int err)
{
	char why[160];

	snprintf(why, sizeof(why), "%sbackend %s%s: %s", pre, w->cfg->backend.address.text, post,
	         uv_strerror(err));
	px_log_rl(CFG_LOG_WARNING, BACKEND, "%s", why);
	PX_STAT_INC(&w->stats, backend_errors);
	px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, why);
}

void px_txn_fail(struct px_worker *w, struct px_txn *t, uint16_t ede, const char *why)
{
	uint8_t out[PX_REPLY_MAX];
	ssize_t n = codec_build_error(t->q, t->qlen, &t->qv, CODEC_RCODE_SERVFAIL, ede, why, out,
	                              sizeof(out));

	px_log(CFG_LOG_DEBUG, BACKEND, "SERVFAIL to client (id %u): %s", t->qv.id, why);
	if (n > 0) {
		PX_STAT_INC(&w->stats, servfail_sent);
		px_txn_reply(w, t, out, (size_t)n);
	}
	px_txn_done(w, t);
}
