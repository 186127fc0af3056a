/* proxy/flat/direct.c - answers from the caches alone, without BIND. */
#include <string.h>

#include "codec/scan.h"
#include "flatten/rewrite.h"
#include "proxy/flat/flat_int.h"
#include "proxy/ops/stats.h"

/* --- answers straight from the caches --------------------------------- */

/* Can this query be flattened without BIND's answer at the owner? An
 * A/AAAA (SVCB/HTTPS) question whose flattened answer would be built from the query
 * alone anyway (flat_rewrite() echoes no option: a cookie or NSID of
 * BIND's is not in a flattened answer either way). Not with DO=1: BIND's
 * answer says whether the zone is signed, and then it is relayed (DESIGN
 * "DNSSEC"). Not with a TSIG (BIND verifies it). A client subnet only
 * with [resolver] ecs, where the scoped cache answers for it; without,
 * BIND is asked, as for any query whose answer may depend on it. */
static bool direct_eligible(const struct px_txn *t, const struct px_flat_ecs *ecs)
{
	const struct codec_view *v = &t->qv;
	size_t off;
	uint16_t len;

	if (!flat_qtype_flattens(v->qtype))
		return false;
	if (v->has_tsig || (v->has_opt && v->do_bit))
		return false;
	return !v->has_opt || ecs->on ||
	       !codec_edns_option(t->q, v, CODEC_EDNS_OPT_ECS, &off, &len);
}

/* The owner's target is known (a fresh ANAME presence entry, or an
 * [alias]) and the target cache holds fresh addresses of the type asked:
 * the answer needs nothing from BIND. BIND's answer at the owner would
 * only be consulted for sibling addresses, which serve only when a chase
 * fails, and for the SOA of a NODATA, which this path does not write. An
 * edit of the zone is seen as with the presence cache: at the ANAME's TTL
 * or at once through NOTIFY. Returns true when t was answered and ended. */
bool px_flat_answer_direct(struct px_worker *w, struct px_txn *t, const uint8_t *target,
                           size_t target_len, uint32_t chain_ttl, uint16_t aname_type,
                           const struct px_flat_ecs *ecs)
{
	const struct cfg *cfg = t->g->cfg;
	struct flat_cache_key key;
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	struct flat_rewrite_opts opts;
	uint8_t *out;
	struct codec_ecs echo;

	if (!direct_eligible(t, ecs))
		return false;
	px_flat_key_init(&key, target, target_len, t->qv.qtype, FLAT_KEY_TARGET);
	int st = px_flat_get(w, t->g->cache, &key, ecs, &hit, &ref);
	if (st != FLAT_CACHE_HIT && st != FLAT_CACHE_HIT_PREFETCH)
		return false;
	/* In w's copy or in hit: read before any other target lookup. */
	const struct flat_result *res = ref.result;
	if (res->kind != FLAT_RES_ADDRS || res->n_addrs == 0) {
		if (st == FLAT_CACHE_HIT_PREFETCH)
			flat_cache_abandon(t->g->cache, &key);
		return false;
	}
	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	opts.ecs = px_flat_ecs_echo(ecs, key.ecs[0] == FLAT_CACHE_ECS_NONE ? 0 : key.ecs[1], &echo);
	if (cfg->flatten.show_aname && aname_type != 0) {
		opts.show_aname = true;
		opts.aname_type = aname_type;
		opts.aname_target = target;
		opts.aname_target_len = target_len;
		opts.aname_ttl = chain_ttl;
	}
	uint32_t ttl = px_flat_answer_ttl(cfg, ref.ttl_left, chain_ttl);
	uint8_t hops = res->hops;
	out = px_outbuf_get(w);
	ssize_t n =
	        out == NULL
	                ? -1
	                : flat_rewrite(t->q, t->qlen, &t->qv, res, ttl, &opts,
	                               flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP),
	                               out, CODEC_MAX_MSG);
	if (st == FLAT_CACHE_HIT_PREFETCH) {
		/* Popular names never wait: a refresh runs behind this answer. */
		PX_STAT_INC(&w->stats, prefetches);
		px_flat_chase_start(w, t->g, target, target_len, t->qv.qtype, &key, ecs, 0);
	}
	if (n < 0) {
		px_outbuf_put(w, out);
		return false;
	}
	PX_STAT_INC(&w->stats, cache_hits);
	PX_STAT_INC(&w->stats, answers_flattened);
	PX_STAT_INC(&w->stats, answers_flattened_direct);
	t->flat.how = aname_type != 0 ? PX_FLAT_ANAME : PX_FLAT_ALIAS;
	t->flat.direct_target = target;
	t->flat.direct_target_len = (uint8_t)target_len;
	t->flat.direct_hops = hops;
	px_flat_reply_done(w, t, out, (size_t)n);
	px_outbuf_put(w, out);
	return true;
}
