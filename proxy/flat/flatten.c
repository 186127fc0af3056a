/* proxy/flat/flatten.c - flattening in transit: the proxy's side.
 *
 * flatten/ holds the decisions and the wire work (policy, chase, cache,
 * rewrite); this file does the I/O around them for one query:
 *
 *   query in a configured zone ─▶ ANAME probe to BIND in parallel with the
 *   forwarded query (unless the presence cache knows, or [alias] says)
 *        ─▶ BIND's answer + probe verdict ─▶ flat_policy_inspect()
 *        ─▶ RELAY | LOCAL (rewrite from BIND's own chain) | CHASE
 *   CHASE: target cache get ─▶ hit: rewrite
 *                           └▶ miss: claim ─▶ owner: run a chase
 *                                          └▶ pending: wait for a wake-up
 *
 * Concurrent queries for one target share one chase through the cache's
 * claims, across workers: a waiter on another worker is woken by posting
 * its txn token to that worker's queue and its async handle.
 *
 * Failure never goes silent: a stale answer (EDE 3) if the cache has one,
 * else BIND's sibling A/AAAA at the owner, else SERVFAIL with the chase's
 * Extended DNS Error — by [flatten] deadline at the latest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "flatten/cache.h"
#include "flatten/chase.h"
#include "flatten/policy.h"
#include "flatten/rewrite.h"
#include "flatten/zones.h"
#include "proxy/backend/backend.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"
#include "proxy/flat/upstream.h"
#include "proxy/io/udptx.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* Tokens name a txn across threads: slot index in the low bits, the
 * slot's generation above, so a wake-up for a finished query is ignored. */
#define PX_TOKEN_IDX_BITS 13
_Static_assert((1u << PX_TOKEN_IDX_BITS) >= PX_TXN_SLOTS, "token index bits");
#define PX_TOKEN_IDX_MASK ((1u << PX_TOKEN_IDX_BITS) - 1)

enum lookup_state {
	LK_IDLE = 0,
	LK_WAIT, /* a chase (ours or another query's) is under way */
	LK_DONE,
};

struct px_lookup {
	uint16_t qtype;
	enum lookup_state state;
	bool stale;     /* res is the last good value, served with EDE 3 */
	bool has_stale; /* stale_res holds a last good value for fallback */
	bool reclaimed; /* claimed again after a wake-up found nothing */
	uint32_t ttl;   /* remaining TTL of res (before the clamp) */
	struct flat_result res;
	struct flat_result stale_res;
};

struct px_flat {
	/* What the probe or [alias] said about the query name. */
	unsigned probes_pending;
	bool have_target;
	bool target_is_alias;
	uint8_t target[CODEC_MAX_NAME];
	size_t target_len;
	uint32_t aname_ttl;
	uint16_t aname_type;
	uint16_t probe_id[CFG_MAX_ANAME_TYPES];

	/* BIND's answer, kept while probes finish and for the fallbacks. */
	uint8_t *resp;
	size_t resp_len;
	bool resp_waiting; /* the answer came before the probes finished */

	/* The decision. */
	uint32_t chain_ttl; /* ANAME TTL and CNAMEs BIND followed: caps the answer */
	bool chasing;
	bool siblings;
	bool soa_fetching;
	uint16_t soa_id;
	struct flat_soa soa;
	bool have_soa;
	unsigned n_lookups;
	struct px_lookup lk[2];
};

/* A chase run by this worker for one cache key. */
struct px_chase {
	struct px_worker *w;
	struct px_gen *g; /* held: its cache, zones and resolvers */
	struct flat_chase fc;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
	uint16_t qtype;
	uint32_t owner_token; /* the txn that claimed, 0 for a refresh */
};

static uint32_t txn_token(const struct px_txn *t)
{
	return (t->gen << PX_TOKEN_IDX_BITS) | t->idx;
}

static struct px_txn *token_txn(struct px_worker *w, uint32_t token)
{
	struct px_txn *t = &w->txns[token & PX_TOKEN_IDX_MASK];

	if (!t->busy || ((t->gen << PX_TOKEN_IDX_BITS) | t->idx) != token || t->fl == NULL)
		return NULL;
	return t;
}

static void key_init(struct flat_cache_key *k, const uint8_t *name, size_t len, uint16_t type,
                     enum flat_key_kind kind)
{
	memset(k, 0, sizeof(*k));
	k->name = name;
	k->len = len;
	k->type = type;
	k->kind = kind;
}

/* Is msg the answer to a query of ours (codec_build_query(), with the
 * name lowercased)? Servers echo the question verbatim. */
static bool own_answer_matches(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *name,
                               size_t name_len, uint16_t type)
{
	if (len < CODEC_HDR_LEN + name_len + 4 || codec_hdr_id(msg) != id || !codec_hdr_qr(msg) ||
	    codec_hdr_qdcount(msg) != 1)
		return false;
	const uint8_t *q = msg + CODEC_HDR_LEN;
	for (size_t i = 0; i < name_len; i++)
		if (codec_ascii_lower(q[i]) != codec_ascii_lower(name[i]))
			return false;
	return codec_get_u16(q + name_len) == type;
}

static void reply_and_done(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	px_txn_reply(w, t, msg, len);
	px_txn_done(w, t);
}

static void relay_resp(struct px_worker *w, struct px_txn *t)
{
	PX_STAT_INC(&w->stats, answers_relayed);
	reply_and_done(w, t, t->fl->resp, t->fl->resp_len);
}

/* zone_idx indexes the zones of the txn's own generation: a reload
 * meanwhile does not move it. */
static const struct cfg_zone *txn_zone(const struct px_worker *w, const struct px_txn *t)
{
	(void)w;
	return &t->g->cfg->zones[t->zone_idx];
}

/* Records how the answer came about, for the query log. */
static void set_how(struct px_txn *t, unsigned flags)
{
	const struct px_flat *fl = t->fl;
	unsigned kind = PX_FLAT_CNAME;

	if (fl != NULL && fl->have_target)
		kind = fl->target_is_alias ? PX_FLAT_ALIAS : PX_FLAT_ANAME;
	t->flat_how = (uint8_t)(kind | flags);
}

/* --- the end of a flattened query ----------------------------------- */

static void fetch_soa(struct px_worker *w, struct px_txn *t);

/* The TTL a client sees: [flatten] min-ttl <= TTL <= max-ttl. */
static uint32_t clamp_ttl(const struct cfg *cfg, uint32_t ttl)
{
	return flat_ttl_final(ttl, (uint32_t)cfg->flatten.min_ttl_s,
	                      (uint32_t)cfg->flatten.max_ttl_s);
}

