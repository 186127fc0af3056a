/* codec/build.h - replies apexd writes itself.
 *
 * Error replies (FORMERR, SERVFAIL, REFUSED, ...) to a client query,
 * optionally carrying an Extended DNS Error (RFC 8914). Output goes into a
 * caller buffer; nothing is allocated.
 * Threads: any.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/scan.h"

/** EDE code meaning "add no Extended DNS Error option". */
#define CODEC_EDE_NONE 0xffff

/**
 * Builds an error reply to query[0..qlen).
 *
 * With v == NULL (the query did not scan; only its header is known, so
 * qlen >= CODEC_HDR_LEN) the reply is a bare header: same ID and opcode,
 * QR=1, RD copied, every count 0.
 *
 * With a view, the reply also echoes the first question (when qdcount >= 1)
 * and, when the query carried an OPT RR, adds an OPT (version 0,
 * payload size CODEC_EDNS_UDP_SIZE, DO copied) holding an EDE option with
 * info code ede and the UTF-8 text ede_text (may be NULL) unless ede is
 * CODEC_EDE_NONE. RFC 6891 forbids an OPT in a reply to a query without
 * one, so no EDE is added then. RD and CD are copied, AA/TC/RA/AD are 0.
 * If the text does not fit in outlen it is shortened; if the question does
 * not fit either, -EMSGSIZE.
 *
 * @return the reply length, or -EMSGSIZE if out is too small (needs at
 *         least CODEC_HDR_LEN bytes for the bare form).
 */
ssize_t codec_build_error(const uint8_t *query, size_t qlen, const struct codec_view *v,
			  uint8_t rcode, uint16_t ede, const char *ede_text, uint8_t *out,
			  size_t outlen);
