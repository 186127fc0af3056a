/* proxy/flat/flat_int.h - what the files of proxy/flat/ share.
 *
 * The path of one flattened query runs through several files:
 *
 *   decide.c   eligibility, [alias] and presence lookups, then BIND's
 *              answer classified (classify.c) into RELAY, LOCAL or CHASE
 *   probe.c    ANAME presence probes sent in parallel with the query
 *   direct.c   answers from the caches alone, without BIND
 *   wait.c     lookups in the shared target cache: claims and wake-ups
 *   chase.c    the chase runner around flatten/chase's state machine
 *   answer.c   the flattened answer (or its fallback) written at the end
 *   ecs.c      the client subnet chases carry ([resolver] ecs)
 *
 * Threads: the owning worker's loop, except px_flat_cache_wake (any
 * thread that ends a claim).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec/ecs.h"
#include "codec/scan.h"
#include "config/config.h"
#include "flatten/cache.h"
#include "flatten/policy.h"
#include "flatten/pool.h"
#include "flatten/result.h"
#include "proxy/daemon/gen.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/flat.h"

/* Tokens name a txn across threads: slot index in the low bits, the
 * slot's generation above, so a wake-up for a finished query is ignored. */
#define PX_TOKEN_IDX_BITS 13
_Static_assert((1u << PX_TOKEN_IDX_BITS) >= PX_TXN_SLOTS, "token index bits");
#define PX_TOKEN_IDX_MASK ((1u << PX_TOKEN_IDX_BITS) - 1)

/* A query's client subnet ([resolver] ecs), from px_flat_ecs_of(). */
struct px_flat_ecs {
	bool on;                 /* [resolver] ecs = yes */
	bool echo;               /* the client sent ECS: the answer echoes it */
	struct codec_ecs client; /* the client's option as sent (echo) */
	/* What chases send: the client's subnet cut to ecs-prefix. Family
	 * 0 (with on): nothing, the client opted out or has no address of
	 * a family with a prefix; lookups then use the FLAT_CACHE_ECS_NONE
	 * entry. */
	struct codec_ecs send;
};

enum px_lookup_state {
	LK_IDLE = 0,
	LK_WAIT, /* a chase (ours or another query's) is under way */
	LK_DONE,
};

struct px_lookup {
	uint16_t qtype;
	uint8_t ti; /* the target it is for: index into px_flat's pool */
	enum px_lookup_state state;
	bool stale;     /* res is the last good value, served with EDE 3 */
	bool has_stale; /* stale_res holds a last good value for fallback */
	bool reclaimed; /* claimed again after a wake-up found nothing */
	uint32_t ttl;   /* remaining TTL of res (before the clamp) */
	uint8_t scope;  /* ECS scope of the entry res came from */
	struct flat_result res;
	struct flat_result stale_res;
};

enum px_probe_state {
	PX_PROBE_IDLE = 0,
	PX_PROBE_FLIGHT, /* a try is out */
	PX_PROBE_RETRY,  /* a try could not be sent: again at fl->retry_at */
	PX_PROBE_DONE,   /* a verdict, or none for good (probe.c) */
};

/* One ANAME type's probe for the query (probe.c). */
struct px_probe {
	uint16_t type;
	uint8_t state; /* enum px_probe_state */
	uint8_t tries;
	bool timed_out;     /* the last try got no answer in time */
	bool has_stale;     /* an expired presence entry stands in for no verdict */
	bool stale_present; /* ... and it said present (target: fl->stale_target) */
};

struct px_flat {
	struct px_flat_ecs ecs; /* set by px_flat_alloc() */
	/* What the probe or [alias] said about the query name. */
	unsigned probes_pending; /* probes not PX_PROBE_DONE */
	bool have_target;
	bool target_is_alias;
	/* The targets chased: the owner's (one, or a pool), or the end of
	 * BIND's CNAME chain. In targets (at the end of the struct), each
	 * at toff[i], tlen[i] octets, in pool order (px_flat_set_targets). */
	uint8_t n_targets;
	uint16_t targets_len;
	uint16_t toff[FLAT_POOL_MAX];
	uint8_t tlen[FLAT_POOL_MAX];
	uint32_t aname_ttl;
	uint16_t aname_type;
	unsigned n_probes;
	struct px_probe probe[CFG_MAX_ANAME_TYPES];
	uint64_t deadline_at; /* the probes settle by then: BIND's deadline, then ours */
	uint64_t retry_at;    /* the txn's timer ticks then for PX_PROBE_RETRY; 0: none */
	/* A probe ended without a verdict and nothing stale stood in: BIND's
	 * NODATA may hide an ANAME (decide.c answers SERVFAIL then). */
	bool presence_unknown;
	bool unknown_timed_out;
	uint16_t unknown_type;
	bool presence_stale; /* the target came from an expired presence entry */
	uint8_t stale_n_targets;
	uint16_t stale_targets_len; /* the expired entry's targets: stale_targets */

