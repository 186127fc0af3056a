/* proxy/ops/explain.c - apexctl explain NAME (see explain.h).
 *
 * BIND is asked what a probe and the forwarded query would ask, through
 * the own-query client of the query path (flat/upstream.c) on the main
 * loop; its answers go through the query path's classification
 * (px_flat_classify) and TTL arithmetic; the live chase is the query
 * path's chase runner (px_chase_run). What is here only records what
 * those say, and prints it.
 *
 * An explanation spans event-loop turns (BIND's answers, the live chase)
 * and a reload may publish a new configuration meanwhile, whose workers
 * then free the old one. It holds a reference to the generation it
 * started under and reads the configuration, the zones, the [alias]
 * owners and the caches from that one only: one consistent picture, and
 * no pointer into a freed generation (or a resolver index into another
 * generation's shorter list).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/ecs.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/text.h"
#include "flatten/cache.h"
#include "flatten/chase.h"
#include "flatten/policy.h"
#include "flatten/zones.h"
#include "codec/scan.h"
#include "codec/svcb.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/flat.h"
#include "proxy/flat/upstream.h"
#include "proxy/health/health.h"
#include "proxy/ops/ctlreq.h"
#include "proxy/ops/explain.h"
#include "proxy/ops/statsfmt.h"

/* Room for BIND's answer to one explain query (sent with EDNS 1232). */
#define PX_EX_ANSWER_MAX 4096

/* One query to the backend: NAME with the asked type, or an ANAME type. */
struct ex_query {
	struct px_explain *ex;
	uint16_t id;
	uint16_t qtype;
	int status; /* 0: answer in resp; else a negative errno */
	uint8_t q[CODEC_QUERY_MAX];
	size_t qlen;
	uint8_t resp[PX_EX_ANSWER_MAX];
	size_t rlen;
};

struct px_explain {
	struct px_server *srv;
	struct px_gen *gen; /* held until the run is freed */
	struct px_up_home home;
	struct px_sbuf *body;
	px_explain_done_fn *done;
	void *arg;
	unsigned refs;   /* requester, queries in flight, chase, timer */
	bool dropped;    /* the requester went away */
	bool ended;      /* done was called (or would have been) */
	bool stop_chase; /* the live chase ends at its next answer */
	uint8_t name[CODEC_MAX_NAME];
	size_t name_len;
	uint16_t qtype;
	bool has_subnet;
	struct codec_ecs subnet;         /* explain ... SUBNET, as given */
	struct codec_ecs send;           /* what a chase for it sends; family 0: none */
	char text[PX_CTL_NAME_TEXT_MAX]; /* name as text */
	unsigned n_q, pending;
	struct ex_query q[1 + CFG_MAX_ANAME_TYPES];
	/* What is known of the owner before BIND's answer, as the query
	 * path would know it. */
	struct px_flat_owner own;
	uint8_t target[CODEC_MAX_NAME];
	uint16_t aname_type;
	/* The owner's targets when several (a pool): names blob, count. */
	uint8_t pool[FLAT_POOL_NAMES_MAX];
	size_t pool_len;
	unsigned n_pool;
	const struct cfg_zone *zone; /* of gen's cfg, once report_zone found it */
	/* The live chase of the target, after the decision. */
	struct px_chase_run run;
	uv_timer_t timer; /* [flatten] deadline of the live chase */
};

static void ex_unref(struct px_explain *ex)
{
	if (--ex->refs > 0)
		return;
	px_gen_unref(ex->gen);
	free(ex);
}

static void ex_timer_closed(uv_handle_t *h)
{
	ex_unref(h->data);
}

static void ex_end(struct px_explain *ex, bool ok, const char *err)
{
	if (ex->ended)
		return;
	ex->ended = true;
	ex->stop_chase = true;
	uv_timer_stop(&ex->timer);
	if (ok && ex->gen != ex->srv->gen)
		px_sbuf_put(ex->body,
		            "note: the configuration was reloaded meanwhile; this explains the "
		            "one in force when it began (generation %llu, now %llu)\n",
		            (unsigned long long)ex->gen->id, (unsigned long long)ex->srv->gen->id);
	if (!ex->dropped)
		ex->done(ex->arg, ok, err);
}

void px_explain_drop(struct px_explain *ex)
{
	if (ex == NULL)
		return;
	ex->dropped = true;
	ex->ended = true;
	ex->stop_chase = true;
	uv_close((uv_handle_t *)&ex->timer, ex_timer_closed);
	ex_unref(ex);
}

static const char *cname_mode_text(enum cfg_cname_mode m)
{
	return m == CFG_CNAME_ALL ? "all" : m == CFG_CNAME_NONE ? "none" : "apex";
}

static const char *rcode_text(unsigned rc)
{
	const char *name = codec_rcode_name(rc);

	return name != NULL ? name : "an error RCODE";
}

static const char *type_text(uint16_t qtype)
{
	switch (qtype) {
	case CODEC_TYPE_A:
		return "A";
	case CODEC_TYPE_AAAA:
		return "AAAA";
	case CODEC_SVCB_TYPE_HTTPS:
		return "HTTPS";
	default:
		return "SVCB";
	}
}

/* "address" for A/AAAA, "record" for SVCB/HTTPS; plural unless n is 1. */
static const char *unit_text(uint16_t qtype, unsigned n)
{
	if (flat_qtype_is_rdata(qtype))
		return n == 1 ? "record" : "records";
	return n == 1 ? "address" : "addresses";
}

