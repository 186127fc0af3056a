/* flatten/sibzone.h - one zone as sibling upkeep sees it (issue 13).
 *
 * With `siblings = update`, apexd keeps ordinary A/AAAA records (the
 * ANAME draft's "siblings") and the target's HTTPS RRset (RFC 9460) at
 * every ANAME and [alias] owner of the zone in BIND, by RFC 2136 UPDATE,
 * so that BIND signs them and secondaries transfer them. This module is
 * the I/O-free part of that:
 *
 *  - the owner table: every owner of an ANAME type (its target and TTL)
 *    and every [alias] owner of the zone, with the A, AAAA and HTTPS
 *    RRsets the zone holds there (`held`) and the sets apexd wrote or
 *    confirmed there (`mine`), plus a caller-owned tracking area per
 *    family;
 *  - the transfer consumer: AXFR and IXFR answers (RFC 5936, RFC 1995:
 *    incremental, AXFR-style and "up to date" forms), fed one message at a
 *    time, applied to the table only when the transfer is complete;
 *  - the plan: what a chase result means for one owner and family;
 *  - the UPDATE writer for a batch of changes (codec/update.h).
 *
 * Names are uncompressed lowercase wire names. Wildcard owners ("*.x")
 * are owners like any other: their siblings are wildcard records, which
 * BIND signs and expands itself.
 * Owns: the table, its owners and their RRsets; a transfer owns what it
 * collected until commit or free.
 * Threads: one zone belongs to one thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/wire.h"
#include "flatten/pool.h"
#include "flatten/result.h"

/** Families: index of held[], mine[], track[]. */
enum flat_sib_fam {
	FLAT_SIB_A = 0,     /**< CODEC_TYPE_A, 4-byte addresses */
	FLAT_SIB_AAAA = 1,  /**< CODEC_TYPE_AAAA, 16-byte addresses */
	FLAT_SIB_HTTPS = 2, /**< HTTPS (65): RDATA, as flat_result's rdata[] */
	FLAT_SIB_FAMS = 3,
};

/** The RR type of a family: A, AAAA or HTTPS (65). */
uint16_t flat_sib_fam_type(enum flat_sib_fam fam);

/** Does the family hold RDATA (rd_len, the item stream) rather than addresses? */
static inline bool flat_sib_fam_is_rdata(enum flat_sib_fam fam)
{
	return fam == FLAT_SIB_HTTPS;
}

/**
 * An RRset as the table keeps it, allocated for its content.
 * Addresses (A, AAAA): n of them in addr[], sorted (memcmp of the 16
 * bytes), no duplicates; of a zone's RRset of more than 255, the lowest
 * 255. RDATA (HTTPS): rd_len octets of items (2-octet length, RDATA),
 * the layout of flat_result's rdata[], in flat_sib_rrset_rd(), in RFC
 * 4034 6.3 canonical order, no duplicates, at most FLAT_RDATA_MAX octets
 * (a chase gives no more); cut says the zone holds RRs that were left
 * out (too many, or one larger than a chase can give), so that it never
 * equals a chased set. n may be 0 then.
 */
struct flat_sib_rrset {
	uint8_t n;          /**< RRs; >= 1 unless cut */
	bool cut;           /**< RDATA: RRs of the zone left out */
	uint16_t rd_len;    /**< RDATA: octets of the item stream; 0 for addresses */
	uint32_t ttl;       /**< the RRset's TTL */
	uint8_t addr[][16]; /**< addresses, 4 bytes used for A; RDATA: see above */
};

/** The item stream of an RDATA family's RRset. */
static inline const uint8_t *flat_sib_rrset_rd(const struct flat_sib_rrset *r)
{
	return (const uint8_t *)r->addr;
}

/** A set of fixed room, for changes and plans: sorted, no duplicates;
 *  n == 0 means "no RRset". Addresses in addr[], or (HTTPS) rd_len
 *  octets of (2-octet length, RDATA) items in rd[]. */
struct flat_sib_set {
	uint8_t n;
	uint16_t rd_len;
	uint32_t ttl;
	union {
		uint8_t addr[FLAT_MAX_ADDRS][16];
		uint8_t rd[FLAT_RDATA_MAX];
	};
};

/** Sorts and de-duplicates set (4-byte addresses when fam is A; HTTPS:
 *  canonical order of the items; a malformed item stream empties it). */
void flat_sib_set_normalize(struct flat_sib_set *set, enum flat_sib_fam fam);