	/* BIND's answer, kept while probes finish and for the fallbacks
	 * (px_flat_keep_resp()): NULL until kept, then resp_buf. */
	uint8_t *resp;
	size_t resp_len;
	/* The room resp is kept in, resp_cap bytes; it stays with the
	 * object through the worker's free list (pool.c). */
	uint8_t *resp_buf;
	size_t resp_cap;
	struct px_flat *next_free; /* on px_worker.flat_free */
	bool resp_waiting;         /* the answer came before the probes finished */

	/* The decision. */
	uint32_t chain_ttl; /* ANAME TTL and CNAMEs BIND followed: caps the answer */
	bool chasing;
	bool local; /* LOCAL result from BIND's own chain, waiting for the SOA */
	bool siblings;
	bool soa_fetching;
	uint16_t soa_id;
	struct flat_soa soa;
	bool have_soa;
	/* n_types lookups per target (A and AAAA for ANY and the ANAME
	 * types, else the query's type), target i's at i * n_types: in
	 * lk_one for one target, else on the heap (px_flat_lookups()). */
	unsigned n_lookups;
	unsigned n_types;
	struct px_lookup *lk;
	struct px_lookup lk_one[2];

	/* Only read up to their lengths above, so px_flat_alloc() does not
	 * clear them (2 KiB a query). */
	uint8_t targets[FLAT_POOL_NAMES_MAX];
	uint8_t stale_targets[FLAT_POOL_NAMES_MAX];
};

/* Target i of fl's pool, its length in *len. */
static inline const uint8_t *px_flat_target(const struct px_flat *fl, unsigned i, size_t *len)
{
	*len = fl->tlen[i];
	return fl->targets + fl->toff[i];
}

static inline uint32_t px_flat_token(const struct px_txn *t)
{
	return (t->gen << PX_TOKEN_IDX_BITS) | t->idx;
}

/* The txn a token names, or NULL when that query is over. */
static inline struct px_txn *px_flat_token_txn(struct px_worker *w, uint32_t token)
{
	struct px_txn *t = &w->slots.txns[token & PX_TOKEN_IDX_MASK];

	if (!t->busy || px_flat_token(t) != token || t->flat.fl == NULL)
		return NULL;
	return t;
}

static inline void px_flat_key_init(struct flat_cache_key *k, const uint8_t *name, size_t len,
                                    uint16_t type, enum flat_key_kind kind)
{
	memset(k, 0, sizeof(*k));
	k->name = name;
	k->len = len;
	k->type = type;
	k->kind = kind;
}

/* zone_idx indexes the zones of the txn's own generation: a reload
 * meanwhile does not move it. */
static inline const struct cfg_zone *px_flat_txn_zone(const struct px_txn *t)
{
	return &t->g->cfg->zones[t->flat.zone_idx];
}

/* An ANAME type is known absent at t's owner, the verdict good for ttl
 * more seconds (see px_txn_flat.absent_ttl). */
static inline void px_flat_note_absent(struct px_txn *t, uint32_t ttl)
{
	if (t->flat.n_absent == 0 || ttl < t->flat.absent_ttl)
		t->flat.absent_ttl = ttl;
	t->flat.n_absent++;
}

/* pool.c: t's flattening state, taken (with its client subnet) from the
 * worker's free list if need be; NULL when out of memory. */
struct px_flat *px_flat_alloc(struct px_worker *w, struct px_txn *t);
/* Keeps a copy of BIND's answer in fl->resp; false when out of memory. */
bool px_flat_keep_resp(struct px_flat *fl, const uint8_t *msg, size_t len);
/* Sets fl's targets from a names blob of n names (flatten/pool.h). */
void px_flat_set_targets(struct px_flat *fl, const uint8_t *blob, size_t len, unsigned n);
/* Room for n_types lookups per target in fl->lk, zeroed; false when out
 * of memory. */
bool px_flat_lookups(struct px_flat *fl, unsigned n_types);

