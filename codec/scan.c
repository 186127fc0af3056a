/* codec/scan.c - one pass over a DNS message: validate and index. */
#include "codec/scan.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "codec/name.h"
#include "codec/rd.h"

/* TYPE, CLASS, TTL, RDLENGTH after an RR owner name (RFC 1035 4.1.3). */
#define SCAN_RR_FIXED_LEN 10
/* OPTION-CODE and OPTION-LENGTH before each EDNS option (RFC 6891 6.1.2). */
#define SCAN_OPT_HDR_LEN 4
/* The DO bit in the low 16 bits of the OPT TTL (RFC 3225). */
#define SCAN_OPT_DO 0x8000

/* Every EDNS option must fit inside the OPT RDATA exactly: the proxy walks
 * this area later (cookies, EDE) without rechecking. */
static int scan_opt_options(const uint8_t *msg, size_t off, size_t rdlen)
{
	struct codec_rd rd;

	codec_rd_init(&rd, msg, off + rdlen, off);
	while (rd.err == 0 && codec_rd_left(&rd) > 0) {
		codec_rd_u16(&rd); /* option code: any value is legal */
		codec_rd_skip(&rd, codec_rd_u16(&rd));
	}
	return rd.err;
}

/* Reads the OPT RR whose owner starts at owner_off; the fixed part and the
 * RDATA bounds were already checked by the caller. */
static int scan_opt(const uint8_t *msg, size_t owner_off, size_t fixed_off, size_t rdata_off,
                    uint16_t rdlen, struct codec_view *v)
{
	/* RFC 6891 6.1.1: the owner MUST be the root. We want the literal
	 * zero octet, not a pointer to one, so the fixed part sits at
	 * opt_off + 1 for in-place edits of the payload size. */
	if (v->has_opt || fixed_off != owner_off + 1)
		return -EBADMSG;
	int rc = scan_opt_options(msg, rdata_off, rdlen);

	if (rc < 0)
		return rc;
	v->has_opt = true;
	v->opt_off = (uint16_t)owner_off;
	v->opt_rdata_off = (uint16_t)rdata_off;
	v->opt_rdlen = rdlen;
	v->udp_size = codec_get_u16(msg + fixed_off + 2);
	v->ext_rcode = msg[fixed_off + 4];
	v->edns_version = msg[fixed_off + 5];
	v->do_bit = (codec_get_u16(msg + fixed_off + 6) & SCAN_OPT_DO) != 0;
	return 0;
}

/* Is the owner at off exactly a pointer to the first question's name?
 * Most answers' owners are (0xc00c): that name was walked and checked
 * already, holds no pointer (one may only point before it, into the
 * header), and the pointer lies after it, so walking it again would find
 * the same valid name; the rest go through codec_name_skip(). */
static bool is_qname_ptr(const struct codec_rd *rd, size_t off, const struct codec_view *v)
{
	return v->qdcount > 0 && off + 2 <= rd->len &&
	       rd->base[off] == (0xc0 | v->qname_off >> 8) &&
	       rd->base[off + 1] == (uint8_t)v->qname_off;
}

/* Walks count RRs of one section starting at rd->pos. */
static int scan_section(struct codec_rd *rd, unsigned count, bool additional, struct codec_view *v)
{
	for (unsigned i = 0; i < count; i++) {
		size_t owner = rd->pos;
		size_t fixed;

		if (is_qname_ptr(rd, owner, v))
			fixed = owner + 2;
		else if (codec_name_skip(rd->base, rd->len, owner, &fixed) < 0)
			return -EBADMSG;
		rd->pos = fixed;
		uint16_t type = codec_rd_u16(rd);

		codec_rd_skip(rd, 6); /* class, TTL */
		uint16_t rdlen = codec_rd_u16(rd);
		size_t rdata = rd->pos;

		codec_rd_skip(rd, rdlen);
		if (rd->err < 0)
			return rd->err;

		if (type == CODEC_TYPE_OPT) {
			if (!additional)
				return -EBADMSG;
			if (scan_opt(rd->base, owner, fixed, rdata, rdlen, v) < 0)
				return -EBADMSG;
		} else if (type == CODEC_TYPE_TSIG) {
			/* RFC 8945 5.1: TSIG is the very last record. */
			if (!additional || i + 1 != count)
				return -EBADMSG;
			v->has_tsig = true;
		}
	}
	return 0;
}