/* The A and AAAA lookups (ANY, ANAME-type queries) as rewrite inputs. */
static void lookup_rrsets(const struct px_flat *fl, const struct cfg *cfg, struct flat_rrset_in *a,
                          struct flat_rrset_in *aaaa)
{
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct flat_rrset_in *in = fl->lk[i].qtype == CODEC_TYPE_A ? a : aaaa;
		in->res = &fl->lk[i].res;
		in->ttl = clamp_ttl(cfg, fl->lk[i].ttl);
	}
}

/* Writes the answer from the lookups, or the fallback. */
static void finish(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->fl;
	const struct cfg *cfg = t->g->cfg;
	uint8_t out[CODEC_MAX_MSG];
	size_t max = flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP);
	struct flat_rewrite_opts opts;
	ssize_t n;
	bool stale = false;

	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	for (unsigned i = 0; i < fl->n_lookups; i++)
		stale |= fl->lk[i].stale;
	if (stale) {
		opts.ede = CODEC_EDE_STALE_ANSWER;
		opts.ede_text = "resolution failed; serving the last good answer";
	}

	/* A failed lookup: siblings, or SERVFAIL with the chase's reason.
	 * (A stale value was already substituted when the failure came.) */
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		const struct flat_result *r = &fl->lk[i].res;
		if (r->kind != FLAT_RES_FAIL)
			continue;
		if (fl->siblings) {
			PX_STAT_INC(&w->stats, answers_sibling);
			set_how(t, PX_FLAT_SIBLING);
			relay_resp(w, t);
			return;
		}
		PX_STAT_INC(&w->stats, answers_flatten_failed);
		set_how(t, PX_FLAT_FAILED);
		px_txn_fail(w, t, r->ede,
		            r->why[0] ? r->why : "cannot resolve the flattened target");
		return;
	}

	for (unsigned i = 0; i < fl->n_lookups; i++)
		if (fl->lk[i].ttl > fl->chain_ttl)
			fl->lk[i].ttl = fl->chain_ttl;

	uint16_t qtype = t->qv.qtype;
	if (qtype == CODEC_TYPE_ANY) {
		/* TCP only: BIND's ANY answer plus the addresses. */
		struct codec_view rv;
		struct flat_rrset_in a = {0}, aaaa = {0};
		if (codec_scan(fl->resp, fl->resp_len, &rv) < 0) {
			relay_resp(w, t);
			return;
		}
		lookup_rrsets(fl, cfg, &a, &aaaa);
		n = flat_rewrite_append(fl->resp, fl->resp_len, &rv, &a, &aaaa, max, out,
		                        sizeof(out));
	} else if (qtype != CODEC_TYPE_A && qtype != CODEC_TYPE_AAAA) {
		/* A query for the ANAME type itself: the record, addresses in
		 * the additional section. */
		struct flat_rrset_in a = {0}, aaaa = {0};
		lookup_rrsets(fl, cfg, &a, &aaaa);
		n = flat_rewrite_aname_query(t->q, t->qlen, &t->qv, fl->target, fl->target_len,
		                             fl->aname_ttl, &a, &aaaa, &opts, max, out,
		                             sizeof(out));
	} else {
		const struct px_lookup *lk = &fl->lk[0];
		uint32_t ttl = lk->ttl;
		if (lk->res.kind != FLAT_RES_ADDRS) {
			/* NODATA at the owner needs the zone's SOA (RFC 2308). */
			if (!fl->have_soa) {
				fetch_soa(w, t);
				return;
			}
			if (ttl > fl->soa.ttl)
				ttl = fl->soa.ttl;
			if (ttl > fl->soa.minimum)
				ttl = fl->soa.minimum;
			opts.soa = &fl->soa;
		}
		if (cfg->flatten.show_aname && fl->have_target && !fl->target_is_alias) {
			opts.show_aname = true;
			opts.aname_type = fl->aname_type;
			opts.aname_target = fl->target;
			opts.aname_target_len = fl->target_len;
			opts.aname_ttl = fl->aname_ttl;
		}
		ttl = clamp_ttl(cfg, ttl);
		n = flat_rewrite(t->q, t->qlen, &t->qv, &lk->res, ttl, &opts, max, out,
		                 sizeof(out));
	}
	if (n < 0) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "cannot build the flattened answer");
		return;
	}
	PX_STAT_INC(&w->stats, answers_flattened);
	if (stale)
		PX_STAT_INC(&w->stats, answers_stale);
	set_how(t, stale ? PX_FLAT_STALE : 0);
	reply_and_done(w, t, out, (size_t)n);
}

struct soa_req {
	struct px_worker *w;
	uint32_t token;
	uint16_t id;
	uint8_t apex[CODEC_MAX_NAME];
	size_t apex_len;
};

static int soa_req_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct soa_req *r = arg;
	struct px_txn *t = token_txn(r->w, r->token);
	struct codec_view v;

	if (status == 0 &&
	    !own_answer_matches(msg, len, r->id, r->apex, r->apex_len, CODEC_TYPE_SOA))
		return PX_UP_WAIT;
	if (status == UV_ETIMEDOUT)
		PX_STAT_INC(&r->w->stats, backend_probe_timeouts);
	if (t != NULL && t->fl->soa_fetching) {
		struct px_flat *fl = t->fl;
		fl->soa_fetching = false;
		/* Asked for the apex SOA itself: it is in the answer section. */
		if (status == 0 && codec_scan(msg, len, &v) == 0 &&
		    flat_policy_soa_in(msg, len, &v, CODEC_SEC_ANSWER, &fl->soa) == 0)
			fl->have_soa = true;
		if (fl->have_soa) {
			finish(r->w, t);
		} else {
			PX_STAT_INC(&r->w->stats, answers_flatten_failed);
			px_txn_fail(r->w, t, CODEC_EDE_OTHER,
			            "no SOA from the backend for a negative answer");
		}
	}
	free(r);
	return PX_UP_DONE;
}

static void fetch_soa(struct px_worker *w, struct px_txn *t)
{
	const struct cfg_zone *z = txn_zone(w, t);
	struct soa_req *r = malloc(sizeof(*r));
	uint8_t q[CODEC_QUERY_MAX];

	if (r == NULL) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "out of memory");
		return;
	}
	r->w = w;
	r->token = txn_token(t);
	r->id = px_up_random_id();
	memcpy(r->apex, z->name.wire, z->name.wire_len);
	r->apex_len = z->name.wire_len;
	size_t qlen = codec_build_query(q, r->id, false, r->apex, r->apex_len, CODEC_TYPE_SOA);
	t->fl->soa_fetching = true;
	int rc = px_up_query(w, (const struct sockaddr *)&w->cfg->backend.address.sa, q, qlen,
	                     false, w->cfg->backend.timeout_ms, soa_req_cb, r);
	if (rc < 0) {
		free(r);
		t->fl->soa_fetching = false;
		px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, "cannot ask the backend for the SOA");
	}
}

