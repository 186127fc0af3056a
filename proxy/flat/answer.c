/* proxy/flat/answer.c - the end of a flattened query.
 *
 * Once every lookup is done: the answer rewritten from the results, or
 * the fallback. Failure never goes silent: a stale answer (EDE 3) if the
 * cache has one, else BIND's sibling A/AAAA (SVCB/HTTPS) at the owner, else SERVFAIL
 * with the chase's Extended DNS Error — by [flatten] deadline at the
 * latest. A NODATA needs the zone's SOA (RFC 2308), asked of BIND when
 * its answer at the owner did not carry one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "flatten/rewrite.h"
#include "codec/scan.h"
#include "codec/ttl.h"
#include "proxy/engine/anscache.h"
#include "proxy/flat/flat_int.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/stats.h"

void px_flat_reply_done(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	px_txn_reply(w, t, msg, len);
	px_txn_done(w, t);
}

void px_flat_relay(struct px_worker *w, struct px_txn *t)
{
	/* Kept only when the rules relayed it (a fallback never is). */
	if (w->anscache != NULL && t->flat.cacheable)
		px_anscache_offer(w, t, t->flat.fl->resp, t->flat.fl->resp_len);
	PX_STAT_INC(&w->stats, answers_relayed);
	px_flat_reply_done(w, t, t->flat.fl->resp, t->flat.fl->resp_len);
}

/* Records how the answer came about, for the query log. */
void px_flat_set_how(struct px_txn *t, unsigned flags)
{
	const struct px_flat *fl = t->flat.fl;
	unsigned kind = PX_FLAT_CNAME;

	if (fl != NULL && fl->have_target)
		kind = fl->target_is_alias ? PX_FLAT_ALIAS : PX_FLAT_ANAME;
	t->flat.how = (uint8_t)(kind | flags);
}

static void fetch_soa(struct px_worker *w, struct px_txn *t);

/* One qtype's answer from the lookups: type j of fl's n_types, merged
 * over the targets. */
struct merged {
	const struct flat_result *res;
	struct flat_pool_out out;
	struct flat_result buf;
};

/* Merges every type's lookups; sets *stale and *scope from the lookups
 * the answer uses (it is as stale and as specific as they are). */
static void merge_all(struct px_worker *w, const struct px_txn *t, struct merged *m, bool *stale,
                      uint8_t *scope)
{
	const struct px_flat *fl = t->flat.fl;
	struct flat_pool_in in[FLAT_POOL_MAX];
	unsigned n = fl->n_targets > 0 ? fl->n_targets : 1;

	for (unsigned j = 0; j < fl->n_types; j++) {
		for (unsigned i = 0; i < n; i++) {
			const struct px_lookup *lk = &fl->lk[i * fl->n_types + j];
			in[i].res = &lk->res;
			in[i].ttl = lk->ttl;
			in[i].stale = lk->stale;
		}
		m[j].res = px_flat_merge(w, t, in, n, &m[j].buf, &m[j].out);
		for (unsigned i = 0; i < n; i++) {
			const struct px_lookup *lk = &fl->lk[i * fl->n_types + j];
			if (!(m[j].out.used & (1u << i)))
				continue;
			*stale |= lk->stale;
			if (lk->scope > *scope)
				*scope = lk->scope;
		}
	}
}

/* The merged A and AAAA (ANY, ANAME-type queries) as rewrite inputs. */
static void lookup_rrsets(const struct px_flat *fl, const struct cfg *cfg, const struct merged *m,
                          struct flat_rrset_in *a, struct flat_rrset_in *aaaa)
{
	for (unsigned j = 0; j < fl->n_types; j++) {
		struct flat_rrset_in *in = fl->lk[j].qtype == CODEC_TYPE_A ? a : aaaa;
		in->res = m[j].res;
		in->ttl = px_flat_ttl_clamp(cfg, m[j].out.ttl);
	}
}

/* A failed answer (every target of a type failed): siblings, or
 * SERVFAIL with the chase's reason (a stale value was already
 * substituted when the failure came). True when t was answered so. */
static bool finish_failed(struct px_worker *w, struct px_txn *t, const struct merged *m)
{
	const struct px_flat *fl = t->flat.fl;

	for (unsigned j = 0; j < fl->n_types; j++) {
		const struct flat_result *r = m[j].res;
		if (r->kind != FLAT_RES_FAIL)
			continue;
		if (fl->siblings) {
			PX_STAT_INC(&w->stats, answers_sibling);
			px_flat_set_how(t, PX_FLAT_SIBLING);
			px_flat_relay(w, t);
			return true;
		}
		PX_STAT_INC(&w->stats, answers_flatten_failed);
		px_flat_set_how(t, PX_FLAT_FAILED);
		px_txn_fail(w, t, r->ede,
		            r->why[0] ? r->why : "cannot resolve the flattened target");
		return true;
	}
	return false;
}

/* A query for A, AAAA, SVCB or HTTPS: the merged result at the owner,
 * or a NODATA with the zone's SOA. Returns the length, or 0 when the
 * SOA is being fetched first. */
