/* proxy/flat/health.c - health checks on the answer path (issue 17).
 *
 * Until the pool merge (flatten/pool.c) filters every owner's addresses,
 * the answer of a single target goes through here right before
 * flat_rewrite(): the addresses [health] checks found down are left out,
 * unless that leaves none, when all are served (an empty apex is worse
 * than a sick one) and the fail-open answer is counted. Lock-free: see
 * px_health_down().
 */
#include <string.h>

#include "codec/wire.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat_int.h"
#include "proxy/health/health.h"
#include "proxy/ops/stats.h"

const struct flat_result *px_flat_health_filter(struct px_worker *w, const struct px_txn *t,
                                                const struct flat_result *r,
                                                struct flat_result *buf)
{
	const struct cfg_check *c = &px_flat_txn_zone(t)->check;

	if (c->kind == CFG_CHECK_NONE || r->kind != FLAT_RES_ADDRS || r->n_addrs == 0 ||
	    flat_qtype_is_rdata(r->qtype))
		return r;
	/* The owner is the question's name (offset 12, never compressed),
	 * as the client spelled it: the key folds the case. */
	struct px_health_ask ask = {.h = w->srv->health,
	                            .check = c,
	                            .owner = t->q + CODEC_HDR_LEN,
	                            .owner_len = (uint8_t)t->qv.qname_len};
	bool down[FLAT_MAX_ADDRS];
	unsigned keep = 0;
	for (unsigned i = 0; i < r->n_addrs; i++) {
		down[i] = px_health_down(&ask, r->addrs[i], r->qtype);
		keep += !down[i];
	}
	if (keep == r->n_addrs)
		return r;
	if (keep == 0) {
		PX_STAT_INC(&w->stats, answers_health_fail_open);
		return r;
	}
	memcpy(buf, r, offsetof(struct flat_result, addrs));
	memcpy((uint8_t *)buf + offsetof(struct flat_result, rdata_len),
	       (const uint8_t *)r + offsetof(struct flat_result, rdata_len),
	       sizeof(*r) - offsetof(struct flat_result, rdata_len));
	buf->n_addrs = 0;
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (!down[i])
			memcpy(buf->addrs[buf->n_addrs++], r->addrs[i], 16);
	PX_STAT_ADD(&w->stats, health_filtered, r->n_addrs - keep);
	return buf;
}
