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

/* What the caches gave for the owner's targets. */
struct direct_in {
	unsigned n;
	const uint8_t *names[FLAT_POOL_MAX];
	size_t lens[FLAT_POOL_MAX];
	struct flat_cache_key keys[FLAT_POOL_MAX];
	int st[FLAT_POOL_MAX];
	struct flat_pool_in in[FLAT_POOL_MAX];
};

/* The answer written from the caches (n < 0: it could not be) goes out,
 * counted; target (the first of a pool) is borrowed for the query log. */
static inline bool direct_sent(struct px_worker *w, struct px_txn *t, uint8_t *out, ssize_t n,
                               const uint8_t *target, size_t target_len, uint8_t hops,
                               uint16_t aname_type)
{
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

/* Gives back the prefetch claims taken (an answer that will not be
 * written from them). */
static void abandon_prefetch(struct flat_cache *c, struct direct_in *d)
{
	for (unsigned i = 0; i < d->n; i++)
		if (d->st[i] == FLAT_CACHE_HIT_PREFETCH)
			flat_cache_abandon(c, &d->keys[i]);
}

/* The merged result res (TTL and targets used in po) as t's answer, and
 * the refreshes its entries asked for. True when t was answered. */
static bool direct_write(struct px_worker *w, struct px_txn *t, struct direct_in *d,
                         const struct flat_result *res, const struct flat_pool_out *po,
                         uint32_t chain_ttl, uint16_t aname_type, const struct px_flat_ecs *ecs)
{
	const struct cfg *cfg = t->g->cfg;
	struct flat_rewrite_opts opts;
	struct codec_ecs echo;
	uint8_t scope = 0;

	/* The answer is as specific as the most specific entry it used. */
	for (unsigned i = 0; i < d->n; i++)
		if ((po->used & (1u << i)) && d->keys[i].ecs[0] != FLAT_CACHE_ECS_NONE &&
		    d->keys[i].ecs[1] > scope)
			scope = d->keys[i].ecs[1];
	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	opts.ecs = px_flat_ecs_echo(ecs, scope, &echo);
	if (cfg->flatten.show_aname && aname_type != 0 && d->n == 1) {
		opts.show_aname = true;
		opts.aname_type = aname_type;
		opts.aname_target = d->names[0];
		opts.aname_target_len = d->lens[0];
		opts.aname_ttl = chain_ttl;
	}
	uint32_t ttl = px_flat_ttl_clamp(cfg, po->ttl);
	uint8_t *out = px_outbuf_get(w);
	ssize_t len =
	        out == NULL
	                ? -1
	                : flat_rewrite(t->q, t->qlen, &t->qv, res, ttl, &opts,
	                               flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP),
	                               out, CODEC_MAX_MSG);
	for (unsigned i = 0; i < d->n; i++) {
		if (d->st[i] != FLAT_CACHE_HIT_PREFETCH)
			continue;
		/* Popular names never wait: a refresh runs behind this answer. */
		PX_STAT_INC(&w->stats, prefetches);
		px_flat_chase_start(w, t->g, d->names[i], d->lens[i], t->qv.qtype, &d->keys[i], ecs,
		                    0);
	}
	return direct_sent(w, t, out, len, d->names[0], d->lens[0], res->hops, aname_type);
}

/* px_flat_answer_direct() with room for n_targets hits. */
static bool direct_answer(struct px_worker *w, struct px_txn *t, const uint8_t *targets,
                          size_t targets_len, unsigned n_targets, uint32_t chain_ttl,
                          uint16_t aname_type, const struct px_flat_ecs *ecs,
                          struct flat_cache_hit *hits)
{
	struct flat_cache *cache = t->g->cache;
	struct direct_in d;
	struct flat_pool_out po;
	struct flat_result buf;
	size_t off = 0;

