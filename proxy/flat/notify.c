/* proxy/flat/notify.c - NOTIFY from the backend flushes a zone's entries. */
#include <stdio.h>

#include "codec/build.h"
#include "codec/name.h"
#include "flatten/cache.h"
#include "flatten/zones.h"
#include "proxy/backend/backend.h"
#include "proxy/daemon/gen.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

bool px_flat_notify(struct px_worker *w, const uint8_t *msg, size_t len, const struct codec_view *v,
                    const struct sockaddr *peer, enum px_origin origin, struct px_udp_listener *ul,
                    struct px_conn *conn)
{
	uint8_t zone[CODEC_MAX_NAME], out[PX_REPLY_MAX];

	/* Only the backend's NOTIFY is ours (its address, any port); every
	 * other NOTIFY goes to BIND like any opcode. */
	if (v->opcode != CODEC_OPCODE_NOTIFY || v->qdcount != 1 || !px_from_backend(w, peer))
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
	/* RFC 1996 4.7: the answer echoes the question with QR=1. */
	ssize_t n = codec_build_error(msg, len, v, CODEC_RCODE_NOERROR, CODEC_EDE_NONE, NULL, out,
	                              sizeof(out));
	if (n > 0) {
		out[2] |= CODEC_FLAG_AA >> 8; /* as an authoritative server answers it */
		px_stats_answer(&w->stats, px_transport_of(origin, conn), out, (size_t)n, 0);
		if (origin == PX_ORIGIN_UDP)
			px_udp_send(ul, peer, out, (size_t)n);
		else
			px_conn_send(conn, out, (size_t)n);
	}
	return true;
}
