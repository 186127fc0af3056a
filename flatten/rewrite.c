/* flatten/rewrite.c - writing the flattened answer a client receives. */
#include "flatten/rewrite.h"

#include <errno.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "codec/rd.h"
#include "codec/rr.h"
#include "codec/wire.h"

/* A compression pointer to offset 12, where the question name always
 * sits uncompressed (RFC 1035 4.1.4). */
#define RW_PTR_QNAME 0xc00c
#define RW_PTR_MAX 0x3fff
#define RW_PTR_BITS 0xc000

/* RR types whose RDATA names may be compressed (RFC 3597 4) and are not in
 * codec/wire.h because nothing else needs them. */
#define RW_TYPE_MD 3
#define RW_TYPE_MF 4
#define RW_TYPE_MB 7
#define RW_TYPE_MG 8
#define RW_TYPE_MR 9
#define RW_TYPE_HINFO 13
#define RW_TYPE_MINFO 14
#define RW_TYPE_RP 17
#define RW_TYPE_AFSDB 18
#define RW_TYPE_RT 21
#define RW_TYPE_PX 26
#define RW_TYPE_SRV 33
#define RW_TYPE_NAPTR 35
#define RW_TYPE_KX 36
#define RW_TYPE_DNAME 39

/* RFC 8482 4.2: HINFO with CPU "RFC8482" and an empty OS. */
static const uint8_t rw_rfc8482_hinfo[] = {7, 'R', 'F', 'C', '8', '4', '8', '2', 0};

/* Output cursor (codec_wr, sticky -EMSGSIZE) and the section counts,
 * which are patched into the header at the end. */
struct msg {
	struct codec_wr wr;
	uint16_t an;
	uint16_t ns;
	uint16_t ar;
};

static void msg_init(struct msg *m, uint8_t *out, size_t outlen, size_t max_size)
{
	size_t cap = outlen < max_size ? outlen : max_size;

	codec_wr_init(&m->wr, out, cap < CODEC_MAX_MSG ? cap : CODEC_MAX_MSG);
	m->an = 0;
	m->ns = 0;
	m->ar = 0;
}

/* Header with one question and counts to be patched by msg_end(). */
static void msg_header(struct msg *m, uint16_t id, uint16_t flags)
{
	codec_wr_u16(&m->wr, id);
	codec_wr_u16(&m->wr, flags);
	codec_wr_u16(&m->wr, 1);
	codec_wr_u16(&m->wr, 0);
	codec_wr_u16(&m->wr, 0);
	codec_wr_u16(&m->wr, 0);
}

static ssize_t msg_end(struct msg *m)
{
	if (m->wr.err < 0)
		return m->wr.err;
	codec_put_u16(m->wr.base + 6, m->an);
	codec_put_u16(m->wr.base + 8, m->ns);
	codec_put_u16(m->wr.base + 10, m->ar);
	return (ssize_t)m->wr.pos;
}

/*
 * Our own OPT, from codec_wr_opt(): its comment says why the client's
 * cookie pair is echoed, and why the EDE text is the part that gives way.
 * o (may be NULL) supplies the EDE and the client's ECS option to echo
 * (RFC 7871 7.2.1: FAMILY, SOURCE and ADDRESS as sent, SCOPE ours).
 */
static void msg_opt(struct msg *m, const uint8_t *query, const struct codec_view *qv,
                    const struct flat_rewrite_opts *o)
{
	uint8_t ecs[CODEC_ECS_OPT_MAX];
	size_t n = o != NULL && o->ecs != NULL ? codec_ecs_write(o->ecs, ecs, sizeof(ecs)) : 0;
	size_t start = m->wr.pos;
	size_t cap = m->wr.len;

	/* The EDE text takes whatever room is left: keep the ECS option's
	 * out of its reach, since a client that sent ECS must get it back
	 * while the text is optional. */
	if (n > 0 && codec_wr_left(&m->wr) >= n)
		m->wr.len -= n;
	codec_wr_opt(&m->wr, query, qv, o != NULL ? o->ede : CODEC_EDE_NONE,
	             o != NULL ? o->ede_text : NULL);
	m->wr.len = cap;
	m->ar++;
	if (n == 0 || m->wr.err < 0)
		return;
	codec_wr_bytes(&m->wr, ecs, n);
	/* RDLENGTH follows the root owner, TYPE, CLASS and TTL. */
	if (m->wr.err == 0)
		codec_put_u16(m->wr.base + start + 9,
		              (uint16_t)(codec_get_u16(m->wr.base + start + 9) + n));
}