/** The caller's state of one owner and family; the table zeroes it for a
 *  new owner and keeps it as it is across transfers. Kept small: three
 *  of these are in every owner. */
struct flat_sib_track {
	uint64_t next_ms;   /**< next chase (caller's clock); 0: as soon as possible */
	uint32_t written_s; /**< last UPDATE that wrote this family (caller's clock, s); 0: never */
	uint32_t checked_s; /**< last chase that confirmed or changed it (s); 0: never */
	uint32_t backoff_s; /**< current retry interval after failures; 0: none */
	uint16_t failures;  /**< failed chases in a row (stops at UINT16_MAX) */
	bool queued;        /**< a change waits in the caller's batch */
	uint8_t pool_chases; /**< a pool's targets being chased for this family */
};

/** One owner. Pointers stay valid until flat_sibzone_remove() of this
 *  owner or flat_sibzone_free(); a transfer's commit never moves owners. */
struct flat_sib_owner {
	uint8_t name[CODEC_MAX_NAME];
	uint8_t len;
	uint8_t target[CODEC_MAX_NAME]; /**< the ANAME's or [alias] target (a pool's first) */
	uint8_t target_len;
	/** A pool (issue 17): every target, a names blob (flatten/pool.h) in
	 *  pool order, owned by the table; NULL for one target. */
	uint8_t *pool;
	uint16_t pool_len;
	uint8_t n_targets;   /**< 1, or the pool's size */
	uint16_t aname_type; /**< the ANAME type code; 0 for an [alias] owner */
	uint32_t aname_ttl;  /**< the ANAME RRset's TTL; UINT32_MAX for [alias] */
	bool is_alias;       /**< from [alias] (an ANAME there too is ignored) */
	bool several;        /**< a pool: n_targets > 1 (ANAME targets in canonical
	                          order, at most FLAT_POOL_MAX of them) */
	bool fresh;          /**< new since the previous commit, or its target changed:
	                          chase it now (cleared by the caller) */
	bool gone;           /**< no longer an owner (ANAME deleted, alias dropped):
	                          the caller removes mine[] from BIND, then
	                          flat_sibzone_remove() */
	struct flat_sib_rrset *held[FLAT_SIB_FAMS]; /**< what the zone holds; NULL: none */
	struct flat_sib_rrset
	        *mine[FLAT_SIB_FAMS]; /**< what apexd wrote or confirmed; NULL: nothing */
	struct flat_sib_track track[FLAT_SIB_FAMS];
};

struct flat_sibzone;

/** An [alias] owner of the zone. */
struct flat_sib_alias {
	const uint8_t *owner;
	size_t owner_len;
	const uint8_t *target; /**< one target, or a pool: a names blob */
	size_t target_len;
	unsigned n_targets; /**< names in target; 0 counts as 1 */
};

/** o's targets: a names blob of *n names (o->target alone, or the pool). */
static inline const uint8_t *flat_sib_owner_targets(const struct flat_sib_owner *o, size_t *len,
                                                    unsigned *n)
{
	if (o->pool != NULL && o->n_targets > 1) {
		*len = o->pool_len;
		*n = o->n_targets;
		return o->pool;
	}
	*len = o->target_len;
	*n = 1;
	return o->target;
}

/** The zone's SOA as the last commit saw it. */
struct flat_sib_soa {
	bool known;
	uint32_t serial, refresh, retry, expire, minimum, ttl;
};

/**
 * A table for zone apex, whose ANAME types are types[0..n_types).
 * @return 0, -EINVAL (malformed apex, no types, a type that cannot be an
 *         ANAME type: 0, A, AAAA, SOA) or -ENOMEM.
 */
int flat_sibzone_new(struct flat_sibzone **out, const uint8_t *apex, size_t len,
                     const uint16_t *types, unsigned n_types);
void flat_sibzone_free(struct flat_sibzone *z);

/** The apex, lowercase wire form. */
const uint8_t *flat_sibzone_apex(const struct flat_sibzone *z, size_t *len);
const struct flat_sib_soa *flat_sibzone_soa(const struct flat_sibzone *z);

/**
 * Sets the [alias] owners inside this zone (replacing the previous list;
 * owners outside the zone, malformed names and the root as target are
 * -EINVAL; of two entries for one owner the first counts). An alias owner
 * appears in the table at once (held[] unknown until the next transfer:
 * the caller transfers after this, and flat_sibxfr_begin() makes that an
 * AXFR); an owner dropped from the list becomes gone unless an ANAME owns
 * it.
 * @return 0, -EINVAL or -ENOMEM (table unchanged).
 */