static void put_addr(struct px_sbuf *b, uint16_t qtype, const uint8_t *a)
{
	char text[INET6_ADDRSTRLEN];

	if (qtype == CODEC_TYPE_A)
		uv_inet_ntop(AF_INET, a, text, sizeof(text));
	else
		uv_inet_ntop(AF_INET6, a, text, sizeof(text));
	px_sbuf_put(b, "%s", text);
}

/* One SVCB/HTTPS RDATA in presentation format (RFC 9460 2.1), or what is
 * wrong with it. */
static void put_svcb(struct px_sbuf *b, const uint8_t *rd, size_t n)
{
	/* \DDD per octet at worst, plus the key names. */
	static char text[FLAT_RDATA_MAX * 4 + 512];
	struct codec_svcb sv;
	int rc = codec_svcb_to_text(rd, n, text, sizeof(text));

	if (rc == -EBADMSG) {
		codec_svcb_parse(rd, n, &sv);
		px_sbuf_put(b, "\\# %zu (malformed: %s)", n, sv.why);
	} else {
		px_sbuf_put(b, "%s%s", text, rc == -EMSGSIZE ? " ..." : "");
	}
}

/* Each record of an ADDRS result on a line of its own after prefix: the
 * address, or the SVCB/HTTPS RDATA in presentation format. */
static void put_records(struct px_sbuf *b, const struct flat_result *r, const char *prefix)
{
	size_t i = 0;

	if (!flat_qtype_is_rdata(r->qtype)) {
		for (unsigned k = 0; k < r->n_addrs && k < FLAT_MAX_ADDRS; k++) {
			px_sbuf_put(b, "%s", prefix);
			put_addr(b, r->qtype, r->addrs[k]);
			px_sbuf_put(b, "\n");
		}
		return;
	}
	while (i + 2 <= r->rdata_len && r->rdata_len <= FLAT_RDATA_MAX) {
		size_t n = codec_get_u16(r->rdata + i);

		if (n > (size_t)r->rdata_len - i - 2)
			break;
		px_sbuf_put(b, "%s", prefix);
		put_svcb(b, r->rdata + i + 2, n);
		px_sbuf_put(b, "\n");
		i += 2 + n;
	}
}

/* --- the live chase ------------------------------------------------------ */

/* The target cache says what the next query gets; the live chase shows
 * the chain as the resolvers (or BIND) give it now, hop by hop with each
 * TTL, which the cache does not keep. It is the workers' own chase
 * runner, on the main loop, bounded by [flatten] deadline. */

static void put_chase_server(const struct cfg *cfg, const struct flat_chase_hop *h, char *out,
                             size_t size)
{
	if (h->server == FLAT_SERVER_BACKEND)
		snprintf(out, size, "backend %s", cfg->backend.address.text);
	else if (h->resolver < cfg->resolver.addresses.n)
		snprintf(out, size, "resolver %s", cfg->resolver.addresses.v[h->resolver].text);
	else
		snprintf(out, size, "no server");
}

static void put_chase_hops(struct px_explain *ex)
{
	const struct flat_chase *fc = &ex->run.fc;
	struct px_sbuf *b = ex->body;
	char name[PX_CTL_NAME_TEXT_MAX], next[PX_CTL_NAME_TEXT_MAX], server[80];
	const char *tname = type_text(ex->qtype);

	for (unsigned i = 0; i < fc->n_hop; i++) {
		const struct flat_chase_hop *h = &fc->hop[i];
		codec_name_to_text(h->name, h->len, name, sizeof(name));
		put_chase_server(ex->run.cfg, h, server, sizeof(server));
		if (i + 1 < fc->n_hop) {
			codec_name_to_text(fc->hop[i + 1].name, fc->hop[i + 1].len, next,
			                   sizeof(next));
			px_sbuf_put(b, "  chase hop %u: %s CNAME %s, TTL %u [%s]\n", i + 1, name,
			            next, h->ttl, server);
		} else if (h->ttl == UINT32_MAX) {
			px_sbuf_put(b, "  chase hop %u: %s %s, no answer [%s]\n", i + 1, name,
			            tname, server);
		} else {
			px_sbuf_put(b, "  chase hop %u: %s %s, TTL %u [%s]\n", i + 1, name, tname,
			            h->ttl, server);
		}
	}
}

/* Each address's health under the zone's check ([health]), as answers see it. */
static void put_health(struct px_explain *ex, const struct flat_result *r)
{
	if (ex->zone == NULL || r->kind != FLAT_RES_ADDRS || flat_qtype_is_rdata(r->qtype))
		return;
	px_health_explain(ex->srv->health, &ex->zone->check, ex->name, ex->name_len, r->qtype,
	                  (const uint8_t(*)[16])r->addrs, r->n_addrs, ex->body);
}