/* An RR owned by a compression pointer (to a name already written). */
static void put_rr_ptr(struct msg *m, uint16_t ptr, uint16_t type, uint32_t ttl, const void *rd,
                       size_t rdlen)
{
	codec_wr_u16(&m->wr, ptr);
	codec_wr_u16(&m->wr, type);
	codec_wr_u16(&m->wr, CODEC_CLASS_IN);
	codec_wr_u32(&m->wr, ttl);
	codec_wr_u16(&m->wr, (uint16_t)rdlen);
	codec_wr_bytes(&m->wr, rd, rdlen);
}

/* The client's query must have exactly one question, which then starts
 * uncompressed at offset 12 (a pointer there could only point into the
 * header), so its bytes can be copied as the client spelled them. */
static bool query_ok(const uint8_t *query, size_t qlen, const struct codec_view *qv)
{
	return query != NULL && qv != NULL && qlen >= CODEC_HDR_LEN && qv->qdcount == 1 &&
	       qv->qname_off == CODEC_HDR_LEN && qv->question_end <= qlen &&
	       qv->question_end > qv->qname_off;
}

static void put_question(struct msg *m, const uint8_t *query, const struct codec_view *qv)
{
	codec_wr_bytes(&m->wr, query + qv->qname_off, (size_t)qv->question_end - qv->qname_off);
}

/* The flags of every answer we write ourselves: authoritative, NOERROR,
 * opcode QUERY; RD and CD echo the client (RFC 1035 4.1.1, RFC 4035
 * 3.1.6); RA and AD stay 0 (we are no recursor and validate nothing). */
static uint16_t own_flags(const struct codec_view *qv, bool trunc)
{
	return (uint16_t)(CODEC_FLAG_QR | CODEC_FLAG_AA |
	                  (qv->flags & (CODEC_FLAG_RD | CODEC_FLAG_CD)) |
	                  (trunc ? CODEC_FLAG_TC : 0));
}

/* RFC 6895 3.1: 0, OPT and 128..255 are meta and query types; an RR of
 * such a type in the answer section would make the message malformed. */
static bool data_type(uint16_t type)
{
	return type != 0 && type != CODEC_TYPE_OPT && (type < 128 || type > 255);
}

static size_t addr_len(uint16_t type)
{
	return type == CODEC_TYPE_A ? 4 : 16;
}

/* Checks an optional address set: NULL or non-ADDRS is fine (adds
 * nothing); ADDRS must be of type and hold at most FLAT_MAX_ADDRS. */
static bool rrset_ok(const struct flat_rrset_in *s, uint16_t type)
{
	if (s == NULL || s->res == NULL || s->res->kind != FLAT_RES_ADDRS)
		return true;
	return s->res->qtype == type && s->res->n_addrs <= FLAT_MAX_ADDRS;
}

static bool rrset_has_addrs(const struct flat_rrset_in *s)
{
	return s != NULL && s->res != NULL && s->res->kind == FLAT_RES_ADDRS && s->res->n_addrs > 0;
}

static void put_addrs(struct msg *m, uint16_t owner_ptr, const struct flat_result *r, uint32_t ttl,
                      uint16_t *count)
{
	for (unsigned i = 0; i < r->n_addrs; i++) {
		put_rr_ptr(m, owner_ptr, r->qtype, ttl, r->addrs[i], addr_len(r->qtype));
		(*count)++;
	}
}

