/* flatten/cache.h - the target cache shared by all workers.
 *
 * Remembers what a chase found out about (target name, qtype), and, with
 * the same machinery, small per-name facts such as "does this owner have
 * an ANAME record, and what is its target" (DESIGN.md: the presence
 * cache). Each entry keeps the last good value with its TTL, an optional
 * failure mark, and an optional claim (the chase in flight for the key,
 * with the queries waiting for it), so one structure gives TTL expiry,
 * prefetch, serve-stale (RFC 8767), remembered failures and coalescing.
 *
 * Owns: entries (lowercase name, the value with only its used addresses
 * or RDATA octets, the failure text) and the waiter lists of claims, all bounded by
 * max_bytes (LRU eviction per shard). Targets and presence facts live in
 * two stores with their own shards and shares of max_bytes (presence:
 * FLAT_CACHE_PRESENCE_PCT), so that a flood of names in a configured zone,
 * each probed for an ANAME, never evicts a target. Inside the presence
 * store, negative entries ("no ANAME here") have an LRU list of their own
 * that is evicted first and alone pays for new negative entries: they
 * never evict a positive one.
 * Threads: any. The cache is split into shards by key hash, one mutex
 * each; every call locks at most one shard at a time (stats and flushes
 * visit them in turn). Lookups copy the value out, so no pointer into the
 * cache survives a call. Times are never read inside: every call that
 * needs one takes now_ms from a monotonic clock of the caller's choice,
 * the same clock for every call.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/ecs.h"
#include "codec/wire.h"
#include "flatten/pool.h"
#include "flatten/result.h"

/* Shards when the configuration says 0: enough that 16-64 workers rarely
 * meet on one lock, few enough that each shard's share of a 1 MiB cache
 * still holds hundreds of entries. */
#define FLAT_CACHE_SHARDS 16
/* Upper bound on shards (a power of two up to this). */
#define FLAT_CACHE_MAX_SHARDS 1024
/* A claim older than this may be taken over by a new owner. Well above
 * the default answer deadline (1.5 s) that bounds a chase, so only an
 * owner that died loses its claim; with a longer configured deadline,
 * pass a pending_ms above it. */
#define FLAT_CACHE_PENDING_MS 5000
/* A fresh entry past this share of its TTL asks for a refresh once
 * (FLAT_CACHE_HIT_PREFETCH), so popular targets never expire in use. */
#define FLAT_CACHE_PREFETCH_PCT 90
/* Share of max_bytes (percent) for the presence store; the targets get
 * the rest. A presence entry costs about 130 bytes plus its ANAME target,
 * so the default 64 MiB keeps over 100 000 owners; negative entries use
 * whatever the positive ones leave. */
#define FLAT_CACHE_PRESENCE_PCT 25
/* TTLs are capped at 7 days, as RFC 8767 section 4 suggests for caches;
 * a TTL with the top bit set counts as 0 (RFC 2181 section 8). */
#define FLAT_CACHE_MAX_TTL_S 604800u
/* Most queries one claim may hold waiting: a flood for one name must not
 * grow a waiter list without bound. Beyond it, claim says -ENOBUFS. */
#define FLAT_CACHE_MAX_WAITERS 65536u
/* Bytes in a key for an EDNS Client Subnet scope (RFC 7871): ecs[0] is
 * one of FLAT_CACHE_ECS_*, ecs[1] the scope prefix length, ecs[2..18)
 * the address with every bit past the scope zeroed (4 octets used for
 * IPv4). Use flat_cache_key_scope() to fill it. */
#define FLAT_CACHE_ECS_LEN 18
/* ecs[0]: scope 0, an answer for every client (all 18 octets zero: also
 * every key when ecs is off, and every presence key). */
#define FLAT_CACHE_ECS_ANY 0
#define FLAT_CACHE_ECS_IP4 1 /* an IPv4 scope /1../32 */
#define FLAT_CACHE_ECS_IP6 2 /* an IPv6 scope /1../128 */
/* Chased without a subnet while ecs is on (a client's opt-out with source
 * prefix 0, the siblings, explain without SUBNET): its own entry, so an
 * answer nobody tailored never stands in for a subnet's. ecs[1..] zero. */
