/* codec/build.h - messages apexd writes itself.
 *
 * Error replies (FORMERR, SERVFAIL, REFUSED, ...) to a client query,
 * optionally carrying an Extended DNS Error (RFC 8914), apexd's own
 * queries, and the one OPT RR writer every message of ours uses (the
 * flattened answers of flatten/rewrite.c too). Output goes into a caller
 * buffer; nothing is allocated.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/rd.h"
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
 * Appends the OPT RR of a message apexd writes itself (RFC 6891 6.1.2):
 * owner root, payload size CODEC_EDNS_UDP_SIZE, extended RCODE 0, version
 * 0, then at most two options.
 *
 * With a client query (query and qv from codec_scan()), DO is copied from
 * it and its COOKIE option is echoed when it holds a server cookie too
 * (codec_cookie_pair(): a resolver that learned BIND's server cookie
 * expects it in every answer from this address, and retries over TCP
 * without it; apexd has no secret to mint one, so it returns the pair as
 * presented and BIND renews it on the next relayed answer). A client
 * cookie alone is never echoed. With query == NULL (a query of apexd's
 * own), DO is 0 and no cookie is written.
 *
 * Then an Extended DNS Error (RFC 8914) with info code ede and the UTF-8
 * text ede_text (may be NULL), unless ede is CODEC_EDE_NONE. The text is
 * the one optional part: it takes only the room left in wr, cut at a
 * UTF-8 character boundary (codec_utf8_cut()). Whatever else does not fit
 * sets wr->err to -EMSGSIZE.
 *
 * The caller counts the RR in ARCOUNT.
 */
void codec_wr_opt(struct codec_wr *wr, const uint8_t *query, const struct codec_view *qv,
                  uint16_t ede, const char *ede_text);

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