int flat_sibzone_set_aliases(struct flat_sibzone *z, const struct flat_sib_alias *a, size_t n);

/** Owners in the table (gone ones included). */
size_t flat_sibzone_count(const struct flat_sibzone *z);
/** The i-th owner, 0 <= i < count; the order is stable between changes
 *  of the table (commit, set_aliases, remove). */
struct flat_sib_owner *flat_sibzone_at(struct flat_sibzone *z, size_t i);
/** The owner named name (any case), or NULL. */
struct flat_sib_owner *flat_sibzone_find(struct flat_sibzone *z, const uint8_t *name, size_t len);
/** Drops a gone owner (after its siblings were removed or given up on).
 *  The last owner takes its place in the flat_sibzone_at() order. */
void flat_sibzone_remove(struct flat_sibzone *z, struct flat_sib_owner *o);
struct flat_sib_change;
/**
 * Records the effect of a change BIND acknowledged, so that the transfer
 * that follows (BIND's NOTIFY) finds nothing to do: REPLACE sets held and
 * mine to the new set; DELETE drops both; REMOVE drops mine and takes its
 * RRs (ch->set) out of held.
 * @return 0, -ENOMEM (the next transfer corrects held then) or -EINVAL
 *         (an owner of another table, another action).
 */
int flat_sibzone_applied(struct flat_sibzone *z, const struct flat_sib_change *ch);
/** The RRs of r (NULL: none) as a set of family fam (REMOVE's set). */
void flat_sib_set_from_rrset(struct flat_sib_set *set, enum flat_sib_fam fam,
                             const struct flat_sib_rrset *r);
/** Records that the zone's held[fam] is confirmed as apexd's (mine[fam] = held[fam]).
 *  @return 0, -ENOMEM or -EINVAL (an owner of another table). */
int flat_sibzone_confirm(struct flat_sibzone *z, struct flat_sib_owner *o, enum flat_sib_fam fam);
/** Bytes the table holds (owners, RRsets, index), for the memory figure. */
size_t flat_sibzone_bytes(const struct flat_sibzone *z);

/* --- transfers --------------------------------------------------------- */

/** flat_sibxfr_feed() results (besides the negative errors below). */
enum flat_xfr_status {
	FLAT_XFR_MORE = 0,      /**< feed the next message */
	FLAT_XFR_DONE = 1,      /**< complete: commit it */
	FLAT_XFR_UPTODATE = 2,  /**< IXFR: the zone has not moved since our serial */
	FLAT_XFR_NEED_AXFR = 3, /**< IXFR added an owner whose RRsets it cannot
	                             know: do a full transfer instead */
};

/** Negative results of flat_sibxfr_feed(). */
enum flat_xfr_error {
	FLAT_XFR_E_FORMAT = -1,   /**< malformed message, or no SOA where one must be */
	FLAT_XFR_E_RCODE = -2,    /**< an error RCODE (flat_sibxfr_rcode()) */
	FLAT_XFR_E_QUESTION = -3, /**< the answer is not for this zone/type */
	FLAT_XFR_E_SERIAL = -4,   /**< IXFR sequence that does not chain from our serial */
	FLAT_XFR_E_NOMEM = -5,
	FLAT_XFR_E_DONE = -6, /**< a message after the end */
};

struct flat_sibxfr;

/**
 * Starts a transfer of z: IXFR from the table's serial when ixfr and the
 * SOA is known (else AXFR; AXFR too while an [alias] owner that no AXFR
 * has seen waits for its held[], which no diff can tell).
 * One transfer of a table at a time: a commit applies a diff to the
 * state it was taken against.
 * @return 0 or -ENOMEM.
 */
int flat_sibxfr_begin(struct flat_sibxfr **out, struct flat_sibzone *z, bool ixfr);
/** True when the transfer asks for IXFR. */
bool flat_sibxfr_is_ixfr(const struct flat_sibxfr *x);
/**
 * Writes the request: ID id, the zone, type AXFR or IXFR (IXFR with our
 * SOA in the authority section, RFC 1995 3), no EDNS. Leaves room for
 * nothing else: the caller signs it (codec_tsig_sign) into cap.
 * @return its length or -EMSGSIZE.
 */
ssize_t flat_sibxfr_query(const struct flat_sibxfr *x, uint16_t id, uint8_t *out, size_t cap);
/**
 * Feeds one answer message (TSIG already verified by the caller; a TSIG
 * RR in it is ignored). The first message's question must be the zone
 * and the type asked (later messages may omit the question, RFC 5936 2.2).
 * @return an enum flat_xfr_status or enum flat_xfr_error.
 */
