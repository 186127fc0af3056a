/* codec/proxyv2.c - the PROXY protocol v2 header parser (proxyv2.h). */
#include <errno.h>
#include <string.h>

#include "codec/proxyv2.h"

/* Byte 13: version in the high nibble, command in the low one. */
#define PP2_VERSION 2
/* Byte 14: family in the high nibble, transport in the low one. */
#define PP2_AF_UNSPEC 0
#define PP2_AF_INET 1
#define PP2_AF_INET6 2
#define PP2_AF_UNIX 3
#define PP2_TR_UNSPEC 0
#define PP2_TR_STREAM 1
#define PP2_TR_DGRAM 2
/* Address blocks: two addresses and, for IP, two ports. */
#define PP2_ADDR4_LEN (2 * 4 + 2 * 2)
#define PP2_ADDR6_LEN (2 * 16 + 2 * 2)
#define PP2_ADDRUNIX_LEN (2 * 108)
/* A TLV: type, 2-byte length, value. */
#define PP2_TLV_HEAD 3

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The TLVs fill p[0..len) exactly, none running past the end. */
static bool tlvs_ok(const uint8_t *p, size_t len)
{
	size_t pos = 0;

	while (len - pos >= PP2_TLV_HEAD) {
		size_t vlen = get16(p + pos + 1);
		if (len - pos - PP2_TLV_HEAD < vlen)
			return false;
		pos += PP2_TLV_HEAD + vlen;
	}
	return pos == len;
}

static void set_v4(union codec_pp2_addr *a, const uint8_t *addr, const uint8_t *port)
{
	memset(a, 0, sizeof(*a));
	a->in.sin_family = AF_INET;
	memcpy(&a->in.sin_addr, addr, 4);
	memcpy(&a->in.sin_port, port, 2); /* both in network order */
}

static void set_v6(union codec_pp2_addr *a, const uint8_t *addr, const uint8_t *port)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	/* ::ffff:a.b.c.d is an IPv4 client seen through an IPv6 socket:
	 * given as IPv4, rate limiting and the logs see one client, not two. */
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		set_v4(a, addr + 12, port);
		return;
	}
	memset(a, 0, sizeof(*a));
	a->in6.sin6_family = AF_INET6;
	memcpy(&a->in6.sin6_addr, addr, 16);
	memcpy(&a->in6.sin6_port, port, 2);
}

/* A PROXY command's family and transport (byte 14) and address block
 * p[0..len): 0 with out's addresses set (or has_addr false where the
 * header names no IP client), or a negative errno. */
static int read_proxy(uint8_t fam, const uint8_t *p, size_t len, struct codec_pp2 *out)
{
	unsigned af = fam >> 4, tr = fam & 0x0f;
	size_t need;

	if (af > PP2_AF_UNIX || tr > PP2_TR_DGRAM)
		return -EAFNOSUPPORT;
	out->has_addr = false;
	/* UNSPEC in either nibble: "the receiver should ignore address
	 * information", and a UNIX path is no client address; the real
	 * peer stands for the client, as for LOCAL. */
	if (af == PP2_AF_UNSPEC || tr == PP2_TR_UNSPEC)
		return 0;
	need = af == PP2_AF_INET    ? PP2_ADDR4_LEN
	       : af == PP2_AF_INET6 ? PP2_ADDR6_LEN
	                            : PP2_ADDRUNIX_LEN;
	if (len < need)
		return -EINVAL;
	if (!tlvs_ok(p + need, len - need))
		return -EILSEQ;
	if (af == PP2_AF_UNIX)
		return 0;
	if (af == PP2_AF_INET) {
		set_v4(&out->src, p, p + 8);
		set_v4(&out->dst, p + 4, p + 10);
	} else {
		set_v6(&out->src, p, p + 32);
		set_v6(&out->dst, p + 16, p + 34);
	}
	out->has_addr = true;
	return 0;
}

int codec_pp2_parse(const uint8_t *p, size_t len, struct codec_pp2 *out)
{
	size_t sig = len < CODEC_PP2_SIG_LEN ? len : CODEC_PP2_SIG_LEN;

	if (memcmp(p, CODEC_PP2_SIG, sig) != 0)
		return -EBADMSG;
	/* The version can be judged from 13 bytes, and the length from 16:
	 * both before the rest of the header arrives. */
	if (len > CODEC_PP2_SIG_LEN && p[12] >> 4 != PP2_VERSION)
		return -EPROTONOSUPPORT;
	if (len > CODEC_PP2_SIG_LEN && (p[12] & 0x0f) > CODEC_PP2_PROXY)
		return -EOPNOTSUPP;
	if (len < CODEC_PP2_FIXED_LEN)
		return 0;
	size_t total = CODEC_PP2_FIXED_LEN + get16(p + 14);
	if (total > CODEC_PP2_MAX_LEN)
		return -EMSGSIZE;
	if (len < total)
		return 0;

	out->len = total;
	out->cmd = (enum codec_pp2_cmd)(p[12] & 0x0f);
	out->has_addr = false;
	/* LOCAL: "discard the protocol block including the family". */
	if (out->cmd == CODEC_PP2_LOCAL)
		return (int)total;
	int rc = read_proxy(p[13], p + CODEC_PP2_FIXED_LEN, total - CODEC_PP2_FIXED_LEN, out);
	return rc < 0 ? rc : (int)total;
}

const char *codec_pp2_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "incomplete PROXY v2 header";
	case -EBADMSG:
		return "no PROXY v2 signature";
	case -EPROTONOSUPPORT:
		return "PROXY header version is not 2";
	case -EOPNOTSUPP:
		return "PROXY v2 command is neither LOCAL nor PROXY";
	case -EAFNOSUPPORT:
		return "PROXY v2 family or transport is unassigned";
	case -EINVAL:
		return "PROXY v2 address block too short for its family";
	case -EILSEQ:
		return "PROXY v2 TLVs overrun the header or leave bytes over";
	case -EMSGSIZE:
		return "PROXY v2 header longer than apexd accepts";
	}
	return rc > 0 ? "valid PROXY v2 header" : "invalid PROXY v2 header";
}
