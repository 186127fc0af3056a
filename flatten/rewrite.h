/* flatten/rewrite.h - writing the flattened answer a client receives.
 *
 * Builders for every answer apexd writes in place of BIND's: A/AAAA at the
 * query name (DESIGN.md "Answer rules"), NODATA with the zone's SOA, the
 * answer to a query for the ANAME type itself, the RFC 8482 minimal ANY
 * answer, and BIND's ANY answer with the flattened addresses added. Each
 * respects the client's payload size and sets TC=1 rather than send what
 * does not fit (RFC 2181 9, RFC 6891 7).
 *
 * Owns nothing: output goes into a caller buffer, nothing is allocated,
 * nothing is logged. Inputs are borrowed for the call.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/build.h"
#include "codec/ecs.h"
#include "codec/scan.h"
#include "codec/ttl.h"
#include "flatten/policy.h"
#include "flatten/result.h"

/* RFC 2181 8: a TTL with the top bit set means 0 to many resolvers
 * (codec_ttl_sane()); never write one. */
#define FLAT_TTL_MAX CODEC_TTL_MAX

/**
 * The TTL to write: ttl (already the min over the chain, lowered by the
 * cache by its age) clamped to [min_ttl, max_ttl] and to FLAT_TTL_MAX.
 * If min_ttl > max_ttl (the configuration refuses that) min_ttl wins.
 */
uint32_t flat_ttl_final(uint32_t ttl, uint32_t min_ttl, uint32_t max_ttl);

/**
 * The largest answer apexd writes for the client: 65535 over TCP (and
 * DoT/DoH); over UDP its EDNS payload size, at least 512 (RFC 6891
 * 6.2.5) and at most CODEC_EDNS_UDP_SIZE (1232, like BIND's default
 * max-udp-size: no fragments, bounded amplification), or 512 without
 * EDNS (RFC 1035 4.2.1).
 */
size_t flat_rewrite_max_size(const struct codec_view *qv, bool tcp);

/** Optional parts of a flattened answer; a zeroed struct means none. */
struct flat_rewrite_opts {
	/**
	 * SOA for NODATA/NXDOMAIN results (from flat_policy_soa() on BIND's
	 * answer, or the zone's SOA): required for them, since a negative
	 * answer without SOA cannot be cached (RFC 2308 5). Its TTL on the
	 * wire is the ttl given to flat_rewrite(), not soa->ttl.
	 */
	const struct flat_soa *soa;
	/** Extended DNS Error to add (e.g. CODEC_EDE_STALE_ANSWER); 0 also
	 * means "Other", so pass CODEC_EDE_NONE for none. Only when the query
	 * had an OPT (RFC 6891 forbids one otherwise). */
	uint16_t ede;
	const char *ede_text; /**< UTF-8, may be NULL; shortened if space is short */
	/** show-aname: add the ANAME RR (owner = query name) after the addresses. */
	bool show_aname;
	uint16_t aname_type;         /**< e.g. 65401 */
	const uint8_t *aname_target; /**< uncompressed wire name */
	size_t aname_target_len;
	uint32_t aname_ttl; /**< TTL of that ANAME RR */
	/** The client's ECS option to echo (RFC 7871 7.2.1): FAMILY, SOURCE
	 *  and ADDRESS as the client sent them, SCOPE set to the scope of the
	 *  answer. NULL: none (a client that sent none never gets one). Only
	 *  when the query had an OPT. */
	const struct codec_ecs *ecs;
};

/**
 * Builds the flattened answer to query (one question, type A or AAAA, or
 * SVCB/HTTPS with a result holding their RDATA).
 *
 * Header: the query's ID, QR=1, opcode QUERY, AA=1, RD and CD copied,
 * TC/RA/AD 0, RCODE NOERROR. Question: the client's bytes (its spelling).
 * ADDRS: one A/AAAA RR per address, owner a pointer to the question name,
 *   TTL ttl; plus the ANAME with opts->show_aname. SVCB/HTTPS: one RR of
 *   the query's type per RDATA of the result, written unchanged (so
 *   TargetName "." now names the owner, whose addresses are flattened
 *   too; AliasMode stays AliasMode), same owner and TTL.
 * NODATA, NXDOMAIN, or ADDRS with no address: empty answer, opts->soa in
 *   authority with TTL ttl (the owner exists: never NXDOMAIN).
 * FAIL: SERVFAIL from codec_build_error() with res->ede and res->why.
 * OPT (only if the query had one): codec_wr_opt(): payload 1232, version
 *   0, DO copied, the client's COOKIE echoed when it holds a server cookie
 *   too (RFC 7873), ECS from opts->ecs, EDE from opts. No other option.
 * When the whole answer exceeds min(max_size, outlen): TC=1, empty answer
 * and authority, question and OPT kept.
 *
 * @param ttl     the final TTL (flat_ttl_final()); for negative answers
 *                the RFC 2308 negative TTL, also clamped by the caller
 * @param opts    may be NULL
 * @param max_size flat_rewrite_max_size() of the client's transport
 * @return the length written, -EMSGSIZE if not even the truncated form
 *         fits, -EINVAL if the result does not match the query (type,
 *         address count > 64, negative answer without SOA, bad ANAME
 *         target), -EBADMSG if the query has not exactly one question.
 */
