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
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* DESIGN.md: at most 64 addresses in a flattened answer. */
#define FLAT_MAX_ADDRS 64
/* Longest EDE text kept with a failure. */
#define FLAT_WHY_MAX 96
/* Room for an HTTPS or SVCB RRset (RFC 9460) in a result: the RDATA of
 * its RRs, each behind a 2-octet length. A CDN's record with ECH keys
 * is a few hundred octets; a larger RRset fails the chase ("too large"). */
#define FLAT_RDATA_MAX (FLAT_MAX_ADDRS * 16)

/* Is qtype one whose result holds RDATA (rdata[]) rather than addresses? */
static inline bool flat_qtype_is_rdata(uint16_t qtype)
{
	return qtype == 64 /* SVCB */ || qtype == 65 /* HTTPS */;
}

/* Can a query of qtype be flattened like A/AAAA (chased, re-owned)? */
static inline bool flat_qtype_flattens(uint16_t qtype)
{
	return qtype == 1 /* A */ || qtype == 28 /* AAAA */ || flat_qtype_is_rdata(qtype);
}

enum flat_result_kind {
	FLAT_RES_ADDRS = 0, /**< addresses of the asked type */
	FLAT_RES_NODATA,    /**< target exists, no addresses of that type */
	FLAT_RES_NXDOMAIN,  /**< target does not exist (answered as NODATA at the owner) */
	FLAT_RES_FAIL,      /**< could not find out: timeout, SERVFAIL, loop, depth */
};

struct flat_result {
	enum flat_result_kind kind;
	uint16_t qtype; /**< A, AAAA, or SVCB/HTTPS (flat_qtype_is_rdata) */

	/* FLAT_RES_ADDRS: n_addrs records of the type. A/AAAA: the RDATA of
	 * each address, 4 or 16 bytes by qtype, in addrs. SVCB/HTTPS: the
	 * RDATA of each RR as the target's server sent it (RFC 9460 names
	 * are never compressed), in rdata as a stream of (2-octet big-endian
	 * length, RDATA), rdata_len octets in all, in the server's order. */
	uint8_t n_addrs;
	union {
		uint8_t addrs[FLAT_MAX_ADDRS][16];
		uint8_t rdata[FLAT_RDATA_MAX];
	};
	uint16_t rdata_len; /**< SVCB/HTTPS: octets used in rdata; else 0 */

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

/**
 * Zeroes every field of r but the address/RDATA buffer, which is only
 * ever read up to n_addrs or rdata_len: clearing its 1 KiB cost about 180
 * instructions per answer on the query path, where most results stay
 * empty.
 */
static inline void flat_result_clear(struct flat_result *r)
{
	memset(r, 0, offsetof(struct flat_result, addrs));
	memset((uint8_t *)r + offsetof(struct flat_result, rdata_len), 0,
	       sizeof(*r) - offsetof(struct flat_result, rdata_len));
}
