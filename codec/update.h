/* codec/update.h - DNS UPDATE messages (RFC 2136) apexd writes.
 *
 * A writer for one UPDATE: the zone section, then prerequisites, then
 * updates, in that order (RFC 2136 2). The caller buffers its changes
 * and writes all prerequisites before the first update; names are
 * written uncompressed. Nothing is allocated.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/rd.h"
#include "codec/wire.h"

/** A message being written. */
struct codec_upd {
	struct codec_wr wr;
	uint16_t prcount; /* prerequisites written */
	uint16_t upcount; /* updates written */
	int err;          /* first error: -EINVAL (order, name); size errors are wr.err */
};

/** Starts an UPDATE with ID id for zone (uncompressed wire name, class
 *  IN) in buf[0..cap). */
void codec_upd_begin(struct codec_upd *u, uint8_t *buf, size_t cap, uint16_t id,
                     const uint8_t *zone, size_t zone_len);

/** Prerequisite "RRset exists (value independent)" (RFC 2136 2.4.1):
 *  class ANY, TTL 0, no RDATA. */
void codec_upd_prereq_exists(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type);

/** Prerequisite "RRset does not exist" (2.4.3): class NONE, no RDATA. */
void codec_upd_prereq_absent(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type);

/** Update "delete an RRset" (2.5.2): class ANY, TTL 0, no RDATA. */
void codec_upd_delete_rrset(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type);

/** Update "delete an RR from an RRset" (2.5.4): class NONE, TTL 0. */
void codec_upd_delete_rr(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type,
                         const uint8_t *rdata, uint16_t rdlen);

/** Update "add to an RRset" (2.5.1): class IN. */
void codec_upd_add_rr(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type,
                      uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);

/** Bytes written so far (the message is valid after each call that
 *  succeeded, counts included). */
static inline size_t codec_upd_len(const struct codec_upd *u)
{
	return u->wr.pos;
}

/**
 * Ends the message.
 * @return its length, or the first error (-EMSGSIZE: it did not fit;
 *         -EINVAL: a prerequisite after an update, or a malformed name).
 */
ssize_t codec_upd_end(struct codec_upd *u);