#define FLAT_CACHE_ECS_NONE 0xff
/* Most scoped entries (ecs[0] IP4 or IP6) one target keeps: past it, the
 * target's least recently used scope goes (counted in scope_evictions),
 * so one name with clients everywhere cannot fill the cache alone. */
#define FLAT_CACHE_MAX_SCOPES 1024

/** What a key names: a chase result or a presence fact. */
enum flat_key_kind {
	FLAT_KEY_TARGET = 0,   /**< value.result: a chase of (name, qtype) */
	FLAT_KEY_PRESENCE = 1, /**< value.presence: does name own an ANAME of type */
};

/**
 * A cache key. Plain data; the name is borrowed for the call only.
 * Names compare ASCII case-insensitively (RFC 4343); the cache stores
 * them lowercased. Zero-initialise keys so that ecs is all zero.
 */
struct flat_cache_key {
	const uint8_t *name; /**< uncompressed wire form, any case */
	size_t len;          /**< wire length with the root label, 1..255 */
	/** FLAT_KEY_TARGET: the qtype chased (CODEC_TYPE_A: 4-byte
	 *  addresses, any other: 16-byte); FLAT_KEY_PRESENCE: the ANAME
	 *  type code probed (65401 by default). */
	uint16_t type;
	enum flat_key_kind kind;
	/** The ECS scope (layout above; flat_cache_key_scope()). All zero
	 *  without ECS and for presence keys; compared exactly, so each
	 *  scope is its own entry. A malformed scope (unknown kind, prefix
	 *  past the family, bits set past the prefix) is -EINVAL. */
	uint8_t ecs[FLAT_CACHE_ECS_LEN];
};

/** Whether an owner holds ANAME records (FLAT_KEY_PRESENCE values). */
struct flat_presence {
	bool present;         /**< false: a negative answer (RFC 2308) */
	uint8_t n_targets;    /**< present: 1..FLAT_POOL_MAX (several: a pool); else 0 */
	uint16_t targets_len; /**< present: octets in targets; else 0 */
	uint32_t ttl;         /**< seconds (see flat_cache_put) */
	/** present: the ANAME targets, a names blob (flatten/pool.h) in pool
	 *  order; only targets_len octets are stored, copied or read (last,
	 *  so that a copy may keep a shorter one: flatten/copy.c). */
	uint8_t targets[FLAT_POOL_NAMES_MAX];
};

/** A value: the member named by the key's kind is the valid one. */
union flat_cache_value {
	struct flat_result result;     /**< FLAT_KEY_TARGET */
	struct flat_presence presence; /**< FLAT_KEY_PRESENCE */
};

/**
 * A query waiting for a chase in flight. Opaque to the cache: it only
 * stores it and hands it back. A waiter may be handed back late (after
 * the query it stood for was answered from its own deadline) or twice
 * (a query that claimed twice), so the proxy checks token on wake-up.
 */
struct flat_cache_waiter {
	void *worker;
	uint32_t token;
};

/**
 * Called with the waiters of a claim that ended (flat_cache_put or
 * flat_cache_abandon), once per ended claim with n >= 1, on the thread
 * that ended it, after the shard lock is released: it may call into the
 * cache. w is valid for the call only. A woken waiter calls
 * flat_cache_get once and answers from what it returns: HIT or FAIL as
 * usual; STALE or MISS mean the chase was abandoned or failed with
 * nothing remembered (failure-ttl 0), so serve the stale value with
 * EDE 3 or fail, rather than claim again and wait in a loop.
 */
typedef void flat_cache_wake_fn(void *arg, const struct flat_cache_waiter *w, size_t n);

