/* proxy/flat/health.c - health checks on the answer path (issue 17).
 *
 * For a zone with a check, the pool merge (flatten/pool.c, a pool of one
 * included) asks px_health_down() about each address: those found down
 * are left out, unless that leaves none, when all are served (an empty
 * apex is worse than a sick one) and the fail-open answer is counted.
 * Lock-free: see px_health_down().
 */
#include <string.h>

#include "codec/wire.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat_int.h"
#include "proxy/health/health.h"
#include "proxy/ops/stats.h"

const struct flat_result *px_flat_merge_health(struct px_worker *w, const struct px_txn *t,
                                               enum flat_pool_mode mode,
                                               const struct flat_pool_in *in, size_t n,
                                               struct flat_result *buf, struct flat_pool_out *out)
{
	/* The owner is the question's name (offset 12, never compressed),
	 * as the client spelled it: the key folds the case. */
	struct px_health_ask ask = {.h = w->srv->health,
	                            .check = &px_flat_txn_zone(t)->check,
	                            .owner = t->q + CODEC_HDR_LEN,
	                            .owner_len = (uint8_t)t->qv.qname_len};
	const struct flat_result *r =
	        flat_pool_merge_n(mode, in, n, px_health_down, &ask, buf, out);

	if (out->fail_open)
		PX_STAT_INC(&w->stats, answers_health_fail_open);
	if (out->n_down > 0)
		PX_STAT_ADD(&w->stats, health_filtered, out->n_down);
	return r;
}
