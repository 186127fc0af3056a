/* proxy/flat/decide.c - the query path's decisions.
 *
 *   query in a configured zone ─▶ ANAME probe to BIND in parallel with the
 *   forwarded query (unless the presence cache knows, or [alias] says)
 *        ─▶ BIND's answer + probe verdict ─▶ px_flat_classify()
 *        ─▶ RELAY | LOCAL (rewrite from BIND's own chain) | CHASE (wait.c)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/rr.h"
#include "flatten/rewrite.h"
#include "flatten/zones.h"
#include "proxy/flat/flat_int.h"
#include "proxy/ops/stats.h"

/* --- the decision ----------------------------------------------------- */

static struct px_flat *fl_get(struct px_worker *w, struct px_txn *t)
{
	return px_flat_alloc(w, t);
}

/* What the probes or [alias] said about the owner, for the classifier. */
static void owner_of(const struct px_flat *fl, struct px_flat_owner *own)
{
	memset(own, 0, sizeof(*own));
	own->aname_ttl = UINT32_MAX;
	if (fl == NULL || !fl->have_target)
		return;
	/* The policy only needs to know there is a target (a pool's first
	 * stands for them all: each is chased alike). */
	own->target = px_flat_target(fl, 0, &own->target_len);
	own->is_alias = fl->target_is_alias;
	own->aname_ttl = fl->aname_ttl;
}

/* Fails every lookup at once: BIND's own answer holds a loop or a chain
 * past max-chain, which ends like a failed chase (stale, siblings, EDE). */
static void fail_chain_in_zone(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;
	unsigned max_chain = t->g->cfg->flatten.max_chain;

	for (unsigned i = 0; i < fl->n_lookups; i++) {
		struct px_lookup *lk = &fl->lk[i];
		lk->state = LK_DONE;
		lk->res.kind = FLAT_RES_FAIL;
		lk->res.ede = CODEC_EDE_OTHER;
		snprintf(lk->res.why, sizeof(lk->res.why),
		         "CNAME loop or chain longer than max-chain %u in the zone", max_chain);
	}
	px_flat_finish(w, t);
}

static bool start_chase(struct px_worker *w, struct px_txn *t, const struct flat_policy_out *po)
{
	struct px_flat *fl = t->flat.fl;
	uint16_t qtype = t->qv.qtype;
	struct px_flat_owner own;

	owner_of(fl, &own);
	/* DESIGN: TTL = min over every CNAME/ANAME on the chain and the
	 * target's remaining TTL. The cache keys on the target alone, so
	 * the owner's part of the chain is applied here. */
	fl->chain_ttl = px_flat_chain_ttl(po, &own);
	/* The owner's targets (one, or a pool) are set already; a CNAME
	 * chain ends in one. */
	if (!fl->have_target)
		px_flat_set_targets(fl, po->target, po->target_len, 1);
	fl->siblings = po->siblings;
	fl->chasing = true;
	unsigned n_types = flat_qtype_flattens(qtype) ? 1 : 2;
	if (!px_flat_lookups(fl, n_types)) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "out of memory");
		return true;
	}
	for (unsigned i = 0; i < fl->n_lookups; i += n_types) {
		if (n_types == 1) {
			fl->lk[i].qtype = qtype;
		} else {
			fl->lk[i].qtype = CODEC_TYPE_A;
			fl->lk[i + 1].qtype = CODEC_TYPE_AAAA;
		}
	}
	/* BIND answered; resolution now has the rest of the flatten deadline. */
	const struct cfg *cfg = t->g->cfg;
	uint64_t now = px_now(w), end = t->flat.start_ms + cfg->flatten.deadline_ms;
	px_txn_arm(w, t, end > now ? end - now : 1);
	if (po->hops > cfg->flatten.max_chain) {
		fail_chain_in_zone(w, t);
		return true;
	}
	for (unsigned i = 0; i < fl->n_lookups; i++) {
		size_t tl;
		const uint8_t *tn = px_flat_target(fl, fl->lk[i].ti, &tl);
		px_flat_lookup_start(w, t, &fl->lk[i], tn, tl);
		if (!t->busy || t->flat.fl != fl)
			return true;
	}
	px_flat_maybe_finish(w, t);
	return true;
}