static void chase_report(struct px_explain *ex, const char *cut)
{
	const struct flat_chase *fc = &ex->run.fc;
	const struct flat_result *r = &fc->result;
	struct px_sbuf *b = ex->body;
	const char *tname = type_text(ex->qtype);
	unsigned n = ex->run.n_queries;

	px_sbuf_put(b,
	            "live chase now (%u quer%s; resolvers may answer from their own "
	            "caches):\n",
	            n, n == 1 ? "y" : "ies");
	put_chase_hops(ex);
	if (cut != NULL) {
		px_sbuf_put(b, "  incomplete: %s\n", cut);
		return;
	}
	if (ex->send.family != 0 && r->kind != FLAT_RES_FAIL)
		px_sbuf_put(b, "  client subnet sent; the answer's scope: /%u%s\n", fc->scope,
		            fc->scope == 0 ? " (not tailored: shared by every client)" : "");
	switch (r->kind) {
	case FLAT_RES_ADDRS:
		px_sbuf_put(b, "  result: %u %s %s, TTL %u (min over the chain):", r->n_addrs,
		            tname, unit_text(ex->qtype, r->n_addrs), r->ttl);
		if (flat_qtype_is_rdata(r->qtype)) {
			px_sbuf_put(b, "\n");
			put_records(b, r, "    ");
			break;
		}
		for (unsigned i = 0; i < r->n_addrs; i++) {
			px_sbuf_put(b, " ");
			put_addr(b, ex->qtype, r->addrs[i]);
		}
		px_sbuf_put(b, "\n");
		put_health(ex, r);
		break;
	case FLAT_RES_NODATA:
	case FLAT_RES_NXDOMAIN:
		px_sbuf_put(b, "  result: %s, negative TTL %u\n",
		            r->kind == FLAT_RES_NODATA ? "no records of the type" : "NXDOMAIN",
		            r->ttl);
		break;
	default:
		px_sbuf_put(b, "  result: failed (%s): EDE %u \"%s\"\n",
		            flat_chase_fail_name(fc->fail), r->ede, r->why);
		break;
	}
}

static void chase_done(struct px_chase_run *r, bool cancelled)
{
	struct px_explain *ex = (struct px_explain *)((char *)r - offsetof(struct px_explain, run));

	if (cancelled) {
		ex_end(ex, false, "apexd is shutting down");
	} else if (!ex->ended) {
		chase_report(ex, NULL);
		ex_end(ex, true, NULL);
	}
	ex_unref(ex);
}

static void chase_deadline_cb(uv_timer_t *t)
{
	struct px_explain *ex = t->data;
	char why[96];

	if (ex->ended)
		return;
	snprintf(why, sizeof(why), "took longer than [flatten] deadline %llu ms",
	         (unsigned long long)ex->run.cfg->flatten.deadline_ms);
	chase_report(ex, why);
	ex_end(ex, true, NULL);
}

/* Starts the live chase of target; the reply goes out when it ends. */
static void chase_begin(struct px_explain *ex, const uint8_t *target, size_t len)
{
	const struct cfg *cfg = ex->gen->cfg;

	ex->run.cfg = cfg;
	ex->run.home = ex->home;
	ex->run.home.stats = NULL; /* explain's queries are not the workers' */
	ex->run.stop = &ex->stop_chase;
	ex->run.done = chase_done;
	ex->run.ecs = ex->send.family != 0 ? &ex->send : NULL;
	ex->refs++;
	uv_timer_start(&ex->timer, chase_deadline_cb, cfg->flatten.deadline_ms, 0);
	px_chase_run_start(&ex->run, ex->gen->zones, target, len, ex->qtype);
}

/* --- what the owner is: [alias], or an ANAME ----------------------------- */

/* The owner's targets (a names blob of n; one, or a pool). */
static void own_target(struct px_explain *ex, const uint8_t *targets, size_t len, unsigned n,
                       uint32_t ttl, uint16_t type)
{
	const uint8_t *first;
	size_t off = 0, flen;

	if (ex->own.target != NULL || !flat_pool_next(targets, len, &off, &first, &flen))
		return;
	memcpy(ex->target, first, flen);
	ex->own.target = ex->target;
	ex->own.target_len = flen;
	ex->own.aname_ttl = ttl;
	ex->aname_type = type;
	memcpy(ex->pool, targets, len);
	ex->pool_len = len;
	ex->n_pool = n;
}