static void build_flat(struct msg *m, const uint8_t *query, const struct codec_view *qv,
                       const struct flat_result *res, bool negative, uint32_t ttl,
                       const struct flat_rewrite_opts *o, bool trunc)
{
	msg_header(m, qv->id, own_flags(qv, trunc));
	put_question(m, query, qv);
	if (!trunc && !negative) {
		put_addrs(m, RW_PTR_QNAME, res, ttl, &m->an);
		if (o != NULL && o->show_aname) {
			put_rr_ptr(m, RW_PTR_QNAME, o->aname_type, o->aname_ttl, o->aname_target,
			           o->aname_target_len);
			m->an++;
		}
	} else if (!trunc) {
		const struct flat_soa *soa = o->soa;

		codec_wr_bytes(&m->wr, soa->owner, soa->owner_len);
		codec_wr_u16(&m->wr, CODEC_TYPE_SOA);
		codec_wr_u16(&m->wr, CODEC_CLASS_IN);
		codec_wr_u32(&m->wr, ttl);
		codec_wr_u16(&m->wr, (uint16_t)soa->rdlen);
		codec_wr_bytes(&m->wr, soa->rdata, soa->rdlen);
		m->ns++;
	}
	if (qv->has_opt)
		msg_opt(m, query, qv, o);
}

uint32_t flat_ttl_final(uint32_t ttl, uint32_t min_ttl, uint32_t max_ttl)
{
	if (ttl > max_ttl)
		ttl = max_ttl;
	if (ttl < min_ttl)
		ttl = min_ttl;
	return ttl > FLAT_TTL_MAX ? FLAT_TTL_MAX : ttl;
}

size_t flat_rewrite_max_size(const struct codec_view *qv, bool tcp)
{
	if (tcp)
		return CODEC_MAX_MSG;
	if (!qv->has_opt || qv->udp_size < CODEC_MAX_UDP_NOEDNS)
		return CODEC_MAX_UDP_NOEDNS;
	/* Beyond 1232 bytes a datagram risks IP fragmentation, and a
	 * spoofed query advertising 4096 would turn 64 AAAA into a 45-fold
	 * amplifier; BIND 9.18's max-udp-size stops at 1232 for the same
	 * reasons, so an answer apexd writes is no bigger than BIND's. */
	if (qv->udp_size > CODEC_EDNS_UDP_SIZE)
		return CODEC_EDNS_UDP_SIZE;
	return qv->udp_size;
}

ssize_t flat_rewrite(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                     const struct flat_result *res, uint32_t ttl,
                     const struct flat_rewrite_opts *opts, size_t max_size, uint8_t *out,
                     size_t outlen)
{
	struct msg m;

	if (!query_ok(query, qlen, qv))
		return -EBADMSG;
	if (res == NULL)
		return -EINVAL;
	if (res->kind == FLAT_RES_FAIL) {
		size_t cap = outlen < max_size ? outlen : max_size;
		char why[FLAT_WHY_MAX];

		/* The result is plain data that may come from the cache:
		 * do not trust it to be NUL-terminated. */
		memcpy(why, res->why, sizeof(why));
		why[sizeof(why) - 1] = '\0';
		return codec_build_error(query, qlen, qv, CODEC_RCODE_SERVFAIL, res->ede, why, out,
		                         cap);
	}
	bool negative = res->kind != FLAT_RES_ADDRS || res->n_addrs == 0;

	if (qv->qtype != CODEC_TYPE_A && qv->qtype != CODEC_TYPE_AAAA)
		return -EINVAL;
	if (!negative && (res->qtype != qv->qtype || res->n_addrs > FLAT_MAX_ADDRS))
		return -EINVAL;
	/* Never an empty answer without SOA (DESIGN.md answer rules). */
	if (negative &&
	    (opts == NULL || opts->soa == NULL || opts->soa->owner_len == 0 ||
	     opts->soa->owner_len > CODEC_MAX_NAME || opts->soa->rdlen > FLAT_SOA_RDATA_MAX))
		return -EINVAL;
	if (!negative && opts != NULL && opts->show_aname &&
	    (!data_type(opts->aname_type) ||
	     !codec_name_valid(opts->aname_target, opts->aname_target_len)))
		return -EINVAL;

	msg_init(&m, out, outlen, max_size);
	build_flat(&m, query, qv, res, negative, ttl, opts, false);
	if (m.wr.err == 0)
		return msg_end(&m);
	/* RFC 2181 9: the answer is required data, so TC=1 and let the
	 * client retry over TCP; question and OPT stay (RFC 6891 7). */
	msg_init(&m, out, outlen, max_size);
	build_flat(&m, query, qv, res, negative, ttl, opts, true);
	return msg_end(&m);
}