/* The policy's view of t and BIND's answer to it. */
static void policy_in(struct flat_policy_in *in, const struct px_txn *t, const uint8_t *resp,
                      size_t rlen, const struct codec_view *rv)
{
	memset(in, 0, sizeof(*in));
	in->query = t->q;
	in->qlen = t->qlen;
	in->qv = &t->qv;
	in->resp = resp;
	in->rlen = rlen;
	in->rv = rv;
}

/* A query for the ANAME type: BIND's answer is the record. True with po
 * set to chase its target; false to relay BIND's answer (no valid
 * record, or DO=1 on a signed zone, as for A/AAAA). */
static bool classify_aname_query(struct px_worker *w, struct px_txn *t, const uint8_t *resp,
                                 size_t rlen, const struct codec_view *rv,
                                 struct flat_policy_out *po)
{
	struct flat_policy_in in;
	struct flat_aname an;

	policy_in(&in, t, resp, rlen, rv);
	enum flat_policy_action act = flat_policy_inspect_aname(&in, po, &an);
	if (an.state == FLAT_ANAME_INVALID)
		PX_STAT_INC(&w->stats, aname_invalid);
	if (po->signed_relay)
		PX_STAT_INC(&w->stats, signed_relayed);
	if (act != FLAT_POLICY_CHASE) {
		/* The record itself is the verdict; a SERVFAIL is none. */
		t->flat.cacheable = an.state == FLAT_ANAME_ABSENT;
		t->flat.absent_ttl = UINT32_MAX;
		return false;
	}

	struct px_flat *fl = fl_get(w, t);
	if (fl == NULL)
		return false;
	px_flat_set_targets(fl, an.target, an.target_len, 1);
	fl->aname_ttl = an.ttl;
	fl->have_target = true;
	return true;
}

/* The SOA in BIND's answer, if it is the owner zone's: BIND may have
 * followed the chain into another zone it serves (RFC 2308 3). */
static bool owner_soa(const struct px_txn *t, const uint8_t *resp, size_t rlen,
                      const struct codec_view *rv, struct flat_soa *soa)
{
	const struct cfg_zone *z = px_flat_txn_zone(t);

	return flat_policy_owner_soa(resp, rlen, rv, t->q + CODEC_HDR_LEN, t->qv.qname_len,
	                             z->name.wire, z->name.wire_len, soa) == 0;
}

/* Keeps BIND's answer for the fallbacks (it may already be the copy). */
static bool keep_resp(struct px_flat *fl, const uint8_t *resp, size_t rlen)
{
	return fl->resp != NULL || px_flat_keep_resp(fl, resp, rlen);
}

/* A negative LOCAL result whose SOA in BIND's answer is another zone's:
 * the result stands as one finished lookup, and px_flat_finish() asks
 * BIND for the configured zone's SOA before it writes the NODATA. */
static bool local_without_soa(struct px_worker *w, struct px_txn *t, const uint8_t *resp,
                              size_t rlen, const struct flat_policy_out *po)
{
	struct px_flat *fl = fl_get(w, t);

	if (fl == NULL || !keep_resp(fl, resp, rlen))
		return false;
	fl->chain_ttl = UINT32_MAX;
	fl->local = true;
	fl->n_lookups = 1;
	fl->n_types = 1;
	fl->lk[0].qtype = t->qv.qtype;
	fl->lk[0].state = LK_DONE;
	fl->lk[0].res = po->local;
	fl->lk[0].ttl = po->local.ttl;
	px_flat_finish(w, t);
	return true;
}

/* LOCAL for A/AAAA (SVCB/HTTPS): the chain ends in the zone, BIND's
 * answer has it all. */