/* The pool's targets as text, "a.net., b.net.". */
static void pool_text(const uint8_t *blob, size_t len, char *out, size_t size)
{
	const uint8_t *name;
	size_t off = 0, nlen, o = 0;
	char text[PX_CTL_NAME_TEXT_MAX];

	out[0] = '\0';
	while (flat_pool_next(blob, len, &off, &name, &nlen)) {
		codec_name_to_text(name, nlen, text, sizeof(text));
		int n = snprintf(out + o, size - o, "%s%s", o ? ", " : "", text);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
}

/* True when an [alias] entry decides the target. */
static bool report_alias(struct px_explain *ex)
{
	const struct cfg *cfg = ex->gen->cfg;
	const struct cfg_alias *al =
	        px_flat_alias_of(cfg, ex->gen->alias_owners, ex->name, ex->name_len);

	if (al == NULL)
		return false;
	char text[1024];

	own_target(ex, al->pool_wire, al->pool_wire_len, al->n_targets, UINT32_MAX, 0);
	ex->own.is_alias = true;
	cfg_alias_targets_text(al, text, sizeof(text));
	px_sbuf_put(ex->body, "source: [alias] %s = %s [config %s:%u]\n", al->owner.text, text,
	            cfg->path, al->line);
	px_sbuf_put(ex->body, "ANAME: not looked up, the [alias] entry decides [config]\n");
	return true;
}

static void report_presence(struct px_explain *ex, uint16_t type, uint64_t now_ms)
{
	struct px_sbuf *b = ex->body;
	struct flat_cache_key key;
	struct flat_cache_peek pk;
	char text[1024];

	memset(&key, 0, sizeof(key));
	key.name = ex->name;
	key.len = ex->name_len;
	key.type = type;
	key.kind = FLAT_KEY_PRESENCE;
	px_sbuf_put(b, "ANAME (TYPE%u) in the presence cache: ", type);
	if (flat_cache_peek(ex->gen->cache, &key, now_ms, &pk) != 0 || !pk.has_good || !pk.fresh) {
		px_sbuf_put(b, "not cached: the next query probes the backend "
		               "[presence cache]\n");
		return;
	}
	const struct flat_presence *p = &pk.value.presence;
	if (!p->present) {
		px_sbuf_put(b, "absent, %u s left [presence cache]\n", pk.ttl_left);
		return;
	}
	pool_text(p->targets, p->targets_len, text, sizeof(text));
	px_sbuf_put(b, "present, target%s %s, %u s left [presence cache]\n",
	            p->n_targets > 1 ? "s (a pool)" : "", text, pk.ttl_left);
	own_target(ex, p->targets, p->targets_len, p->n_targets, pk.ttl_left, type);
}

static void report_probe(struct px_explain *ex, const struct ex_query *q)
{
	const char *backend = ex->gen->cfg->backend.address.text;
	struct px_sbuf *b = ex->body;
	char text[1024];
	struct flat_aname an;

	px_sbuf_put(b, "ANAME (TYPE%u) at the backend now: ", q->qtype);
	if (q->status != 0) {
		px_sbuf_put(b, "no answer (%s) [backend %s]\n", strerror(-q->status), backend);
		return;
	}
	px_flat_aname_verdict(q->resp, q->rlen, ex->name, ex->name_len, q->qtype, &an);
	switch (an.state) {
	case FLAT_ANAME_PRESENT:
		pool_text(an.targets, an.targets_len, text, sizeof(text));
		px_sbuf_put(b, "%s %u IN TYPE%u %s%s [backend %s]\n", ex->text, an.ttl, q->qtype,
		            text, an.n_targets > 1 ? " (a pool, in canonical order)" : "", backend);
		/* Not cached: the next query's probe finds this one. */
		own_target(ex, an.targets, an.targets_len, an.n_targets, an.ttl, q->qtype);
		break;
	case FLAT_ANAME_ABSENT:
		px_sbuf_put(b, "none (negative TTL %u) [backend %s]\n", an.ttl, backend);
		break;
	case FLAT_ANAME_INVALID:
		px_sbuf_put(b,
		            "present but unusable: each RDATA must be exactly one name, at most "
		            "%d records, no CNAME beside; ignored [backend %s]\n",
		            FLAT_POOL_MAX, backend);
		break;
	default:
		px_sbuf_put(b, "no verdict (%s, or not authoritative) [backend %s]\n",
		            rcode_text(q->rlen >= CODEC_HDR_LEN ? q->resp[3] & 0x0f : 0), backend);
		break;
	}
}

/* --- BIND's answer, and the decision -------------------------------------- */

/* BIND's answer section, one RR a line (names, types, TTLs; the RDATA of
 * the types flattening cares about). */
static void put_backend_answer(struct px_sbuf *b, const uint8_t *msg, size_t len,
                               const struct codec_view *v)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	uint8_t owner[CODEC_MAX_NAME], target[CODEC_MAX_NAME];
	char otext[PX_CTL_NAME_TEXT_MAX], ttext[PX_CTL_NAME_TEXT_MAX];

	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		int ol = codec_name_unpack(msg, len, rr.owner_off, owner);
		if (ol < 0)
			break;
		codec_name_to_text(owner, (size_t)ol, otext, sizeof(otext));
		px_sbuf_put(b, "  %s %u ", otext, rr.ttl);
		if (rr.type == CODEC_TYPE_CNAME) {
			int tl = codec_name_unpack(msg, len, rr.rdata_off, target);
			if (tl > 0)
				codec_name_to_text(target, (size_t)tl, ttext, sizeof(ttext));
			px_sbuf_put(b, "CNAME %s\n", tl > 0 ? ttext : "(unreadable)");
		} else if (rr.type == CODEC_SVCB_TYPE_HTTPS || rr.type == CODEC_SVCB_TYPE_SVCB) {
			px_sbuf_put(b, "%s ", type_text(rr.type));
			put_svcb(b, msg + rr.rdata_off, rr.rdlen);
			px_sbuf_put(b, "\n");
		} else if ((rr.type == CODEC_TYPE_A && rr.rdlen == 4) ||
		           (rr.type == CODEC_TYPE_AAAA && rr.rdlen == 16)) {
			px_sbuf_put(b, "%s ", rr.type == CODEC_TYPE_A ? "A" : "AAAA");
			put_addr(b, rr.type, msg + rr.rdata_off);
			px_sbuf_put(b, "\n");
		} else {
			px_sbuf_put(b, "TYPE%u (%u bytes of RDATA)\n", rr.type, rr.rdlen);
		}
	}
}

/* The answer when the result r (fresh or stale) is used, at the final
 * TTL the query path computes. */
