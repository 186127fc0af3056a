/* codec/build.c - error replies written into a caller buffer. */
#include "codec/build.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "codec/name.h"
#include "codec/rd.h"

/* Owner (root), TYPE, CLASS, TTL, RDLENGTH of an OPT RR (RFC 6891 6.1.2). */
#define BUILD_OPT_LEN 11
/* OPTION-CODE and OPTION-LENGTH of any EDNS option (RFC 6891 6.1.2). */
#define BUILD_OPTION_HDR_LEN 4
/* OPTION-CODE, OPTION-LENGTH and the 2-octet INFO-CODE (RFC 8914 2). */
#define BUILD_EDE_HDR_LEN 6
/* QTYPE and QCLASS after the question name. */
#define BUILD_QFIXED_LEN 4
/* The DO bit in the low 16 bits of the OPT TTL (RFC 3225). */
#define BUILD_OPT_DO 0x8000

size_t codec_utf8_cut(const char *text, size_t n)
{
	const uint8_t *s = (const uint8_t *)text;
	size_t i = n;

	/* Step back over continuation octets to the lead octet. */
	while (i > 0 && (s[i - 1] & 0xc0) == 0x80)
		i--;
	if (i == 0)
		return n;
	uint8_t lead = s[i - 1];
	size_t want = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;

	/* The last sequence is whole: keep it; else drop it entirely. */
	return n - (i - 1) >= want ? n : i - 1;
}

void codec_wr_opt(struct codec_wr *wr, const uint8_t *query, const struct codec_view *qv,
                  uint16_t ede, const char *ede_text)
{
	bool add_ede = ede != CODEC_EDE_NONE;
	size_t cookie_off = 0, cookie_opt = 0;
	uint16_t cookie_len = 0;
	size_t text_len = 0;

	if (query != NULL && codec_cookie_pair(query, qv, &cookie_off, &cookie_len))
		cookie_opt = BUILD_OPTION_HDR_LEN + (size_t)cookie_len;
	/* Only the text may be shortened; the fixed parts must all fit. */
	if (add_ede && ede_text != NULL) {
		size_t room = codec_wr_left(wr);
		size_t fixed = BUILD_OPT_LEN + BUILD_EDE_HDR_LEN + cookie_opt;

		room = room > fixed ? room - fixed : 0;
		text_len = strlen(ede_text);
		if (text_len > room)
			text_len = codec_utf8_cut(ede_text, room);
	}
	codec_wr_u8(wr, 0);
	codec_wr_u16(wr, CODEC_TYPE_OPT);
	codec_wr_u16(wr, CODEC_EDNS_UDP_SIZE);
	codec_wr_u8(wr, 0); /* extended RCODE: apexd writes none of 16 and above */
	codec_wr_u8(wr, 0); /* EDNS version 0 */
	codec_wr_u16(wr, query != NULL && qv->do_bit ? BUILD_OPT_DO : 0);
	codec_wr_u16(wr, (uint16_t)((add_ede ? BUILD_EDE_HDR_LEN + text_len : 0) + cookie_opt));
	if (cookie_opt > 0) {
		codec_wr_u16(wr, CODEC_EDNS_OPT_COOKIE);
		codec_wr_u16(wr, cookie_len);
		codec_wr_bytes(wr, query + cookie_off, cookie_len);
	}
	if (add_ede) {
		codec_wr_u16(wr, CODEC_EDNS_OPT_EDE);
		codec_wr_u16(wr, (uint16_t)(2 + text_len));
		codec_wr_u16(wr, ede);
		codec_wr_bytes(wr, ede_text, text_len);
	}
}

ssize_t codec_build_error(const uint8_t *query, size_t qlen, const struct codec_view *v,
                          uint8_t rcode, uint16_t ede, const char *ede_text, uint8_t *out,
                          size_t outlen)
{
	struct codec_wr wr;
	uint16_t qflags;
	uint16_t flags;

	/* Extended RCODEs (>= 16) need the OPT's upper bits; not built here. */
	assert(rcode <= CODEC_RCODE_MASK);
	if (qlen < CODEC_HDR_LEN)
		return -EBADMSG;
	/* A reply is never longer than a message can be. */
	if (outlen > CODEC_MAX_MSG)
		outlen = CODEC_MAX_MSG;
	codec_wr_init(&wr, out, outlen);

	qflags = codec_hdr_flags(query);
	flags = (uint16_t)(CODEC_FLAG_QR | (qflags & (CODEC_OPCODE_MASK | CODEC_FLAG_RD)) |
	                   (rcode & CODEC_RCODE_MASK));
	if (v == NULL) {
		codec_wr_u16(&wr, codec_hdr_id(query));
		codec_wr_u16(&wr, flags);
		codec_wr_u32(&wr, 0);
		codec_wr_u32(&wr, 0);
		return wr.err < 0 ? wr.err : (ssize_t)wr.pos;
	}

	uint8_t qname[CODEC_MAX_NAME];
	int qname_len = 0;
	bool has_q = v->qdcount >= 1;

	if (has_q) {
		/* Decompress rather than copy bytes: the reply is standalone. */
		qname_len = codec_name_unpack(query, qlen, v->qname_off, qname);
		if (qname_len < 0)
			return -EBADMSG;
	}
	flags |= qflags & CODEC_FLAG_CD;

	codec_wr_u16(&wr, v->id);
	codec_wr_u16(&wr, flags);
	codec_wr_u16(&wr, has_q ? 1 : 0);
	codec_wr_u16(&wr, 0);
	codec_wr_u16(&wr, 0);
	codec_wr_u16(&wr, v->has_opt ? 1 : 0);
	if (has_q) {
		codec_wr_bytes(&wr, qname, (size_t)qname_len);
		codec_wr_u16(&wr, v->qtype);
		codec_wr_u16(&wr, v->qclass);
	}
	/* RFC 6891 7: no OPT in a reply to a query without one. */
	if (v->has_opt)
		codec_wr_opt(&wr, query, v, ede, ede_text);
	return wr.err < 0 ? wr.err : (ssize_t)wr.pos;
}

size_t codec_build_query(uint8_t *out, uint16_t id, bool rd, const uint8_t *name, size_t len,
                         uint16_t qtype)
{
	struct codec_wr wr;

	assert(len >= 1 && len <= CODEC_MAX_NAME);
	codec_wr_init(&wr, out, CODEC_QUERY_MAX);
	codec_wr_u16(&wr, id);
	codec_wr_u16(&wr, rd ? CODEC_FLAG_RD : 0);
	codec_wr_u16(&wr, 1); /* QDCOUNT */
	codec_wr_u16(&wr, 0);
	codec_wr_u16(&wr, 0);
	codec_wr_u16(&wr, 1); /* ARCOUNT: the OPT */
	codec_wr_bytes(&wr, name, len);
	codec_wr_u16(&wr, qtype);
	codec_wr_u16(&wr, CODEC_CLASS_IN);
	/* DO=0 (apexd never copies signatures), no options. */
	codec_wr_opt(&wr, NULL, NULL, CODEC_EDE_NONE, NULL);
	assert(wr.err == 0);
	return wr.pos;
}
