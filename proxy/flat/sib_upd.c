/* proxy/flat/sib_upd.c - chases of owners' targets, and the UPDATEs that
 * write what changed.
 *
 * A chase goes through the target cache first, as a query would: a
 * fresh value is used as it is (so the zone and DO=0 answers agree),
 * a miss is claimed and chased with the query path's runner, and the
 * result is stored for the workers too. An owner is chased again when
 * what it found expires, so a change at the CDN reaches the zone within
 * the target's TTL. Only a different set (or a TTL in BIND above what
 * the ANAME allows) becomes a change; changes wait SIB_BATCH_MS for
 * company and go out as one UPDATE per zone and lane: addresses in one,
 * HTTPS in the other (sib_int.h, struct sib_lane, says why).
 *
 * With [resolver] ecs on, these chases carry no client subnet: a zone
 * record serves every client, so it is the untailored answer, cached
 * under FLAT_CACHE_ECS_NONE as a query without a subnet would be.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "codec/name.h"
#include "codec/text.h"
#include "codec/wire.h"
#include "flatten/cache.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat_int.h"
#include "proxy/flat/sib_int.h"
#include "proxy/ops/log.h"

/* A chase of one owner's target for one family. */
struct sib_chase {
	struct px_chase_run run;
	struct sib_zone *z;
	struct flat_sib_owner *o;
	enum flat_sib_fam fam;
	struct px_gen *g;             /* held: the run reads its cfg and zones */
	bool claimed;                 /* the cache key is ours to put */
	bool pool;                    /* one target of a pool: the owner is merged afterwards */
	uint8_t name[CODEC_MAX_NAME]; /* the target chased */
	uint8_t len;
};

/* A little spread, so owners that expire together do not come back
 * together for ever. */
static uint64_t jitter_ms(uint32_t ttl_s)
{
	uint16_t r = 0;
	uint64_t span = ttl_s >= 10 ? 1000 : (uint64_t)ttl_s * 100 + 1;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint16_t)rand();
	return r % span;
}

/* The target cache key of target name for fam, as a query without a
 * client subnet has it. */
static void sib_cache_key(struct flat_cache_key *key, const uint8_t *name, size_t len,
                          enum flat_sib_fam fam, const struct cfg *cfg)
{
	px_flat_key_init(key, name, len, flat_sib_fam_type(fam), FLAT_KEY_TARGET);
	if (cfg->resolver.ecs)
		flat_cache_key_scope(key, FLAT_CACHE_ECS_NONE, 0, NULL);
}

/* --- the queues ------------------------------------------------------------ */

static void queue_push(struct sib_zone *z, const struct flat_sib_change *ch, uint64_t now)
{
	struct sib_lane *l = &z->lane[sib_lane_of(ch->fam)];

	if (l->nq == l->capq) {
		size_t cap = l->capq ? l->capq * 2 : 16;
		struct flat_sib_change *q = realloc(l->q, cap * sizeof(*q));
		if (q == NULL) {
			/* Chased again later: nothing is lost but time. */
			ch->o->track[ch->fam].next_ms = now + SIB_BACKOFF_MIN_S * 1000ull;
			return;
		}
		l->q = q;
		l->capq = cap;
	}
	if (l->nq == 0 && l->batch_due_ms < now + SIB_BATCH_MS)
		l->batch_due_ms = now + SIB_BATCH_MS;
	l->q[l->nq++] = *ch;
	ch->o->track[ch->fam].queued = true;
}

void sib_upd_init(struct sib_zone *z)
{
	static const char *const what[SIB_LANES] = {"addresses", "HTTPS"};

	for (int i = 0; i < SIB_LANES; i++) {
		z->lane[i].z = z;
		z->lane[i].what = what[i];
	}
}

void sib_upd_clear(struct sib_zone *z)
{
	for (int i = 0; i < SIB_LANES; i++) {
		struct sib_lane *l = &z->lane[i];

		codec_tsig_verify_end(&l->uv);
		free(l->q);
		l->q = NULL;
		l->nq = l->capq = 0;
	}
}

/* --- chase results ------------------------------------------------------------ */

