/* codec/ecs.h - the EDNS Client Subnet option (RFC 7871).
 *
 * Parses the option a client or a resolver sent, writes the one apexd
 * sends when it chases a target, and does the prefix arithmetic the
 * scope-keyed target cache needs (cut an address to a prefix, does a
 * subnet cover another).
 *
 * Option data (RFC 7871 6): FAMILY (2 octets, 1 IPv4, 2 IPv6), SOURCE
 * PREFIX-LENGTH, SCOPE PREFIX-LENGTH, then ADDRESS cut to
 * ceil(SOURCE / 8) octets, the bits past SOURCE zero.
 *
 * Owns nothing; pure functions on caller buffers.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/scan.h"

#define CODEC_ECS_FAMILY_IP4 1
#define CODEC_ECS_FAMILY_IP6 2
/* The longest option data: 4 fixed octets and a whole IPv6 address. */
#define CODEC_ECS_DATA_MAX (4 + 16)
/* ... and with OPTION-CODE and OPTION-LENGTH in front. */
#define CODEC_ECS_OPT_MAX (4 + CODEC_ECS_DATA_MAX)

/** One ECS option, parsed. family 0 means "none" wherever one is optional. */
struct codec_ecs {
	uint16_t family;  /**< CODEC_ECS_FAMILY_IP4 or _IP6 */
	uint8_t source;   /**< SOURCE PREFIX-LENGTH: <= 32 (IPv4), <= 128 (IPv6) */
	uint8_t scope;    /**< SCOPE PREFIX-LENGTH (0 in a query) */
	uint8_t addr[16]; /**< the address, every bit past source zero (4 used for IPv4) */
};

/** Octets of an address of family: 4, 16, or 0 for an unknown family. */
size_t codec_ecs_addr_len(uint16_t family);

/**
 * Zeroes every bit of addr[0..len) past the first prefix bits (prefix
 * may exceed len * 8: then nothing changes).
 */
void codec_ecs_mask(uint8_t *addr, size_t len, unsigned prefix);

/**
 * Parses option data (without OPTION-CODE and OPTION-LENGTH).
 * Strict as RFC 7871 7.1.1/7.3 asks of a server and of a resolver: the
 * family is 1 or 2, SOURCE fits the family, ADDRESS is exactly
 * ceil(SOURCE / 8) octets with no bit set past SOURCE, SCOPE fits the
 * family; in a query (query true) SCOPE must be 0.
 * @return 0 (out filled, addr zero-padded to 16 octets), -EINVAL for a
 *         malformed option (the answer to such a query is FORMERR), or
 *         -EAFNOSUPPORT for a family other than 1 and 2 (FORMERR too).
 */
int codec_ecs_parse(const uint8_t *data, size_t len, bool query, struct codec_ecs *out);

/**
 * The ECS option of a message codec_scan() accepted, parsed.
 * @return 1 (out filled), 0 (no OPT or no ECS option), or the error of
 *         codec_ecs_parse() for the first ECS option.
 */
int codec_ecs_find(const uint8_t *msg, const struct codec_view *v, bool query,
                   struct codec_ecs *out);

/**
 * Writes e as a whole option (OPTION-CODE 8, OPTION-LENGTH, data) with
 * ADDRESS cut to ceil(e->source / 8) octets.
 * @return octets written (8 + address octets), or 0 when room is short
 *         or e is not a valid family/prefix.
 */
size_t codec_ecs_write(const struct codec_ecs *e, uint8_t *out, size_t room);

/**
 * The subnet of a client's address: IPv4 (an IPv4-mapped IPv6 address
 * counts as IPv4) cut to prefix4, IPv6 to prefix6 (each clamped to the
 * family's width); scope 0.
 * @return 0, or -EAFNOSUPPORT (out->family 0) for another address family.
 */
int codec_ecs_from_sockaddr(const struct sockaddr *sa, unsigned prefix4, unsigned prefix6,
                            struct codec_ecs *out);

/** Cuts e's source prefix to at most max (the configured ecs-prefix) and masks the address. */
void codec_ecs_cut(struct codec_ecs *e, unsigned max);

/**
 * Does a response's option belong to the query's (RFC 7871 7.3: FAMILY,
 * SOURCE PREFIX-LENGTH and the address bits up to it are the same)? A
 * response whose option does not must be discarded.
 */
bool codec_ecs_matches(const struct codec_ecs *query, const struct codec_ecs *resp);

/**
 * Does subnet (family, prefix, addr) cover client's address, i.e. the
 * families are equal, prefix <= client->source, and the first prefix
 * bits agree?
 */
bool codec_ecs_covers(uint16_t family, unsigned prefix, const uint8_t *addr,
                      const struct codec_ecs *client);

/**
 * Writes "ADDR/SOURCE" (and "/SCOPE" when with_scope) for logs and
 * explain, e.g. "192.0.2.0/24/16".
 * @return the length (as snprintf), output NUL-terminated when size > 0.
 */
int codec_ecs_format(const struct codec_ecs *e, bool with_scope, char *out, size_t size);

/**
 * Parses "ADDR[/PREFIX]" (apexctl explain's SUBNET; without /PREFIX the
 * whole address) into a query-side subnet, address masked.
 * @return 0 or -EINVAL.
 */
int codec_ecs_from_text(const char *text, struct codec_ecs *out);
