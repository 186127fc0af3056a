/* flatten/policy.h - reading BIND's answer and deciding whether to flatten.
 *
 * Three pure functions over messages that codec_scan() accepted:
 * flat_policy_inspect() decides, for a client query and BIND's answer to
 * it, whether the answer is relayed as BIND wrote it, flattened from
 * BIND's own data, or flattened by chasing a target; flat_policy_soa()
 * extracts the SOA of a negative answer in a standalone form; and
 * flat_aname_parse() reads BIND's answer to the ANAME-presence probe.
 *
 * Owns nothing: no allocation, no I/O, no logging. Results are copied
 * into caller structs; nothing points into the messages afterwards.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/wire.h"
#include "flatten/pool.h"
#include "flatten/result.h"

/* Longest uncompressed SOA RDATA: MNAME and RNAME of up to 255 octets
 * each plus SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM (RFC 1035 3.3.13). */
#define FLAT_SOA_RDATA_MAX (CODEC_MAX_NAME + CODEC_MAX_NAME + 20)

/** Per-zone CNAME policy, mirroring the INI's `cname = apex|all|none`. */
enum flat_cname_mode {
	FLAT_CNAME_APEX = 0, /**< flatten a CNAME only at the zone apex (default) */
	FLAT_CNAME_ALL,      /**< flatten every CNAME answer in the zone */
	FLAT_CNAME_NONE,     /**< never flatten CNAMEs (ANAME and [alias] still apply) */
};

/** What the proxy does with BIND's answer. */
enum flat_policy_action {
	FLAT_POLICY_RELAY = 0, /**< send BIND's answer unchanged */
	FLAT_POLICY_CHASE,     /**< resolve out->target, then flat_rewrite() */
	FLAT_POLICY_LOCAL,     /**< BIND's answer holds it all: flat_rewrite(out->local) */
};

/** Everything flat_policy_inspect() looks at; all pointers borrowed for the call. */
struct flat_policy_in {
	const uint8_t *query; /**< the client's query, as received */
	size_t qlen;
	const struct codec_view *qv; /**< its codec_scan() view */
	const uint8_t *resp;         /**< BIND's answer to that query */
	size_t rlen;
	const struct codec_view *rv; /**< its codec_scan() view */

	enum flat_cname_mode mode; /**< the zone's CNAME policy */
	bool is_apex;              /**< the query name is the zone's apex */

	/**
	 * The query name owns an ANAME (presence cache said so) or is an
	 * [alias] owner: the target, uncompressed wire form (any case).
	 * NULL when neither; then only CNAME answers can flatten.
	 */
	const uint8_t *target;
	size_t target_len;
	/**
	 * The target comes from an [alias] entry in the INI rather than from
	 * an ANAME record in the zone: BIND may then have no data at all for
	 * the owner, so its NXDOMAIN is flattened too.
	 */
	bool target_is_alias;
};

/** The decision and what the proxy needs to carry it out. */
struct flat_policy_out {
	enum flat_policy_action action;
	/**
	 * RELAY only: the answer would have been flattened, but the client
	 * set DO and BIND's answer is signed (an RRSIG in any section); a
	 * flattened RRset could not carry a valid signature. Count it.
	 */
	bool signed_relay;

	/* CHASE */
	uint8_t target[CODEC_MAX_NAME]; /**< name to resolve: uncompressed, lowercase */
	size_t target_len;
	/** Min TTL of the CNAMEs BIND already followed; UINT32_MAX if none. */
	uint32_t chain_ttl;
	/** CNAMEs BIND already followed; count them against max-chain. */
	uint8_t hops;
	/**
	 * BIND's answer holds RRs of the asked type at the owner (A, AAAA,
	 * SVCB or HTTPS; for ANY: A or AAAA). On chase failure without a
	 * stale answer, relay
	 * BIND's answer (the operator's fallback) instead of SERVFAIL.
	 */
	bool siblings;
	/**
	 * BIND said NXDOMAIN for an [alias] owner: the SOA for a negative
	 * rewrite still comes from BIND's authority section.
	 */
	bool owner_nxdomain;

