/* codec/wire.h - DNS wire constants and big-endian accessors.
 *
 * Owns nothing; every function is a pure inline over caller memory.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_HDR_LEN 12         /* RFC 1035 4.1.1 */
#define CODEC_MAX_MSG 65535      /* two-octet length prefix on TCP, RFC 1035 4.2.2 */
#define CODEC_MAX_NAME 255       /* RFC 1035 2.3.4, wire form with the root label */
#define CODEC_MAX_LABEL 63       /* RFC 1035 2.3.4 */
#define CODEC_MAX_UDP_NOEDNS 512 /* RFC 1035 4.2.1 */
#define CODEC_EDNS_UDP_SIZE 1232 /* DNS flag day 2020: no fragmentation on common paths */
/* A name of 255 octets has at most 127 labels, so a legal name never
 * needs more pointer hops than that; anything beyond is a loop. */
#define CODEC_MAX_PTR_HOPS 127

/* Header flag bits in the 16-bit flags word (RFC 1035 4.1.1, RFC 4035). */
#define CODEC_FLAG_QR 0x8000
#define CODEC_FLAG_AA 0x0400
#define CODEC_FLAG_TC 0x0200
#define CODEC_FLAG_RD 0x0100
#define CODEC_FLAG_RA 0x0080
#define CODEC_FLAG_AD 0x0020
#define CODEC_FLAG_CD 0x0010
#define CODEC_OPCODE_SHIFT 11
#define CODEC_OPCODE_MASK 0x7800
#define CODEC_RCODE_MASK 0x000f

enum codec_opcode {
	CODEC_OPCODE_QUERY = 0,
	CODEC_OPCODE_IQUERY = 1,
	CODEC_OPCODE_STATUS = 2,
	CODEC_OPCODE_NOTIFY = 4,
	CODEC_OPCODE_UPDATE = 5,
};

enum codec_rcode {
	CODEC_RCODE_NOERROR = 0,
	CODEC_RCODE_FORMERR = 1,
	CODEC_RCODE_SERVFAIL = 2,
	CODEC_RCODE_NXDOMAIN = 3,
	CODEC_RCODE_NOTIMP = 4,
	CODEC_RCODE_REFUSED = 5,
	CODEC_RCODE_YXDOMAIN = 6, /* RFC 2136: prerequisite failed */
	CODEC_RCODE_YXRRSET = 7,
	CODEC_RCODE_NXRRSET = 8,
	CODEC_RCODE_NOTAUTH = 9, /* RFC 2136 / RFC 8945: not authoritative, or TSIG failed */
	CODEC_RCODE_NOTZONE = 10,
};

enum codec_type {
	CODEC_TYPE_A = 1,
	CODEC_TYPE_NS = 2,
	CODEC_TYPE_CNAME = 5,
	CODEC_TYPE_SOA = 6,
	CODEC_TYPE_PTR = 12,
	CODEC_TYPE_MX = 15,
	CODEC_TYPE_TXT = 16,
	CODEC_TYPE_AAAA = 28,
	CODEC_TYPE_OPT = 41,
	CODEC_TYPE_RRSIG = 46,
	CODEC_TYPE_TSIG = 250,
	CODEC_TYPE_IXFR = 251,
	CODEC_TYPE_AXFR = 252,
	CODEC_TYPE_ANY = 255,
};

#define CODEC_CLASS_IN 1

/* EDNS option codes. */
#define CODEC_EDNS_OPT_ECS 8            /* RFC 7871 client subnet */
#define CODEC_EDNS_OPT_COOKIE 10        /* RFC 7873 */
#define CODEC_EDNS_OPT_TCP_KEEPALIVE 11 /* RFC 7828 */
#define CODEC_EDNS_OPT_EDE 15           /* RFC 8914 */

/* Extended DNS Error info codes used by apexd (RFC 8914 section 4). */
enum codec_ede {
	CODEC_EDE_OTHER = 0,
	CODEC_EDE_STALE_ANSWER = 3,
	CODEC_EDE_PROHIBITED = 18,
	CODEC_EDE_NOT_AUTHORITATIVE = 20,
	CODEC_EDE_NOT_SUPPORTED = 21,
	CODEC_EDE_NO_REACHABLE_AUTHORITY = 22,
	CODEC_EDE_NETWORK_ERROR = 23,
	CODEC_EDE_INVALID_DATA = 24,
};

static inline uint16_t codec_get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t codec_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void codec_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void codec_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Header accessors; the caller guarantees at least CODEC_HDR_LEN bytes. */
static inline uint16_t codec_hdr_id(const uint8_t *m)
{
	return codec_get_u16(m);
}

static inline uint16_t codec_hdr_flags(const uint8_t *m)
{
	return codec_get_u16(m + 2);
}

static inline bool codec_hdr_qr(const uint8_t *m)
{
	return (m[2] & 0x80) != 0;
}

static inline bool codec_hdr_tc(const uint8_t *m)
{
	return (m[2] & 0x02) != 0;
}

static inline unsigned codec_hdr_opcode(const uint8_t *m)
{
	return (m[2] >> 3) & 0x0f;
}

static inline unsigned codec_hdr_rcode(const uint8_t *m)
{
	return m[3] & 0x0f;
}

static inline uint16_t codec_hdr_qdcount(const uint8_t *m)
{
	return codec_get_u16(m + 4);
}

static inline uint16_t codec_hdr_ancount(const uint8_t *m)
{
	return codec_get_u16(m + 6);
}

static inline uint16_t codec_hdr_nscount(const uint8_t *m)
{
	return codec_get_u16(m + 8);
}

static inline uint16_t codec_hdr_arcount(const uint8_t *m)
{
	return codec_get_u16(m + 10);
}