static void chase_failed(struct sib_zone *z, struct flat_sib_owner *o, enum flat_sib_fam fam,
                         const struct flat_result *res, uint64_t now)
{
	struct flat_sib_track *tr = &o->track[fam];
	char owner[CODEC_MAX_NAME * 4 + 1], err[256];

	if (tr->failures < UINT16_MAX)
		tr->failures++;
	tr->backoff_s = sib_backoff_next(tr->backoff_s);
	tr->next_ms = now + (uint64_t)tr->backoff_s * 1000;
	STAT_ADD(z->sib, chase_failures, 1);
	codec_name_to_text(o->name, o->len, owner, sizeof(owner));
	snprintf(err, sizeof(err),
	         "%.60s %s: chase failed (%.60s); BIND keeps its siblings, retry in %u s", owner,
	         sib_fam_name(fam), res->why[0] ? res->why : "no answer", tr->backoff_s);
	snprintf(z->last_error, sizeof(z->last_error), "%s", err);
	z->last_error_ms = now;
	/* The first failure, then every tenth: a dead CDN is one line a
	 * minute or so per owner, not one per try. */
	if (tr->failures == 1 || tr->failures % 10 == 0)
		px_log_rl(CFG_LOG_WARNING, XFR, "siblings: zone %s: %s", z->text, err);
}

static void chase_result(struct sib_zone *z, struct flat_sib_owner *o, enum flat_sib_fam fam,
                         const struct flat_result *res, const struct cfg *cfg)
{
	struct flat_sib_track *tr = &o->track[fam];
	uint64_t now = sib_now(z->sib);

	if (o->gone)
		return;
	if (res->kind == FLAT_RES_FAIL) {
		chase_failed(z, o, fam, res, now);
		return;
	}
	tr->failures = 0;
	tr->backoff_s = 0;
	tr->checked_s = (uint32_t)(now / 1000);
	uint32_t chain = o->is_alias ? UINT32_MAX : o->aname_ttl;
	uint32_t ttl = px_flat_answer_ttl(cfg, res->ttl, chain);
	uint32_t cap = px_flat_ttl_clamp(cfg, chain);
	uint32_t wait_s = res->ttl > 0 ? res->ttl : 1;
	tr->next_ms = now + (uint64_t)wait_s * 1000 + SIB_EXPIRY_MARGIN_MS + jitter_ms(wait_s);

	struct flat_sib_change ch = {.o = o, .fam = fam};
	switch (flat_sib_plan(o, fam, res, cap)) {
	case FLAT_SIB_REPLACE:
		ch.act = FLAT_SIB_REPLACE;
		flat_sib_set_from_result(&ch.set, fam, res, ttl);
		queue_push(z, &ch, now);
		break;
	case FLAT_SIB_DELETE:
		ch.act = FLAT_SIB_DELETE;
		queue_push(z, &ch, now);
		break;
	case FLAT_SIB_KEEP:
		/* What BIND holds is right: from now on it is ours to keep. */
		if (o->held[fam] != NULL && o->mine[fam] == NULL)
			(void)flat_sibzone_confirm(z->tab, o, fam);
		break;
	default:
		break;
	}
}

static void chase_done(struct px_chase_run *r, bool cancelled)
{
	struct sib_chase *c = (struct sib_chase *)((char *)r - offsetof(struct sib_chase, run));
	struct sib_zone *z = c->z;
	struct flat_cache_key key;
	union flat_cache_value val;

	struct flat_sib_track *tr = &c->o->track[c->fam];

	z->sib->chases--;
	STAT_ADD(z->sib, chase_queries, r->n_queries);
	if (c->pool && tr->pool_chases > 0)
		tr->pool_chases--;
	if (tr->next_ms == SIB_CHASING && (!c->pool || tr->pool_chases == 0))
		tr->next_ms = 0;
	sib_cache_key(&key, c->name, c->len, c->fam, c->g->cfg);
	if (cancelled) {
		if (c->claimed)
			flat_cache_abandon(c->g->cache, &key);
	} else {
		memset(&val, 0, sizeof(val));
		val.result = r->fc.result;
		/* As the workers store it: at least min-ttl, never 0. */
		uint32_t floor = (uint32_t)c->g->cfg->flatten.min_ttl_s;
		if (val.result.kind != FLAT_RES_FAIL && val.result.ttl < (floor ? floor : 1))
			val.result.ttl = floor ? floor : 1;
		if (c->claimed)
			flat_cache_put(c->g->cache, &key, &val, sib_now(z->sib));
		/* A pool's owner is merged from the cache once every target
		 * is in (next_ms 0 above); one not stored waits a little. */
		if (c->pool && !c->claimed && tr->next_ms == 0)
			tr->next_ms = sib_now(z->sib) + SIB_PENDING_MS;
		if (!z->dead && !c->pool)
			chase_result(z, c->o, c->fam, &val.result, c->g->cfg);
		if (!z->dead && z->capped)
			sib_kick(z->sib);
	}
	px_gen_unref(c->g);
	sib_zone_unref(z);
	free(c);
}