	/**
	 * LOCAL: the result to rewrite. ADDRS with ttl = min over the chain
	 * and the address RRset, or NXDOMAIN when BIND answered NXDOMAIN for
	 * the end of an in-zone chain (ttl = min(chain, SOA negative TTL)).
	 */
	struct flat_result local;
};

/**
 * Decides what to do with BIND's answer to a client query.
 *
 * RELAY (the default) unless all of these hold: both messages have one
 * question, the same name (case-insensitively), type and class IN, opcode
 * QUERY, no TSIG; BIND's answer has QR=1, AA=1, TC=0; qtype is A, AAAA,
 * SVCB or HTTPS (flat_qtype_flattens()) or ANY; and one of:
 *  - in->target is set (ANAME or [alias] owner) and BIND answered NOERROR,
 *    or NXDOMAIN with in->target_is_alias → CHASE the target, hops 0,
 *    chain_ttl UINT32_MAX (the proxy applies the ANAME's own TTL);
 *  - no target, BIND answered NOERROR or NXDOMAIN, the first answer RR is
 *    a CNAME owned by the query name, no DNAME in the answer owns a name
 *    above the query name (that CNAME would be synthesized from the
 *    client's labels, RFC 6672: relayed), and mode is ALL, or APEX with
 *    in->is_apex. The chain inside the answer is followed: it ends in
 *    RRs of qtype → LOCAL (ADDRS: addresses, or for SVCB/HTTPS the RDATA
 *    stream, each RDATA accepted by codec_svcb_parse() and the set
 *    within FLAT_RDATA_MAX, else CHASE); NXDOMAIN with an SOA in authority
 *    → LOCAL (NXDOMAIN, rewritten as NODATA: the owner exists); otherwise
 *    (out of zone, NODATA, ANY) → CHASE the last target with the chain's
 *    min TTL and hop count. A chain that loops inside the answer, or a
 *    malformed RDATA, is relayed.
 * Whenever the decision would be CHASE or LOCAL but the query has DO=1
 * and BIND's answer holds any RRSIG, the answer is RELAYed with
 * out->signed_relay set.
 *
 * The caller has matched the answer to the query (ID, question) and has
 * checked that the query name lies in a configured zone.
 *
 * @return out->action (out is always fully written).
 */
enum flat_policy_action flat_policy_inspect(const struct flat_policy_in *in,
                                            struct flat_policy_out *out);

/** What BIND said about an owner's ANAME. */
enum flat_aname_state {
	FLAT_ANAME_PRESENT = 0, /**< valid ANAMEs (a pool when several): targets and ttl set */
	FLAT_ANAME_ABSENT,      /**< none: ttl = negative TTL, 0 = do not cache */
	FLAT_ANAME_UNKNOWN,     /**< no verdict (SERVFAIL, not AA, mismatch): do not cache */
	FLAT_ANAME_INVALID,     /**< present but unusable: log, treat as absent, do not cache */
};

/** The parsed ANAME-presence answer. */
struct flat_aname {
	enum flat_aname_state state;
	uint8_t target[CODEC_MAX_NAME]; /**< PRESENT: the first target, uncompressed, lowercase */
	size_t target_len;
	/** PRESENT: every target (n_targets of them), a names blob
	 *  (flatten/pool.h) in RFC 4034 6.1 canonical order, lowercase. */
	uint8_t targets[FLAT_POOL_NAMES_MAX];
	size_t targets_len;
	unsigned n_targets;
	uint32_t ttl; /**< PRESENT: the ANAME's TTL; ABSENT: RFC 2308 negative TTL */
};

/**
 * Decides for a query for an ANAME type itself (in->qv->qtype is one of
 * the aname-types; the caller checked), where BIND's answer is the
 * record: CHASE its target (out->target, hops 0, chain_ttl UINT32_MAX,
 * siblings true: the record alone is the fallback) when the question
 * checks of flat_policy_inspect() hold and flat_aname_parse() finds one
 * valid ANAME at the query name; RELAY otherwise, a pool included (BIND's
 * answer holds the records; the targets' addresses are optional data). The rule for signed
 * zones is the one for A/AAAA: with DO=1 and any RRSIG in BIND's answer,
 * RELAY with out->signed_relay set (the rewritten answer could not carry
 * BIND's signature over the record). in->mode, is_apex and target are not
 * read.
 * @param an  receives the parse; INVALID is for the caller to count
 * @return out->action (out and an are always fully written).
 */
