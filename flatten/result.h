/* flatten/result.h - what a chase found out about one target.
 *
 * The value type that flows through flattening: flat_chase produces it,
 * flat_cache stores and returns copies of it, flat_rewrite turns it into
 * the client's answer. Plain data, no pointers, so it can be copied into
 * and out of the shared cache under a shard lock.
 * Threads: any (a value type).
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* DESIGN.md: at most 64 addresses in a flattened answer. */
#define FLAT_MAX_ADDRS 64
/* Longest EDE text kept with a failure. */
#define FLAT_WHY_MAX 96

enum flat_result_kind {
	FLAT_RES_ADDRS = 0, /**< addresses of the asked type */
	FLAT_RES_NODATA,    /**< target exists, no addresses of that type */
	FLAT_RES_NXDOMAIN,  /**< target does not exist (answered as NODATA at the owner) */
	FLAT_RES_FAIL,      /**< could not find out: timeout, SERVFAIL, loop, depth */
};

struct flat_result {
	enum flat_result_kind kind;
	uint16_t qtype; /**< CODEC_TYPE_A or CODEC_TYPE_AAAA */

	/* FLAT_RES_ADDRS: RDATA of each address, 4 or 16 bytes by qtype. */
	uint8_t n_addrs;
	uint8_t addrs[FLAT_MAX_ADDRS][16];

	/**
	 * TTL in seconds to apply, as seen when the chase finished:
	 * ADDRS: min(TTL of every CNAME followed, TTL of the address RRset);
	 * NODATA/NXDOMAIN: RFC 2308 negative TTL, min(SOA TTL, SOA MINIMUM),
	 *   and min with the CNAMEs followed; a default when no SOA came;
	 * FAIL: unused (failures are remembered for failure-ttl).
	 * Not yet clamped to [min-ttl, max-ttl]: the rewrite does that.
	 */
	uint32_t ttl;

	/* FLAT_RES_FAIL: why, as an Extended DNS Error (RFC 8914). */
	uint16_t ede;
	char why[FLAT_WHY_MAX];

	uint8_t hops; /**< CNAMEs followed, for explain and statistics */
};