/* level 0: everything; 1: without the additional addresses; 2: TC. */
static void build_aname(struct msg *m, const uint8_t *query, const struct codec_view *qv,
                        const uint8_t *target, size_t target_len, uint32_t aname_ttl,
                        const struct flat_rrset_in *a, const struct flat_rrset_in *aaaa,
                        const struct flat_rewrite_opts *o, int level)
{
	msg_header(m, qv->id, own_flags(qv, level == 2));
	put_question(m, query, qv);
	if (level < 2) {
		size_t rdata_off = m->wr.pos + 12;

		put_rr_ptr(m, RW_PTR_QNAME, qv->qtype, aname_ttl, target, target_len);
		m->an++;
		/* The additional records are owned by the target, which now
		 * sits uncompressed in the ANAME RDATA: point there. */
		if (level == 0 && rdata_off <= RW_PTR_MAX) {
			uint16_t ptr = (uint16_t)(RW_PTR_BITS | rdata_off);

			if (rrset_has_addrs(a))
				put_addrs(m, ptr, a->res, a->ttl, &m->ar);
			if (rrset_has_addrs(aaaa))
				put_addrs(m, ptr, aaaa->res, aaaa->ttl, &m->ar);
		}
	}
	if (qv->has_opt)
		msg_opt(m, query, qv, o);
}

ssize_t flat_rewrite_aname_query(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                                 const uint8_t *target, size_t target_len, uint32_t aname_ttl,
                                 const struct flat_rrset_in *a, const struct flat_rrset_in *aaaa,
                                 const struct flat_rewrite_opts *opts, size_t max_size,
                                 uint8_t *out, size_t outlen)
{
	struct msg m;

	if (!query_ok(query, qlen, qv))
		return -EBADMSG;
	if (!data_type(qv->qtype) || !codec_name_valid(target, target_len) ||
	    !rrset_ok(a, CODEC_TYPE_A) || !rrset_ok(aaaa, CODEC_TYPE_AAAA))
		return -EINVAL;
	for (int level = 0; level <= 2; level++) {
		msg_init(&m, out, outlen, max_size);
		build_aname(&m, query, qv, target, target_len, aname_ttl, a, aaaa, opts, level);
		if (m.wr.err == 0)
			break;
	}
	return msg_end(&m);
}

static void build_any(struct msg *m, const uint8_t *query, const struct codec_view *qv,
                      uint32_t ttl, bool trunc)
{
	msg_header(m, qv->id, own_flags(qv, trunc));
	put_question(m, query, qv);
	if (!trunc) {
		put_rr_ptr(m, RW_PTR_QNAME, RW_TYPE_HINFO, ttl, rw_rfc8482_hinfo,
		           sizeof(rw_rfc8482_hinfo));
		m->an++;
	}
	if (qv->has_opt)
		msg_opt(m, query, qv, NULL);
}

ssize_t flat_rewrite_any_minimal(const uint8_t *query, size_t qlen, const struct codec_view *qv,
                                 uint32_t ttl, size_t max_size, uint8_t *out, size_t outlen)
{
	struct msg m;

	if (!query_ok(query, qlen, qv))
		return -EBADMSG;
	msg_init(&m, out, outlen, max_size);
	build_any(&m, query, qv, ttl, false);
	if (m.wr.err < 0) {
		msg_init(&m, out, outlen, max_size);
		build_any(&m, query, qv, ttl, true);
	}
	return msg_end(&m);
}

/*
 * Where the names sit in the RDATA of the types RFC 3597 4 lets a server
 * compress (and DNAME, RFC 6672 2.5, which a receiver must decompress):
 * 'n' a name, '2' two fixed octets, 's' a character-string. Whatever
 * follows the pattern (SOA's five counters) is copied as it is. Types not
 * listed hold no compressible names and are copied byte for byte.
 */
