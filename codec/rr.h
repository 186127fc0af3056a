/* codec/rr.h - iteration over the resource records of a scanned message.
 *
 * The iterator reads in place; an RR handed out is a set of offsets into
 * the message, valid as long as the message buffer is unchanged.
 * Threads: any.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "codec/scan.h"

enum codec_section {
	CODEC_SEC_ANSWER = 0,
	CODEC_SEC_AUTHORITY = 1,
	CODEC_SEC_ADDITIONAL = 2,
};

/** One RR, by offset into its message. */
struct codec_rr {
	uint16_t owner_off; /**< owner name (maybe compressed) */
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	uint16_t ttl_off; /**< where the 32-bit TTL sits, for in-place edits */
	uint16_t rdlen;
	uint16_t rdata_off;
};

struct codec_rr_iter {
	const uint8_t *msg;
	size_t len;
	size_t pos;    /* next RR */
	unsigned left; /* RRs left in the section */
};

/**
 * Starts iterating over one section of a message that codec_scan()
 * accepted (v is its view).
 */
void codec_rr_iter_init(struct codec_rr_iter *it, const uint8_t *msg, size_t len,
                        const struct codec_view *v, enum codec_section sec);

/**
 * Reads the next RR of the section.
 * @return 1 and fills *rr, 0 at the end of the section, -EBADMSG if the
 *         data is malformed (cannot happen after a successful scan).
 */
int codec_rr_next(struct codec_rr_iter *it, struct codec_rr *rr);