static ssize_t write_one(struct px_worker *w, struct px_txn *t, const struct merged *m,
                         struct flat_rewrite_opts *opts, size_t max, uint8_t *out)
{
	struct px_flat *fl = t->flat.fl;
	const struct cfg *cfg = t->g->cfg;
	uint32_t ttl = m->out.ttl;

	if (m->res->kind != FLAT_RES_ADDRS) {
		/* NODATA at the owner needs the zone's SOA (RFC 2308). */
		if (!fl->have_soa) {
			fetch_soa(w, t);
			return 0;
		}
		uint32_t neg = codec_soa_neg_ttl(fl->soa.ttl, fl->soa.minimum);
		if (ttl > neg)
			ttl = neg;
		opts->soa = &fl->soa;
	}
	/* One ANAME RR to show: a pool's would be several. */
	if (cfg->flatten.show_aname && fl->have_target && !fl->target_is_alias &&
	    fl->n_targets == 1) {
		opts->show_aname = true;
		opts->aname_type = fl->aname_type;
		opts->aname_target = px_flat_target(fl, 0, &opts->aname_target_len);
		opts->aname_ttl = fl->aname_ttl;
	}
	ttl = px_flat_ttl_clamp(cfg, ttl);
	return flat_rewrite(t->q, t->qlen, &t->qv, m->res, ttl, opts, max, out, CODEC_MAX_MSG);
}

/* Writes the answer from the lookups into out (CODEC_MAX_MSG), or the
 * fallback. */
static void finish_into(struct px_worker *w, struct px_txn *t, uint8_t *out)
{
	struct px_flat *fl = t->flat.fl;
	const struct cfg *cfg = t->g->cfg;
	size_t max = flat_rewrite_max_size(&t->qv, t->origin == PX_ORIGIN_TCP);
	struct flat_rewrite_opts opts;
	struct merged m[2];
	ssize_t n;
	uint8_t scope = 0;
	/* A target from an expired presence entry is a stale answer too. */
	bool stale = fl->presence_stale;

	if (fl->n_types == 0 || fl->n_types > 2) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "no lookups to answer from");
		return;
	}
	for (unsigned i = 0; i < fl->n_lookups; i++)
		if (fl->lk[i].ttl > fl->chain_ttl)
			fl->lk[i].ttl = fl->chain_ttl;
	merge_all(w, t, m, &stale, &scope);
	if (finish_failed(w, t, m))
		return;

	memset(&opts, 0, sizeof(opts));
	opts.ede = CODEC_EDE_NONE;
	if (stale) {
		opts.ede = CODEC_EDE_STALE_ANSWER;
		opts.ede_text = "resolution failed; serving the last good answer";
	}
	/* The answer is as specific as the most specific entry it used. */
	struct codec_ecs echo;
	opts.ecs = px_flat_ecs_echo(&fl->ecs, scope, &echo);

	uint16_t qtype = t->qv.qtype;
	if (qtype == CODEC_TYPE_ANY) {
		/* TCP only: BIND's ANY answer plus the addresses. */
		struct codec_view rv;
		struct flat_rrset_in a = {0}, aaaa = {0};
		if (codec_scan(fl->resp, fl->resp_len, &rv) < 0) {
			px_flat_relay(w, t);
			return;
		}
		lookup_rrsets(fl, cfg, m, &a, &aaaa);
		n = flat_rewrite_append(fl->resp, fl->resp_len, &rv, &a, &aaaa, max, out,
		                        CODEC_MAX_MSG);
	} else if (!flat_qtype_flattens(qtype)) {
		/* A query for the ANAME type itself (one target: a pool's is
		 * relayed): the record, addresses in the additional section. */
		struct flat_rrset_in a = {0}, aaaa = {0};
		size_t tl;
		const uint8_t *tn = px_flat_target(fl, 0, &tl);
		lookup_rrsets(fl, cfg, m, &a, &aaaa);
		n = flat_rewrite_aname_query(t->q, t->qlen, &t->qv, tn, tl, fl->aname_ttl, &a,
		                             &aaaa, &opts, max, out, CODEC_MAX_MSG);
	} else {
		n = write_one(w, t, &m[0], &opts, max, out);
		if (n == 0)
			return; /* the SOA first */
	}
	if (n < 0) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "cannot build the flattened answer");
		return;
	}
	if (fl->local) {
		PX_STAT_INC(&w->stats, answers_flattened_local);
		t->flat.how = PX_FLAT_LOCAL;
		px_flat_reply_done(w, t, out, (size_t)n);
		return;
	}
	PX_STAT_INC(&w->stats, answers_flattened);
	if (stale)
		PX_STAT_INC(&w->stats, answers_stale);
	px_flat_set_how(t, stale ? PX_FLAT_STALE : 0);
	px_flat_reply_done(w, t, out, (size_t)n);
}