static void maybe_finish(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->fl;

	for (unsigned i = 0; i < fl->n_lookups; i++)
		if (fl->lk[i].state != LK_DONE)
			return;
	finish(w, t);
}

/* --- chases --------------------------------------------------------- */

static void chase_send(struct px_chase *ch);

/* A chase's result for the query that claimed its key (owner token; 0
 * for a refresh, which has no query): a failure turns into the stale
 * value when the lookup found one. May answer and free the query. */
static void owner_take(struct px_worker *w, uint32_t token, uint16_t qtype,
                       const struct flat_result *res, uint32_t ttl)
{
	struct px_txn *t = token != 0 ? token_txn(w, token) : NULL;

	if (t == NULL)
		return;
	struct px_flat *fl = t->fl;
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		if (lk->state != LK_WAIT || lk->qtype != qtype)
			continue;
		lk->res = *res;
		lk->ttl = ttl;
		if (lk->res.kind == FLAT_RES_FAIL && lk->has_stale) {
			lk->res = lk->stale_res;
			lk->stale = true;
			lk->ttl = 0;
		}
		lk->state = LK_DONE;
	}
	maybe_finish(w, t);
}

static void chase_complete(struct px_chase *ch)
{
	struct px_worker *w = ch->w;
	struct flat_cache *cache = ch->g->cache;
	struct flat_cache_key key;
	union flat_cache_value val;

	key_init(&key, ch->name, ch->len, ch->qtype, FLAT_KEY_TARGET);
	memset(&val, 0, sizeof(val));
	val.result = ch->fc.result;
	if (val.result.kind == FLAT_RES_FAIL) {
		PX_STAT_INC(&w->stats, chase_failures);
		if ((unsigned)ch->fc.fail < FLAT_CHASE_FAIL_COUNT)
			PX_STAT_INC(&w->stats, chase_fail[ch->fc.fail]);
		px_log(CFG_LOG_DEBUG, CHASE, "chase failed: %s", val.result.why);
	} else {
		/* Keep answers at least min-ttl (the rewrite clamps the same
		 * way), and never 0: a value stale at birth would send the
		 * queries that waited for it back to chasing. */
		uint32_t floor = (uint32_t)ch->g->cfg->flatten.min_ttl_s;
		if (floor == 0)
			floor = 1;
		if (val.result.ttl < floor)
			val.result.ttl = floor;
	}
	/* Wakes every query on any worker that waited for this key. */
	flat_cache_put(cache, &key, &val, px_now(w));
	w->n_chases--;
	owner_take(w, ch->owner_token, ch->qtype, &ch->fc.result, val.result.ttl);
	px_gen_release(w, ch->g);
	free(ch);
}

static int chase_up_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct px_chase *ch = arg;
	enum flat_step step;

	if (status == UV_ECANCELED || ch->w->closed) {
		/* Shutting down: give the claim back so nobody waits on it. */
		struct flat_cache_key key;
		key_init(&key, ch->name, ch->len, ch->qtype, FLAT_KEY_TARGET);
		flat_cache_abandon(ch->g->cache, &key);
		ch->w->n_chases--;
		px_gen_release(ch->w, ch->g);
		free(ch);
		return PX_UP_DONE;
	}
	if (status == UV_ETIMEDOUT) {
		if (ch->fc.server == FLAT_SERVER_BACKEND)
			PX_STAT_INC(&ch->w->stats, backend_probe_timeouts);
		else
			PX_STAT_INC(&ch->w->stats, resolver_timeouts);
	}
	step = flat_chase_input(&ch->fc, status == 0 ? msg : NULL, status == 0 ? len : 0);
	if (step == FLAT_STEP_WAIT)
		return PX_UP_WAIT;
	if (step == FLAT_STEP_SEND)
		chase_send(ch);
	else
		chase_complete(ch);
	return PX_UP_DONE;
}

static void chase_send(struct px_chase *ch)
{
	struct px_worker *w = ch->w;
	const struct cfg *cfg = ch->g->cfg;

	for (;;) {
		const struct sockaddr *server;
		uint64_t timeout;
		if (ch->fc.server == FLAT_SERVER_BACKEND) {
			server = (const struct sockaddr *)&cfg->backend.address.sa;
			timeout = cfg->backend.timeout_ms;
		} else {
			server =
			        (const struct sockaddr *)&cfg->resolver.addresses.v[ch->fc.resolver]
			                .sa;
			timeout = cfg->resolver.timeout_ms;
		}
		flat_chase_set_id(&ch->fc, px_up_random_id());
		PX_STAT_INC(&w->stats, chase_queries);
		if (px_up_query(w, server, ch->fc.out, ch->fc.out_len, ch->fc.tcp, timeout,
		                chase_up_cb, ch) == 0)
			return;
		/* Could not even send: as good as a timeout of that server. */
		if (flat_chase_input(&ch->fc, NULL, 0) != FLAT_STEP_SEND)
			break;
	}
	chase_complete(ch);
}

/* Starts a chase for a key this worker now owns (claim or prefetch). */
static void chase_start(struct px_worker *w, struct px_gen *g, const uint8_t *name, size_t len,
                        uint16_t qtype, uint32_t owner_token)
{
	struct px_chase *ch = calloc(1, sizeof(*ch));
	struct flat_chase_cfg cc = {
	        .max_chain = g->cfg->flatten.max_chain,
	        .n_resolvers = (unsigned)g->cfg->resolver.addresses.n,
	        .own = g->zones,
	};

	if (ch == NULL || w->n_chases >= PX_CHASE_MAX_INFLIGHT) {
		/* Out of memory, or so many targets in flight that the
		 * resolvers are not keeping up: this lookup fails now (stale,
		 * siblings or SERVFAIL, as for a failed chase) rather than
		 * add sockets and memory without bound. Nothing is cached,
		 * so the next query tries again. */
		struct flat_cache_key key;
		struct flat_result res;
		free(ch);
		PX_STAT_INC(&w->stats, chase_refused);
		key_init(&key, name, len, qtype, FLAT_KEY_TARGET);
		flat_cache_abandon(g->cache, &key);
		memset(&res, 0, sizeof(res));
		res.kind = FLAT_RES_FAIL;
		res.ede = CODEC_EDE_OTHER;
		snprintf(res.why, sizeof(res.why), "too many targets being resolved at once");
		owner_take(w, owner_token, qtype, &res, 0);
		return;
	}
	w->n_chases++;
	ch->w = w;
	/* The generation of the query that claimed: the claim is in its
	 * cache, and the chase's resolver indexes are into its list. */
	ch->g = px_gen_hold(w, g);
	memcpy(ch->name, name, len);
	ch->len = len;
	ch->qtype = qtype;
	ch->owner_token = owner_token;
	PX_STAT_INC(&w->stats, chases);
	flat_chase_init(&ch->fc, &cc);
	if (flat_chase_begin(&ch->fc, name, len, qtype, UINT32_MAX, 0) == FLAT_STEP_SEND)
		chase_send(ch);
	else
		chase_complete(ch);
}

