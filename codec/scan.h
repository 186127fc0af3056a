/* codec/scan.h - zero-allocation validation and indexing of a DNS message.
 *
 * codec_scan() walks a whole message once (header, every question, every
 * RR of every section), checks that it is well formed, and records the
 * offsets the proxy needs in a struct codec_view. It allocates and copies
 * nothing; the view points into the caller's buffer by offset and is valid
 * as long as that buffer is unchanged.
 * Threads: any (pure function).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

/** A scanned message: header fields and section offsets. */
struct codec_view {
	uint16_t id;
	uint16_t flags; /**< whole flags word, see CODEC_FLAG_* */
	uint8_t opcode; /**< 0..15 */
	uint8_t rcode;  /**< header RCODE (low 4 bits; the OPT holds the rest) */
	uint16_t qdcount;
	uint16_t ancount;
	uint16_t nscount;
	uint16_t arcount;

	/* First question, meaningful only when qdcount >= 1. */
	uint16_t qname_off; /**< offset of the first question's name */
	uint16_t qname_len; /**< its length on the wire (pointers not followed) */
	uint16_t qtype;
	uint16_t qclass;

	uint16_t question_end; /**< offset just past the question section */
	uint16_t an_off;       /**< first answer RR (== question_end) */
	uint16_t ns_off;       /**< first authority RR */
	uint16_t ar_off;       /**< first additional RR */
	uint16_t end;          /**< offset just past the last RR == message length */

	/* EDNS(0) (RFC 6891), meaningful only when has_opt. */
	bool has_opt;
	uint16_t opt_off;       /**< start of the OPT RR (its owner name) */
	uint16_t opt_rdata_off; /**< start of the OPT RDATA (the options) */
	uint16_t opt_rdlen;
	uint16_t udp_size; /**< requestor's payload size, as sent (not clamped) */
	uint8_t ext_rcode; /**< upper 8 bits of the extended RCODE */
	uint8_t edns_version;
	bool do_bit;

	bool has_tsig; /**< a TSIG RR ends the additional section (RFC 8945) */
};

/**
 * Validates msg[0..len) as a DNS message and fills *v.
 *
 * Checks: the header is present and len <= CODEC_MAX_MSG; every question
 * and owner name is well formed (labels <= 63, names <= 255 octets after
 * decompression, label types 00 and 11 only, compression pointers point
 * strictly before the start of the label run that contains them and not
 * into the header, at most CODEC_MAX_PTR_HOPS hops); every RR header and
 * RDATA lies within the message; counts match the data exactly (no
 * trailing bytes); at most one OPT RR, only in the additional section,
 * owned by the root written as one zero octet (not a pointer), its options
 * each fitting inside its RDATA; a TSIG RR only as the last additional
 * record. Names inside RDATA are not checked here; the codec_name_*
 * functions validate them when they are read.
 *
 * Messages with any qdcount are accepted (NOTIFY, UPDATE and cookie-only
 * queries may have 0); the view describes the first question.
 *
 * @return 0, or -EBADMSG if the message is malformed anywhere. On error,
 *         the fields of *v are unspecified except that v->id and v->flags
 *         are set whenever len >= CODEC_HDR_LEN.
 */
int codec_scan(const uint8_t *msg, size_t len, struct codec_view *v);

/**
 * Finds the first EDNS option with the given code in the OPT RR of a
 * message codec_scan() accepted (it checked that every option fits).
 * @param data_off set to the offset of the option's data
 * @param data_len set to its length
 * @return true when found.
 */
bool codec_edns_option(const uint8_t *msg, const struct codec_view *v, uint16_t code,
                       size_t *data_off, uint16_t *data_len);

/* RFC 7873 4: a client cookie is 8 octets; with a server cookie the
 * option holds 16 to 40. */
#define CODEC_COOKIE_CLIENT_LEN 8
#define CODEC_COOKIE_PAIR_MIN 16
#define CODEC_COOKIE_PAIR_MAX 40

/**
 * The COOKIE option of a query when it holds a client and a server
 * cookie (RFC 7873 4): what apexd echoes in the answers it writes itself,
 * since a client that presents a server cookie expects one back, and has
 * no way to tell that the pair is not freshly minted. A client cookie
 * alone is not a valid response option and is never echoed.
 * @return true with data_off and data_len set, false otherwise.
 */
bool codec_cookie_pair(const uint8_t *msg, const struct codec_view *v, size_t *data_off,
                       uint16_t *data_len);

/**
 * Compares the first question of two messages: same name (ASCII case
 * sensitive, octet for octet, as a server echoes it), type and class.
 * Both views must come from a successful codec_scan() with qdcount >= 1.
 * Names are compared after decompression.
 */
bool codec_question_equal(const uint8_t *a, size_t alen, const struct codec_view *va,
                          const uint8_t *b, size_t blen, const struct codec_view *vb);

/**
 * Is msg[0..len) the answer to a query of apexd's own (codec_build_query())?
 * The checks RFC 5452 9.1 asks of a resolver: ID id, QR=1, exactly one
 * question, and that question is name, qtype, qclass. The name is compared
 * ASCII case-insensitively (RFC 4343) where any well-formed message has its
 * first question name: uncompressed at offset 12 (a pointer there could
 * only point into the header). Reads the header and the question only,
 * bounds-checked, so msg need not have been scanned: a datagram can be
 * told apart from a late or forged one before any other work.
 * @param name an uncompressed wire name (codec_name_valid())
 */
bool codec_answers_question(const uint8_t *msg, size_t len, uint16_t id, const uint8_t *name,
                            size_t name_len, uint16_t qtype, uint16_t qclass);
