/* flatten/chase.h - I/O-free chase of a flattening target to its addresses.
 *
 * A step machine in the shape of knot's query layers and nghttp2's session:
 * it never touches a socket or a clock. flat_chase_begin() and
 * flat_chase_input() say what the proxy must do next: SEND c->out to the
 * server named in the struct, WAIT for another datagram on the same query,
 * or read c->result because the chase is DONE. The proxy owns the sockets,
 * the timers and the random source.
 *
 * Owns: nothing outside struct flat_chase, which the caller allocates
 * (a worker-owned slot, about 11 KiB) and which holds everything in fixed
 * arrays: the query to send, the visited names, the chain, the result.
 * Threads: one chase belongs to one thread; no shared state.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/ecs.h"
#include "codec/wire.h"
#include "flatten/result.h"

struct flat_zones;

/* Hard cap on max_chain: DESIGN.md's max-chain default is 8; 32 leaves room
 * for odd CDN setups while keeping struct flat_chase of bounded size. */
#define FLAT_CHASE_MAX_CHAIN 32
/* Names a caller may mark visited before begin (the owner, an alias). */
#define FLAT_CHASE_MAX_PREVISIT 4
/* Room for one query: header, a 255-octet name, type, class and an empty
 * OPT RR is 282 octets; 512 is the classic UDP size (RFC 1035 4.2.1). */
#define FLAT_CHASE_OUT_MAX 512
/* Negative TTL when a NODATA/NXDOMAIN answer carries no usable SOA
 * (RFC 2308 5 says not to cache then; a minute keeps a dead target from
 * turning every client query into resolver traffic). */
#define FLAT_CHASE_NEG_TTL_NOSOA 60

/* The shortest timer one try is given, however little of the deadline is
 * left: less would give up on a resolver that answers in a normal round
 * trip across a network (unbound's floor for an unknown server is 376 ms;
 * 100 ms still lets a resolver answer from its cache). */
#define FLAT_CHASE_TRY_MIN_MS 100

/** Tuning of a chase; copied by flat_chase_init(). */
struct flat_chase_cfg {
	/** CNAMEs followed at most, including hops_already; clamped to
	 *  1..FLAT_CHASE_MAX_CHAIN. */
	unsigned max_chain;
	/** Resolvers configured, tried in index order; 0 is allowed (then
	 *  only names in our own zones can be chased). */
	unsigned n_resolvers;
	/** Our zones: a current name inside one is asked of the backend.
	 *  Borrowed; must outlive the chase. NULL means no own zones. */
	const struct flat_zones *own;
	/** EDNS Client Subnet to send to the resolvers (never to the
	 *  backend), RFC 7871; NULL or family 0: none. Copied. */
	const struct codec_ecs *ecs;
};

/**
 * The timer of one try, so that failover fits inside the deadline: the
 * time left divided evenly among the tries that may still come for this
 * name (the resolvers from the current one to the end of the list, or 1
 * for the backend), at least FLAT_CHASE_TRY_MIN_MS, at most the key's
 * own timeout_ms. A dead first resolver then leaves the second its share
 * instead of the whole deadline going to the first.
 * @param left_ms   what remains of the deadline (0 when it has passed)
 * @param tries     tries left including this one; 0 counts as 1
 * @param timeout_ms [resolver] timeout or [backend] timeout
 */
uint64_t flat_chase_try_ms(uint64_t left_ms, unsigned tries, uint64_t timeout_ms);

/** What the proxy must do after begin/input. */
enum flat_step {
	/** Write a fresh random ID with flat_chase_set_id(), then send
	 *  c->out[0..out_len) to c->server (c->resolver) over UDP, or over
	 *  TCP when c->tcp, and feed the answer or a timeout to input. */
	FLAT_STEP_SEND,
	/** The datagram was not an answer to the query in flight (ID or
	 *  question differ, or the ECS option is not the one sent): drop it
	 *  and keep waiting for the same query until its timeout. c->out and
	 *  the server are unchanged. */
	FLAT_STEP_WAIT,
	/** Finished: c->result holds the outcome. */
	FLAT_STEP_DONE,
};