static void put_result_answer(struct px_explain *ex, const struct flat_result *r, uint32_t final,
                              const char *how)
{
	const struct cfg *cfg = ex->gen->cfg;
	struct px_sbuf *b = ex->body;

	if (r->kind != FLAT_RES_ADDRS) {
		px_sbuf_put(b,
		            "answer: NOERROR, no %s records (the target %s), with the zone's SOA "
		            "for the negative TTL\n",
		            type_text(ex->qtype),
		            r->kind == FLAT_RES_NXDOMAIN ? "does not exist" : "has none");
		return;
	}
	char prefix[PX_CTL_NAME_TEXT_MAX + 32];

	px_sbuf_put(b,
	            "answer: NOERROR, %u %s %s, TTL %u (%s; clamped to min-ttl "
	            "%llu .. max-ttl %llu)\n",
	            r->n_addrs, type_text(ex->qtype), unit_text(ex->qtype, r->n_addrs), final, how,
	            (unsigned long long)cfg->flatten.min_ttl_s,
	            (unsigned long long)cfg->flatten.max_ttl_s);
	/* SVCB/HTTPS: the target's RDATA as it is; "." now names the owner. */
	snprintf(prefix, sizeof(prefix), "  %s %u IN %s ", ex->text, final, type_text(ex->qtype));
	put_records(b, r, prefix);
}

/* BIND's answer to the question itself. False when the explanation ends
 * here (no answer, or an unreadable one). */
static bool report_backend(struct px_explain *ex, struct codec_view *qv, struct codec_view *rv)
{
	const struct ex_query *q = &ex->q[0];
	const char *backend = ex->gen->cfg->backend.address.text;
	const char *tname = type_text(ex->qtype);
	struct px_sbuf *b = ex->body;

	if (q->status != 0) {
		px_sbuf_put(b, "backend: no answer to %s %s (%s) [backend %s]\n", ex->text, tname,
		            strerror(-q->status), backend);
		px_sbuf_put(b, "answer: SERVFAIL with EDE 22 (backend did not answer) unless it "
		               "answers the client's query\n");
		return false;
	}
	if (codec_scan(q->q, q->qlen, qv) < 0 || codec_scan(q->resp, q->rlen, rv) < 0) {
		px_sbuf_put(b, "backend: unreadable answer to %s %s [backend %s]\n", ex->text,
		            tname, backend);
		return false;
	}
	px_sbuf_put(b, "backend answer to %s %s: %s, %u answer RR%s%s [backend %s]\n", ex->text,
	            tname, rcode_text(rv->rcode), rv->ancount, rv->ancount == 1 ? "" : "s",
	            (rv->flags & CODEC_FLAG_TC) ? ", truncated" : "", backend);
	put_backend_answer(b, q->resp, q->rlen, rv);
	return true;
}

/* RELAY and LOCAL end the explanation; true for CHASE. */
static bool report_decision(struct px_explain *ex, const struct cfg_zone *z,
                            const struct flat_policy_out *po)
{
	struct px_sbuf *b = ex->body;

	if (po->action == FLAT_POLICY_RELAY) {
		px_sbuf_put(b,
		            "decision: relay, nothing to flatten (no ANAME, no [alias], and no "
		            "CNAME that cname = %s flattens here)\n",
		            cname_mode_text(z->cname));
		px_sbuf_put(b, "answer: BIND's answer above, unchanged\n");
		return false;
	}
	if (po->action != FLAT_POLICY_LOCAL)
		return true;
	px_sbuf_put(b,
	            "decision: flatten from BIND's own answer (the chain ends in the "
	            "zone), %u CNAME%s\n",
	            po->hops, po->hops == 1 ? "" : "s");
	if (po->local.kind == FLAT_RES_ADDRS)
		put_result_answer(ex, &po->local, px_flat_ttl_clamp(ex->gen->cfg, po->local.ttl),
		                  "min over the chain");
	else
		px_sbuf_put(b, "answer: NXDOMAIN at the end of the chain, answered with "
		               "the zone's SOA\n");
	return false;
}

/* The chain from the owner to the target. False when BIND's chain is
 * already too long (the explanation ends). */
static bool report_chain(struct px_explain *ex, const struct flat_policy_out *po)
{
	const struct cfg *cfg = ex->gen->cfg;
	const struct px_flat_owner *own = &ex->own;
	struct px_sbuf *b = ex->body;
	char text[PX_CTL_NAME_TEXT_MAX];
	unsigned hop = 1;

	codec_name_to_text(po->target, po->target_len, text, sizeof(text));
	const char *source = own->is_alias ? "[alias]" : own->target ? "ANAME" : "CNAME policy";
	px_sbuf_put(b, "decision: chase %s (source: %s)\n", text, source);
	if (own->target != NULL && !own->is_alias)
		px_sbuf_put(b, "hop %u: %s TYPE%u -> target, TTL %u\n", hop++, ex->text,
		            ex->aname_type, own->aname_ttl);
	else if (own->is_alias)
		px_sbuf_put(b, "hop %u: %s [alias] -> target, no TTL of its own\n", hop++,
		            ex->text);
	if (po->hops > 0)
		px_sbuf_put(b, "hop %u: %u CNAME%s BIND followed (listed above), min TTL %u\n",
		            hop++, po->hops, po->hops == 1 ? "" : "s", po->chain_ttl);
	if (po->hops <= cfg->flatten.max_chain)
		return true;
	px_sbuf_put(b,
	            "answer: the chain in the zone is longer than max-chain %u or loops: "
	            "%s\n",
	            cfg->flatten.max_chain,
	            po->siblings ? "BIND's sibling addresses (relayed)" : "SERVFAIL");
	return false;
}

/* --- the target cache, and what the next query gets --------------------- */

