/* proxy/flat/probe.c - ANAME presence probes.
 *
 * For a name whose presence the cache does not know (or knows only from
 * an expired entry), one query per ANAME type goes to BIND in parallel
 * with the client's query; the verdict fills the presence cache and
 * tells the waiting query its target.
 *
 * A probe without a verdict must not let BIND's empty answer through for
 * a name that may own an ANAME, so a try that times out, fails or gets an
 * unusable answer (SERVFAIL, AA=0) is retried from a fresh socket, each
 * try with a share of the deadline: up to PROBE_TRIES tries. A try that
 * cannot be sent at all (the own-queries cap, memory, a socket) is tried
 * again a little later, from the txn's timer. When the tries or the time
 * run out, the expired presence entry stands in if there is one (stale);
 * else the query knows nothing, and decide.c answers SERVFAIL where BIND
 * says NODATA.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "codec/scan.h"
#include "proxy/flat/flat_int.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* Tries per probe, and the share of [flatten] deadline one try may wait:
 * three tries fit in three quarters of it, which leaves the chase the
 * rest. Never above [backend] timeout, never below PROBE_TRY_MIN_MS. */
#define PROBE_TRIES 3
#define PROBE_SPLIT 4
#define PROBE_TRY_MIN_MS 20
/* Less time left than this before the deadline: no new try. */
#define PROBE_LEFT_MIN_MS 10

/* --- probes ----------------------------------------------------------- */

struct px_probe_req {
	struct px_worker *w;
	struct px_gen *g; /* held: the presence cache it fills */
	uint32_t token;
	unsigned idx; /* in the txn's fl->probe[] */
	uint16_t id;
	uint16_t type;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
	struct px_probe_req *next_spare; /* on px_worker.probe_spare */
};

/* Ended probes' states, kept per worker for the next (at most
 * PROBE_SPARE_MAX): a probe per eligible cold query went through malloc. */
#define PROBE_SPARE_MAX 256

static struct px_probe_req *req_get(struct px_worker *w)
{
	struct px_probe_req *r = w->probe_spare;

	if (r == NULL)
		return malloc(sizeof(*r));
	w->probe_spare = r->next_spare;
	w->n_probe_spare--;
	return r;
}

static void req_put(struct px_worker *w, struct px_probe_req *r)
{
	if (w->n_probe_spare >= PROBE_SPARE_MAX) {
		free(r);
		return;
	}
	r->next_spare = w->probe_spare;
	w->probe_spare = r;
	w->n_probe_spare++;
}

void px_flat_probe_spares_free(struct px_worker *w)
{
	while (w->probe_spare != NULL) {
		struct px_probe_req *r = w->probe_spare;
		w->probe_spare = r->next_spare;
		free(r);
	}
	w->n_probe_spare = 0;
}

static uint64_t try_ms(const struct cfg *cfg)
{
	uint64_t ms = cfg->flatten.deadline_ms / PROBE_SPLIT;

	if (ms > cfg->backend.timeout_ms)
		ms = cfg->backend.timeout_ms;
	return ms < PROBE_TRY_MIN_MS ? PROBE_TRY_MIN_MS : ms;
}

void px_flat_probe_arm(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;
	uint64_t at = fl->deadline_at, now = px_now(w);

	if (fl->retry_at != 0 && fl->retry_at < at)
		at = fl->retry_at;
	px_txn_arm(w, t, at > now ? at - now : 0);
}

/* Probe p ended without a verdict for this query. */
static void settle_none(struct px_worker *w, struct px_txn *t, struct px_probe *p)
{
	struct px_flat *fl = t->flat.fl;

	p->state = PX_PROBE_DONE;
	fl->probes_pending--;
	PX_STAT_INC(&w->stats, aname_probe_failed);
	if (!p->has_stale) {
		fl->presence_unknown = true;
		fl->unknown_timed_out = p->timed_out;
		fl->unknown_type = p->type;
		return;
	}
	/* RFC 8767 for presence: the last verdict, since no new one came. */
	PX_STAT_INC(&w->stats, aname_probe_stale_used);
	if (p->stale_present && !fl->have_target) {
		px_flat_set_targets(fl, fl->stale_targets, fl->stale_targets_len,
		                    fl->stale_n_targets);
		fl->aname_ttl = 0;
		fl->aname_type = p->type;
		fl->have_target = true;
		fl->presence_stale = true;
	}
}

/* Can probe p have another try before the deadline? */
static bool may_retry(struct px_worker *w, const struct px_flat *fl, const struct px_probe *p)
{
	uint64_t now = px_now(w);

	return p->tries < PROBE_TRIES && now + PROBE_LEFT_MIN_MS <= fl->deadline_at;
}