ssize_t flat_rewrite(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                     const struct flat_result *res, uint32_t ttl,
                     const struct flat_rewrite_opts *opts, size_t max_size, uint8_t *out,
                     size_t outlen);

/** An address result and the final TTL to write for it. */
struct flat_rrset_in {
	const struct flat_result *res; /**< NULL: none; only ADDRS adds records */
	uint32_t ttl;                  /**< final TTL (flat_ttl_final()) */
};

/**
 * Builds the answer to a query for the ANAME type itself at an ANAME (or
 * [alias]) owner: the ANAME RR (owner = query name, type = the query's
 * type, TTL aname_ttl, RDATA = target uncompressed) in the answer, and the
 * target's A and AAAA (results of kind ADDRS; a and aaaa may be NULL) in
 * the additional section owned by the target name. If it does not fit,
 * the additional addresses are dropped first (they are optional data,
 * RFC 2181 9, so without TC); if the ANAME alone does not fit, TC=1.
 * Flags, question and OPT as flat_rewrite(); opts supplies EDE and ECS
 * only.
 * @return the length, -EMSGSIZE, -EINVAL (bad target, wrong result
 *         type, a query type that is no data type: 0, OPT, 128..255) or
 *         -EBADMSG (query without exactly one question).
 */
ssize_t flat_rewrite_aname_query(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                                 const uint8_t *target, size_t target_len, uint32_t aname_ttl,
                                 const struct flat_rrset_in *a, const struct flat_rrset_in *aaaa,
                                 const struct flat_rewrite_opts *opts, size_t max_size,
                                 uint8_t *out, size_t outlen);

/**
 * Builds the RFC 8482 4.2 minimal answer to ANY over UDP at a flattened
 * name: one HINFO RR, CPU "RFC8482" and OS "", owned by the query name,
 * with TTL ttl. AA=1, NOERROR, flags/question/OPT as flat_rewrite().
 * @return the length, -EMSGSIZE or -EBADMSG.
 */
ssize_t flat_rewrite_any_minimal(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                                 uint32_t ttl, size_t max_size, uint8_t *out, size_t outlen);

/**
 * Builds the ANY answer over TCP at a flattened name: BIND's ANY answer
 * resp (already carrying the client's ID) rebuilt without compression,
 * with the flattened addresses added to its answer section.
 *
 * Header and question as BIND wrote them (TC cleared, counts fixed);
 * then every answer RR, decompressed (owner and the names inside the
 * RDATA of RFC 1035 types and of RP, AFSDB, RT, PX, SRV, NAPTR, KX and
 * DNAME, RFC 3597 4), except, at the query name: any CNAME; any RRSIG
 * covering A, AAAA or CNAME (a signature must never sit next to records
 * it does not sign); and the A (AAAA) RRs when a says what A (AAAA) is
 * (any kind but FAIL: the flattened view replaces the sibling records);
 * then the ADDRS of a and aaaa owned by the query name; then the
 * authority RRs and the additional RRs with the same filter, the OPT
 * last, copied as BIND wrote it.
 * If it does not fit: TC=1 with the question and OPT only.
 * @return the length, -EMSGSIZE, -EINVAL (a TSIG in resp; a result type
 *         mismatch) or -EBADMSG (not one question, malformed RDATA).
 */
ssize_t flat_rewrite_append(const uint8_t *resp, size_t rlen, const struct codec_view *rv,
                            const struct flat_rrset_in *a, const struct flat_rrset_in *aaaa,
                            size_t max_size, uint8_t *out, size_t outlen);
