/* proxy/flat/flat.h - flattening in transit: the proxy's side of flatten/. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/scan.h"
#include "config/config.h"
#include "flatten/chase.h"
#include "proxy/flat/upstream.h"
#include "proxy/engine/txn.h"
#include "proxy/flat/state.h"

struct px_conn;
struct px_gen;
struct px_server;
struct px_txn;
struct px_udp_listener;
struct px_udp_local;
struct px_worker;

/* Chases (distinct targets being resolved) per worker at once; each
 * holds a socket to a resolver. Past this the resolvers are not keeping
 * up, and a new target fails at once (stale, siblings or SERVFAIL) rather
 * than pile up descriptors and memory. */
#define PX_CHASE_MAX_INFLIGHT 1024

/* Builds g's zones, aliases and target cache from g->cfg; the cache of
 * prev (may be NULL) is shared when its settings did not change. */
int px_flat_gen_init(struct px_server *srv, struct px_gen *g, const struct px_gen *prev);
void px_flat_gen_deinit(struct px_gen *g);
/* Drops from g's cache what names below removed zones and aliases owned. */
void px_flat_gen_flush_removed(struct px_gen *g, const struct cfg *old);
/* After the txn is set up: decides eligibility, may start ANAME probes.
 * True when the caches answered t and ended it (do not touch t then);
 * false when it goes to the backend. */
bool px_flat_query(struct px_worker *w, struct px_txn *t);
/* BIND's answer for an eligible txn: true when flattening took the txn
 * over (it will answer), false to relay the answer as usual. */
bool px_flat_answer(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len);
/* Is flattening answering this txn (BIND has answered; a probe, a chase
 * or an SOA lookup is under way)? */
bool px_flat_active(const struct px_txn *t);
/* The txn's deadline passed while flattening: answer with the fallback. */
void px_flat_deadline(struct px_worker *w, struct px_txn *t);
/* The query log's chain= field for t: "OWNER>TARGET", "+N" when N more
 * CNAMEs were followed past TARGET, or "-". */
void px_flat_chain_text(const struct px_txn *t, char *out, size_t size);
/* Frees the txn's flattening state (from px_txn_free); probes still out
 * are counted as ended without a verdict. */
void px_flat_free(struct px_worker *w, struct px_txn *t);
/* Frees the worker's spare flattening states and probe states (at
 * worker exit). */
void px_flat_pool_free(struct px_worker *w);
/* t's timer fired for an ANAME probe to be tried again, not for its
 * deadline: true when handled (t is armed again or answered). */
bool px_flat_probe_tick(struct px_worker *w, struct px_txn *t);
/* Runs wake-ups posted to this worker (from its async handle). */
void px_flat_run_posts(struct px_worker *w);
/* A NOTIFY from the backend (from: who sent it, px_txn_client_addr's
 * sense): acknowledge it and flush the zone. True when handled; false
 * when the NOTIFY is not the backend's. A UDP answer goes to peer. */
bool px_flat_notify(struct px_worker *w, const uint8_t *msg, size_t len, const struct codec_view *v,
                    const struct sockaddr *from, const struct sockaddr *peer, enum px_origin origin,
                    struct px_udp_listener *ul, const struct px_udp_local *local,
                    struct px_conn *conn);

/* --- rules shared by the query path and apexctl explain (classify.c) --- */

struct cfg_alias;
struct cfg_zone;
struct flat_aname;
struct flat_policy_in;
struct flat_policy_out;
struct flat_zones;

/* What is known of the owner before BIND's answer is classified. */
struct px_flat_owner {
	const uint8_t *target; /* an [alias] or ANAME target; NULL: none */
	size_t target_len;
	bool is_alias;      /* target from [alias], which has no TTL */
	uint32_t aname_ttl; /* the ANAME's TTL (UINT32_MAX when none) */
};

/* Classifies BIND's answer by zone z's rules: in holds the query and the
 * answer (query, qlen, qv, resp, rlen, rv); the rest of in is set here.
 * po: RELAY, LOCAL (the chain ends in the zone) or CHASE po->target. */
void px_flat_classify(struct flat_policy_in *in, const struct cfg_zone *z, bool is_apex,
                      const struct px_flat_owner *own, struct flat_policy_out *po);
/* The [alias] entry owned by name, or NULL. */
const struct cfg_alias *px_flat_alias_of(const struct cfg *cfg,
                                         const struct flat_zones *alias_owners, const uint8_t *name,
                                         size_t len);
/* What BIND's answer to an ANAME probe (name, type) says; an->state is
 * FLAT_ANAME_UNKNOWN when the answer is unreadable. */
void px_flat_aname_verdict(const uint8_t *msg, size_t len, const uint8_t *name, size_t name_len,
                           uint16_t type, struct flat_aname *an);
/* The TTL a client sees: [flatten] min-ttl <= TTL <= max-ttl. */
uint32_t px_flat_ttl_clamp(const struct cfg *cfg, uint32_t ttl);
/* The TTL cap of the owner's part of the chain: the CNAMEs BIND followed
 * and the ANAME record ([alias] has no TTL). */
uint32_t px_flat_chain_ttl(const struct flat_policy_out *po, const struct px_flat_owner *own);
/* The final TTL of a positive answer: the target's TTL left capped by
 * the chain, then clamped. */
uint32_t px_flat_answer_ttl(const struct cfg *cfg, uint32_t target_ttl, uint32_t chain_ttl);

/* --- the chase runner (chase.c), for the query path and explain -------- */

struct px_chase_run;
/* The run ended: r->fc holds the hops and the result; cancelled when
 * it was stopped (r->stop, or the home's queries cancelled) instead. */
typedef void px_chase_done_fn(struct px_chase_run *r, bool cancelled);

/* flatten/chase's state machine driven by own queries (upstream.c): the
 * server and timeout of each step from cfg, a fresh ID per query. */
struct px_chase_run {
	struct flat_chase fc;
	const struct cfg *cfg;  /* backend, resolvers, timeouts, max-chain */
	struct px_up_home home; /* where the queries run; stats may be NULL */
	const bool *stop;       /* may be NULL; true at an answer: end, cancelled */
	unsigned n_queries;     /* queries sent or tried */
	px_chase_done_fn *done; /* called once; may free r */
	uint64_t end_ms;        /* the deadline the tries' timers share (loop clock) */
	/* The client subnet sent to the resolvers ([resolver] ecs); NULL or
	 * family 0: none. Read at start; scope of the answers in fc.scope. */
	const struct codec_ecs *ecs;
};

/* Chases name/qtype; own: the zones asked of the backend. Set cfg, home,
 * stop and done first. done may run before this returns. The tries share
 * [flatten] deadline from now. */
void px_chase_run_start(struct px_chase_run *r, const struct flat_zones *own, const uint8_t *name,
                        size_t len, uint16_t qtype);

/* px_chase_run_start() for a chase whose deadline was set by a query
 * that arrived earlier: the tries share what is left until end_ms. */
void px_chase_run_start_by(struct px_chase_run *r, const struct flat_zones *own,
                           const uint8_t *name, size_t len, uint16_t qtype, uint64_t end_ms);
