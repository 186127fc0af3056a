/* codec/rr.c - in-place iteration over the RRs of one section. */
#include "codec/rr.h"

#include <errno.h>

#include "codec/name.h"
#include "codec/rd.h"

void codec_rr_iter_init(struct codec_rr_iter *it, const uint8_t *msg, size_t len,
                        const struct codec_view *v, enum codec_section sec)
{
	it->msg = msg;
	it->len = len;
	switch (sec) {
	case CODEC_SEC_ANSWER:
		it->pos = v->an_off;
		it->left = v->ancount;
		break;
	case CODEC_SEC_AUTHORITY:
		it->pos = v->ns_off;
		it->left = v->nscount;
		break;
	case CODEC_SEC_ADDITIONAL:
		it->pos = v->ar_off;
		it->left = v->arcount;
		break;
	default:
		/* An unknown section is empty rather than a crash. */
		it->pos = len;
		it->left = 0;
		break;
	}
}

int codec_rr_next(struct codec_rr_iter *it, struct codec_rr *rr)
{
	struct codec_rd rd;
	size_t fixed;

	if (it->left == 0)
		return 0;
	/* Recheck everything: the iterator must stay safe even when handed
	 * a view that does not belong to this buffer. */
	if (it->len > CODEC_MAX_MSG || codec_name_skip(it->msg, it->len, it->pos, &fixed) < 0)
		goto bad;
	codec_rd_init(&rd, it->msg, it->len, fixed);
	rr->owner_off = (uint16_t)it->pos;
	rr->type = codec_rd_u16(&rd);
	rr->rclass = codec_rd_u16(&rd);
	rr->ttl_off = (uint16_t)rd.pos;
	rr->ttl = codec_rd_u32(&rd);
	rr->rdlen = codec_rd_u16(&rd);
	rr->rdata_off = (uint16_t)rd.pos;
	codec_rd_skip(&rd, rr->rdlen);
	if (rd.err < 0)
		goto bad;
	it->pos = rd.pos;
	it->left--;
	return 1;
bad:
	/* Stop for good so a caller looping on "> 0" cannot spin. */
	it->left = 0;
	return -EBADMSG;
}