/** Why a chase failed, for statistics: the reason behind result.why. */
enum flat_chase_fail {
	FLAT_CHASE_FAIL_TIMEOUT = 0, /**< every server asked for a name timed out */
	FLAT_CHASE_FAIL_NO_RESOLVER, /**< a name outside our zones and no [resolver] */
	FLAT_CHASE_FAIL_BAD_ANSWER,  /**< malformed, truncated over TCP, unusable */
	FLAT_CHASE_FAIL_RCODE,       /**< SERVFAIL, REFUSED or another error RCODE */
	FLAT_CHASE_FAIL_LOOP,        /**< a CNAME loop */
	FLAT_CHASE_FAIL_CHAIN,       /**< a chain longer than max-chain */
	FLAT_CHASE_FAIL_INVALID,     /**< a target or qtype that cannot be chased */
	FLAT_CHASE_FAIL_COUNT,
};

/** Stable lowercase name of a reason ("timeout", "loop", ...). */
const char *flat_chase_fail_name(enum flat_chase_fail f);

enum flat_server {
	FLAT_SERVER_BACKEND,  /**< the authoritative backend (BIND) */
	FLAT_SERVER_RESOLVER, /**< a recursive resolver, index c->resolver */
};

/** One name on the chain, for statistics and `apexctl explain`. */
struct flat_chase_hop {
	uint8_t name[CODEC_MAX_NAME]; /**< lowercase uncompressed wire name */
	uint8_t len;
	/**
	 * TTL of the record at this name that the chase used: the CNAME's
	 * for every hop but the last; for the last, the RRset's of the
	 * asked type (min over its RRs) or the negative TTL of a
	 * NODATA/NXDOMAIN.
	 * UINT32_MAX while nothing is known (a failed chase's last hop).
	 * TTLs with the top bit set count as 0 (RFC 2181 8).
	 */
	uint32_t ttl;
	/** The server last asked about this name, or, for a name reached
	 *  inside an answer, the server that sent that answer. */
	enum flat_server server;
	uint8_t resolver; /**< its index when server is RESOLVER */
};

/**
 * A chase in progress. Caller-allocated; no member points outside it, so
 * it may be moved between calls. n_hop/hop[], the SEND fields and result
 * are the interface; the rest is private state.
 */
struct flat_chase {
	/* Private. */
	struct flat_chase_cfg cfg; /* cfg.ecs points to ecs below, or is NULL */
	struct codec_ecs ecs;
	uint16_t qtype;
	bool done;
	bool all_timeouts; /* every server tried for the current name timed out */
	bool skip_backend; /* the backend referred the current name away */
	uint8_t hops;      /* CNAMEs on the whole chain, hops_already included */
	uint32_t ttl;      /* running min: initial_ttl and CNAMEs followed */
	uint8_t n_pre;
	struct {
		uint8_t name[CODEC_MAX_NAME];
		uint8_t len;
	} pre[FLAT_CHASE_MAX_PREVISIT];

	/**
	 * The chain this chase walked: hop[0] is the target given to begin,
	 * hop[i] the target of the i-th CNAME followed; hop[n_hop - 1] is the
	 * current (last) name. At most max_chain + 1 entries; valid from
	 * begin until the next begin or init. These and the pre-visited
	 * names form the visited set of the loop check.
	 */
	unsigned n_hop;
	struct flat_chase_hop hop[FLAT_CHASE_MAX_CHAIN + 1];

	/* SEND: the query and where it goes. Leave out[] untouched (apart
	 * from the ID) until its answer or timeout has been fed back: the
	 * answer is checked against it. */
	uint8_t out[FLAT_CHASE_OUT_MAX];
	uint16_t out_len;
	enum flat_server server;
	unsigned resolver; /**< index into the resolver list when RESOLVER */
	bool tcp;          /**< send over TCP (after a truncated UDP answer) */

	/* DONE: the outcome; result.hops counts hops_already too. */
	struct flat_result result;
	/** DONE with FLAT_RES_FAIL: the reason, for statistics (the last
	 *  server's failure, as result.why). */
	enum flat_chase_fail fail;
	/**
	 * DONE, not FAIL, with cfg.ecs set: the ECS scope the result applies
	 * to, the largest SCOPE PREFIX-LENGTH among the resolvers' answers
	 * used on the chain, capped at the SOURCE sent (RFC 7871 7.3.1);
	 * 0 when no answer carried the option (not tailored, RFC 7871 7.2.1)
	 * or every name was the backend's. Answers whose option does not
	 * match the query's (codec_ecs_matches) are dropped as WAIT.
	 */
	uint8_t scope;
};