/** Creation parameters; copied by flat_cache_new. */
struct flat_cache_conf {
	/** Memory bound (config cache-size): FLAT_CACHE_PRESENCE_PCT of it
	 *  for presence, the rest for targets, each split evenly over its
	 *  shards. Counts every allocation the cache makes (entries with their
	 *  names and addresses, claims with their waiter lists, the hash
	 *  tables), as malloc_usable_size() reports plus the allocator's
	 *  chunk header. Any non-zero value is accepted. */
	size_t max_bytes;
	unsigned shards;        /**< a power of two; 0 = FLAT_CACHE_SHARDS */
	uint32_t serve_stale_s; /**< config serve-stale; 0 disables serving stale */
	uint32_t failure_ttl_s; /**< config failure-ttl; 0: failures not remembered */
	uint32_t pending_ms;    /**< claim takeover age; 0 = FLAT_CACHE_PENDING_MS */
	/** How long a refresh may take ([flatten] deadline): a fresh entry
	 *  with less than max(its TTL's last 100 - FLAT_CACHE_PREFETCH_PCT
	 *  percent, min(refresh_ms, half its TTL)) left asks for a refresh
	 *  (HIT_PREFETCH), so the new value is in before the old expires
	 *  even behind a slow resolver. 0: the percentage alone. */
	uint32_t refresh_ms;
	flat_cache_wake_fn *wake; /**< may be NULL: waiters are then dropped */
	void *wake_arg;
};

/** flat_cache_get results (besides negative errno). */
enum flat_cache_status {
	/** Nothing usable: claim the key and chase. */
	FLAT_CACHE_MISS = 0,
	/** Fresh: hit->value holds the value, its ttl field (and
	 *  hit->ttl_left) the remaining TTL, ttl - whole seconds of age,
	 *  at least 1. */
	FLAT_CACHE_HIT,
	/** As HIT, and this caller now owns the refresh: the entry is past
	 *  FLAT_CACHE_PREFETCH_PCT of its TTL. Given once per stored value,
	 *  to the first caller past the threshold. The caller answers from
	 *  the value, starts a chase, and must end it exactly like an
	 *  OWNER claim, with flat_cache_put or flat_cache_abandon (queries
	 *  that find the entry expired meanwhile wait for this chase). An
	 *  abandoned prefetch is not offered again for the same value: the
	 *  entry is then refreshed when it expires, through claim. */
	FLAT_CACHE_HIT_PREFETCH,
	/** Expired but within serve-stale: hit->value holds the last good
	 *  value with TTL 0. Not an answer yet (RFC 8767 serves stale only
	 *  when a refresh fails): claim the key and chase; if that fails,
	 *  the next get says FAIL with has_stale and this value. */
	FLAT_CACHE_STALE,
	/** A remembered failure (within failure-ttl): do not chase again.
	 *  hit->fail_ede and hit->fail_why say why. If hit->has_stale,
	 *  hit->value holds the last good value (TTL 0), to be served with
	 *  EDE 3 (Stale Answer); else hit->value.result is the failure
	 *  itself (kind FLAT_RES_FAIL, ede, why) for a SERVFAIL. */
	FLAT_CACHE_FAIL,
};

/** flat_cache_claim results (besides negative errno). */
enum flat_claim_status {
	/** The caller owns the chase for the key: chase, then end the claim
	 *  with flat_cache_put (any outcome, failures included) or
	 *  flat_cache_abandon. A claim not ended within pending_ms is taken
	 *  over by the next claimant, so an owner that dies blocks its key
	 *  for at most that long. */
	FLAT_CLAIM_OWNER = 0,
	/** Another chase is in flight; the waiter was registered and will
	 *  be handed to the wake callback when that chase ends. The caller
	 *  must still answer by its own deadline. */
	FLAT_CLAIM_PENDING,
	/** The key became usable since the caller's get (a fresh value or
	 *  a remembered failure): call flat_cache_get again. */
	FLAT_CLAIM_READY,
};