static const char *rdata_layout(uint16_t type)
{
	switch (type) {
	case CODEC_TYPE_NS:
	case RW_TYPE_MD:
	case RW_TYPE_MF:
	case CODEC_TYPE_CNAME:
	case RW_TYPE_MB:
	case RW_TYPE_MG:
	case RW_TYPE_MR:
	case CODEC_TYPE_PTR:
	case RW_TYPE_DNAME:
		return "n";
	case CODEC_TYPE_SOA:
	case RW_TYPE_MINFO:
	case RW_TYPE_RP:
		return "nn";
	case CODEC_TYPE_MX:
	case RW_TYPE_AFSDB:
	case RW_TYPE_RT:
	case RW_TYPE_KX:
		return "2n";
	case RW_TYPE_PX:
		return "2nn";
	case RW_TYPE_SRV:
		return "222n";
	case RW_TYPE_NAPTR:
		return "22sssn";
	default:
		return "";
	}
}

/* Copies a name from src (maybe compressed, pointers into src) into the
 * output uncompressed; its in-place bytes must end by lim. */
static int put_name_from(struct msg *m, const uint8_t *src, size_t slen, size_t off, size_t lim,
                         size_t *next)
{
	uint8_t name[CODEC_MAX_NAME];
	int n = codec_name_skip(src, slen, off, next);

	if (n < 0 || *next > lim || codec_name_unpack(src, slen, off, name) != n)
		return -EBADMSG;
	codec_wr_bytes(&m->wr, name, (size_t)n);
	return 0;
}

/* Copies one RR of src into the output with every name decompressed: the
 * pointers in src would point at the wrong bytes of the new message. */
static int put_rr_copy(struct msg *m, const uint8_t *src, size_t slen, const struct codec_rr *rr)
{
	size_t pos = rr->rdata_off;
	size_t end = pos + rr->rdlen;
	size_t next;

	if (put_name_from(m, src, slen, rr->owner_off, slen, &next) < 0)
		return -EBADMSG;
	codec_wr_u16(&m->wr, rr->type);
	codec_wr_u16(&m->wr, rr->rclass);
	codec_wr_u32(&m->wr, rr->ttl);
	size_t rdlen_at = m->wr.pos;

	codec_wr_u16(&m->wr, 0);
	size_t start = m->wr.pos;

	for (const char *l = rdata_layout(rr->type); *l != '\0'; l++) {
		size_t n;

		switch (*l) {
		case 'n':
			if (put_name_from(m, src, slen, pos, end, &next) < 0)
				return -EBADMSG;
			pos = next;
			continue;
		case '2':
			n = 2;
			break;
		default: /* 's' */
			if (pos >= end)
				return -EBADMSG;
			n = (size_t)src[pos] + 1;
			break;
		}
		if (end - pos < n)
			return -EBADMSG;
		codec_wr_bytes(&m->wr, src + pos, n);
		pos += n;
	}
	codec_wr_bytes(&m->wr, src + pos, end - pos);
	if (m->wr.err < 0)
		return 0;
	if (m->wr.pos - start > UINT16_MAX) {
		m->wr.err = -EMSGSIZE;
		return 0;
	}
	codec_put_u16(m->wr.base + rdlen_at, (uint16_t)(m->wr.pos - start));
	return 0;
}

struct append_ctx {
	const uint8_t *resp;
	size_t rlen;
	const struct codec_view *rv;
	uint8_t qname[CODEC_MAX_NAME]; /* lowercase */
	size_t qname_len;
	bool drop_a;
	bool drop_aaaa;
};

/* The records that must not survive next to the flattened addresses. */
static bool append_drop(const struct append_ctx *c, const struct codec_rr *rr)
{
	uint16_t covered;

	switch (rr->type) {
	case CODEC_TYPE_CNAME:
		break;
	case CODEC_TYPE_A:
		if (!c->drop_a)
			return false;
		break;
	case CODEC_TYPE_AAAA:
		if (!c->drop_aaaa)
			return false;
		break;
	case CODEC_TYPE_RRSIG:
		/* RFC 4034 3.1: TYPE COVERED is the first field. */
		if (rr->rdlen < 2)
			return false;
		covered = codec_get_u16(c->resp + rr->rdata_off);
		if (covered != CODEC_TYPE_A && covered != CODEC_TYPE_AAAA &&
		    covered != CODEC_TYPE_CNAME)
			return false;
		break;
	default:
		return false;
	}
	return codec_name_is(c->resp, c->rlen, rr->owner_off, c->qname, c->qname_len);
}