/**
 * Resets c and copies cfg. Must precede flat_chase_visit() and begin; a
 * finished chase may be reused by calling this again.
 */
void flat_chase_init(struct flat_chase *c, const struct flat_chase_cfg *cfg);

/**
 * Marks a name visited before the chase starts, so that a chain coming
 * back to it fails as a loop at once (the owner being flattened, an
 * ANAME already followed). Call between init and begin.
 * @param name uncompressed wire name, any case; copied
 * @return 0, -EINVAL if the name is malformed, -ENOSPC after
 *         FLAT_CHASE_MAX_PREVISIT names.
 */
int flat_chase_visit(struct flat_chase *c, const uint8_t *name, size_t len);

/**
 * Starts chasing target for qtype.
 *
 * The first server is the backend when target is inside one of cfg.own
 * (flat_zones_find() succeeds), else resolver 0. The same choice is made
 * again for every later name of the chain, so a chain may go from a
 * resolver into our own zone and back.
 *
 * @param target      uncompressed wire name, any case; copied (lowercased)
 * @param qtype       a flat_qtype_flattens() type: A, AAAA, SVCB or HTTPS.
 *                    SVCB/HTTPS are chased like addresses (CNAMEs followed,
 *                    TTL the min over the chain); their RRset ends up in
 *                    result.rdata, each RDATA checked to be self-contained
 *                    (TargetName uncompressed, params framed, RFC 9460
 *                    2.2). An RRset larger than FLAT_RDATA_MAX or than
 *                    FLAT_MAX_ADDRS records fails the chase (EDE 0, reason
 *                    BAD_ANSWER) without failover.
 * @param initial_ttl min TTL of the CNAMEs/ANAME seen before the chase
 *                    (UINT32_MAX for none); the result's TTL is capped by it
 * @param hops_already CNAMEs already followed before the chase; they count
 *                    against max_chain
 * @return SEND with the first query in c->out, or DONE at once: the
 *         target is visited already (loop), hops_already > max_chain, no
 *         server can be asked, or the arguments are invalid (FAIL, EDE 0).
 */
enum flat_step flat_chase_begin(struct flat_chase *c, const uint8_t *target, size_t len,
                                uint16_t qtype, uint32_t initial_ttl, uint8_t hops_already);

/**
 * Writes the query ID into c->out. The caller must call it after every
 * SEND, before sending, with a fresh random ID (the chase itself leaves
 * the ID 0): random IDs together with the question check are the spoofing
 * defence (RFC 5452), and the proxy owns the random source. The answer
 * must carry this ID or it is a WAIT.
 */
static inline void flat_chase_set_id(struct flat_chase *c, uint16_t id)
{
	codec_put_u16(c->out, id);
}

/**
 * Feeds the answer to the query in c->out, or a timeout.
 *
 * @param resp the answer message (without the TCP length prefix),
 *             borrowed for the call; len 0 means the server's timeout
 *             expired (or the TCP connection failed)
 * @return
 *   - WAIT: resp is no answer to this query (ID or question differ, too
 *     short to hold an ID, or, from a resolver sent an ECS option, an ECS
 *     option that does not match it, RFC 7871 7.3); nothing changed. An
 *     answer without the option is fine (scope 0); one with a malformed
 *     option is unusable.
 *   - SEND: a new query in c->out: the same question over TCP after
 *     TC=1 over UDP; the same question to the next resolver after this
 *     one failed (timeout, SERVFAIL, REFUSED, NOTIMP, FORMERR, any other
 *     error RCODE, a malformed or unusable answer, TC=1 over TCP); or the
 *     next name of the chain after an answer that ended in a CNAME whose
 *     target it did not answer.
 *   - DONE: c->result is set. FAIL carries an EDE: 22 "No Reachable
 *     Authority" when every server asked for the name timed out; 0
 *     "Other" for an error RCODE, a loop, a chain too long or an
 *     SVCB/HTTPS RRset too large; 23 "Network Error" for a malformed or
 *     unusable answer. The text names the server and the name. The backend has no failover. After
 * DONE, further input is ignored and returns DONE.
 */
enum flat_step flat_chase_input(struct flat_chase *c, const uint8_t *resp, size_t len);
