/* proxy/flat/chase.c - chases run by this worker, one per cache key.
 *
 * flatten/chase is the step machine (which server, which question, what
 * an answer means); this file sends its queries as apexd's own
 * (upstream.c), stores the result in the shared target cache, which
 * wakes every query that waited for the key on any worker, and hands the
 * result to the query that claimed the key.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/svcb.h"
#include "flatten/chase.h"
#include "proxy/flat/flat_int.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* A chase run by this worker for one cache key. */
struct px_chase {
	struct px_worker *w;
	struct px_gen *g; /* held: its cache, zones and resolvers */
	struct px_chase_run run;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
	uint16_t qtype;
	uint32_t owner_token;                /* the txn that claimed, 0 for a refresh */
	uint8_t claimed[FLAT_CACHE_ECS_LEN]; /* the key's ecs[] claimed or prefetched */
	struct codec_ecs send;               /* ECS sent to resolvers; family 0: none */
};

/* --- the runner: flatten/chase's steps sent as own queries ----------- */

static void run_send(struct px_chase_run *r);

static int run_up_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct px_chase_run *r = arg;
	struct px_stats *stats = r->home.stats;
	enum flat_step step;

	if (status == UV_ECANCELED || (r->stop != NULL && *r->stop)) {
		r->done(r, true);
		return PX_UP_DONE;
	}
	if (status == UV_ETIMEDOUT && stats != NULL) {
		if (r->fc.server == FLAT_SERVER_BACKEND)
			PX_STAT_INC(stats, backend_probe_timeouts);
		else
			PX_STAT_INC(stats, resolver_timeouts);
	}
	step = flat_chase_input(&r->fc, status == 0 ? msg : NULL, status == 0 ? len : 0);
	if (step == FLAT_STEP_WAIT)
		return PX_UP_WAIT;
	if (step == FLAT_STEP_SEND)
		run_send(r);
	else
		r->done(r, false);
	return PX_UP_DONE;
}

/* The timer of the next try: [resolver] timeout equals [flatten]
 * deadline by default, so a silent first resolver would take the whole
 * deadline and failover would only ever help the cache. Each try gets its
 * share of what is left among the servers still to try for this name. */
static uint64_t try_timeout(struct px_chase_run *r, uint64_t key_ms, unsigned tries)
{
	uint64_t now = uv_now(r->home.loop);

	/* Spent: the query that started the chase has had its answer at
	 * its deadline; the rest of the chase is for the cache and for the
	 * queries that joined later, and gets a window of its own. */
	if (r->end_ms < now + FLAT_CHASE_TRY_MIN_MS)
		r->end_ms = now + r->cfg->flatten.deadline_ms;
	return flat_chase_try_ms(r->end_ms - now, tries, key_ms);
}

static void run_send(struct px_chase_run *r)
{
	const struct cfg *cfg = r->cfg;

	for (;;) {
		const struct sockaddr *server;
		uint64_t timeout;
		if (r->fc.server == FLAT_SERVER_BACKEND) {
			server = (const struct sockaddr *)&cfg->backend.address.sa;
			timeout = try_timeout(r, cfg->backend.timeout_ms, 1);
		} else {
			server = (const struct sockaddr *)&cfg->resolver.addresses.v[r->fc.resolver]
			                 .sa;
			timeout = try_timeout(r, cfg->resolver.timeout_ms,
			                      (unsigned)cfg->resolver.addresses.n - r->fc.resolver);
		}
		flat_chase_set_id(&r->fc, px_up_random_id());
		r->n_queries++;
		if (r->home.stats != NULL)
			PX_STAT_INC(r->home.stats, chase_queries);
		/* dnstap-chases logs the queries to resolvers, not BIND's. */
		struct px_up_home home = r->home;
		if (r->fc.server == FLAT_SERVER_BACKEND || !cfg->server.dnstap_chases)
			home.tap = NULL;
		if (px_up_send(&home, server, r->fc.out, r->fc.out_len, r->fc.tcp, timeout,
		               run_up_cb, r) == 0)
			return;
		/* Could not even send: as good as a timeout of that server. */
		if (flat_chase_input(&r->fc, NULL, 0) != FLAT_STEP_SEND)
			break;
	}
	r->done(r, false);
}

