/* codec/ttl.h - the TTL rules every reader of answers shares.
 *
 * RFC 2181 8 (a TTL with the top bit set is read as 0) and RFC 2308 5 (a
 * negative answer lives for min(SOA TTL, SOA MINIMUM)), written once for
 * the chase, the flatten policy, the answer cache and DoH's Cache-Control.
 * Threads: any (pure functions).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "codec/rr.h"
#include "codec/scan.h"

/* RFC 2181 8: TTLs are 31-bit; anything larger has the top bit set. */
#define CODEC_TTL_MAX 0x7fffffffu

/** A TTL as read from the wire: with the top bit set it counts as 0
 * (RFC 2181 8), since that is how many resolvers read it anyway. */
static inline uint32_t codec_ttl_sane(uint32_t ttl)
{
	return ttl > CODEC_TTL_MAX ? 0 : ttl;
}

/** RFC 2308 5: the negative TTL an SOA gives, min(its TTL, its MINIMUM),
 * each read by codec_ttl_sane(). For an SOA already copied out of its
 * message (struct flat_soa); codec_neg_ttl() finds it in one. */
static inline uint32_t codec_soa_neg_ttl(uint32_t soa_ttl, uint32_t minimum)
{
	soa_ttl = codec_ttl_sane(soa_ttl);
	minimum = codec_ttl_sane(minimum);
	return soa_ttl < minimum ? soa_ttl : minimum;
}

/**
 * The RFC 2308 5 negative TTL of a NODATA or NXDOMAIN answer (a message
 * codec_scan() accepted): codec_soa_neg_ttl() of the first SOA of class IN
 * in the authority section whose RDATA is well formed (MNAME and RNAME,
 * maybe compressed, ending inside it, then exactly SERIAL..MINIMUM, 20
 * octets). SOAs of another class or with a malformed RDATA are skipped.
 * @return 0 with *ttl set, -ENOENT if there is no such SOA, -EBADMSG if
 *         the section cannot be walked (not after a successful scan).
 */
int codec_neg_ttl(const uint8_t *msg, size_t len, const struct codec_view *v, uint32_t *ttl);

/**
 * How long an answer as a whole stays true: the smallest TTL of its RRs in
 * the sections from the answer section up to and including last
 * (CODEC_SEC_ANSWER: RFC 8484 5.1's freshness for DoH; CODEC_SEC_ADDITIONAL:
 * every TTL a cached copy shows), each read by codec_ttl_sane(). OPT and
 * TSIG RRs carry no TTL and are skipped. When the answer section is empty
 * (NODATA, NXDOMAIN, a referral) and codec_neg_ttl() finds an SOA, its
 * negative TTL caps the result too (RFC 2308 5).
 * @return 0 with *ttl set, -ENOENT if no RR and no SOA gives a TTL,
 *         -EBADMSG if a section cannot be walked (not after a scan).
 */
int codec_min_ttl(const uint8_t *msg, size_t len, const struct codec_view *v,
                  enum codec_section last, uint32_t *ttl);