static void put_cache_good(struct px_sbuf *b, const struct flat_cache_peek *pk)
{
	const struct flat_result *r = &pk->value.result;
	const char *kind = r->kind == FLAT_RES_ADDRS      ? unit_text(r->qtype, 2)
	                   : r->kind == FLAT_RES_NXDOMAIN ? "NXDOMAIN"
	                                                  : "NODATA";

	if (pk->fresh)
		px_sbuf_put(b, "%s, fresh, stored with TTL %u, %u s left", kind, pk->ttl_s,
		            pk->ttl_left);
	else if (pk->stale_ok)
		px_sbuf_put(b, "%s, stale (TTL %u expired), may be served stale %u s more", kind,
		            pk->ttl_s, pk->stale_left);
	else
		px_sbuf_put(b, "%s, expired past serve-stale", kind);
	px_sbuf_put(b, ", the resolver's chain had %u CNAME%s", r->hops, r->hops == 1 ? "" : "s");
}

static void report_target_cache(struct px_explain *ex, const char *text,
                                const struct flat_cache_peek *pk)
{
	const struct flat_result *r = &pk->value.result;
	const char *tname = type_text(ex->qtype);
	struct px_sbuf *b = ex->body;

	px_sbuf_put(b, "target cache, %s %s: ", text, tname);
	if (!pk->found || (!pk->has_good && !pk->failing)) {
		px_sbuf_put(b, "nothing cached%s [target cache]\n",
		            pk->claimed ? ", a chase is in flight" : "");
		return;
	}
	if (pk->has_good)
		put_cache_good(b, pk);
	if (pk->failing)
		px_sbuf_put(b, "%slast chase failed (EDE %u, \"%s\"), remembered %u s more",
		            pk->has_good ? "; " : "", pk->fail_ede, pk->fail_why, pk->fail_left);
	if (pk->claimed)
		px_sbuf_put(b, "; a chase is in flight (%u queries waiting, %llu ms)", pk->waiters,
		            (unsigned long long)pk->claim_age_ms);
	px_sbuf_put(b, " [target cache]\n");
	if (pk->has_good && r->kind == FLAT_RES_ADDRS) {
		char prefix[16];

		snprintf(prefix, sizeof(prefix), "  %s ", tname);
		put_records(b, r, prefix);
		put_health(ex, r);
	}
}

static void report_next_answer(struct px_explain *ex, const char *text,
                               const struct flat_cache_peek *pk, const struct flat_policy_out *po)
{
	const struct cfg *cfg = ex->gen->cfg;
	const struct flat_result *r = &pk->value.result;
	uint32_t chain_ttl = px_flat_chain_ttl(po, &ex->own);
	struct px_sbuf *b = ex->body;

	switch (pk->status) {
	case FLAT_CACHE_HIT:
		put_result_answer(ex, r, px_flat_answer_ttl(cfg, pk->ttl_left, chain_ttl),
		                  "min of the target's TTL left and the chain");
		if (r->kind == FLAT_RES_ADDRS)
			px_sbuf_put(
			        b,
			        "path: while the %s and this target entry are fresh, a query "
			        "without DO, TSIG or client subnet is answered from the "
			        "caches alone, without asking BIND (answers_flattened_direct)\n",
			        ex->own.is_alias ? "[alias] entry" : "ANAME presence entry");
		break;
	case FLAT_CACHE_FAIL:
		if (pk->stale_ok) {
			px_sbuf_put(b, "answer: stale, with EDE 3 (Stale Answer):\n");
			put_result_answer(ex, r, px_flat_ttl_clamp(cfg, 0), "stale");
		} else if (po->siblings) {
			px_sbuf_put(b,
			            "answer: BIND's sibling %s records (relayed, the chase "
			            "failed)\n",
			            type_text(ex->qtype));
		} else {
			px_sbuf_put(b, "answer: SERVFAIL with EDE %u \"%s\"\n", pk->fail_ede,
			            pk->fail_why);
		}
		break;
	case FLAT_CACHE_STALE:
		px_sbuf_put(b,
		            "answer: the next query chases %s again (within deadline %llu ms); "
		            "if that fails, the stale addresses with EDE 3\n",
		            text, (unsigned long long)cfg->flatten.deadline_ms);
		break;
	default:
		px_sbuf_put(b,
		            "answer: the next query chases %s (within deadline %llu ms); on "
		            "failure %s\n",
		            text, (unsigned long long)cfg->flatten.deadline_ms,
		            po->siblings ? "BIND's sibling addresses" : "SERVFAIL with an EDE");
		break;
	}
}

/* [resolver] ecs: which entry of the scoped target cache a client in the
 * SUBNET asked about meets, as px_flat_get() would pick it. */
static void peek_scoped(struct px_explain *ex, struct flat_cache_key *key, uint64_t now_ms,
                        struct flat_cache_peek *pk)
{
	const struct cfg *cfg = ex->gen->cfg;
	struct px_sbuf *b = ex->body;
	char sn[64], at[64];