int flat_sibxfr_feed(struct flat_sibxfr *x, const uint8_t *msg, size_t len);
/** The RCODE after FLAT_XFR_E_RCODE. */
unsigned flat_sibxfr_rcode(const struct flat_sibxfr *x);
/** Records seen so far (for logs). */
size_t flat_sibxfr_records(const struct flat_sibxfr *x);
/**
 * Applies a DONE transfer to the table: the SOA, new owners (fresh),
 * changed targets and TTLs, held[] as the zone now holds them, owners
 * that lost their ANAME (gone; an owner that is gone already and came
 * back is no longer gone, and fresh again). Owners that stay keep track[]
 * and mine[]. Committing an UPTODATE transfer does nothing and returns 0.
 * @return 0, -ENOMEM (table unchanged) or -EINVAL (not DONE, or already
 *         committed, or an IXFR whose starting serial the table no longer
 *         has).
 */
int flat_sibxfr_commit(struct flat_sibxfr *x);
/** Frees a transfer, committed or not. NULL is fine. */
void flat_sibxfr_free(struct flat_sibxfr *x);

/* --- plan and UPDATE --------------------------------------------------- */

/** What one owner and family need. */
enum flat_sib_action {
	FLAT_SIB_KEEP = 0, /**< the zone is right: no UPDATE */
	FLAT_SIB_REPLACE,  /**< write the chased set (delete the RRset, add each) */
	FLAT_SIB_DELETE,   /**< the target has none (NXDOMAIN/NODATA): delete the RRset */
	FLAT_SIB_HOLD,     /**< the chase failed: leave the zone as it is, retry later */
	FLAT_SIB_REMOVE,   /**< owner gone: delete exactly the RRs of mine[] */
};

/**
 * What a chase result res for owner o and family fam asks of the zone:
 * FAIL: HOLD. NODATA/NXDOMAIN: DELETE when held has RRs, else KEEP.
 * ADDRS (records of the family's type; for HTTPS a well-formed item
 * stream, else HOLD): REPLACE when the set differs from held (as a set:
 * the order of the RRs is no change), or when held's TTL is above
 * ttl_cap (the ANAME's TTL clamped by min-ttl/max-ttl, a stable bound: a
 * resolver's decrementing TTL alone is never a change); else KEEP.
 */
enum flat_sib_action flat_sib_plan(const struct flat_sib_owner *o, enum flat_sib_fam fam,
                                   const struct flat_result *res, uint32_t ttl_cap);

/** The set a result of kind ADDRS gives (sorted, de-duplicated), with
 *  TTL ttl; empty (n 0) for other kinds and malformed RDATA. */
void flat_sib_set_from_result(struct flat_sib_set *set, enum flat_sib_fam fam,
                              const struct flat_result *res, uint32_t ttl);

/** A change queued for the next UPDATE of a zone. */
struct flat_sib_change {
	struct flat_sib_owner *o;
	enum flat_sib_fam fam;
	enum flat_sib_action act; /**< REPLACE, DELETE or REMOVE */
	struct flat_sib_set set; /**< REPLACE: the new set and its TTL; REMOVE: the RRs to delete */
};

/**
 * Writes one UPDATE for ch[0..n) into out[0..cap): zone section; then
 * prerequisites: for each ANAME owner changed by REPLACE or DELETE, "the
 * ANAME type RRset exists at the owner", for each REMOVE of an owner that
 * lost its ANAME "that RRset does not exist" ([alias] owners have none);
 * then the updates (REPLACE: delete the family's RRset, add each address
 * or RDATA with set.ttl; DELETE: delete the RRset; REMOVE: delete each RR
 * of set). Address and HTTPS changes may share a message; the caller
 * keeps them apart (proxy/flat/sib_upd.c says why).
 * Takes changes from the front while they fit, leaving reserve bytes of
 * cap free for the TSIG RR. A prerequisite two changes share (both
 * families of one owner) is written once.
 * @param taken receives how many of ch were written (>= 1 on success)
 * @return the length, or -EMSGSIZE when not even ch[0] fits, -EINVAL (no
 *         changes, an owner of another table, another action, REPLACE or
 *         REMOVE with an empty set or a malformed item stream).
 */
ssize_t flat_sib_update_build(const struct flat_sibzone *z, const struct flat_sib_change *ch,
                              size_t n, uint16_t id, uint8_t *out, size_t cap, size_t reserve,
                              size_t *taken);