/** What flat_cache_get copies out. */
struct flat_cache_hit {
	union flat_cache_value value; /**< see enum flat_cache_status */
	uint32_t ttl_left;            /**< HIT*: remaining seconds; STALE, FAIL: 0 */
	/** HIT*: when the value stops being fresh (the now_ms clock):
	 *  ttl_left is (fresh_until_ms - now_ms + 999) / 1000. */
	uint64_t fresh_until_ms;
	/** HIT*: until when a copy of this value may answer in place of
	 *  this call (flatten/copy.h): fresh_until_ms, or, while the entry
	 *  has not handed out its refresh (HIT_PREFETCH) yet, the instant it
	 *  will, so that a copy never hides that instant from the cache. */
	uint64_t copy_until_ms;
	/** HIT*: the entry has handed out its refresh (HIT_PREFETCH): a
	 *  newer value may replace this one any moment now. */
	bool refreshing;
	bool has_stale;              /**< FAIL: value holds the last good value */
	uint16_t fail_ede;           /**< FAIL: Extended DNS Error code (RFC 8914) */
	char fail_why[FLAT_WHY_MAX]; /**< FAIL: EDE text, NUL-terminated */
};

/** Counters, summed over the shards (each read under its lock). */
struct flat_cache_stats {
	size_t bytes;             /**< everything counted against max_bytes */
	size_t entry_bytes;       /**< of which entries and claims (0 when empty) */
	size_t entries;           /**< entries, placeholders of claims included */
	size_t claims;            /**< claims in flight */
	uint64_t evictions;       /**< entries dropped by the memory bound */
	size_t scoped;            /**< entries with an ECS scope (ecs[0] IP4/IP6) */
	uint64_t scope_evictions; /**< scoped entries dropped by FLAT_CACHE_MAX_SCOPES */
	/** Of the above, the presence store's share. */
	size_t presence_bytes;
	size_t presence_entries;
	uint64_t presence_evictions;
};

struct flat_cache;

/**
 * Creates a cache.
 * @return 0, -EINVAL (max_bytes 0, shards not a power of two or above
 *         FLAT_CACHE_MAX_SHARDS) or -ENOMEM.
 */
int flat_cache_new(struct flat_cache **out, const struct flat_cache_conf *conf);

/** Frees the cache and everything in it; NULL is fine. Waiters of claims
 *  still in flight are dropped without a wake-up. No call may run
 *  concurrently. */
void flat_cache_free(struct flat_cache *c);

/**
 * Looks a key up. On MISS nothing is copied. hit may be NULL (then the
 * status alone is reported; HIT_PREFETCH still makes the caller the
 * refresh owner). Moves the entry to the front of its shard's LRU list.
 * @return an enum flat_cache_status, or -EINVAL for a malformed key.
 */
int flat_cache_get(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                   struct flat_cache_hit *hit);

/**
 * Asks to chase a key, so that concurrent misses cause one chase. Call it
 * after get said MISS or STALE. The owner is not registered as a waiter.
 * @param waiter  registered on PENDING; may be NULL (then PENDING only
 *                says a chase is in flight)
 * @return an enum flat_claim_status, -EINVAL (malformed key), -ENOMEM, or
 *         -ENOBUFS (FLAT_CACHE_MAX_WAITERS already wait): on an error
 *         the caller answers without waiting (chases alone or fails).
 */
int flat_cache_claim(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                     const struct flat_cache_waiter *waiter);

/**
 * Stores what a chase (or a probe) found, ends the key's claim if any,
 * and hands its waiters to the wake callback after unlocking. Anyone may
 * put, claim or not; a late put by an owner whose claim was taken over
 * ends the new claim too (its waiters then find the value, or re-claim).
 *
 * TARGET values, by value->result.kind:
 *  - ADDRS, NODATA, NXDOMAIN: the good value replaces the entry, fresh
 *    for result.ttl seconds from now_ms, then stale for serve_stale_s.
 *    Only the n_addrs addresses used are stored, or for SVCB/HTTPS keys
 *    (flat_qtype_is_rdata) the rdata_len octets of rdata (at most
 *    FLAT_RDATA_MAX); result.qtype is ignored (the key's type decides);
 *    ede and why are not kept.
 *  - FAIL: marks a failure (ede, why, hops) for failure_ttl_s, and keeps
 *    the last good value, if any, while it is fresh or within
 *    serve-stale: a fresh value is still served as HIT; a stale one comes
 *    back with FAIL and has_stale. With failure_ttl_s 0 nothing new is
 *    remembered, but the last good value stays (get says STALE).
 *    Failures themselves are never served stale.
 * PRESENCE values are always good values (present or not, with ttl).
 * TTLs are used as given (so not yet clamped to [min-ttl, max-ttl]: that
 * clamp is the rewrite's, for the answer; a caller that wants the cache
 * to keep answers for at least min-ttl clamps before put), except that
 * they are capped at FLAT_CACHE_MAX_TTL_S and a TTL >= 2^31 counts as 0.
 * A TTL of 0 gives an entry that is stale at once. An entry larger than
 * a shard's share of max_bytes is not kept, nor a negative presence entry
 * when positive ones fill its shard.
 * @return 0, -EINVAL (malformed key or value: nothing stored, claim kept)
 *         or -ENOMEM (nothing stored; the claim is still ended and its
 *         waiters woken, so they do not wait for a put that never comes).
 */