/* --- lookups in the target cache ------------------------------------ */

/* Takes what the cache says for lookup i. Returns true when it is done. */
static bool lookup_take(struct px_lookup *lk, int st, const struct flat_cache_hit *hit)
{
	switch (st) {
	case FLAT_CACHE_HIT:
	case FLAT_CACHE_HIT_PREFETCH:
		/* (The refresh a prefetch asks for is started by the caller.) */
		lk->res = hit->value.result;
		lk->ttl = hit->ttl_left;
		return true;
	case FLAT_CACHE_FAIL:
		if (hit->has_stale) {
			lk->res = hit->value.result;
			lk->stale = true;
			lk->ttl = 0;
		} else {
			lk->res = hit->value.result;
			lk->res.kind = FLAT_RES_FAIL;
			lk->res.ede = hit->fail_ede;
			snprintf(lk->res.why, sizeof(lk->res.why), "%s", hit->fail_why);
		}
		return true;
	default:
		return false;
	}
}

static void lookup_start(struct px_worker *w, struct px_txn *t, struct px_lookup *lk,
                         const uint8_t *name, size_t len)
{
	struct flat_cache *cache = t->g->cache;
	struct flat_cache_key key;
	struct flat_cache_hit hit;
	struct flat_cache_waiter waiter = {.worker = w, .token = txn_token(t)};

	key_init(&key, name, len, lk->qtype, FLAT_KEY_TARGET);
	for (int round = 0; round < 3; round++) {
		int st = flat_cache_get(cache, &key, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			/* Popular names never wait: this query answers from
			 * the cache while a refresh runs behind it. */
			lookup_take(lk, st, &hit);
			lk->state = LK_DONE;
			PX_STAT_INC(&w->stats, cache_hits);
			PX_STAT_INC(&w->stats, prefetches);
			chase_start(w, t->g, name, len, lk->qtype, 0);
			return;
		}
		if (lookup_take(lk, st, &hit)) {
			/* Hits count only here, not when a waiter wakes up, so
			 * hits + misses + coalesced = lookups. */
			if (st == FLAT_CACHE_HIT)
				PX_STAT_INC(&w->stats, cache_hits);
			lk->state = LK_DONE;
			return;
		}
		if (st == FLAT_CACHE_STALE) {
			lk->stale_res = hit.value.result;
			lk->has_stale = true;
		}
		int cl = flat_cache_claim(cache, &key, px_now(w), &waiter);
		if (cl == FLAT_CLAIM_READY)
			continue;
		lk->state = LK_WAIT;
		if (cl == FLAT_CLAIM_PENDING) {
			PX_STAT_INC(&w->stats, cache_coalesced);
			return;
		}
		PX_STAT_INC(&w->stats, cache_misses);
		/* OWNER, or an error (then chase alone, uncoalesced). */
		chase_start(w, t->g, name, len, lk->qtype, txn_token(t));
		return;
	}
	lk->state = LK_DONE;
	lk->res.kind = FLAT_RES_FAIL;
	lk->res.ede = CODEC_EDE_OTHER;
	snprintf(lk->res.why, sizeof(lk->res.why), "target cache kept changing");
}

/* A wake-up for txn t: a chase it waited on ended (any worker). */
static void wake_txn(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->fl;
	struct flat_cache_key key;
	struct flat_cache_hit hit;

	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		if (lk->state != LK_WAIT)
			continue;
		key_init(&key, fl->target, fl->target_len, lk->qtype, FLAT_KEY_TARGET);
		int st = flat_cache_get(t->g->cache, &key, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH)
			st = FLAT_CACHE_HIT; /* the owner of the refresh is whoever asks next */
		if (lookup_take(lk, st, &hit)) {
			lk->state = LK_DONE;
			continue;
		}
		if (st == FLAT_CACHE_STALE) {
			lk->res = hit.value.result;
			lk->stale = true;
			lk->ttl = 0;
			lk->state = LK_DONE;
			continue;
		}
		/* MISS: flushed or evicted meanwhile; try once more. */
		if (!lk->reclaimed) {
			lk->reclaimed = true;
			lk->state = LK_IDLE;
			lookup_start(w, t, lk, fl->target, fl->target_len);
			/* A chase that cannot start (no socket, no memory)
			 * answers the query at once and frees fl. */
			if (t->fl != fl)
				return;
			continue;
		}
		lk->state = LK_DONE;
		lk->res.kind = FLAT_RES_FAIL;
		lk->res.ede = CODEC_EDE_OTHER;
		snprintf(lk->res.why, sizeof(lk->res.why), "chase result lost");
	}
	maybe_finish(w, t);
}

/* flat_cache wake callback: runs on whichever thread ended the claim. */
static void cache_wake(void *arg, const struct flat_cache_waiter *ws, size_t n)
{
	(void)arg;
	for (size_t i = 0; i < n; i++) {
		struct px_worker *w = ws[i].worker;
		uv_mutex_lock(&w->post_mu);
		if (w->n_post == w->cap_post) {
			size_t ncap = w->cap_post ? w->cap_post * 2 : 64;
			uint32_t *np = realloc(w->post, ncap * sizeof(*np));
			if (np == NULL) {
				/* The waiter answers at its deadline instead. */
				uv_mutex_unlock(&w->post_mu);
				continue;
			}
			w->post = np;
			w->cap_post = ncap;
		}
		w->post[w->n_post++] = ws[i].token;
		uv_mutex_unlock(&w->post_mu);
		uv_async_send(&w->wake);
	}
}

void px_flat_run_posts(struct px_worker *w)
{
	uint32_t local[256];
	size_t n;

	do {
		uv_mutex_lock(&w->post_mu);
		n = w->n_post < 256 ? w->n_post : 256;
		if (n > 0)
			memcpy(local, w->post + (w->n_post - n), n * sizeof(*local));
		w->n_post -= n;
		uv_mutex_unlock(&w->post_mu);
		for (size_t i = 0; i < n; i++) {
			struct px_txn *t = token_txn(w, local[i]);
			if (t != NULL && t->fl->chasing)
				wake_txn(w, t);
		}
	} while (n == 256);
}

/* --- the decision ----------------------------------------------------- */