enum flat_policy_action flat_policy_inspect_aname(const struct flat_policy_in *in,
                                                  struct flat_policy_out *out,
                                                  struct flat_aname *an);

/** An SOA taken out of a message, standalone (no compression). */
struct flat_soa {
	uint8_t owner[CODEC_MAX_NAME]; /**< owner name, case as BIND wrote it */
	size_t owner_len;
	uint32_t ttl;                      /**< the RR's TTL */
	uint32_t minimum;                  /**< the MINIMUM field */
	uint8_t rdata[FLAT_SOA_RDATA_MAX]; /**< MNAME RNAME SERIAL..MINIMUM, uncompressed */
	size_t rdlen;
};

/**
 * Finds the first SOA in the authority section of msg (a codec_scan()ed
 * message; BIND puts it there in NODATA and NXDOMAIN answers, RFC 2308)
 * and copies it into *soa with both RDATA names decompressed.
 * Its RFC 2308 negative TTL is codec_soa_neg_ttl(soa->ttl, soa->minimum).
 * @return 0, -ENOENT if there is no SOA in authority, -EBADMSG if its
 *         RDATA is malformed (names running out of the RDATA, wrong size).
 */
int flat_policy_soa(const uint8_t *msg, size_t len, const struct codec_view *v,
                    struct flat_soa *soa);

/**
 * As flat_policy_soa(), in the given section: the answer section holds
 * the SOA when the zone's SOA itself was asked for.
 */
int flat_policy_soa_in(const uint8_t *msg, size_t len, const struct codec_view *v,
                       enum codec_section sec, struct flat_soa *soa);

/**
 * As flat_policy_soa(), but only an SOA of the owner's zone: its owner
 * name lies at or above qname and at or below zone (the configured zone's
 * apex; both uncompressed, any case). When BIND followed a CNAME into
 * another zone it serves (it does with recursion offered), the SOA in its
 * authority section is that zone's, which must not go out in a negative
 * answer at qname (RFC 2308 3): then -ENOENT, and the caller asks BIND
 * for the configured zone's SOA.
 * @return 0, -ENOENT, -EBADMSG (malformed SOA), -EINVAL (bad qname/zone).
 */
int flat_policy_owner_soa(const uint8_t *msg, size_t len, const struct codec_view *v,
                          const uint8_t *qname, size_t qname_len, const uint8_t *zone,
                          size_t zone_len, struct flat_soa *soa);

/**
 * Reads BIND's answer to the ANAME-presence probe for name/type (name:
 * uncompressed wire form, any case; type: one of the aname-types).
 *
 * PRESENT: one to FLAT_POOL_MAX RRs of that type and class IN owned by
 *   name (case-insensitively; a wildcard expansion carries the query
 *   name), each RDATA exactly one uncompressed, well-formed, non-root
 *   domain name. Several form a pool (issue 17; the draft allows one
 *   ANAME per owner, operators of several CDNs put one per CDN): the
 *   targets, deduplicated, in RFC 4034 6.1 canonical order (an RRset
 *   has no order of its own), within FLAT_POOL_NAMES_MAX octets; ttl is
 *   the smallest of the RRs' TTLs.
 * INVALID: more than FLAT_POOL_MAX such RRs or names too long together,
 *   a CNAME beside them, a compression pointer, trailing or missing
 *   octets, a bad label, or the root name as target.
 * ABSENT: NOERROR without such an RR or NXDOMAIN; ttl is the RFC 2308 5
 *   negative TTL, codec_soa_neg_ttl() of the SOA flat_policy_soa() finds,
 *   0 without one. If the name is a CNAME the TTL is that CNAME's.
 * UNKNOWN: any other RCODE, AA=0, TC=1, QR=0, or a question that is not
 *   name/type.
 *
 * @return out->state (out is always fully written).
 */
enum flat_aname_state flat_aname_parse(const uint8_t *resp, size_t len, const struct codec_view *v,
                                       const uint8_t *name, size_t name_len, uint16_t type,
                                       struct flat_aname *out);
