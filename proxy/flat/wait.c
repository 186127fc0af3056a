/* proxy/flat/wait.c - lookups in the shared target cache.
 *
 *   target cache get ─▶ hit: done
 *                    └▶ miss: claim ─▶ owner: run a chase (chase.c)
 *                                   └▶ pending: wait for a wake-up
 *
 * Concurrent queries for one target share one chase through the cache's
 * claims, across workers: a waiter on another worker is woken by posting
 * its txn token to that worker's queue and its async handle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/flat/flat_int.h"
#include "proxy/ops/stats.h"

/* --- lookups in the target cache ------------------------------------ */

/* Takes what the cache says for lookup i. Returns true when it is done. */
static bool lookup_take(struct px_lookup *lk, int st, const struct flat_cache_hit *hit,
                        const struct flat_cache_key *key)
{
	lk->scope = key->ecs[0] == FLAT_CACHE_ECS_IP4 || key->ecs[0] == FLAT_CACHE_ECS_IP6
	                    ? key->ecs[1]
	                    : 0;
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

void px_flat_lookup_start(struct px_worker *w, struct px_txn *t, struct px_lookup *lk,
                          const uint8_t *name, size_t len)
{
	struct flat_cache *cache = t->g->cache;
	struct flat_cache_key key;
	struct flat_cache_hit hit;
	struct flat_cache_waiter waiter = {.worker = w, .token = px_flat_token(t)};

	px_flat_key_init(&key, name, len, lk->qtype, FLAT_KEY_TARGET);
	const struct px_flat_ecs *ecs = &t->flat.fl->ecs;
	for (int round = 0; round < 3; round++) {
		int st = px_flat_get(cache, &key, ecs, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			/* Popular names never wait: this query answers from
			 * the cache while a refresh runs behind it. */
			lookup_take(lk, st, &hit, &key);
			lk->state = LK_DONE;
			PX_STAT_INC(&w->stats, cache_hits);
			PX_STAT_INC(&w->stats, prefetches);
			px_flat_chase_start(w, t->g, name, len, lk->qtype, &key, ecs, 0);
			return;
		}
		if (lookup_take(lk, st, &hit, &key)) {
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
		px_flat_chase_start(w, t->g, name, len, lk->qtype, &key, ecs, px_flat_token(t));
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
	struct px_flat *fl = t->flat.fl;
	struct flat_cache_key key;
	struct flat_cache_hit hit;

	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		if (lk->state != LK_WAIT)
			continue;
		size_t tl;
		const uint8_t *tn = px_flat_target(fl, lk->ti, &tl);
		px_flat_key_init(&key, tn, tl, lk->qtype, FLAT_KEY_TARGET);
		int st = px_flat_get(t->g->cache, &key, &fl->ecs, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			/* A TTL shorter than the refresh window: the value is
			 * due again already, and this query owns that refresh
			 * (it is not offered twice). */
			PX_STAT_INC(&w->stats, prefetches);
			px_flat_chase_start(w, t->g, tn, tl, lk->qtype, &key, &fl->ecs, 0);
			st = FLAT_CACHE_HIT;
		}
		if (lookup_take(lk, st, &hit, &key)) {
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
			px_flat_lookup_start(w, t, lk, tn, tl);
			/* A chase that cannot start (no socket, no memory)
			 * answers the query at once and frees fl. */
			if (t->flat.fl != fl)
				return;
			continue;
		}
		lk->state = LK_DONE;
		lk->res.kind = FLAT_RES_FAIL;
		lk->res.ede = CODEC_EDE_OTHER;
		snprintf(lk->res.why, sizeof(lk->res.why), "chase result lost");
	}
	px_flat_maybe_finish(w, t);
}

/* flat_cache wake callback: runs on whichever thread ended the claim. */
void px_flat_cache_wake(void *arg, const struct flat_cache_waiter *ws, size_t n)
{
	(void)arg;
	for (size_t i = 0; i < n; i++) {
		struct px_worker *w = ws[i].worker;
		uv_mutex_lock(&w->posts.mu);
		if (w->posts.n_wake == w->posts.cap_wake) {
			size_t ncap = w->posts.cap_wake ? w->posts.cap_wake * 2 : 64;
			uint32_t *np = realloc(w->posts.wake, ncap * sizeof(*np));
			if (np == NULL) {
				/* The waiter answers at its deadline instead. */
				uv_mutex_unlock(&w->posts.mu);
				continue;
			}
			w->posts.wake = np;
			w->posts.cap_wake = ncap;
		}
		w->posts.wake[w->posts.n_wake++] = ws[i].token;
		uv_mutex_unlock(&w->posts.mu);
		uv_async_send(&w->wake);
	}
}

void px_flat_run_posts(struct px_worker *w)
{
	uint32_t local[256];
	size_t n;

	do {
		uv_mutex_lock(&w->posts.mu);
		n = w->posts.n_wake < 256 ? w->posts.n_wake : 256;
		if (n > 0)
			memcpy(local, w->posts.wake + (w->posts.n_wake - n), n * sizeof(*local));
		w->posts.n_wake -= n;
		uv_mutex_unlock(&w->posts.mu);
		for (size_t i = 0; i < n; i++) {
			struct px_txn *t = px_flat_token_txn(w, local[i]);
			if (t != NULL && t->flat.fl->chasing)
				wake_txn(w, t);
		}
	} while (n == 256);
}