/* Runs a chase of target name for o/fam; claimed says whether the cache
 * key is ours; pool, that o has several targets. */
static void chase_run(struct sib_zone *z, struct flat_sib_owner *o, enum flat_sib_fam fam,
                      struct px_gen *g, bool claimed, const uint8_t *name, size_t len, bool pool)
{
	struct sib_chase *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		if (claimed) {
			struct flat_cache_key key;
			sib_cache_key(&key, name, len, fam, g->cfg);
			flat_cache_abandon(g->cache, &key);
		}
		if (!pool || o->track[fam].pool_chases == 0)
			o->track[fam].next_ms = sib_now(z->sib) + SIB_BACKOFF_MIN_S * 1000ull;
		return;
	}
	c->z = z;
	c->o = o;
	c->fam = fam;
	c->g = g;
	c->claimed = claimed;
	c->pool = pool;
	memcpy(c->name, name, len);
	c->len = (uint8_t)len;
	if (pool)
		o->track[fam].pool_chases++;
	px_gen_ref(g);
	z->refs++;
	z->sib->chases++;
	o->track[fam].next_ms = SIB_CHASING;
	STAT_ADD(z->sib, chases, 1);
	c->run.cfg = g->cfg;
	c->run.home = z->sib->home;
	c->run.done = chase_done;
	/* No client subnet: the record in the zone serves every client. */
	c->run.ecs = NULL;
	px_chase_run_start(&c->run, g->zones, c->name, c->len, flat_sib_fam_type(fam));
}

/* A pool: each target from the cache, as a query would have it; the
 * missing ones chased (the owner is looked at again when they are in);
 * with every target known, their merge is the owner's result. */
static void pool_chase(struct sib_zone *z, struct flat_sib_owner *o, enum flat_sib_fam fam,
                       struct px_gen *g, uint64_t now)
{
	struct flat_cache_hit *hits = calloc(FLAT_POOL_MAX, sizeof(*hits));
	struct flat_pool_in in[FLAT_POOL_MAX];
	struct flat_pool_out po;
	struct flat_result buf;
	size_t blen, off = 0, len;
	unsigned n, i = 0, missing = 0;
	const uint8_t *blob = flat_sib_owner_targets(o, &blen, &n), *name;

	if (hits == NULL) {
		o->track[fam].next_ms = now + SIB_BACKOFF_MIN_S * 1000ull;
		return;
	}
	for (; i < n && flat_pool_next(blob, blen, &off, &name, &len); i++) {
		struct flat_cache_key key;
		sib_cache_key(&key, name, len, fam, g->cfg);
		int st = flat_cache_get(g->cache, &key, now, &hits[i]);
		in[i].res = &hits[i].value.result;
		in[i].ttl = hits[i].ttl_left;
		in[i].stale = false;
		if (st == FLAT_CACHE_HIT_PREFETCH)
			flat_cache_abandon(g->cache, &key); /* as owner_chase() says */
		if (st == FLAT_CACHE_HIT || st == FLAT_CACHE_HIT_PREFETCH)
			continue;
		if (st == FLAT_CACHE_FAIL) {
			/* A failed target adds its stale value, else nothing. */
			if (!hits[i].has_stale) {
				hits[i].value.result.kind = FLAT_RES_FAIL;
				snprintf(hits[i].value.result.why, sizeof(hits[i].value.result.why),
				         "%s", hits[i].fail_why);
			}
			in[i].ttl = 0;
			in[i].stale = hits[i].has_stale;
			continue;
		}
		missing++;
		int cl = flat_cache_claim(g->cache, &key, now, NULL);
		if (cl == FLAT_CLAIM_OWNER || cl < 0)
			chase_run(z, o, fam, g, cl == FLAT_CLAIM_OWNER, name, len, true);
	}
	if (missing > 0 || i < n) {
		struct flat_sib_track *tr = &o->track[fam];
		tr->next_ms = tr->pool_chases > 0 ? SIB_CHASING : now + SIB_PENDING_MS;
		free(hits);
		return;
	}
	enum flat_pool_mode mode =
	        g->cfg->flatten.pool == CFG_POOL_FAILOVER ? FLAT_POOL_FAILOVER : FLAT_POOL_UNION;
	struct flat_result res = *flat_pool_merge(mode, in, n, NULL, NULL, &buf, &po);
	res.ttl = po.ttl;
	free(hits);
	chase_result(z, o, fam, &res, g->cfg);
}