void px_flat_finish(struct px_worker *w, struct px_txn *t)
{
	uint8_t *out = px_outbuf_get(w);

	if (out == NULL) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "out of memory");
		return;
	}
	finish_into(w, t, out);
	px_outbuf_put(w, out);
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
	struct px_txn *t = px_flat_token_txn(r->w, r->token);
	struct codec_view v;

	if (status == 0 && !codec_answers_question(msg, len, r->id, r->apex, r->apex_len,
	                                           CODEC_TYPE_SOA, CODEC_CLASS_IN))
		return PX_UP_WAIT;
	if (status == UV_ETIMEDOUT)
		PX_STAT_INC(&r->w->stats, backend_probe_timeouts);
	if (t != NULL && t->flat.fl->soa_fetching) {
		struct px_flat *fl = t->flat.fl;
		fl->soa_fetching = false;
		/* Asked for the apex SOA itself: it is in the answer section. */
		if (status == 0 && codec_scan(msg, len, &v) == 0 &&
		    flat_policy_soa_in(msg, len, &v, CODEC_SEC_ANSWER, &fl->soa) == 0)
			fl->have_soa = true;
		if (fl->have_soa) {
			px_flat_finish(r->w, t);
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
	const struct cfg_zone *z = px_flat_txn_zone(t);
	struct soa_req *r = malloc(sizeof(*r));
	uint8_t q[CODEC_QUERY_MAX];

	if (r == NULL) {
		px_txn_fail(w, t, CODEC_EDE_OTHER, "out of memory");
		return;
	}
	r->w = w;
	r->token = px_flat_token(t);
	r->id = px_up_random_id();
	memcpy(r->apex, z->name.wire, z->name.wire_len);
	r->apex_len = z->name.wire_len;
	size_t qlen = codec_build_query(q, r->id, false, r->apex, r->apex_len, CODEC_TYPE_SOA);
	t->flat.fl->soa_fetching = true;
	int rc = px_up_query(w, (const struct sockaddr *)&w->cfg->backend.address.sa, q, qlen,
	                     false, w->cfg->backend.timeout_ms, soa_req_cb, r);
	if (rc < 0) {
		free(r);
		t->flat.fl->soa_fetching = false;
		px_txn_fail(w, t, CODEC_EDE_NETWORK_ERROR, "cannot ask the backend for the SOA");
	}
}

void px_flat_maybe_finish(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	for (unsigned i = 0; i < fl->n_lookups; i++)
		if (fl->lk[i].state != LK_DONE)
			return;
	px_flat_finish(w, t);
}

void px_flat_deadline(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;
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
			size_t tl;
			const uint8_t *tn = px_flat_target(fl, lk->ti, &tl);
			codec_name_to_text(tn, tl, name, sizeof(name));
			snprintf(why, sizeof(why), "resolving %.60s took longer than %llu ms", name,
			         (unsigned long long)t->g->cfg->flatten.deadline_ms);
			lk->res.kind = FLAT_RES_FAIL;
			lk->res.ede = CODEC_EDE_NO_REACHABLE_AUTHORITY;
			snprintf(lk->res.why, sizeof(lk->res.why), "%s", why);
		}
		lk->state = LK_DONE;
	}
	if (fl->probes_pending > 0 && fl->resp_waiting) {
		/* No verdict in time: stale presence, or decide's rule for a
		 * name that may own an ANAME (never BIND's NODATA). */
		px_flat_probes_expire(w, t);
		fl->resp_waiting = false;
		if (!px_flat_decide(w, t, fl->resp, fl->resp_len) && t->busy)
			px_flat_relay(w, t);
		return;
	}
	if (fl->soa_fetching || fl->probes_pending > 0 || !fl->chasing) {
		if (fl->resp != NULL) {
			px_flat_relay(w, t);
			return;
		}
		px_txn_fail(w, t, CODEC_EDE_NO_REACHABLE_AUTHORITY,
		            "the backend did not answer in time");
		return;
	}
	px_flat_finish(w, t);
}

bool px_flat_active(const struct px_txn *t)
{
	return t->flat.fl != NULL &&
	       (t->flat.fl->chasing || t->flat.fl->resp_waiting || t->flat.fl->soa_fetching);
}

void px_flat_chain_text(const struct px_txn *t, char *out, size_t size)
{
	const struct px_flat *fl = t->flat.fl;
	char owner[CODEC_MAX_NAME * 4 + 1], target[CODEC_MAX_NAME * 4 + 1];
	unsigned hops = 0;
	const uint8_t *tw = t->flat.direct_target;
	size_t tlen = t->flat.direct_target_len;

	if (fl != NULL) {
		tw = px_flat_target(fl, 0, &tlen);
		for (unsigned i = 0; i < fl->n_lookups; i++)
			if (fl->lk[i].res.hops > hops)
				hops = fl->lk[i].res.hops;
	} else {
		hops = t->flat.direct_hops;
	}
	if (tw == NULL || tlen == 0 || (t->flat.how & PX_FLAT_HOW_MASK) == PX_FLAT_NO ||
	    (t->flat.how & PX_FLAT_HOW_MASK) == PX_FLAT_LOCAL ||
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