	if (!cfg->resolver.ecs) {
		if (ex->has_subnet)
			px_sbuf_put(b, "client subnet: not sent, [resolver] ecs = no: every "
			               "client gets the same entry [config]\n");
		flat_cache_peek(ex->gen->cache, key, now_ms, pk);
		return;
	}
	if (ex->send.family == 0) {
		px_sbuf_put(b,
		            "client subnet: %s; the chase sends none and the entry kept for "
		            "such clients answers [config]\n",
		            ex->has_subnet ? "prefix 0 (opt-out)"
		                           : "none given (explain NAME TYPE "
		                             "SUBNET names one)");
		flat_cache_key_scope(key, FLAT_CACHE_ECS_NONE, 0, NULL);
		flat_cache_peek(ex->gen->cache, key, now_ms, pk);
		return;
	}
	codec_ecs_format(&ex->subnet, false, sn, sizeof(sn));
	codec_ecs_format(&ex->send, false, at, sizeof(at));
	px_sbuf_put(b,
	            "client subnet: %s, sent to the resolver as %s (ecs-prefix %u, %u) [config]\n",
	            sn, at, cfg->resolver.ecs_prefix[0], cfg->resolver.ecs_prefix[1]);
	flat_cache_peek_scoped(ex->gen->cache, key, &ex->send, now_ms, pk);
	if (!pk->found || (!pk->has_good && !pk->failing)) {
		px_sbuf_put(b,
		            "scope: no entry covers %s; the next query claims %s [target cache]\n",
		            at, at);
	} else if (key->ecs[0] == FLAT_CACHE_ECS_ANY) {
		px_sbuf_put(b, "scope: /0, the entry every client shares (the resolver's answer "
		               "was not tailored) [target cache]\n");
	} else {
		struct codec_ecs e;
		memset(&e, 0, sizeof(e));
		e.family = key->ecs[0];
		e.source = key->ecs[1];
		memcpy(e.addr, key->ecs + 2, 16);
		codec_ecs_format(&e, false, at, sizeof(at));
		px_sbuf_put(b,
		            "scope: %s answers this client (the resolver's scope) [target cache]\n",
		            at);
	}
	if (pk->scopes > 0)
		px_sbuf_put(b,
		            "scopes: the target has %u entr%s for client subnets [target cache]\n",
		            pk->scopes, pk->scopes == 1 ? "y" : "ies");
}

/* A pool: the mode, and each target's state in the target cache. */
static void report_pool(struct px_explain *ex, uint64_t now_ms)
{
	const struct cfg *cfg = ex->gen->cfg;
	struct px_sbuf *b = ex->body;
	const uint8_t *name;
	size_t off = 0, len;
	unsigned i = 0;

	px_sbuf_put(b, "pool: %u targets, pool = %s (%s) [config]\n", ex->n_pool,
	            cfg_pool_mode_name(cfg->flatten.pool),
	            cfg->flatten.pool == CFG_POOL_FAILOVER
	                    ? "the first target in order with addresses answers"
	                    : "the union of the targets' addresses, at most 64");
	while (flat_pool_next(ex->pool, ex->pool_len, &off, &name, &len)) {
		struct flat_cache_key key;
		struct flat_cache_peek pk;
		char text[PX_CTL_NAME_TEXT_MAX];
		codec_name_to_text(name, len, text, sizeof(text));
		memset(&key, 0, sizeof(key));
		key.name = name;
		key.len = len;
		key.type = ex->qtype;
		key.kind = FLAT_KEY_TARGET;
		if (cfg->resolver.ecs)
			flat_cache_key_scope(&key, FLAT_CACHE_ECS_NONE, 0, NULL);
		flat_cache_peek(ex->gen->cache, &key, now_ms, &pk);
		px_sbuf_put(b, "pool target %u: ", ++i);
		report_target_cache(ex, text, &pk);
	}
	px_sbuf_put(b, "pool: the live chase below is of the first target; each target is "
	               "chased on its own, as a single target [explain]\n");
}

/* CHASE: the target cache, the prediction, then the live chase. */
static void report_chase(struct px_explain *ex, const struct flat_policy_out *po, uint64_t now_ms)
{
	struct flat_cache_key key;
	struct flat_cache_peek pk;
	char text[PX_CTL_NAME_TEXT_MAX];

	if (ex->n_pool > 1)
		report_pool(ex, now_ms);

	codec_name_to_text(po->target, po->target_len, text, sizeof(text));
	memset(&key, 0, sizeof(key));
	key.name = po->target;
	key.len = po->target_len;
	key.type = ex->qtype;
	key.kind = FLAT_KEY_TARGET;
	peek_scoped(ex, &key, now_ms, &pk);
	report_target_cache(ex, text, &pk);
	report_next_answer(ex, text, &pk, po);
	chase_begin(ex, po->target, po->target_len);
}

/* --- the whole explanation ------------------------------------------------ */

/* The zone NAME is in, re-read now in the generation held (the one the
 * next query meets unless a reload came meanwhile). NULL when NAME is in
 * no zone any more (the explanation ends). */
static const struct cfg_zone *report_zone(struct px_explain *ex, bool *apex)
{
	const struct cfg *cfg = ex->gen->cfg;
	struct px_sbuf *b = ex->body;
	size_t zidx;

	if (ex->gen->zones == NULL ||
	    flat_zones_find(ex->gen->zones, ex->name, ex->name_len, &zidx, apex) != 0) {
		px_sbuf_put(b, "%s is in no [zone] of %s any more [config]\n", ex->text, cfg->path);
		px_sbuf_put(b, "answer: BIND's answer, relayed unchanged\n");
		return NULL;
	}
	const struct cfg_zone *z = &cfg->zones[zidx];
	px_sbuf_put(b, "explain %s %s\n", ex->text, type_text(ex->qtype));
	px_sbuf_put(b, "zone: %s, %s, cname = %s [config %s:%u]\n", z->name.text,
	            *apex ? "the name is its apex" : "the name is below its apex",
	            cname_mode_text(z->cname), cfg->path, z->line);
	return z;
}