static int append_section(struct msg *m, const struct append_ctx *c, enum codec_section sec,
                          uint16_t *count)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	codec_rr_iter_init(&it, c->resp, c->rlen, c->rv, sec);
	while ((rc = codec_rr_next(&it, &rr)) == 1) {
		/* The OPT goes last, TSIG was refused before. */
		if (rr.type == CODEC_TYPE_OPT || append_drop(c, &rr))
			continue;
		if (put_rr_copy(m, c->resp, c->rlen, &rr) < 0)
			return -EBADMSG;
		(*count)++;
	}
	return rc < 0 ? -EBADMSG : 0;
}

static int build_append(struct msg *m, const struct append_ctx *c, const struct flat_rrset_in *a,
                        const struct flat_rrset_in *aaaa, bool trunc)
{
	const struct codec_view *rv = c->rv;
	uint16_t flags = (uint16_t)(rv->flags & ~CODEC_FLAG_TC);

	msg_header(m, rv->id, trunc ? (uint16_t)(flags | CODEC_FLAG_TC) : flags);
	codec_wr_bytes(&m->wr, c->resp + rv->qname_off, (size_t)rv->question_end - rv->qname_off);
	if (!trunc) {
		if (append_section(m, c, CODEC_SEC_ANSWER, &m->an) < 0)
			return -EBADMSG;
		if (rrset_has_addrs(a))
			put_addrs(m, RW_PTR_QNAME, a->res, a->ttl, &m->an);
		if (rrset_has_addrs(aaaa))
			put_addrs(m, RW_PTR_QNAME, aaaa->res, aaaa->ttl, &m->an);
		if (append_section(m, c, CODEC_SEC_AUTHORITY, &m->ns) < 0 ||
		    append_section(m, c, CODEC_SEC_ADDITIONAL, &m->ar) < 0)
			return -EBADMSG;
	}
	if (rv->has_opt) {
		/* BIND's OPT as it wrote it: owner root, never compressed. */
		codec_wr_bytes(&m->wr, c->resp + rv->opt_off,
		               (size_t)rv->opt_rdata_off + rv->opt_rdlen - rv->opt_off);
		m->ar++;
	}
	return 0;
}

ssize_t flat_rewrite_append(const uint8_t *resp, size_t rlen, const struct codec_view *rv,
                            const struct flat_rrset_in *a, const struct flat_rrset_in *aaaa,
                            size_t max_size, uint8_t *out, size_t outlen)
{
	struct append_ctx c;
	struct msg m;

	if (!query_ok(resp, rlen, rv) || rv->end > rlen)
		return -EBADMSG;
	/* Rebuilding would break the signature; such answers are relayed. */
	if (rv->has_tsig || !rrset_ok(a, CODEC_TYPE_A) || !rrset_ok(aaaa, CODEC_TYPE_AAAA))
		return -EINVAL;
	c.resp = resp;
	c.rlen = rlen;
	c.rv = rv;
	int n = codec_name_unpack(resp, rlen, rv->qname_off, c.qname);

	if (n < 0)
		return -EBADMSG;
	c.qname_len = (size_t)n;
	codec_name_lower(c.qname, c.qname_len);
	/* A known answer for a type replaces the sibling records of that
	 * type; after a failed chase they are the fallback and stay. */
	c.drop_a = a != NULL && a->res != NULL && a->res->kind != FLAT_RES_FAIL;
	c.drop_aaaa = aaaa != NULL && aaaa->res != NULL && aaaa->res->kind != FLAT_RES_FAIL;

	msg_init(&m, out, outlen, max_size);
	if (build_append(&m, &c, a, aaaa, false) < 0)
		return -EBADMSG;
	if (m.wr.err < 0) {
		msg_init(&m, out, outlen, max_size);
		build_append(&m, &c, a, aaaa, true);
	}
	return msg_end(&m);
}