int flat_cache_put(struct flat_cache *c, const struct flat_cache_key *key,
                   const union flat_cache_value *value, uint64_t now_ms);

/**
 * Ends the key's claim without a value (the owner gave up, e.g. on
 * shutdown or a chase it could not start) and hands its waiters to the
 * wake callback after unlocking. They will find what get says (typically
 * MISS or STALE) and may claim again.
 * @return 0, -ENOENT (no claim on the key) or -EINVAL (malformed key).
 */
int flat_cache_abandon(struct flat_cache *c, const struct flat_cache_key *key);

/**
 * Drops every value (for reload or the control socket). Claims in flight
 * survive as empty placeholders, so their waiters are still woken by the
 * owner's put (whose value is then stored as usual).
 */
void flat_cache_flush_all(struct flat_cache *c);

/**
 * Drops every value whose name is zone or below it, any kind (for a
 * NOTIFY: a zone edit; presence entries are per owner name, so they go
 * too). Names compare case-insensitively on label boundaries
 * ("notexample.com" is not below "example.com"). Claims survive as in
 * flat_cache_flush_all. Walks the whole cache, one shard lock at a time.
 * @return the number of values dropped, or -EINVAL (malformed zone name).
 */
ssize_t flat_cache_flush_suffix(struct flat_cache *c, const uint8_t *zone, size_t len);

/**
 * Drops every value whose name is exactly name, any type and kind (for
 * `apexctl flush NAME`: a target's addresses and an owner's presence
 * facts). Case-insensitive. Claims survive as in flat_cache_flush_all.
 * @return the number of values dropped, or -EINVAL (malformed name).
 */
ssize_t flat_cache_flush_name(struct flat_cache *c, const uint8_t *name, size_t len);

/** What flat_cache_peek reports about one key. */
struct flat_cache_peek {
	/** What flat_cache_get would say now (never HIT_PREFETCH). */
	enum flat_cache_status status;
	bool found;          /**< an entry exists (maybe only a claim's placeholder) */
	bool has_good;       /**< a last good value is held (value, ttl_s) */
	bool fresh;          /**< ... and it is within its TTL (ttl_left) */
	bool stale_ok;       /**< ... or expired but within serve-stale (stale_left) */
	uint32_t ttl_s;      /**< the TTL the good value was stored with */
	uint32_t ttl_left;   /**< fresh: remaining whole seconds, at least 1 */
	uint32_t stale_left; /**< stale_ok: seconds it may still be served stale */
	bool failing;        /**< a remembered failure (fail_*) */
	uint32_t fail_left;  /**< seconds the failure is still remembered */
	uint16_t fail_ede;   /**< its Extended DNS Error code */
	char fail_why[FLAT_WHY_MAX];
	uint32_t scopes;       /**< scoped entries the key's target holds (any ecs) */
	bool claimed;          /**< a chase is in flight for the key */
	uint32_t waiters;      /**< queries waiting for that chase */
	uint64_t claim_age_ms; /**< how long the chase has been running */
	/** has_good: the value; its TTL field is ttl_left (0 when not fresh). */
	union flat_cache_value value;
};

/**
 * Reads what the cache holds for a key without changing anything: no LRU
 * move, no prefetch ownership, no clean-up of dead entries (for
 * `apexctl explain`, from a thread that serves no queries).
 * @return 0 (out filled; out->found false when there is no entry) or
 *         -EINVAL for a malformed key.
 */