static bool start_chase(struct px_worker *w, struct px_txn *t, const struct flat_policy_out *po)
{
	struct px_flat *fl = t->fl;
	uint16_t qtype = t->qv.qtype;

	memcpy(fl->target, po->target, po->target_len);
	fl->target_len = po->target_len;
	fl->siblings = po->siblings;
	fl->chasing = true;
	/* DESIGN: TTL = min over every CNAME/ANAME on the chain and the
	 * target's remaining TTL. The cache keys on the target alone, so
	 * the owner's part of the chain is applied here. */
	fl->chain_ttl = po->chain_ttl;
	if (fl->have_target && !fl->target_is_alias && fl->aname_ttl < fl->chain_ttl)
		fl->chain_ttl = fl->aname_ttl;
	if (qtype == CODEC_TYPE_A || qtype == CODEC_TYPE_AAAA) {
		fl->n_lookups = 1;
		fl->lk[0].qtype = qtype;
	} else {
		fl->n_lookups = 2;
		fl->lk[0].qtype = CODEC_TYPE_A;
		fl->lk[1].qtype = CODEC_TYPE_AAAA;
	}
	/* BIND answered; resolution now has the rest of the flatten deadline. */
	const struct cfg *cfg = t->g->cfg;
	uint64_t now = px_now(w), end = t->start_ms + cfg->flatten.deadline_ms;
	px_txn_arm(w, t, end > now ? end - now : 1);
	/* The chain CNAMEs BIND followed cap the TTL; rare enough to take
	 * them from the policy rather than the cache key. */
	if (po->hops > cfg->flatten.max_chain) {
		/* BIND's own answer already holds a loop or a chain past
		 * max-chain: fail like a chase would (stale, siblings, EDE). */
		for (unsigned i = 0; i < fl->n_lookups; i++) {
			struct px_lookup *lk = &fl->lk[i];
			lk->state = LK_DONE;
			lk->res.kind = FLAT_RES_FAIL;
			lk->res.ede = CODEC_EDE_OTHER;
			snprintf(lk->res.why, sizeof(lk->res.why),
			         "CNAME loop or chain longer than max-chain %u in the zone",
			         cfg->flatten.max_chain);
		}
		finish(w, t);
		return true;
	}
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		lookup_start(w, t, &fl->lk[i], fl->target, fl->target_len);
		if (!t->busy)
			return true;
	}
	maybe_finish(w, t);
	return true;
}

/* BIND's answer and the probe verdicts are in: decide. Returns false to
 * have the caller relay BIND's answer. */
static bool decide(struct px_worker *w, struct px_txn *t, const uint8_t *resp, size_t rlen)
{
	const struct cfg_zone *z = txn_zone(w, t);
	struct px_flat *fl = t->fl;
	struct codec_view rv;
	struct flat_policy_in in;
	struct flat_policy_out po;
	uint16_t qtype = t->qv.qtype;

	if (codec_scan(resp, rlen, &rv) < 0)
		return false;
	memset(&po, 0, sizeof(po));
	memset(&in, 0, sizeof(in));
	in.query = t->q;
	in.qlen = t->qlen;
	in.qv = &t->qv;
	in.resp = resp;
	in.rlen = rlen;
	in.rv = &rv;
	in.mode = z->cname == CFG_CNAME_ALL    ? FLAT_CNAME_ALL
	          : z->cname == CFG_CNAME_NONE ? FLAT_CNAME_NONE
	                                       : FLAT_CNAME_APEX;
	in.is_apex = t->is_apex;

	bool aname_query =
	        qtype != CODEC_TYPE_A && qtype != CODEC_TYPE_AAAA && qtype != CODEC_TYPE_ANY;
	if (aname_query) {
		/* A query for the ANAME type: BIND's answer is the record. */
		struct flat_aname an;
		if (fl == NULL) {
			fl = calloc(1, sizeof(*fl));
			if (fl == NULL)
				return false;
			t->fl = fl;
		}
		enum flat_aname_state st = flat_aname_parse(resp, rlen, &rv, t->q + CODEC_HDR_LEN,
		                                            t->qv.qname_len, qtype, &an);
		if (st == FLAT_ANAME_INVALID) {
			PX_STAT_INC(&w->stats, aname_invalid);
			return false;
		}
		if (st != FLAT_ANAME_PRESENT)
			return false;
		memcpy(fl->target, an.target, an.target_len);
		fl->target_len = an.target_len;
		fl->aname_ttl = an.ttl;
		fl->have_target = true;
		po.target_len = an.target_len;
		memcpy(po.target, an.target, an.target_len);
		/* Without addresses, BIND's answer (the record alone) is
		 * still right: it is the fallback. */
		po.siblings = true;
		po.chain_ttl = UINT32_MAX;
	} else {
		if (fl != NULL && fl->have_target) {
			in.target = fl->target;
			in.target_len = fl->target_len;
			in.target_is_alias = fl->target_is_alias;
		}
		flat_policy_inspect(&in, &po);
		if (po.signed_relay)
			PX_STAT_INC(&w->stats, signed_relayed);
		if (po.action == FLAT_POLICY_RELAY)
			return false;
	}

	uint8_t out[CODEC_MAX_MSG];
	size_t max = flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP);
	if (!aname_query && po.action == FLAT_POLICY_LOCAL && qtype != CODEC_TYPE_ANY) {
		struct flat_rewrite_opts opts;
		struct flat_soa soa;
		memset(&opts, 0, sizeof(opts));
		opts.ede = CODEC_EDE_NONE;
		uint32_t ttl = po.local.ttl;
		if (po.local.kind != FLAT_RES_ADDRS) {
			if (flat_policy_soa(resp, rlen, &rv, &soa) < 0)
				return false;
			opts.soa = &soa;
		}
		ttl = clamp_ttl(t->g->cfg, ttl);
		ssize_t n = flat_rewrite(t->q, t->qlen, &t->qv, &po.local, ttl, &opts, max, out,
		                         sizeof(out));
		if (n < 0)
			return false;
		PX_STAT_INC(&w->stats, answers_flattened_local);
		t->flat_how = PX_FLAT_LOCAL;
		reply_and_done(w, t, out, (size_t)n);
		return true;
	}
	if (!aname_query && po.action == FLAT_POLICY_LOCAL && t->origin == PX_ORIGIN_TCP)
		return false; /* ANY over TCP of an in-zone chain: BIND's answer says it all */
	if (qtype == CODEC_TYPE_ANY && t->origin == PX_ORIGIN_UDP) {
		/* RFC 8482: one small RRset instead of everything. */
		ssize_t n =
		        flat_rewrite_any_minimal(t->q, t->qlen, &t->qv,
		                                 (uint32_t)t->g->cfg->flatten.min_ttl_s < 3600
		                                         ? 3600
		                                         : (uint32_t)t->g->cfg->flatten.min_ttl_s,
		                                 max, out, sizeof(out));
		if (n < 0)
			return false;
		PX_STAT_INC(&w->stats, answers_flattened);
		reply_and_done(w, t, out, (size_t)n);
		return true;
	}

	/* CHASE. */
	if (fl == NULL) {
		fl = calloc(1, sizeof(*fl));
		if (fl == NULL)
			return false;
		t->fl = fl;
	}
	if (fl->resp == NULL) {
		fl->resp = malloc(rlen);
		if (fl->resp == NULL)
			return false;
		memcpy(fl->resp, resp, rlen);
		fl->resp_len = rlen;
	}
	if (flat_policy_soa(fl->resp, fl->resp_len, &rv, &fl->soa) == 0)
		fl->have_soa = true;
	return start_chase(w, t, &po);
}