void px_chase_run_start(struct px_chase_run *r, const struct flat_zones *own, const uint8_t *name,
                        size_t len, uint16_t qtype)
{
	px_chase_run_start_by(r, own, name, len, qtype,
	                      uv_now(r->home.loop) + r->cfg->flatten.deadline_ms);
}

void px_chase_run_start_by(struct px_chase_run *r, const struct flat_zones *own,
                           const uint8_t *name, size_t len, uint16_t qtype, uint64_t end_ms)
{
	struct flat_chase_cfg cc = {
	        .max_chain = r->cfg->flatten.max_chain,
	        .n_resolvers = (unsigned)r->cfg->resolver.addresses.n,
	        .own = own,
	        .ecs = r->ecs,
	};

	r->n_queries = 0;
	r->end_ms = end_ms;
	flat_chase_init(&r->fc, &cc);
	if (flat_chase_begin(&r->fc, name, len, qtype, UINT32_MAX, 0) == FLAT_STEP_SEND)
		run_send(r);
	else
		r->done(r, false);
}

/* --- chases for the target cache -------------------------------------- */

/* A chase's result for the query that claimed its key (owner token; 0
 * for a refresh, which has no query): a failure turns into the stale
 * value when the lookup found one. May answer and free the query. */
static void owner_take(struct px_worker *w, uint32_t token, const uint8_t *name, size_t len,
                       uint16_t qtype, const struct flat_result *res, uint32_t ttl, uint8_t scope)
{
	struct px_txn *t = token != 0 ? px_flat_token_txn(w, token) : NULL;

	if (t == NULL)
		return;
	struct px_flat *fl = t->flat.fl;
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		if (lk->state != LK_WAIT || lk->qtype != qtype)
			continue;
		/* A pool's lookups of one type differ by target. */
		size_t tl;
		const uint8_t *tn = px_flat_target(fl, lk->ti, &tl);
		if (tl != len || memcmp(tn, name, len) != 0)
			continue;
		lk->res = *res;
		lk->ttl = ttl;
		lk->scope = scope;
		if (lk->res.kind == FLAT_RES_FAIL && lk->has_stale) {
			lk->res = lk->stale_res;
			lk->stale = true;
			lk->ttl = 0;
		}
		lk->state = LK_DONE;
	}
	px_flat_maybe_finish(w, t);
}

/* SVCB/HTTPS RDATA comes from servers on the Internet and goes out under
 * our owner: one malformed RR makes a client drop the whole RRset (RFC
 * 9460 2.4.3), so such a result is a failed chase, with the failure rules
 * (stale, siblings, SERVFAIL with EDE 24), never cached as good. */
static void vet_rdata(struct px_chase *ch)
{
	struct flat_result *r = &ch->run.fc.result;
	const char *why = "record count and RDATA disagree";
	unsigned count = 0;

	if (r->kind != FLAT_RES_ADDRS || !flat_qtype_is_rdata(r->qtype))
		return;
	if (r->rdata_len <= FLAT_RDATA_MAX &&
	    codec_svcb_check_set(r->rdata, r->rdata_len, &count, &why) == 0 && count == r->n_addrs)
		return;
	r->kind = FLAT_RES_FAIL;
	r->ede = CODEC_EDE_INVALID_DATA;
	snprintf(r->why, sizeof(r->why), "malformed %s RDATA at the target: %s",
	         r->qtype == CODEC_SVCB_TYPE_HTTPS ? "HTTPS" : "SVCB", why);
	ch->run.fc.fail = FLAT_CHASE_FAIL_BAD_ANSWER;
}