int flat_cache_peek(struct flat_cache *c, const struct flat_cache_key *key, uint64_t now_ms,
                    struct flat_cache_peek *out);

/* --- EDNS Client Subnet: entries keyed by scope ------------------------
 *
 * With ecs on, a chase result is stored under the scope its resolver's
 * answer gave (ecs[] of the key); all scopes of one (name, type) live in
 * one shard, so a scoped lookup takes one lock. A lookup for a client
 * takes the most specific entry that covers the client's subnet and has
 * a value or a failure mark: a scoped entry whose scope <= the client's
 * source prefix and whose address agrees on the scope's bits, else the
 * scope-0 entry (FLAT_CACHE_ECS_ANY). A fresh entry goes before a more
 * specific one that is only stale or failing (the resolver's newer word
 * for the wider subnet, e.g. after a claim on a /24 came back as /16).
 * A target's scopes are listed in a directory that counts against
 * max_bytes like an entry, so a lookup probes only the prefix lengths
 * the target holds. Everything else (HIT, prefetch,
 * serve-stale, failures, claims and waiters, LRU and the memory bound)
 * holds per entry, that is per scope.
 */

/**
 * Sets key->ecs to a scope: family CODEC_ECS_FAMILY_IP4/_IP6 with prefix
 * > 0 (the address masked to it; prefix clamped to the family's width),
 * FLAT_CACHE_ECS_ANY for prefix 0 or family 0, FLAT_CACHE_ECS_NONE for
 * family FLAT_CACHE_ECS_NONE.
 */
void flat_cache_key_scope(struct flat_cache_key *key, unsigned family, unsigned prefix,
                          const uint8_t *addr);

/**
 * flat_cache_get() for a client: client NULL is exactly flat_cache_get()
 * with key as given (FLAT_CACHE_ECS_NONE keys go that way). Otherwise key->ecs is ignored on input
 * and set on return: to the entry found (any status but MISS), else to the client's own source
 * subnet (client->source bits of its address), the key to claim. Continue with claim, put and
 * abandon on that key. The scope the answer applies to is key->ecs[1].
 * @return as flat_cache_get(); -EINVAL also for a client of another
 *         family than 1 and 2.
 */
int flat_cache_get_scoped(struct flat_cache *c, struct flat_cache_key *key,
                          const struct codec_ecs *client, uint64_t now_ms,
                          struct flat_cache_hit *hit);

/**
 * flat_cache_put() for a scoped chase: stores value under store (the
 * scope its answer gave), ends the claim on claimed (the key the chase
 * was claimed or prefetched on) and the claim on store, if any, handing
 * the waiters of both to the wake callback; when the two keys differ,
 * an entry left at claimed without value, failure or claim goes. A FAIL
 * has no scope: store it under claimed (store == claimed), which keeps
 * that entry's last good value for serve-stale.
 * @return as flat_cache_put().
 */
int flat_cache_put_scoped(struct flat_cache *c, const struct flat_cache_key *claimed,
                          const struct flat_cache_key *store, const union flat_cache_value *value,
                          uint64_t now_ms);

/**
 * flat_cache_peek() for a client (explain SUBNET): reads the entry
 * flat_cache_get_scoped() would take, without changing anything, and sets
 * key->ecs to it (to the client's source subnet when none covers it).
 * client NULL: flat_cache_peek() of key as given.
 */
int flat_cache_peek_scoped(struct flat_cache *c, struct flat_cache_key *key,
                           const struct codec_ecs *client, uint64_t now_ms,
                           struct flat_cache_peek *out);

/**
 * The cache's generation: a number that changes after every flush
 * (flat_cache_flush_all, _suffix, _name) has dropped its values, and
 * that no other cache of the process ever had. A copy of a value read
 * at generation g (read before the get that returned it) may stand for
 * the cache only while flat_cache_gen() still says g. One atomic load.
 */
uint64_t flat_cache_gen(const struct flat_cache *c);

/** Fills st with the current counters. */
void flat_cache_stats(struct flat_cache *c, struct flat_cache_stats *st);