/* The cache first, as a query would; a chase only on a miss. */
static void owner_chase(struct sib_zone *z, struct flat_sib_owner *o, enum flat_sib_fam fam,
                        uint64_t now)
{
	struct px_gen *g = sib_gen(z->sib);
	struct flat_cache_key key;
	struct flat_cache_hit hit;

	if (g == NULL)
		return;
	STAT_ADD(z->sib, refreshes, 1);
	if (o->n_targets > 1 && o->pool != NULL) {
		pool_chase(z, o, fam, g, now);
		return;
	}
	sib_cache_key(&key, o->target, o->target_len, fam, g->cfg);
	int st = flat_cache_get(g->cache, &key, now, &hit);
	switch (st) {
	case FLAT_CACHE_HIT:
		chase_result(z, o, fam, &hit.value.result, g->cfg);
		return;
	case FLAT_CACHE_HIT_PREFETCH:
		/* Not ours to refresh early: a resolver asked now still holds
		 * its copy and would answer with what is left of its TTL. The
		 * value is as good as a hit; the entry is refreshed when it
		 * expires, by a query or by us. */
		flat_cache_abandon(g->cache, &key);
		chase_result(z, o, fam, &hit.value.result, g->cfg);
		return;
	case FLAT_CACHE_FAIL:
		hit.value.result.kind = FLAT_RES_FAIL;
		snprintf(hit.value.result.why, sizeof(hit.value.result.why), "%s", hit.fail_why);
		chase_result(z, o, fam, &hit.value.result, g->cfg);
		return;
	default:
		break;
	}
	switch (flat_cache_claim(g->cache, &key, now, NULL)) {
	case FLAT_CLAIM_OWNER:
		chase_run(z, o, fam, g, true, o->target, o->target_len, false);
		break;
	case FLAT_CLAIM_PENDING:
		/* A worker chases it: its result lands in the cache. */
		o->track[fam].next_ms = now + SIB_PENDING_MS;
		break;
	case FLAT_CLAIM_READY:
		o->track[fam].next_ms = now;
		break;
	default:
		chase_run(z, o, fam, g, false, o->target, o->target_len, false);
		break;
	}
}

/* A gone owner: queue the removal of what apexd wrote there; drop it
 * from the table once nothing of it is in flight or left. */
static void owner_gone(struct sib_zone *z, struct flat_sib_owner *o, uint64_t now)
{
	bool busy = false;

	for (int f = 0; f < FLAT_SIB_FAMS; f++) {
		struct flat_sib_track *tr = &o->track[f];
		if (tr->next_ms == SIB_CHASING || tr->queued || tr->pool_chases > 0) {
			busy = true;
			continue;
		}
		const struct flat_sib_rrset *mine = o->mine[f];
		if (mine == NULL || mine->n == 0)
			continue;
		struct flat_sib_change ch = {
		        .o = o, .fam = (enum flat_sib_fam)f, .act = FLAT_SIB_REMOVE};
		flat_sib_set_from_rrset(&ch.set, ch.fam, mine);
		queue_push(z, &ch, now);
		busy = true;
	}
	if (!busy)
		flat_sibzone_remove(z->tab, o);
}

