/* proxy/flat/health.c - health checks on the answer path (issue 17).
 *
 * The pool merge (flatten/pool.c) asks, for each address of an owner,
 * whether [health] checks found it down: px_health_down() answers from a
 * table the checker thread writes, with atomics only (no lock, no
 * allocation), and hands an address it has not seen to the checker. The
 * merge leaves the down addresses out unless that leaves none, when all
 * are served (an empty apex is worse than a sick one); both are counted
 * here.
 */
#include <string.h>

#include "codec/wire.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat_int.h"
#include "proxy/health/health.h"
#include "proxy/ops/stats.h"

_Static_assert(FLAT_MAX_ADDRS <= 64, "the down mask is one 64-bit word");

/* A pool of one (most owners): what flat_pool_merge_n() does for it,
 * without the general merge's copies and deduplication, so that an
 * answer whose addresses are all up costs the lookups and nothing more:
 * the target's result itself unless some address is down (with checks
 * on, bench/profile.sh flat callgrind: 4 370 -> 4 158 instructions per
 * answer). */
static const struct flat_result *merge_one(struct px_worker *w, struct px_health_ask *ask,
                                           const struct flat_pool_in *in, struct flat_result *buf,
                                           struct flat_pool_out *out)
{
	const struct flat_result *r = in->res;
	bool fail = r->kind == FLAT_RES_FAIL;
	uint64_t down = 0;
	unsigned nd = 0;

	out->ttl = fail ? 0 : in->ttl;
	out->used = fail ? 0 : 1;
	out->fail_open = false;
	out->n_down = 0;
	if (r->kind != FLAT_RES_ADDRS || r->n_addrs == 0 || flat_qtype_is_rdata(r->qtype))
		return r;
	for (unsigned i = 0; i < r->n_addrs; i++) {
		if (px_health_down(ask, r->addrs[i], r->qtype)) {
			down |= 1ull << i;
			nd++;
		}
	}
	if (nd == 0)
		return r;
	if (nd == r->n_addrs) {
		out->fail_open = true;
		PX_STAT_INC(&w->stats, answers_health_fail_open);
		return r;
	}
	memcpy(buf, r, offsetof(struct flat_result, addrs));
	memcpy((uint8_t *)buf + offsetof(struct flat_result, rdata_len),
	       (const uint8_t *)r + offsetof(struct flat_result, rdata_len),
	       sizeof(*r) - offsetof(struct flat_result, rdata_len));
	buf->n_addrs = 0;
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (!(down & (1ull << i)))
			memcpy(buf->addrs[buf->n_addrs++], r->addrs[i], 16);
	out->n_down = nd;
	PX_STAT_ADD(&w->stats, health_filtered, nd);
	return buf;
}

/* The key of an answer's shape for health_asked: the owner (ASCII case
 * folded, as the health table's keys fold it), the qtype, the targets and
 * the first address. Equal keys of different shapes are a 2^-64 chance; a
 * shape whose addresses change within a second is asked again the next
 * second. */
static uint64_t asked_key(const struct px_txn *t, const struct flat_pool_in *in, size_t n)
{
	size_t len = t->qv.qname_len;
	uint64_t x = px_health_mix_name(
	        0x9e3779b97f4a7c15ull ^ ((uint64_t)len << 32 | (uint64_t)t->qv.qtype << 8 | n),
	        t->q + CODEC_HDR_LEN, len);
	const struct flat_result *r = in[0].res;

	if (r->kind == FLAT_RES_ADDRS && r->n_addrs > 0 && !flat_qtype_is_rdata(r->qtype)) {
		uint64_t v;
		memcpy(&v, r->addrs[0], 8);
		x = (x ^ v ^ r->n_addrs) * 0xc4ceb9fe1a85ec53ull;
		x ^= x >> 31;
	}
	return x;
}

/* Nothing is down anywhere: the answer keeps every address. It asks the
 * table anyway once a second per shape and worker, so that its addresses
 * stay marked in use and new ones reach the checker; true: asked already
 * this second (with health checks on, bench/profile.sh flat callgrind:
 * 3 156 -> 3 051 instructions per answer, checks off 2 813). */
static bool asked_recently(struct px_worker *w, const struct px_txn *t,
                           const struct flat_pool_in *in, size_t n)
{
	const struct px_health *h = w->srv->health;

	if (h == NULL || px_health_any_down(h))
		return false;
	uint64_t key = asked_key(t, in, n);
	uint32_t now = px_health_clock(h);
	size_t i = (size_t)(key >> 40) & (PX_HEALTH_ASKED_SLOTS - 1);
	if (w->health_asked[i].key == key && w->health_asked[i].second == now)
		return true;
	w->health_asked[i].key = key;
	w->health_asked[i].second = now;
	return false;
}

const struct flat_result *px_flat_merge_checked(struct px_worker *w, const struct px_txn *t,
                                                enum flat_pool_mode mode,
                                                const struct flat_pool_in *in, size_t n,
                                                struct flat_result *buf, struct flat_pool_out *out)
{
	if (asked_recently(w, t, in, n))
		return flat_pool_merge(mode, in, n, NULL, NULL, buf, out);
	/* The owner is the question's name (offset 12, never compressed),
	 * as the client spelled it: the key folds the case. */
	struct px_health_ask ask = {.h = w->srv->health,
	                            .check = &px_flat_txn_zone(t)->check,
	                            .owner = t->q + CODEC_HDR_LEN,
	                            .owner_len = (uint8_t)t->qv.qname_len};
	if (n == 1)
		return merge_one(w, &ask, in, buf, out);
	const struct flat_result *r = flat_pool_merge(mode, in, n, px_health_down, &ask, buf, out);

	if (out->fail_open)
		PX_STAT_INC(&w->stats, answers_health_fail_open);
	if (out->n_down > 0)
		PX_STAT_ADD(&w->stats, health_filtered, out->n_down);
	return r;
}
