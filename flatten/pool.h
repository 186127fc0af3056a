/* flatten/pool.h - several targets at one owner (issue 17).
 *
 * A pool is what several ANAME records at one owner (an RRset of one of
 * the aname-types) or one [alias] line with several targets name. Each
 * target is chased on its own (cache, coalescing, ECS scope, failure
 * rules); flat_pool_merge() turns the per-target results of one qtype
 * into the one result the rewrite writes. Pure logic, no I/O, no locks,
 * no allocation: it runs on the answer path of a worker.
 *
 * The targets travel as a "names blob": their uncompressed wire names
 * back to back, in pool order (listed order for [alias]; for ANAME
 * records, which form an unordered RRset, RFC 4034 6.1 canonical order,
 * so that failover means the same target on every query and every
 * server).
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flatten/result.h"

/* Targets per pool; config/ caps [alias] lists at the same number. */
#define FLAT_POOL_MAX 8
/* Octets of a pool's names blob. A few times what real CDN names take,
 * and small enough that a presence value is no larger than a result. */
#define FLAT_POOL_NAMES_MAX 1024

/* [flatten] pool. */
enum flat_pool_mode {
	FLAT_POOL_UNION = 0,    /**< every target's addresses, deduplicated */
	FLAT_POOL_FAILOVER = 1, /**< the first target in pool order with addresses */
};

/* Is this address (4 or 16 octets by qtype) of the owner being answered
 * down? Called on the answer path of a worker: must not block, lock or
 * allocate. NULL: all up. */
typedef bool flat_health_down_fn(void *ctx, const uint8_t *addr, uint16_t qtype);

/** One target's result for the qtype being merged. */
struct flat_pool_in {
	const struct flat_result *res; /**< FAIL: the target contributes nothing */
	uint32_t ttl;                  /**< seconds left (before the clamp) */
	bool stale; /**< res is a failed target's last good value (serve-stale) */
};

/** What the merge used, for the caller's stale flag, ECS scope and stats. */
struct flat_pool_out {
	uint32_t ttl;    /**< min over the targets used (see flat_pool_merge) */
	uint32_t used;   /**< bit i: input i went into the answer */
	bool fail_open;  /**< health left nothing: every address served anyway */
	unsigned n_down; /**< addresses left out as down */
};

/**
 * Merges the results of n (1..FLAT_POOL_MAX) targets of one qtype, in
 * pool order.
 *
 * A/AAAA, UNION: the addresses of every ADDRS input that down() does not
 *   call down, in input order, duplicates dropped, at most FLAT_MAX_ADDRS;
 *   ttl = min over the inputs that gave an address.
 * A/AAAA, FAILOVER: the first ADDRS input with an address that is up,
 *   those addresses; ttl its ttl. A stale input (its target failed) is
 *   taken only when no fresh one qualifies: failover is for failures.
 * Health leaves nothing but some input has addresses: fail open, as
 *   above without down() (UNION: all; FAILOVER: the first input with
 *   addresses), out->fail_open set.
 * SVCB/HTTPS (flat_qtype_is_rdata): the first ADDRS input with an RRset,
 *   whatever the mode, never filtered by health.
 * No input with addresses: the first input that is not FAIL (NODATA or
 *   NXDOMAIN), ttl = min over those inputs; when every input is FAIL,
 *   the first input (its EDE and reason), ttl 0.
 *
 * @param buf  room for a merged result; used only when the answer is not
 *             one input's result unchanged
 * @return the result to write: an input's res or buf (never NULL)
 */
const struct flat_result *flat_pool_merge_n(enum flat_pool_mode mode, const struct flat_pool_in *in,
                                            size_t n, flat_health_down_fn *down, void *down_ctx,
                                            struct flat_result *buf, struct flat_pool_out *out);

static inline const struct flat_result *flat_pool_merge(enum flat_pool_mode mode,
                                                        const struct flat_pool_in *in, size_t n,
                                                        flat_health_down_fn *down, void *down_ctx,
                                                        struct flat_result *buf,
                                                        struct flat_pool_out *out)
{
	/* One target, nobody to ask about health (most answers): its result
	 * as it is, inline. */
	if (n == 1 && down == NULL) {
		bool fail = in[0].res->kind == FLAT_RES_FAIL;
		out->ttl = fail ? 0 : in[0].ttl;
		out->used = fail ? 0 : 1;
		out->fail_open = false;
		out->n_down = 0;
		return in[0].res;
	}
	return flat_pool_merge_n(mode, in, n, down, down_ctx, buf, out);
}

/**
 * Walks a names blob: the name at *off (its length in *len), *off moved
 * past it. @return false at the end or at a malformed name.
 */
bool flat_pool_next(const uint8_t *blob, size_t blob_len, size_t *off, const uint8_t **name,
                    size_t *len);

/**
 * Checks a names blob: 1..FLAT_POOL_MAX well-formed names filling
 * blob_len exactly. @return the number of names, or 0 when malformed.
 */
unsigned flat_pool_count(const uint8_t *blob, size_t blob_len);

/**
 * Compares two uncompressed wire names (lowercase) in RFC 4034 6.1
 * canonical order: label by label from the root, each label as an octet
 * string, a shorter label (a prefix) first. @return <0, 0, >0.
 */
int flat_pool_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