static int probe_cb(void *arg, int status, const uint8_t *msg, size_t len);

/* One try of probe i: sent, or left for the next tick, or settled when
 * no try is left. Never answers the query (see probes_check). */
static void probe_try(struct px_worker *w, struct px_txn *t, unsigned i)
{
	struct px_flat *fl = t->flat.fl;
	struct px_probe *p = &fl->probe[i];
	const uint8_t *name = t->q + CODEC_HDR_LEN;
	size_t len = t->qv.qname_len;
	uint64_t now = px_now(w), left = fl->deadline_at > now ? fl->deadline_at - now : 1;
	uint64_t timeout = try_ms(t->g->cfg);
	struct px_probe_req *r = req_get(w);
	uint8_t q[CODEC_QUERY_MAX];
	int rc = -ENOMEM;

	if (p->tries++ > 0)
		PX_STAT_INC(&w->stats, aname_probe_retries);
	if (r != NULL) {
		r->w = w;
		r->token = px_flat_token(t);
		r->idx = i;
		r->id = px_up_random_id();
		r->type = p->type;
		memcpy(r->name, name, len);
		codec_name_lower(r->name, len);
		r->len = len;
		size_t qlen = codec_build_query(q, r->id, false, r->name, r->len, p->type);
		r->g = px_gen_hold(w, t->g);
		rc = px_up_query(w, (const struct sockaddr *)&w->cfg->backend.address.sa, q, qlen,
		                 false, timeout < left ? timeout : left, probe_cb, r);
		if (rc < 0) {
			px_gen_release(w, r->g);
			req_put(w, r);
		}
	}
	if (rc == 0) {
		PX_STAT_INC(&w->stats, aname_probes);
		p->state = PX_PROBE_FLIGHT;
		return;
	}
	PX_STAT_INC(&w->stats, aname_probe_unsent);
	p->timed_out = false;
	if (!may_retry(w, fl, p)) {
		settle_none(w, t, p);
		return;
	}
	/* The cap or a socket: what holds it may free up shortly. */
	uint64_t at = now + timeout / PROBE_SPLIT;
	p->state = PX_PROBE_RETRY;
	if (fl->retry_at == 0 || at < fl->retry_at)
		fl->retry_at = at;
}

/* After probes changed: answer once every probe is settled and BIND has
 * answered; else keep the txn's timer on the next retry or the deadline. */
static void probes_check(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	if (fl->probes_pending > 0 || !fl->resp_waiting) {
		if (fl->probes_pending == 0)
			fl->retry_at = 0;
		px_flat_probe_arm(w, t);
		return;
	}
	fl->retry_at = 0;
	fl->resp_waiting = false;
	if (!px_flat_decide(w, t, fl->resp, fl->resp_len) && t->busy)
		px_flat_relay(w, t);
}

/* The verdict fills the presence cache, whoever asked. */
static void verdict_store(struct px_probe_req *r, const struct flat_aname *an, bool nxdomain)
{
	struct px_worker *w = r->w;
	struct flat_cache_key key;
	union flat_cache_value val;

	/* Only the lengths say what is in the buffers. */
	memset(&val, 0, offsetof(struct flat_presence, targets));
	val.presence.ttl = 0;
	px_flat_key_init(&key, r->name, r->len, r->type, FLAT_KEY_PRESENCE);
	if (an->state == FLAT_ANAME_PRESENT) {
		val.presence.present = true;
		memcpy(val.presence.targets, an->targets, an->targets_len);
		val.presence.targets_len = (uint16_t)an->targets_len;
		val.presence.n_targets = (uint8_t)an->n_targets;
		val.presence.ttl = an->ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
		/* A name that owns an ANAME is never answered from the answer
		 * caches: drop what an earlier verdict let them keep. */
		px_flat_drop_answers(w, r->name, r->len);
	} else if (an->state == FLAT_ANAME_ABSENT && an->ttl > 0 && !nxdomain) {
		/* Not for NXDOMAIN: a name that does not exist owns no ANAME,
		 * negative caching of the zone is BIND's, and a flood of
		 * invented names would only churn the presence store. */
		val.presence.ttl = an->ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
	} else if (an->state == FLAT_ANAME_INVALID) {
		PX_STAT_INC(&w->stats, aname_invalid);
		char name[CODEC_MAX_NAME * 4 + 1];
		codec_name_to_text(r->name, r->len, name, sizeof(name));
		px_log_rl(CFG_LOG_WARNING, BACKEND,
		          "ignoring the TYPE%u records at %s: each RDATA must be exactly one "
		          "uncompressed domain name, at most %d of them and no CNAME beside",
		          r->type, name, FLAT_POOL_MAX);
	}
}