static bool answer_local(struct px_worker *w, struct px_txn *t, const uint8_t *resp, size_t rlen,
                         const struct codec_view *rv, const struct flat_policy_out *po)
{
	size_t max = flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP);
	struct flat_rewrite_opts opts;
	struct flat_soa soa;

	struct px_flat_ecs ecs;
	struct codec_ecs echo;

	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	/* BIND's own chain: the same for every client, scope 0. */
	if (px_flat_ecs_of(t, &ecs) == 0)
		opts.ecs = px_flat_ecs_echo(&ecs, 0, &echo);
	if (po->local.kind != FLAT_RES_ADDRS) {
		if (!owner_soa(t, resp, rlen, rv, &soa))
			return local_without_soa(w, t, resp, rlen, po);
		opts.soa = &soa;
	}
	/* A pool of one, for the zone's health checks. */
	struct flat_pool_in in = {&po->local, po->local.ttl, false};
	struct flat_pool_out pout;
	struct flat_result hbuf;
	const struct flat_result *res = px_flat_merge(w, t, &in, 1, &hbuf, &pout);
	uint32_t ttl = px_flat_ttl_clamp(t->g->cfg, po->local.ttl);
	uint8_t *out = px_outbuf_get(w);
	ssize_t n = out == NULL ? -1
	                        : flat_rewrite(t->q, t->qlen, &t->qv, res, ttl, &opts, max, out,
	                                       CODEC_MAX_MSG);
	if (n >= 0) {
		PX_STAT_INC(&w->stats, answers_flattened_local);
		t->flat.how = PX_FLAT_LOCAL;
		px_flat_reply_done(w, t, out, (size_t)n);
	}
	px_outbuf_put(w, out);
	return n >= 0;
}

/* RFC 8482 for ANY over UDP: one small RRset instead of everything. */
static bool answer_any_minimal(struct px_worker *w, struct px_txn *t)
{
	uint8_t *out = px_outbuf_get(w);
	size_t max = flat_rewrite_max_size(&t->qv, false);
	uint32_t min_ttl = (uint32_t)t->g->cfg->flatten.min_ttl_s;
	ssize_t n = out == NULL ? -1
	                        : flat_rewrite_any_minimal(t->q, t->qlen, &t->qv,
	                                                   min_ttl < 3600 ? 3600 : min_ttl, max,
	                                                   out, CODEC_MAX_MSG);

	if (n >= 0) {
		PX_STAT_INC(&w->stats, answers_flattened);
		px_flat_reply_done(w, t, out, (size_t)n);
	}
	px_outbuf_put(w, out);
	return n >= 0;
}

/* CHASE: BIND's answer is kept for the fallbacks and its SOA. */
static bool chase_with(struct px_worker *w, struct px_txn *t, const uint8_t *resp, size_t rlen,
                       const struct codec_view *rv, const struct flat_policy_out *po)
{
	struct px_flat *fl = fl_get(w, t);

	if (fl == NULL || !keep_resp(fl, resp, rlen))
		return false;
	/* Without the owner zone's SOA here, a NODATA asks BIND for it. */
	if (owner_soa(t, fl->resp, fl->resp_len, rv, &fl->soa))
		fl->have_soa = true;
	return start_chase(w, t, po);
}

static bool has_rrsig(const uint8_t *resp, size_t rlen, const struct codec_view *rv)
{
	for (int sec = CODEC_SEC_ANSWER; sec <= CODEC_SEC_AUTHORITY; sec++) {
		struct codec_rr_iter it;
		struct codec_rr rr;
		codec_rr_iter_init(&it, resp, rlen, rv, (enum codec_section)sec);
		while (codec_rr_next(&it, &rr) == 1)
			if (rr.type == CODEC_TYPE_RRSIG)
				return true;
	}
	return false;
}

/* A probe got no verdict (and nothing stale stood in) while BIND says
 * NODATA at the owner: the name may own an ANAME, and BIND's empty answer
 * would hide it. A non-empty answer, an NXDOMAIN or a referral says the
 * name owns none (or not here), so the rules decide as usual; so does a
 * signed answer to DO=1, which is relayed whatever the ANAME says. */
static bool presence_unknown_nodata(const struct px_txn *t, const uint8_t *resp, size_t rlen,
                                    const struct codec_view *rv)
{
	const struct px_flat *fl = t->flat.fl;

	return fl != NULL && fl->presence_unknown && !fl->have_target &&
	       flat_qtype_flattens(t->qv.qtype) && rv->rcode == CODEC_RCODE_NOERROR &&
	       (rv->flags & CODEC_FLAG_AA) && rv->ancount == 0 &&
	       !(t->qv.do_bit && has_rrsig(resp, rlen, rv));
}