/* --- probes ----------------------------------------------------------- */

struct probe_req {
	struct px_worker *w;
	struct px_gen *g; /* held: the presence cache it fills */
	uint32_t token;
	uint16_t id;
	uint16_t type;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
};

static void probes_settled(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->fl;

	if (fl->probes_pending > 0 || !fl->resp_waiting)
		return;
	fl->resp_waiting = false;
	if (!decide(w, t, fl->resp, fl->resp_len) && t->busy)
		relay_resp(w, t);
}

static int probe_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct probe_req *r = arg;
	struct px_worker *w = r->w;
	struct flat_cache_key key;
	union flat_cache_value val;
	struct codec_view v;
	struct flat_aname an;

	if (status == 0 && !own_answer_matches(msg, len, r->id, r->name, r->len, r->type))
		return PX_UP_WAIT;
	if (status == UV_ETIMEDOUT)
		PX_STAT_INC(&w->stats, backend_probe_timeouts);
	an.state = FLAT_ANAME_UNKNOWN;
	if (status == 0 && codec_scan(msg, len, &v) == 0)
		flat_aname_parse(msg, len, &v, r->name, r->len, r->type, &an);
	memset(&val, 0, sizeof(val));
	key_init(&key, r->name, r->len, r->type, FLAT_KEY_PRESENCE);
	if (an.state == FLAT_ANAME_PRESENT) {
		val.presence.present = true;
		memcpy(val.presence.target, an.target, an.target_len);
		val.presence.target_len = (uint8_t)an.target_len;
		val.presence.ttl = an.ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
	} else if (an.state == FLAT_ANAME_ABSENT && an.ttl > 0) {
		val.presence.ttl = an.ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
	} else if (an.state == FLAT_ANAME_INVALID) {
		PX_STAT_INC(&w->stats, aname_invalid);
		char name[CODEC_MAX_NAME * 4 + 1];
		codec_name_to_text(r->name, r->len, name, sizeof(name));
		px_log_rl(CFG_LOG_WARNING, BACKEND,
		          "ignoring the TYPE%u record at %s: its RDATA must be exactly one "
		          "uncompressed domain name",
		          r->type, name);
	}

	struct px_txn *t = token_txn(w, r->token);
	if (t != NULL && t->fl->probes_pending > 0) {
		struct px_flat *fl = t->fl;
		if (an.state == FLAT_ANAME_PRESENT && !fl->have_target) {
			memcpy(fl->target, an.target, an.target_len);
			fl->target_len = an.target_len;
			fl->aname_ttl = an.ttl;
			fl->aname_type = r->type;
			fl->have_target = true;
		}
		fl->probes_pending--;
		probes_settled(w, t);
	}
	px_gen_release(w, r->g);
	free(r);
	return PX_UP_DONE;
}

static void probe_send(struct px_worker *w, struct px_txn *t, const uint8_t *name, size_t len,
                       uint16_t type)
{
	struct probe_req *r = malloc(sizeof(*r));
	uint8_t q[CODEC_QUERY_MAX];

	if (r == NULL)
		return;
	r->w = w;
	r->token = txn_token(t);
	r->id = px_up_random_id();
	r->type = type;
	r->g = px_gen_hold(w, t->g);
	memcpy(r->name, name, len);
	codec_name_lower(r->name, len);
	r->len = len;
	size_t qlen = codec_build_query(q, r->id, false, r->name, r->len, type);
	PX_STAT_INC(&w->stats, aname_probes);
	if (px_up_query(w, (const struct sockaddr *)&w->cfg->backend.address.sa, q, qlen, false,
	                w->cfg->backend.timeout_ms, probe_cb, r) < 0) {
		px_gen_release(w, r->g);
		free(r);
		return;
	}
	t->fl->probes_pending++;
}

/* --- answers straight from the caches --------------------------------- */

/* Can this query be flattened without BIND's answer at the owner? An
 * A/AAAA question whose flattened answer would be built from the query
 * alone anyway (flat_rewrite() echoes no option: a cookie or NSID of
 * BIND's is not in a flattened answer either way). Not with DO=1: BIND's
 * answer says whether the zone is signed, and then it is relayed (DESIGN
 * "DNSSEC"). Not with a TSIG (BIND verifies it) or a client subnet (the
 * answer may depend on it). */
static bool direct_eligible(const struct px_txn *t)
{
	const struct codec_view *v = &t->qv;
	size_t off;
	uint16_t len;

	if (v->qtype != CODEC_TYPE_A && v->qtype != CODEC_TYPE_AAAA)
		return false;
	if (v->has_tsig || (v->has_opt && v->do_bit))
		return false;
	return !v->has_opt || !codec_edns_option(t->q, v, CODEC_EDNS_OPT_ECS, &off, &len);
}

/* The owner's target is known (a fresh ANAME presence entry, or an
 * [alias]) and the target cache holds fresh addresses of the type asked:
 * the answer needs nothing from BIND. BIND's answer at the owner would
 * only be consulted for sibling addresses, which serve only when a chase
 * fails, and for the SOA of a NODATA, which this path does not write. An
 * edit of the zone is seen as with the presence cache: at the ANAME's TTL
 * or at once through NOTIFY. Returns true when t was answered and ended. */