/* The verdict (or its absence) for the query that sent the probe. */
static void verdict_take(struct px_worker *w, struct px_txn *t, struct px_probe *p, int status,
                         const struct flat_aname *an)
{
	struct px_flat *fl = t->flat.fl;

	switch (an->state) {
	case FLAT_ANAME_PRESENT:
		if (!fl->have_target) {
			px_flat_set_targets(fl, an->targets, an->targets_len, an->n_targets);
			fl->aname_ttl = an->ttl;
			fl->aname_type = p->type;
			fl->have_target = true;
		}
		break;
	case FLAT_ANAME_ABSENT:
		px_flat_note_absent(t, an->ttl);
		break;
	case FLAT_ANAME_INVALID:
		px_flat_note_absent(t, 0); /* treated as absent, never kept */
		break;
	default:
		p->timed_out = status == UV_ETIMEDOUT;
		if (status != UV_ECANCELED && may_retry(w, fl, p))
			probe_try(w, t, (unsigned)(p - fl->probe));
		else
			settle_none(w, t, p);
		return;
	}
	p->state = PX_PROBE_DONE;
	fl->probes_pending--;
}

static int probe_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct px_probe_req *r = arg;
	struct px_worker *w = r->w;
	struct flat_aname an;

	if (status == 0 &&
	    !codec_answers_question(msg, len, r->id, r->name, r->len, r->type, CODEC_CLASS_IN))
		return PX_UP_WAIT;
	if (status == UV_ETIMEDOUT)
		PX_STAT_INC(&w->stats, backend_probe_timeouts);
	an.state = FLAT_ANAME_UNKNOWN;
	if (status == 0)
		px_flat_aname_verdict(msg, len, r->name, r->len, r->type, &an);
	verdict_store(r, &an, status == 0 && codec_hdr_rcode(msg) == CODEC_RCODE_NXDOMAIN);

	/* The query may be over, or have settled this probe at its deadline. */
	struct px_txn *t = px_flat_token_txn(w, r->token);
	if (t != NULL && r->idx < t->flat.fl->n_probes &&
	    t->flat.fl->probe[r->idx].state == PX_PROBE_FLIGHT) {
		verdict_take(w, t, &t->flat.fl->probe[r->idx], status, &an);
		probes_check(w, t);
	}
	px_gen_release(w, r->g);
	req_put(w, r);
	return PX_UP_DONE;
}

void px_flat_probe_send(struct px_worker *w, struct px_txn *t, uint16_t type,
                        const struct flat_presence *stale)
{
	struct px_flat *fl = t->flat.fl;

	if (fl->n_probes == CFG_MAX_ANAME_TYPES)
		return;
	if (fl->n_probes == 0)
		fl->deadline_at = t->deadline_ms; /* the backend's, until BIND answers */
	unsigned i = fl->n_probes++;
	struct px_probe *p = &fl->probe[i];
	memset(p, 0, sizeof(*p));
	p->type = type;
	if (stale != NULL) {
		p->has_stale = true;
		p->stale_present = stale->present;
		if (stale->present && fl->stale_targets_len == 0) {
			memcpy(fl->stale_targets, stale->targets, stale->targets_len);
			fl->stale_targets_len = stale->targets_len;
			fl->stale_n_targets = stale->n_targets;
		}
	}
	fl->probes_pending++;
	probe_try(w, t, i);
	if (fl->retry_at != 0)
		px_flat_probe_arm(w, t);
}

bool px_flat_probe_tick(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;
	uint32_t token = px_flat_token(t);

	if (fl == NULL || fl->retry_at == 0 || px_now(w) >= fl->deadline_at)
		return false;
	fl->retry_at = 0;
	for (unsigned i = 0; i < fl->n_probes; i++)
		if (fl->probe[i].state == PX_PROBE_RETRY)
			probe_try(w, t, i);
	if (px_flat_token_txn(w, token) == t)
		probes_check(w, t);
	return true;
}

void px_flat_probes_expire(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	fl->retry_at = 0;
	for (unsigned i = 0; i < fl->n_probes; i++) {
		struct px_probe *p = &fl->probe[i];
		if (p->state == PX_PROBE_DONE)
			continue;
		p->timed_out = p->state == PX_PROBE_FLIGHT;
		settle_none(w, t, p);
	}
}
