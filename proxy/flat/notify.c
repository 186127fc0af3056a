/* proxy/flat/notify.c - what the backend's zones changing drops.
 *
 * A NOTIFY from the backend flushes a zone's entries from the target
 * cache (the answer caches are emptied by the generation bump in the
 * query path). A probe that finds an ANAME drops the owner's answers
 * from every worker's answer cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "flatten/cache.h"
#include "flatten/zones.h"
#include "proxy/backend/backend.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/anscache.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/flat/flat_int.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/dnstap.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

void px_flat_drop_answers(struct px_worker *w, const uint8_t *name, size_t len)
{
	struct px_server *srv = w->srv;

	if (w->anscache == NULL)
		return;
	px_anscache_drop_name(w->anscache, name, len);
	if (srv->n_workers < 2)
		return;
	struct px_flush_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return; /* the other workers' entries age out by absent_ttl */
	atomic_init(&op->refs, 1);
	atomic_init(&op->left, srv->n_workers - 1);
	memcpy(op->name, name, len);
	op->len = len;
	for (unsigned i = 0; i < srv->n_workers; i++)
		if (&srv->workers[i] != w && px_worker_post_flush(&srv->workers[i], op) < 0)
			atomic_fetch_sub(&op->left, 1);
	px_flush_op_release(op);
}

bool px_flat_notify(struct px_worker *w, const uint8_t *msg, size_t len, const struct codec_view *v,
                    const struct sockaddr *from, const struct sockaddr *peer, enum px_origin origin,
                    struct px_udp_listener *ul, const struct px_udp_local *local,
                    struct px_conn *conn)
{
	uint8_t zone[CODEC_MAX_NAME], out[PX_REPLY_MAX];

	/* Only the backend's NOTIFY is ours (its address, any port); every
	 * other NOTIFY goes to BIND like any opcode. */
	if (v->opcode != CODEC_OPCODE_NOTIFY || v->qdcount != 1 || !px_from_backend(w, from))
		return false;
	int zl = codec_name_unpack(msg, len, v->qname_off, zone);
	size_t zidx;
	bool apex;
	/* Only for a zone apexd flattens in; any other NOTIFY is BIND's. */
	if (zl < 0 || w->gen->zones == NULL ||
	    flat_zones_find(w->gen->zones, zone, (size_t)zl, &zidx, &apex) != 0 || !apex)
		return false;
	ssize_t dropped = flat_cache_flush_suffix(w->gen->cache, zone, (size_t)zl);
	PX_STAT_INC(&w->stats, notify_flushes);
	char name[CODEC_MAX_NAME * 4 + 1];
	codec_name_to_text(zone, (size_t)zl, name, sizeof(name));
	px_log(CFG_LOG_INFO, CACHE, "NOTIFY for %s from the backend: %zd cache entries flushed",
	       name, dropped);
	/* A siblings zone transfers again to learn what changed. */
	px_sib_notify(w->srv, zone, (size_t)zl);
	/* RFC 1996 4.7: the answer echoes the question with QR=1. */
	ssize_t n = codec_build_error(msg, len, v, CODEC_RCODE_NOERROR, CODEC_EDE_NONE, NULL, out,
	                              sizeof(out));
	if (n > 0) {
		out[2] |= CODEC_FLAG_AA >> 8; /* as an authoritative server answers it */
		px_stats_answer(&w->stats, px_transport_of(origin, conn), out, (size_t)n, 0);
		if (w->tap.on)
			px_dnstap_direct(w, origin, ul, local, peer, conn, msg, len, out, (size_t)n,
			                 0);
		if (origin == PX_ORIGIN_UDP)
			px_udp_send(ul, peer, local, out, (size_t)n);
		else
			px_conn_send(conn, out, (size_t)n);
	}
	return true;
}