static bool fail_presence_unknown(struct px_worker *w, struct px_txn *t)
{
	const struct px_flat *fl = t->flat.fl;
	char why[FLAT_WHY_MAX];

	snprintf(why, sizeof(why), "the backend %s the TYPE%u presence probe",
	         fl->unknown_timed_out ? "did not answer" : "gave no usable answer to",
	         fl->unknown_type);
	PX_STAT_INC(&w->stats, answers_flatten_failed);
	t->flat.how = PX_FLAT_ANAME | PX_FLAT_FAILED;
	px_txn_fail(w, t,
	            fl->unknown_timed_out ? CODEC_EDE_NO_REACHABLE_AUTHORITY : CODEC_EDE_OTHER,
	            why);
	return true;
}

/* BIND's answer is relayed by the rules. The answer cache may keep it
 * only when every ANAME type is known absent at the owner: a relay at a
 * name whose presence is unknown or positive is a fallback, not a fact. */
static bool relay_decided(struct px_txn *t)
{
	t->flat.cacheable = t->flat.n_absent == t->g->cfg->flatten.n_aname_types &&
	                    (t->flat.fl == NULL || !t->flat.fl->have_target);
	return false;
}

bool px_flat_decide(struct px_worker *w, struct px_txn *t, const uint8_t *resp, size_t rlen)
{
	uint16_t qtype = t->qv.qtype;
	struct codec_view rv;
	struct flat_policy_in in;
	struct flat_policy_out po;
	struct px_flat_owner own;

	/* po is filled by flat_policy_inspect*() on every path that reads it. */
	if (codec_scan(resp, rlen, &rv) < 0)
		return false;
	if (!flat_qtype_flattens(qtype) && qtype != CODEC_TYPE_ANY) {
		if (!classify_aname_query(w, t, resp, rlen, &rv, &po))
			return false;
		return chase_with(w, t, resp, rlen, &rv, &po);
	}
	if (presence_unknown_nodata(t, resp, rlen, &rv))
		return fail_presence_unknown(w, t);
	policy_in(&in, t, resp, rlen, &rv);
	owner_of(t->flat.fl, &own);
	px_flat_classify(&in, px_flat_txn_zone(t), t->flat.is_apex, &own, &po);
	if (po.signed_relay)
		PX_STAT_INC(&w->stats, signed_relayed);
	if (po.action == FLAT_POLICY_RELAY)
		return relay_decided(t);
	if (po.action == FLAT_POLICY_LOCAL && qtype != CODEC_TYPE_ANY)
		return answer_local(w, t, resp, rlen, &rv, &po);
	if (po.action == FLAT_POLICY_LOCAL && t->origin == PX_ORIGIN_TCP)
		return relay_decided(
		        t); /* ANY over TCP of an in-zone chain: BIND's answer says it all */
	if (qtype == CODEC_TYPE_ANY && t->origin == PX_ORIGIN_UDP)
		return answer_any_minimal(w, t);
	return chase_with(w, t, resp, rlen, &rv, &po);
}

/* --- entry points ----------------------------------------------------- */

/* [resolver] ecs reads the client's option, so a malformed one is
 * answered as RFC 7871 7.1.1 asks, rather than chased with a guess. */