	for (d.n = 0; d.n < n_targets; d.n++) {
		unsigned i = d.n;
		/* One target (most owners): the blob is its name. */
		if (n_targets == 1) {
			d.names[0] = targets;
			d.lens[0] = targets_len;
		} else if (!flat_pool_next(targets, targets_len, &off, &d.names[i], &d.lens[i])) {
			break;
		}
		px_flat_key_init(&d.keys[i], d.names[i], d.lens[i], t->qv.qtype, FLAT_KEY_TARGET);
		struct flat_copy_ref ref;
		d.st[i] = px_flat_get(w, cache, &d.keys[i], ecs, &hits[i], &ref);
		if (d.st[i] != FLAT_CACHE_HIT && d.st[i] != FLAT_CACHE_HIT_PREFETCH)
			break;
		/* A value in w's copy lasts only until the next lookup of its
		 * kind, which the next target's is: keep it with the hit. */
		if (ref.result != &hits[i].value.result)
			memcpy(&hits[i].value.result, ref.result, sizeof(*ref.result));
		d.in[i].res = &hits[i].value.result;
		d.in[i].ttl = ref.ttl_left < chain_ttl ? ref.ttl_left : chain_ttl;
		d.in[i].stale = false;
	}
	if (d.n == n_targets) {
		const struct flat_result *res = px_flat_merge(w, t, d.in, d.n, &buf, &po);
		if (res->kind == FLAT_RES_ADDRS && res->n_addrs > 0)
			return direct_write(w, t, &d, res, &po, chain_ttl, aname_type, ecs);
	}
	abandon_prefetch(cache, &d);
	return false;
}

/* A pool's hits (1 KiB each) on a stack frame of its own. */
static bool direct_pool(struct px_worker *w, struct px_txn *t, const uint8_t *targets,
                        size_t targets_len, unsigned n_targets, uint32_t chain_ttl,
                        uint16_t aname_type, const struct px_flat_ecs *ecs)
{
	struct flat_cache_hit hits[FLAT_POOL_MAX];

	return direct_answer(w, t, targets, targets_len, n_targets, chain_ttl, aname_type, ecs,
	                     hits);
}

/* The owner's targets are known (a fresh ANAME presence entry, or an
 * [alias]; one, or a pool) and the target cache holds fresh results of
 * the type asked for every one of them, which merge into addresses: the
 * answer needs nothing from BIND. BIND's answer at the owner would
 * only be consulted for sibling addresses, which serve only when a chase
 * fails, and for the SOA of a NODATA, which this path does not write. An
 * edit of the zone is seen as with the presence cache: at the ANAME's TTL
 * or at once through NOTIFY. Returns true when t was answered and ended. */
/* One target (most owners): as direct_answer(), written out for the
 * common case (the general one costs a hundred instructions more per
 * answer, bench/profile.sh flat callgrind). */
static inline __attribute__((always_inline)) bool
direct_one(struct px_worker *w, struct px_txn *t, const uint8_t *target, size_t target_len,
           uint32_t chain_ttl, uint16_t aname_type, const struct px_flat_ecs *ecs)
{
	const struct cfg *cfg = t->g->cfg;
	struct flat_cache_key key;
	struct flat_cache_hit hit;
	struct flat_copy_ref ref;
	struct flat_rewrite_opts opts;
	struct flat_pool_out po;
	struct flat_result buf;
	uint8_t *out;
	struct codec_ecs echo;

	px_flat_key_init(&key, target, target_len, t->qv.qtype, FLAT_KEY_TARGET);
	int st = px_flat_get(w, t->g->cache, &key, ecs, &hit, &ref);
	if (st != FLAT_CACHE_HIT && st != FLAT_CACHE_HIT_PREFETCH)
		return false;
	/* In w's copy or in hit: read before any other target lookup. */
	struct flat_pool_in in = {ref.result, ref.ttl_left < chain_ttl ? ref.ttl_left : chain_ttl,
	                          false};
	const struct flat_result *res = px_flat_merge(w, t, &in, 1, &buf, &po);
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
	uint32_t ttl = px_flat_ttl_clamp(cfg, po.ttl);
	uint8_t hops = res->hops; /* the refresh below may reuse the copy's slot */
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
	return direct_sent(w, t, out, n, target, target_len, hops, aname_type);
}

bool px_flat_answer_direct(struct px_worker *w, struct px_txn *t, const uint8_t *targets,
                           size_t targets_len, unsigned n_targets, uint32_t chain_ttl,
                           uint16_t aname_type, const struct px_flat_ecs *ecs)
{
	if (!direct_eligible(t, ecs) || n_targets == 0 || n_targets > FLAT_POOL_MAX)
		return false;
	if (n_targets > 1)
		return direct_pool(w, t, targets, targets_len, n_targets, chain_ttl, aname_type,
		                   ecs);
	return direct_one(w, t, targets, targets_len, chain_ttl, aname_type, ecs);
}