static bool answer_direct(struct px_worker *w, struct px_txn *t, const uint8_t *target,
                          size_t target_len, uint32_t chain_ttl, uint16_t aname_type)
{
	const struct cfg *cfg = t->g->cfg;
	struct flat_cache_key key;
	struct flat_cache_hit hit;
	struct flat_rewrite_opts opts;
	uint8_t out[CODEC_MAX_MSG];

	if (!direct_eligible(t))
		return false;
	key_init(&key, target, target_len, t->qv.qtype, FLAT_KEY_TARGET);
	int st = flat_cache_get(t->g->cache, &key, px_now(w), &hit);
	if (st != FLAT_CACHE_HIT && st != FLAT_CACHE_HIT_PREFETCH)
		return false;
	if (hit.value.result.kind != FLAT_RES_ADDRS || hit.value.result.n_addrs == 0) {
		if (st == FLAT_CACHE_HIT_PREFETCH)
			flat_cache_abandon(t->g->cache, &key);
		return false;
	}
	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	if (cfg->flatten.show_aname && aname_type != 0) {
		opts.show_aname = true;
		opts.aname_type = aname_type;
		opts.aname_target = target;
		opts.aname_target_len = target_len;
		opts.aname_ttl = chain_ttl;
	}
	uint32_t ttl = hit.ttl_left < chain_ttl ? hit.ttl_left : chain_ttl;
	ssize_t n = flat_rewrite(t->q, t->qlen, &t->qv, &hit.value.result, clamp_ttl(cfg, ttl),
	                         &opts, flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP),
	                         out, sizeof(out));
	if (st == FLAT_CACHE_HIT_PREFETCH) {
		/* Popular names never wait: a refresh runs behind this answer. */
		PX_STAT_INC(&w->stats, prefetches);
		chase_start(w, t->g, target, target_len, t->qv.qtype, 0);
	}
	if (n < 0)
		return false;
	PX_STAT_INC(&w->stats, cache_hits);
	PX_STAT_INC(&w->stats, answers_flattened);
	PX_STAT_INC(&w->stats, answers_flattened_direct);
	t->flat_how = aname_type != 0 ? PX_FLAT_ANAME : PX_FLAT_ALIAS;
	t->direct_target = target;
	t->direct_target_len = (uint8_t)target_len;
	t->direct_hops = hit.value.result.hops;
	reply_and_done(w, t, out, (size_t)n);
	return true;
}

/* --- entry points ----------------------------------------------------- */

bool px_flat_query(struct px_worker *w, struct px_txn *t)
{
	/* t->g is the worker's current generation: zones, aliases and
	 * cache below all come from it, so the indexes agree. */
	struct px_gen *g = t->g;
	const struct cfg *cfg = g->cfg;
	const struct codec_view *v = &t->qv;
	const uint8_t *qname = t->q + CODEC_HDR_LEN;
	size_t qlen = v->qname_len, idx;
	bool apex, aname_query = false;

	t->start_ms = px_now(w);
	if (g->zones == NULL || v->opcode != CODEC_OPCODE_QUERY || v->qdcount != 1 ||
	    v->qclass != CODEC_CLASS_IN)
		return false;
	if (v->qtype != CODEC_TYPE_A && v->qtype != CODEC_TYPE_AAAA && v->qtype != CODEC_TYPE_ANY) {
		for (unsigned i = 0; i < cfg->flatten.n_aname_types; i++)
			aname_query |= v->qtype == cfg->flatten.aname_types[i];
		if (!aname_query)
			return false;
	}
	/* The question name is at offset 12 and never compressed. */
	if (flat_zones_find(g->zones, qname, qlen, &idx, &apex) != 0)
		return false;
	t->flat_eligible = true;
	t->zone_idx = (uint16_t)idx;
	t->is_apex = apex;
	if (aname_query)
		return false; /* BIND's own answer carries the record */

	/* [alias] owner: the target is in the configuration. */
	if (g->alias_owners != NULL && flat_zones_get(g->alias_owners, qname, qlen, &idx) == 0) {
		const struct cfg_alias *al = &cfg->aliases[idx];
		if (answer_direct(w, t, al->target.wire, al->target.wire_len, UINT32_MAX, 0))
			return true;
		t->fl = calloc(1, sizeof(*t->fl));
		if (t->fl == NULL)
			return false;
		memcpy(t->fl->target, al->target.wire, al->target.wire_len);
		t->fl->target_len = al->target.wire_len;
		t->fl->have_target = true;
		t->fl->target_is_alias = true;
		return false;
	}

	/* ANAME presence: the cache, else a probe to BIND in parallel. */
	for (unsigned i = 0; i < cfg->flatten.n_aname_types; i++) {
		uint16_t type = cfg->flatten.aname_types[i];
		struct flat_cache_key key;
		struct flat_cache_hit hit;
		key_init(&key, qname, qlen, type, FLAT_KEY_PRESENCE);
		int st = flat_cache_get(g->cache, &key, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			/* Presence needs no refresh ahead: it is probed
			 * again when it expires. */
			flat_cache_abandon(g->cache, &key);
			st = FLAT_CACHE_HIT;
		}
		if (st == FLAT_CACHE_HIT) {
			if (!hit.value.presence.present)
				continue;
			if (t->fl == NULL &&
			    answer_direct(w, t, hit.value.presence.target,
			                  hit.value.presence.target_len, hit.ttl_left, type))
				return true;
			if (t->fl == NULL && (t->fl = calloc(1, sizeof(*t->fl))) == NULL)
				return false;
			memcpy(t->fl->target, hit.value.presence.target,
			       hit.value.presence.target_len);
			t->fl->target_len = hit.value.presence.target_len;
			t->fl->aname_ttl = hit.ttl_left;
			t->fl->aname_type = type;
			t->fl->have_target = true;
			return false;
		}
		if (t->fl == NULL && (t->fl = calloc(1, sizeof(*t->fl))) == NULL)
			return false;
		probe_send(w, t, qname, qlen, type);
	}
	return false;
}

bool px_flat_answer(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	struct px_flat *fl = t->fl;

	if (!t->flat_eligible)
		return false;
	if (fl != NULL && fl->probes_pending > 0) {
		/* Hold BIND's answer until the probes say whether the name
		 * owns an ANAME; the probes were sent first, so this wait is
		 * short. */
		fl->resp = malloc(len);
		if (fl->resp == NULL)
			return false;
		memcpy(fl->resp, msg, len);
		fl->resp_len = len;
		fl->resp_waiting = true;
		return true;
	}
	return decide(w, t, msg, len);
}

void px_flat_deadline(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->fl;
	char why[FLAT_WHY_MAX];

	PX_STAT_INC(&w->stats, answers_flatten_deadline);
	/* The chase goes on behind this answer and fills the cache. */
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		if (lk->state == LK_DONE)
			continue;
		if (lk->has_stale) {
			lk->res = lk->stale_res;
			lk->stale = true;
			lk->ttl = 0;
		} else {
			char name[CODEC_MAX_NAME * 4 + 1];
			codec_name_to_text(fl->target, fl->target_len, name, sizeof(name));
			snprintf(why, sizeof(why), "resolving %.60s took longer than %llu ms", name,
			         (unsigned long long)t->g->cfg->flatten.deadline_ms);
			lk->res.kind = FLAT_RES_FAIL;
			lk->res.ede = CODEC_EDE_NO_REACHABLE_AUTHORITY;
			snprintf(lk->res.why, sizeof(lk->res.why), "%s", why);
		}
		lk->state = LK_DONE;
	}
	if (fl->soa_fetching || fl->probes_pending > 0 || !fl->chasing) {
		if (fl->resp != NULL) {
			relay_resp(w, t);
			return;
		}
		px_txn_fail(w, t, CODEC_EDE_NO_REACHABLE_AUTHORITY,
		            "the backend did not answer in time");
		return;
	}
	finish(w, t);
}