void sib_owners_step(struct sib_zone *z, uint64_t now)
{
	z->capped = false;
	/* Backwards: removing a gone owner moves the last one into its place. */
	for (size_t i = flat_sibzone_count(z->tab); i-- > 0;) {
		struct flat_sib_owner *o = flat_sibzone_at(z->tab, i);
		if (o->gone) {
			owner_gone(z, o, now);
			continue;
		}
		for (int f = 0; f < FLAT_SIB_FAMS; f++) {
			struct flat_sib_track *tr = &o->track[f];
			if (tr->queued || tr->next_ms == SIB_CHASING || tr->next_ms > now)
				continue;
			if (z->sib->budget == 0)
				return;
			if (z->sib->chases >= SIB_CHASES_MAX ||
			    z->sib->own.n_ups >= PX_UP_MAX_INFLIGHT / 2) {
				z->capped = true;
				return;
			}
			z->sib->budget--;
			owner_chase(z, o, (enum flat_sib_fam)f, now);
		}
	}
}

/* --- UPDATE ---------------------------------------------------------------- */

/* Takes the first n changes off the lane's queue. */
static void queue_drop(struct sib_lane *l, size_t n, bool done, uint64_t now)
{
	for (size_t i = 0; i < n && i < l->nq; i++) {
		struct flat_sib_change *ch = &l->q[i];
		struct flat_sib_track *tr = &ch->o->track[ch->fam];
		tr->queued = false;
		if (done) {
			tr->written_s = (uint32_t)(now / 1000);
			(void)flat_sibzone_applied(l->z->tab, ch);
		} else {
			/* Chased again at once: the zone decides anew. */
			tr->next_ms = now;
		}
	}
	if (n > l->nq)
		n = l->nq;
	memmove(l->q, l->q + n, (l->nq - n) * sizeof(*l->q));
	l->nq -= n;
}

static void upd_failed(struct sib_lane *l, enum px_sib_upd_result res, const char *why)
{
	struct sib_zone *z = l->z;
	char err[320];

	STAT_ADD(z->sib, updates[res], 1);
	l->backoff_s = sib_backoff_next(l->backoff_s);
	l->due_ms = sib_now(z->sib) + (uint64_t)l->backoff_s * 1000;
	snprintf(err, sizeof(err), "UPDATE of %s failed: %s; %zu change(s) kept, retry in %u s",
	         l->what, why, l->nq, l->backoff_s);
	sib_note_error(z, l->err, sizeof(l->err), why, err);
}

/* BIND's REFUSED, with what to check: HTTPS is the type an update-policy
 * written for A and AAAA lacks. */
static void upd_refused(struct sib_lane *l)
{
	if (l == &l->z->lane[SIB_LANE_HTTPS])
		upd_failed(
		        l, PX_SIB_UPD_REFUSED,
		        "REFUSED (does the zone's update-policy grant HTTPS to the update key?)");
	else
		upd_failed(l, PX_SIB_UPD_REFUSED,
		           "REFUSED (does the zone allow-update { key ...; } for the update key?)");
}

static void upd_written(struct sib_lane *l, uint64_t now)
{
	struct sib_zone *z = l->z;

	STAT_ADD(z->sib, updates[PX_SIB_UPD_OK], 1);
	STAT_ADD(z->sib, changes, l->taken);
	px_log(CFG_LOG_INFO, XFR, "siblings: zone %s: UPDATE wrote %zu RRset change(s) (%s)",
	       z->text, l->taken, l->what);
	queue_drop(l, l->taken, true, now);
	l->backoff_s = 0;
	l->err[0] = '\0';
	l->due_ms = now + SIB_UPD_GAP_MS;
	l->batch_due_ms = now;
}