/* answer.c */
void px_flat_reply_done(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
void px_flat_relay(struct px_worker *w, struct px_txn *t);
void px_flat_set_how(struct px_txn *t, unsigned flags);
void px_flat_finish(struct px_worker *w, struct px_txn *t);
/* px_flat_finish() once every lookup is done. */
void px_flat_maybe_finish(struct px_worker *w, struct px_txn *t);

/* decide.c: BIND's answer and the probe verdicts are in. False: relay
 * BIND's answer. */
bool px_flat_decide(struct px_worker *w, struct px_txn *t, const uint8_t *resp, size_t rlen);

/* probe.c */
/* Probes t's query name for ANAME type; stale: the expired presence
 * entry, used when no verdict comes (NULL: none). */
void px_flat_probe_send(struct px_worker *w, struct px_txn *t, uint16_t type,
                        const struct flat_presence *stale);
/* Frees the worker's kept probe states (at worker exit). */
void px_flat_probe_spares_free(struct px_worker *w);
/* Arms t's timer for the next probe retry or fl->deadline_at. */
void px_flat_probe_arm(struct px_worker *w, struct px_txn *t);
/* fl->deadline_at passed: every probe still out ends without a verdict. */
void px_flat_probes_expire(struct px_worker *w, struct px_txn *t);

/* direct.c: true when t was answered from the caches and ended.
 * targets: a names blob of n_targets names (one, or a pool). */
bool px_flat_answer_direct(struct px_worker *w, struct px_txn *t, const uint8_t *targets,
                           size_t targets_len, unsigned n_targets, uint32_t chain_ttl,
                           uint16_t aname_type, const struct px_flat_ecs *ecs);

/* health.c: px_flat_merge() when the zone has a [health] check: the
 * addresses found down are left out (px_health_down(), lock-free), unless
 * that leaves none (fail open); both counted. */
const struct flat_result *px_flat_merge_checked(struct px_worker *w, const struct px_txn *t,
                                                enum flat_pool_mode mode,
                                                const struct flat_pool_in *in, size_t n,
                                                struct flat_result *buf, struct flat_pool_out *out);

/* The pool merge of one qtype's per-target results for t's owner
 * ([flatten] pool; a pool of one passes through), with the zone's health
 * checks. The one place the answer path (answer.c, direct.c) merges.
 * Inline: every flattened answer goes through it, and with no check (one
 * load and a branch) a single target costs no call. */
static inline const struct flat_result *px_flat_merge(struct px_worker *w, const struct px_txn *t,
                                                      const struct flat_pool_in *in, size_t n,
                                                      struct flat_result *buf,
                                                      struct flat_pool_out *out)
{
	enum flat_pool_mode mode =
	        t->g->cfg->flatten.pool == CFG_POOL_FAILOVER ? FLAT_POOL_FAILOVER : FLAT_POOL_UNION;

	if (px_flat_txn_zone(t)->check.kind != CFG_CHECK_NONE)
		return px_flat_merge_checked(w, t, mode, in, n, buf, out);
	return flat_pool_merge(mode, in, n, NULL, NULL, buf, out);
}

/* notify.c: drops name's answers from every worker's answer cache. */
void px_flat_drop_answers(struct px_worker *w, const uint8_t *name, size_t len);

/* wait.c */
void px_flat_lookup_start(struct px_worker *w, struct px_txn *t, struct px_lookup *lk,
                          const uint8_t *name, size_t len);
/* flat_cache wake callback: runs on whichever thread ended the claim. */
void px_flat_cache_wake(void *arg, const struct flat_cache_waiter *ws, size_t n);

/* chase.c: starts a chase for a key this worker now owns (claim or
 * prefetch): claimed is that key's ecs[], ecs says what the chase sends
 * (NULL: nothing). Its result goes to the txn owner_token names (0: none). */
void px_flat_chase_start(struct px_worker *w, struct px_gen *g, const uint8_t *name, size_t len,
                         uint16_t qtype, const struct flat_cache_key *claimed,
                         const struct px_flat_ecs *ecs, uint32_t owner_token);

/* ecs.c */
/* t's client subnet, or nothing when [resolver] ecs is off.
 * @return 0, or < 0 when the client's ECS option is malformed (FORMERR). */
int px_flat_ecs_of(const struct px_txn *t, struct px_flat_ecs *out);
/* The target cache lookup for a client: scoped by e->send with ecs on,
 * the FLAT_CACHE_ECS_NONE entry for a client without a subnet, plain
 * with ecs off (e NULL too). key->ecs is set to the key to go on with. */
int px_flat_get(struct flat_cache *c, struct flat_cache_key *key, const struct px_flat_ecs *e,
                uint64_t now_ms, struct flat_cache_hit *hit);
/* The option to echo with scope (into buf), or NULL when the client sent none. */
const struct codec_ecs *px_flat_ecs_echo(const struct px_flat_ecs *e, uint8_t scope,
                                         struct codec_ecs *buf);