static void chase_complete(struct px_chase *ch)
{
	struct px_worker *w = ch->w;
	struct flat_cache *cache = ch->g->cache;
	struct flat_cache_key key;
	union flat_cache_value val;

	struct flat_cache_key store;
	uint8_t scope = 0;

	vet_rdata(ch);
	px_flat_key_init(&key, ch->name, ch->len, ch->qtype, FLAT_KEY_TARGET);
	memcpy(key.ecs, ch->claimed, sizeof(key.ecs));
	store = key;
	memset(&val, 0, sizeof(val));
	val.result = ch->run.fc.result;
	/* A good answer is kept under the scope the resolver gave it (RFC
	 * 7871 7.3.1); a failure has none and stays on the key claimed. */
	if (val.result.kind != FLAT_RES_FAIL && ch->send.family != 0) {
		scope = ch->run.fc.scope;
		flat_cache_key_scope(&store, ch->send.family, scope, ch->send.addr);
	}
	if (val.result.kind == FLAT_RES_FAIL) {
		PX_STAT_INC(&w->stats, chase_failures);
		if ((unsigned)ch->run.fc.fail < FLAT_CHASE_FAIL_COUNT)
			PX_STAT_INC(&w->stats, chase_fail[ch->run.fc.fail]);
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
	flat_cache_put_scoped(cache, &key, &store, &val, px_now(w));
	w->own.n_chases--;
	owner_take(w, ch->owner_token, ch->name, ch->len, ch->qtype, &ch->run.fc.result,
	           val.result.ttl, scope);
	px_gen_release(w, ch->g);
	free(ch);
}

static void chase_done(struct px_chase_run *r, bool cancelled)
{
	struct px_chase *ch = (struct px_chase *)((char *)r - offsetof(struct px_chase, run));

	if (!cancelled) {
		chase_complete(ch);
		return;
	}
	/* Shutting down: give the claim back so nobody waits on it. */
	struct flat_cache_key key;
	px_flat_key_init(&key, ch->name, ch->len, ch->qtype, FLAT_KEY_TARGET);
	memcpy(key.ecs, ch->claimed, sizeof(key.ecs));
	flat_cache_abandon(ch->g->cache, &key);
	ch->w->own.n_chases--;
	px_gen_release(ch->w, ch->g);
	free(ch);
}

/* Starts a chase for a key this worker now owns (claim or prefetch). */
void px_flat_chase_start(struct px_worker *w, struct px_gen *g, const uint8_t *name, size_t len,
                         uint16_t qtype, const struct flat_cache_key *claimed,
                         const struct px_flat_ecs *ecs, uint32_t owner_token)
{
	struct px_chase *ch = calloc(1, sizeof(*ch));

	if (ch == NULL || w->own.n_chases >= PX_CHASE_MAX_INFLIGHT) {
		/* Out of memory, or so many targets in flight that the
		 * resolvers are not keeping up: this lookup fails now (stale,
		 * siblings or SERVFAIL, as for a failed chase) rather than
		 * add sockets and memory without bound. Nothing is cached,
		 * so the next query tries again. */
		struct flat_cache_key key;
		struct flat_result res;
		free(ch);
		PX_STAT_INC(&w->stats, chase_refused);
		px_flat_key_init(&key, name, len, qtype, FLAT_KEY_TARGET);
		memcpy(key.ecs, claimed->ecs, sizeof(key.ecs));
		flat_cache_abandon(g->cache, &key);
		memset(&res, 0, sizeof(res));
		res.kind = FLAT_RES_FAIL;
		res.ede = CODEC_EDE_OTHER;
		snprintf(res.why, sizeof(res.why), "too many targets being resolved at once");
		owner_take(w, owner_token, name, len, qtype, &res, 0, 0);
		return;
	}
	w->own.n_chases++;
	ch->w = w;
	/* The generation of the query that claimed: the claim is in its
	 * cache, and the chase's resolver indexes are into its list. */
	ch->g = px_gen_hold(w, g);
	memcpy(ch->name, name, len);
	ch->len = len;
	ch->qtype = qtype;
	ch->owner_token = owner_token;
	memcpy(ch->claimed, claimed->ecs, sizeof(ch->claimed));
	if (ecs != NULL && ecs->on)
		ch->send = ecs->send;
	PX_STAT_INC(&w->stats, chases);
	ch->run.cfg = g->cfg;
	px_up_home_of(&ch->run.home, w);
	ch->run.home.tap = &w->tap;
	ch->run.stop = &w->closed;
	ch->run.done = chase_done;
	ch->run.ecs = ch->send.family != 0 ? &ch->send : NULL;
	/* The claiming query's deadline, counted from its arrival: BIND's
	 * answer has used part of it already. A refresh has a whole one. */
	struct px_txn *t = owner_token != 0 ? px_flat_token_txn(w, owner_token) : NULL;
	uint64_t end = (t != NULL ? t->flat.start_ms : px_now(w)) + g->cfg->flatten.deadline_ms;
	px_chase_run_start_by(&ch->run, g->zones, name, len, qtype, end);
}