static void upd_answer(struct sib_lane *l, const uint8_t *msg, size_t len)
{
	struct sib_zone *z = l->z;
	char why[128], buf[16];
	uint64_t now = sib_now(z->sib);
	size_t body;
	int rc = codec_tsig_verify_next(&l->uv, msg, len, (uint64_t)time(NULL), &body);
	bool signed_ok = rc == CODEC_TSIG_OK && codec_tsig_verify_end(&l->uv);
	unsigned rcode = len >= CODEC_HDR_LEN ? (msg[3] & 0x0f) : CODEC_RCODE_FORMERR;

	if (rc == CODEC_TSIG_E_SERVER) {
		snprintf(why, sizeof(why), "NOTAUTH: the backend rejected the key (%s)",
		         codec_tsig_error_name(l->uv.server_error));
		upd_failed(l, PX_SIB_UPD_NOTAUTH, why);
		return;
	}
	if (rcode == CODEC_RCODE_NOERROR && !signed_ok) {
		snprintf(why, sizeof(why), "the answer fails TSIG (%s)",
		         codec_tsig_status_text(rc));
		upd_failed(l, PX_SIB_UPD_ERROR, why);
		return;
	}
	switch (rcode) {
	case CODEC_RCODE_NOERROR:
		upd_written(l, now);
		return;
	case CODEC_RCODE_REFUSED:
		upd_refused(l);
		return;
	case CODEC_RCODE_NOTAUTH:
		upd_failed(l, PX_SIB_UPD_NOTAUTH,
		           "NOTAUTH (the key, or the backend is not primary)");
		return;
	case CODEC_RCODE_YXDOMAIN:
	case CODEC_RCODE_YXRRSET:
	case CODEC_RCODE_NXRRSET:
	case CODEC_RCODE_NXDOMAIN:
		/* An ANAME changed since our transfer: transfer, then decide
		 * again; nothing of this UPDATE was written (RFC 2136 3.2). */
		STAT_ADD(z->sib, updates[PX_SIB_UPD_PREREQ], 1);
		px_log(CFG_LOG_INFO, XFR,
		       "siblings: zone %s: UPDATE prerequisite failed (%s): transferring again",
		       z->text, codec_rcode_text(rcode, buf, sizeof(buf)));
		queue_drop(l, l->taken, false, now);
		z->want_axfr = true;
		z->xfr_due_ms = 0;
		l->due_ms = now + SIB_UPD_GAP_MS;
		return;
	default:
		snprintf(why, sizeof(why), "the backend answered %s",
		         codec_rcode_text(rcode, buf, sizeof(buf)));
		upd_failed(l, PX_SIB_UPD_ERROR, why);
		return;
	}
}

static int upd_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct sib_lane *l = arg;
	struct sib_zone *z = l->z;

	if (status == 0 && (len < 2 || ((uint16_t)(msg[0] << 8 | msg[1])) != l->id))
		return PX_UP_WAIT;
	l->busy = false;
	if (!z->dead && status != UV_ECANCELED) {
		if (status == UV_ETIMEDOUT)
			upd_failed(l, PX_SIB_UPD_TIMEOUT, "the backend did not answer in time");
		else if (status < 0)
			upd_failed(l, PX_SIB_UPD_ERROR, uv_strerror(status));
		else
			upd_answer(l, msg, len);
	}
	codec_tsig_verify_end(&l->uv);
	sib_zone_unref(z);
	return PX_UP_DONE;
}

static void upd_send(struct sib_lane *l)
{
	struct sib_zone *z = l->z;
	struct px_gen *g = sib_gen(z->sib);
	size_t taken = 0;
	uint8_t *buf;

	if (g == NULL)
		return;
	if (!sib_key(g->cfg, &l->key)) {
		upd_failed(l, PX_SIB_UPD_ERROR, "no usable [backend] update-key");
		return;
	}
	buf = malloc(CODEC_MAX_MSG);
	if (buf == NULL)
		return;
	l->id = px_up_random_id();
	ssize_t n = flat_sib_update_build(z->tab, l->q, l->nq, l->id, buf, CODEC_MAX_MSG,
	                                  CODEC_TSIG_RR_MAX, &taken);
	if (n <= 0) {
		char why[64];
		snprintf(why, sizeof(why), "cannot write the message (%zd)", n);
		/* The first change is the culprit: drop it, chase it again. */
		queue_drop(l, 1, false, sib_now(z->sib));
		upd_failed(l, PX_SIB_UPD_ERROR, why);
		free(buf);
		return;
	}
	l->busy = true;
	l->taken = taken;
	int rc = sib_send_signed(z, g->cfg, &l->key, &l->uv, buf, (size_t)n, CODEC_MAX_MSG,
	                         SIB_UPD_TIMEOUT_MS, upd_cb, l);
	free(buf);
	if (rc < 0) {
		l->busy = false;
		upd_failed(l, PX_SIB_UPD_ERROR, "cannot send");
	}
}

void sib_upd_step(struct sib_zone *z, uint64_t now)
{
	for (int i = 0; i < SIB_LANES; i++) {
		struct sib_lane *l = &z->lane[i];

		if (l->busy || l->nq == 0 || now < l->batch_due_ms || now < l->due_ms)
			continue;
		upd_send(l);
	}
}