int codec_scan(const uint8_t *msg, size_t len, struct codec_view *v)
{
	struct codec_rd rd;

	memset(v, 0, sizeof(*v));
	if (len < CODEC_HDR_LEN)
		return -EBADMSG;
	v->id = codec_hdr_id(msg);
	v->flags = codec_hdr_flags(msg);
	/* Offsets in the view are 16 bits; no transport carries more. */
	if (len > CODEC_MAX_MSG)
		return -EBADMSG;
	v->opcode = (uint8_t)codec_hdr_opcode(msg);
	v->rcode = (uint8_t)codec_hdr_rcode(msg);
	v->qdcount = codec_hdr_qdcount(msg);
	v->ancount = codec_hdr_ancount(msg);
	v->nscount = codec_hdr_nscount(msg);
	v->arcount = codec_hdr_arcount(msg);

	codec_rd_init(&rd, msg, len, CODEC_HDR_LEN);
	for (unsigned i = 0; i < v->qdcount; i++) {
		size_t name = rd.pos;
		size_t end;

		if (codec_name_skip(msg, len, name, &end) < 0)
			return -EBADMSG;
		rd.pos = end;
		uint16_t qtype = codec_rd_u16(&rd);
		uint16_t qclass = codec_rd_u16(&rd);

		if (rd.err < 0)
			return -EBADMSG;
		if (i == 0) {
			v->qname_off = (uint16_t)name;
			v->qname_len = (uint16_t)(end - name);
			v->qtype = qtype;
			v->qclass = qclass;
		}
	}
	v->question_end = (uint16_t)rd.pos;

	v->an_off = (uint16_t)rd.pos;
	if (scan_section(&rd, v->ancount, false, v) < 0)
		return -EBADMSG;
	v->ns_off = (uint16_t)rd.pos;
	if (scan_section(&rd, v->nscount, false, v) < 0)
		return -EBADMSG;
	v->ar_off = (uint16_t)rd.pos;
	if (scan_section(&rd, v->arcount, true, v) < 0)
		return -EBADMSG;
	/* Trailing bytes are either garbage or a smuggled second message. */
	if (rd.pos != len)
		return -EBADMSG;
	v->end = (uint16_t)rd.pos;
	return 0;
}

bool codec_question_equal(const uint8_t *a, size_t alen, const struct codec_view *va,
                          const uint8_t *b, size_t blen, const struct codec_view *vb)
{
	uint8_t na[CODEC_MAX_NAME];
	uint8_t nb[CODEC_MAX_NAME];

	if (va->qdcount == 0 || vb->qdcount == 0)
		return false;
	if (va->qtype != vb->qtype || va->qclass != vb->qclass)
		return false;
	int la = codec_name_unpack(a, alen, va->qname_off, na);
	int lb = codec_name_unpack(b, blen, vb->qname_off, nb);

	/* Case matters here: a server echoes the question octet for octet, and
	 * a mismatch in case is how 0x20 randomisation spots a forgery. */
	return la > 0 && la == lb && memcmp(na, nb, (size_t)la) == 0;
}

bool codec_answers_question(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *name,
                            size_t name_len, uint16_t qtype, uint16_t qclass)
{
	size_t fixed = CODEC_HDR_LEN + name_len; /* QTYPE, QCLASS */

	assert(codec_name_valid(name, name_len));
	if (len < fixed + 4 || codec_hdr_id(msg) != id || !codec_hdr_qr(msg) ||
	    codec_hdr_qdcount(msg) != 1)
		return false;
	/* name ends in its root label, so octets equal up to there mean the
	 * names are equal; length octets (<= 63) are not letters. */
	for (size_t i = 0; i < name_len; i++) {
		if (codec_ascii_lower(msg[CODEC_HDR_LEN + i]) != codec_ascii_lower(name[i]))
			return false;
	}
	return codec_get_u16(msg + fixed) == qtype && codec_get_u16(msg + fixed + 2) == qclass;
}

bool codec_edns_option(const uint8_t *msg, const struct codec_view *v, uint16_t code,
                       size_t *data_off, uint16_t *data_len)
{
	size_t pos = v->opt_rdata_off, end = pos + v->opt_rdlen;

	if (!v->has_opt)
		return false;
	while (pos + 4 <= end) {
		uint16_t olen = codec_get_u16(msg + pos + 2);
		if (codec_get_u16(msg + pos) == code) {
			*data_off = pos + 4;
			*data_len = olen;
			return true;
		}
		pos += 4 + (size_t)olen;
	}
	return false;
}

bool codec_cookie_pair(const uint8_t *msg, const struct codec_view *v, size_t *data_off,
                       uint16_t *data_len)
{
	return codec_edns_option(msg, v, CODEC_EDNS_OPT_COOKIE, data_off, data_len) &&
	       *data_len >= CODEC_COOKIE_PAIR_MIN && *data_len <= CODEC_COOKIE_PAIR_MAX;
}