bool px_flat_active(const struct px_txn *t)
{
	return t->fl != NULL && (t->fl->chasing || t->fl->resp_waiting || t->fl->soa_fetching);
}

void px_flat_free(struct px_txn *t)
{
	if (t->fl == NULL)
		return;
	free(t->fl->resp);
	free(t->fl);
	t->fl = NULL;
}

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

/* --- per generation ---------------------------------------------------- */

/* The target cache, shared by the generations whose settings for it are
 * the same: a reload that leaves them alone keeps every entry. */
struct px_tcache {
	atomic_uint refs;
	struct flat_cache *c;
	struct flat_cache_conf conf;
};

static void tcache_unref(struct px_tcache *tc)
{
	if (tc != NULL && atomic_fetch_sub_explicit(&tc->refs, 1, memory_order_acq_rel) == 1) {
		flat_cache_free(tc->c);
		free(tc);
	}
}

static bool cache_conf_equal(const struct flat_cache_conf *a, const struct flat_cache_conf *b)
{
	return a->max_bytes == b->max_bytes && a->shards == b->shards &&
	       a->serve_stale_s == b->serve_stale_s && a->failure_ttl_s == b->failure_ttl_s &&
	       a->pending_ms == b->pending_ms;
}

int px_flat_gen_init(struct px_server *srv, struct px_gen *g, const struct px_gen *prev)
{
	const struct cfg *cfg = g->cfg;
	struct flat_cache_conf cc = {
	        .max_bytes = (size_t)cfg->flatten.cache_size,
	        .serve_stale_s = (uint32_t)cfg->flatten.serve_stale_s,
	        .failure_ttl_s = (uint32_t)cfg->flatten.failure_ttl_s,
	        /* A claim outlives every deadline that may wait on it. */
	        .pending_ms =
	                (uint32_t)(cfg->flatten.deadline_ms +
	                           cfg->resolver.timeout_ms * (cfg->resolver.addresses.n + 1)),
	        .wake = cache_wake,
	        .wake_arg = srv,
	};
	int rc;

	if (prev != NULL && cache_conf_equal(&prev->tcache->conf, &cc)) {
		atomic_fetch_add_explicit(&prev->tcache->refs, 1, memory_order_relaxed);
		g->tcache = prev->tcache;
	} else {
		struct px_tcache *tc = calloc(1, sizeof(*tc));
		if (tc == NULL)
			return -ENOMEM;
		rc = flat_cache_new(&tc->c, &cc);
		if (rc < 0) {
			free(tc);
			return rc;
		}
		atomic_init(&tc->refs, 1);
		tc->conf = cc;
		g->tcache = tc;
		if (prev != NULL)
			px_log(CFG_LOG_INFO, CACHE,
			       "reload: cache-size, serve-stale, failure-ttl or the chase "
			       "timeouts changed: a new, empty target cache");
	}
	g->cache = g->tcache->c;
	if (cfg->n_zones == 0)
		return 0;

	const uint8_t **names = calloc(cfg->n_zones + cfg->n_aliases, sizeof(*names));
	size_t *lens = calloc(cfg->n_zones + cfg->n_aliases, sizeof(*lens));
	if (names == NULL || lens == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < cfg->n_zones; i++) {
		names[i] = cfg->zones[i].name.wire;
		lens[i] = cfg->zones[i].name.wire_len;
	}
	rc = flat_zones_new(&g->zones, names, lens, cfg->n_zones);
	if (rc < 0 || cfg->n_aliases == 0)
		goto out;
	for (size_t i = 0; i < cfg->n_aliases; i++) {
		names[i] = cfg->aliases[i].owner.wire;
		lens[i] = cfg->aliases[i].owner.wire_len;
	}
	rc = flat_zones_new(&g->alias_owners, names, lens, cfg->n_aliases);
out:
	free(names);
	free(lens);
	return rc;
}

void px_flat_gen_deinit(struct px_gen *g)
{
	tcache_unref(g->tcache);
	flat_zones_free(g->zones);
	flat_zones_free(g->alias_owners);
	g->tcache = NULL;
	g->cache = NULL;
	g->zones = g->alias_owners = NULL;
}

void px_flat_gen_flush_removed(struct px_gen *g, const struct cfg *old)
{
	const struct cfg *nc = g->cfg;

	/* A zone no longer configured: its presence facts must not outlive
	 * it (targets inside it were asked of BIND as our own). */
	for (size_t i = 0; i < old->n_zones; i++) {
		bool kept = false;
		for (size_t j = 0; j < nc->n_zones && !kept; j++)
			kept = strcmp(old->zones[i].name.text, nc->zones[j].name.text) == 0;
		if (!kept)
			flat_cache_flush_suffix(g->cache, old->zones[i].name.wire,
			                        old->zones[i].name.wire_len);
	}
	/* An alias removed or pointed elsewhere: what was learnt at its
	 * owner goes (the target's addresses stay: they are facts about the
	 * target, good for anyone else who points there). */
	for (size_t i = 0; i < old->n_aliases; i++) {
		const struct cfg_alias *a = &old->aliases[i];
		bool same = false;
		for (size_t j = 0; j < nc->n_aliases && !same; j++)
			same = strcmp(a->owner.text, nc->aliases[j].owner.text) == 0 &&
			       strcmp(a->target.text, nc->aliases[j].target.text) == 0;
		if (same)
			continue;
		flat_cache_flush_suffix(g->cache, a->owner.wire, a->owner.wire_len);
	}
}

void px_flat_chain_text(const struct px_txn *t, char *out, size_t size)
{
	const struct px_flat *fl = t->fl;
	char owner[CODEC_MAX_NAME * 4 + 1], target[CODEC_MAX_NAME * 4 + 1];
	unsigned hops = 0;
	const uint8_t *tw = t->direct_target;
	size_t tlen = t->direct_target_len;

	if (fl != NULL) {
		tw = fl->target;
		tlen = fl->target_len;
		for (unsigned i = 0; i < fl->n_lookups; i++)
			if (fl->lk[i].res.hops > hops)
				hops = fl->lk[i].res.hops;
	} else {
		hops = t->direct_hops;
	}
	if (tw == NULL || tlen == 0 || (t->flat_how & PX_FLAT_HOW_MASK) == PX_FLAT_NO ||
	    (t->flat_how & PX_FLAT_HOW_MASK) == PX_FLAT_LOCAL ||
	    codec_name_to_text(t->q + CODEC_HDR_LEN, t->qv.qname_len, owner, sizeof(owner)) < 0 ||
	    codec_name_to_text(tw, tlen, target, sizeof(target)) < 0) {
		snprintf(out, size, "-");
		return;
	}
	if (hops > 0)
		snprintf(out, size, "%s>%s+%u", owner, target, hops);
	else
		snprintf(out, size, "%s>%s", owner, target);
}
