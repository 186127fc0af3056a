/* codec/ttl.c - the TTL rules every reader of answers shares. */
#include "codec/ttl.h"

#include <errno.h>
#include <stdbool.h>

#include "codec/name.h"
#include "codec/wire.h"

/* SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM after the two SOA names
 * (RFC 1035 3.3.13); MINIMUM is the last four. */
#define TTL_SOA_FIXED_LEN 20

int codec_neg_ttl(const uint8_t *msg, size_t len, const struct codec_view *v, uint32_t *ttl)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	codec_rr_iter_init(&it, msg, len, v, CODEC_SEC_AUTHORITY);
	while ((rc = codec_rr_next(&it, &rr)) == 1) {
		size_t rd_end = (size_t)rr.rdata_off + rr.rdlen;
		size_t end;

		if (rr.type != CODEC_TYPE_SOA || rr.rclass != CODEC_CLASS_IN)
			continue;
		/* A malformed SOA says nothing reliable about the zone; a
		 * later one may still (a server is not meant to send two). */
		if (codec_name_skip(msg, len, rr.rdata_off, &end) < 0 || end > rd_end)
			continue;
		if (codec_name_skip(msg, len, end, &end) < 0 || end + TTL_SOA_FIXED_LEN != rd_end)
			continue;
		*ttl = codec_soa_neg_ttl(rr.ttl, codec_get_u32(msg + rd_end - 4));
		return 0;
	}
	return rc < 0 ? -EBADMSG : -ENOENT;
}

int codec_min_ttl(const uint8_t *msg, size_t len, const struct codec_view *v,
                  enum codec_section last, uint32_t *ttl)
{
	uint32_t min = UINT32_MAX;
	uint32_t neg;
	bool any = false;

	for (int sec = CODEC_SEC_ANSWER; sec <= (int)last; sec++) {
		struct codec_rr_iter it;
		struct codec_rr rr;
		int rc;

		codec_rr_iter_init(&it, msg, len, v, (enum codec_section)sec);
		while ((rc = codec_rr_next(&it, &rr)) == 1) {
			uint32_t t = codec_ttl_sane(rr.ttl);

			if (rr.type == CODEC_TYPE_OPT || rr.type == CODEC_TYPE_TSIG)
				continue;
			any = true;
			if (t < min)
				min = t;
		}
		if (rc < 0)
			return -EBADMSG;
	}
	if (v->ancount == 0 && codec_neg_ttl(msg, len, v, &neg) == 0) {
		any = true;
		if (neg < min)
			min = neg;
	}
	if (!any)
		return -ENOENT;
	*ttl = min;
	return 0;
}