static bool answer_formerr(struct px_worker *w, struct px_txn *t)
{
	/* A question, an OPT and no EDE text: PX_REPLY_MAX is room enough. */
	uint8_t out[PX_REPLY_MAX];
	ssize_t n = codec_build_error(t->q, t->qlen, &t->qv, CODEC_RCODE_FORMERR, CODEC_EDE_NONE,
	                              NULL, out, sizeof(out));

	if (n < 0)
		return false;
	PX_STAT_INC(&w->stats, formerr_sent);
	px_flat_reply_done(w, t, out, (size_t)n);
	return true;
}

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

	t->flat.start_ms = px_now(w);
	if (g->zones == NULL || v->opcode != CODEC_OPCODE_QUERY || v->qdcount != 1 ||
	    v->qclass != CODEC_CLASS_IN)
		return false;
	/* A, AAAA, SVCB and HTTPS are flattened (flat_qtype_flattens()),
	 * ANY gets the addresses, the ANAME types their targets' addresses. */
	if (!flat_qtype_flattens(v->qtype) && v->qtype != CODEC_TYPE_ANY) {
		for (unsigned i = 0; i < cfg->flatten.n_aname_types; i++)
			aname_query |= v->qtype == cfg->flatten.aname_types[i];
		if (!aname_query)
			return false;
	}
	/* The question name is at offset 12 and never compressed. */
	if (flat_zones_find(g->zones, qname, qlen, &idx, &apex) != 0)
		return false;
	t->flat.eligible = true;
	t->flat.zone_idx = (uint16_t)idx;
	t->flat.is_apex = apex;
	if (aname_query)
		return false; /* BIND's own answer carries the record */

	struct px_flat_ecs ecs;
	if (px_flat_ecs_of(t, &ecs) < 0)
		return answer_formerr(w, t);

	/* [alias] owner: the target is in the configuration. */
	const struct cfg_alias *al = px_flat_alias_of(cfg, g->alias_owners, qname, qlen);
	if (al != NULL) {
		if (px_flat_answer_direct(w, t, al->pool_wire, al->pool_wire_len, al->n_targets,
		                          UINT32_MAX, 0, &ecs))
			return true;
		if (px_flat_alloc(w, t) == NULL)
			return false;
		px_flat_set_targets(t->flat.fl, al->pool_wire, al->pool_wire_len, al->n_targets);
		t->flat.fl->have_target = true;
		t->flat.fl->target_is_alias = true;
		return false;
	}

	/* ANAME presence: the cache, else a probe to BIND in parallel. */
	for (unsigned i = 0; i < cfg->flatten.n_aname_types; i++) {
		uint16_t type = cfg->flatten.aname_types[i];
		struct flat_cache_key key;
		struct flat_cache_hit hit;
		px_flat_key_init(&key, qname, qlen, type, FLAT_KEY_PRESENCE);
		int st = flat_cache_get(g->cache, &key, px_now(w), &hit);
		if (st == FLAT_CACHE_HIT_PREFETCH) {
			/* Presence needs no refresh ahead: it is probed
			 * again when it expires. */
			flat_cache_abandon(g->cache, &key);
			st = FLAT_CACHE_HIT;
		}
		if (st == FLAT_CACHE_HIT) {
			if (!hit.value.presence.present) {
				px_flat_note_absent(t, hit.ttl_left);
				continue;
			}
			const struct flat_presence *pr = &hit.value.presence;
			if (t->flat.fl == NULL &&
			    px_flat_answer_direct(w, t, pr->targets, pr->targets_len, pr->n_targets,
			                          hit.ttl_left, type, &ecs))
				return true;
			if (px_flat_alloc(w, t) == NULL)
				return false;
			px_flat_set_targets(t->flat.fl, pr->targets, pr->targets_len,
			                    pr->n_targets);
			t->flat.fl->aname_ttl = hit.ttl_left;
			t->flat.fl->aname_type = type;
			t->flat.fl->have_target = true;
			return false;
		}
		if (px_flat_alloc(w, t) == NULL)
			return false;
		/* Expired: probed again, the old verdict kept for a probe
		 * that gets none. */
		px_flat_probe_send(w, t, type, st == FLAT_CACHE_STALE ? &hit.value.presence : NULL);
	}
	return false;
}

bool px_flat_answer(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	struct px_flat *fl = t->flat.fl;

	if (!t->flat.eligible)
		return false;
	if (fl != NULL && fl->probes_pending > 0) {
		/* Hold BIND's answer until the probes say whether the name
		 * owns an ANAME; the probes were sent first, so this wait is
		 * short. */
		if (!px_flat_keep_resp(fl, msg, len))
			return false;
		fl->resp_waiting = true;
		/* BIND answered: the probes (and their retries) have until the
		 * flatten deadline, like a chase. */
		fl->deadline_at = t->flat.start_ms + t->g->cfg->flatten.deadline_ms;
		px_flat_probe_arm(w, t);
		return true;
	}
	return px_flat_decide(w, t, msg, len);
}