static void explain_finish(struct px_explain *ex)
{
	uint64_t now_ms = uv_hrtime() / 1000000;
	struct codec_view qv, rv;
	struct flat_policy_in in;
	struct flat_policy_out po;
	bool apex;

	const struct cfg_zone *z = report_zone(ex, &apex);
	if (z == NULL)
		goto done;
	ex->zone = z;
	ex->own.aname_ttl = UINT32_MAX;
	/* What BIND holds at the owner when the zone keeps siblings. */
	(void)px_sib_explain(ex->srv, ex->name, ex->name_len, ex->body);
	if (!report_alias(ex))
		for (unsigned i = 1; i < ex->n_q; i++) {
			report_presence(ex, ex->q[i].qtype, now_ms);
			report_probe(ex, &ex->q[i]);
		}
	if (!report_backend(ex, &qv, &rv))
		goto done;
	memset(&in, 0, sizeof(in));
	in.query = ex->q[0].q;
	in.qlen = ex->q[0].qlen;
	in.qv = &qv;
	in.resp = ex->q[0].resp;
	in.rlen = ex->q[0].rlen;
	in.rv = &rv;
	px_flat_classify(&in, z, apex, &ex->own, &po);
	if (!report_decision(ex, z, &po) || !report_chain(ex, &po))
		goto done;
	report_chase(ex, &po, now_ms);
	return;
done:
	ex_end(ex, true, NULL);
}

static int ex_query_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct ex_query *q = arg;
	struct px_explain *ex = q->ex;

	if (status == 0 && (len > sizeof(q->resp) ||
	                    !codec_answers_question(msg, len, q->id, ex->name, ex->name_len,
	                                            q->qtype, CODEC_CLASS_IN)))
		return PX_UP_WAIT;
	q->status = status;
	if (status == 0) {
		memcpy(q->resp, msg, len);
		q->rlen = len;
	}
	if (status == UV_ECANCELED)
		ex_end(ex, false, "apexd is shutting down");
	if (--ex->pending == 0 && !ex->ended)
		explain_finish(ex);
	ex_unref(ex);
	return PX_UP_DONE;
}

static int ex_query_start(struct px_explain *ex, struct ex_query *q, uint16_t qtype)
{
	const struct cfg *cfg = ex->gen->cfg;

	q->ex = ex;
	q->qtype = qtype;
	q->id = px_up_random_id();
	q->qlen = codec_build_query(q->q, q->id, false, ex->name, ex->name_len, qtype);
	int rc = px_up_send(&ex->home, (const struct sockaddr *)&cfg->backend.address.sa, q->q,
	                    q->qlen, false, cfg->backend.timeout_ms, ex_query_cb, q);
	if (rc == 0) {
		ex->pending++;
		ex->refs++;
	}
	return rc;
}

/* Everything but the zone needs BIND's answers: ask them all at once. */
static void ask_backend(struct px_explain *ex)
{
	const struct cfg *cfg = ex->gen->cfg;
	char why[160];

	ex->n_q = 1 + cfg->flatten.n_aname_types;
	int rc = ex_query_start(ex, &ex->q[0], ex->qtype);
	for (unsigned i = 0; rc == 0 && i < cfg->flatten.n_aname_types; i++)
		rc = ex_query_start(ex, &ex->q[1 + i], cfg->flatten.aname_types[i]);
	if (rc == 0)
		return;
	/* The queries sent end on their own; their answers are ignored. */
	snprintf(why, sizeof(why), "cannot query the backend %s: %s", cfg->backend.address.text,
	         uv_strerror(rc));
	ex_end(ex, false, why);
}

struct px_explain *px_explain_start(const struct px_explain_req *req)
{
	struct px_server *srv = req->srv;
	struct px_explain *ex = calloc(1, sizeof(*ex));
	size_t idx;
	bool apex;

	if (ex == NULL) {
		req->done(req->arg, false, "out of memory");
		return NULL;
	}
	ex->srv = srv;
	/* The main thread publishes generations, and this runs on it. */
	ex->gen = srv->gen;
	px_gen_ref(ex->gen);
	ex->home = *req->home;
	ex->body = req->body;
	ex->done = req->done;
	ex->arg = req->arg;
	ex->refs = 2; /* the requester's, and the timer's until it is closed */
	memcpy(ex->name, req->name, req->name_len);
	ex->name_len = req->name_len;
	ex->qtype = req->qtype;
	if (req->subnet != NULL) {
		ex->has_subnet = true;
		ex->subnet = *req->subnet;
		ex->send = *req->subnet;
		const unsigned *pfx = ex->gen->cfg->resolver.ecs_prefix;
		codec_ecs_cut(&ex->send, pfx[ex->send.family == CODEC_ECS_FAMILY_IP4 ? 0 : 1]);
		if (ex->send.source == 0 || !ex->gen->cfg->resolver.ecs)
			memset(&ex->send, 0, sizeof(ex->send));
	}
	uv_timer_init(ex->home.loop, &ex->timer);
	ex->timer.data = ex;
	codec_name_to_text(ex->name, ex->name_len, ex->text, sizeof(ex->text));
	if (ex->gen->zones == NULL ||
	    flat_zones_find(ex->gen->zones, ex->name, ex->name_len, &idx, &apex) != 0) {
		px_sbuf_put(ex->body, "%s is in no [zone] of %s [config]\n", ex->text,
		            ex->gen->cfg->path);
		px_sbuf_put(ex->body, "answer: BIND's answer, relayed unchanged\n");
		ex_end(ex, true, NULL);
		return ex;
	}
	ask_backend(ex);
	return ex;
}
