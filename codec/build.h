/* codec/build.h - replies apexd writes itself.
 *
 * Error replies (FORMERR, SERVFAIL, REFUSED, ...) to a client query,
 * optionally carrying an Extended DNS Error (RFC 8914). Output goes into a
 * caller buffer; nothing is allocated.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/scan.h"

/** Longest query codec_build_query() writes: header, name, question, OPT. */
#define CODEC_QUERY_MAX (CODEC_HDR_LEN + CODEC_MAX_NAME + 4 + 11)

/**
 * Writes a query of apexd's own into out (CODEC_QUERY_MAX bytes): the ID,
 * RD as asked, one question (name copied as given: an uncompressed wire
 * name the caller checked, type, class IN), and an OPT RR (RFC 6891: payload
 * size CODEC_EDNS_UDP_SIZE, version 0, DO=0, no options).
 * @return the query length.
 */
size_t codec_build_query(uint8_t *out, uint16_t id, bool rd, const uint8_t *name, size_t len,
                         uint16_t qtype);

/**
 * Longest prefix of text[0..n) that does not end inside a UTF-8 sequence:
 * cutting a character in half would hand clients invalid UTF-8, which
 * RFC 8914 2 forbids in an EDE's EXTRA-TEXT.
 */
size_t codec_utf8_cut(const char *text, size_t n);

/** EDE code meaning "add no Extended DNS Error option". */
#define CODEC_EDE_NONE 0xffff

/**
 * Builds an error reply to query[0..qlen).
 *
 * With v == NULL (the query did not scan; only its header is known) the
 * reply is a bare header: same ID and opcode, QR=1, RD copied, RCODE set,
 * every count 0.
 *
 * With a view, the reply also echoes the first question (when qdcount >= 1)
 * and, when the query carried an OPT RR, adds an OPT (version 0,
 * payload size CODEC_EDNS_UDP_SIZE, DO copied) holding an EDE option with
 * info code ede and the UTF-8 text ede_text (may be NULL) unless ede is
 * CODEC_EDE_NONE. RFC 6891 forbids an OPT in a reply to a query without
 * one, so no EDE is added then. RD and CD are copied, AA/TC/RA/AD are 0.
 * No other option of the query (cookie, ECS) is echoed. If the text does
 * not fit in outlen it is shortened, at a UTF-8 character boundary; if the
 * header, question, OPT and EDE option header do not fit, -EMSGSIZE.
 * rcode must be < 16: extended RCODEs are not built.
 *
 * @return the reply length, -EMSGSIZE if out is too small (needs at
 *         least CODEC_HDR_LEN bytes for the bare form), or -EBADMSG if
 *         qlen < CODEC_HDR_LEN or the question name in query is malformed.
 */
ssize_t codec_build_error(const uint8_t *query, size_t qlen, const struct codec_view *v,
                          uint8_t rcode, uint16_t ede, const char *ede_text, uint8_t *out,
                          size_t outlen);
