/* codec/name.h - domain names in wire form.
 *
 * Names inside messages may be compressed (RFC 1035 4.1.4). Every function
 * here follows pointers only backwards, to offsets >= CODEC_HDR_LEN, and at
 * most CODEC_MAX_PTR_HOPS times, so a hostile message cannot loop.
 * Threads: any (pure functions).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Validates the name at msg[off] and finds where it ends in place.
 * @param end  set to the offset just past the name's in-place bytes
 *             (past the first pointer if the name is compressed)
 * @return the decompressed wire length (1..255), or -EBADMSG.
 */
int codec_name_skip(const uint8_t *msg, size_t len, size_t off, size_t *end);

/**
 * Decompresses the name at msg[off] into out (at least CODEC_MAX_NAME
 * bytes), preserving case.
 * @return the wire length written (1..255), or -EBADMSG.
 */
int codec_name_unpack(const uint8_t *msg, size_t len, size_t off, uint8_t *out);

/**
 * Compares two names inside messages, ASCII case-insensitively
 * (RFC 4343), following compression in both.
 * @return 1 equal, 0 different, -EBADMSG if either is malformed.
 */
int codec_name_equal(const uint8_t *a, size_t alen, size_t aoff, const uint8_t *b, size_t blen,
                     size_t boff);

/**
 * Is the (maybe compressed) name at msg[off] the uncompressed wire name
 * name[0..name_len)? ASCII case-insensitive (RFC 4343), as
 * codec_name_equal(); the owner-of-this-RR test readers of answers make.
 * @return false as well when the name in msg is malformed.
 */
bool codec_name_is(const uint8_t *msg, size_t len, size_t off, const uint8_t *name,
                   size_t name_len);

/** ASCII lowercase of one octet (RFC 4343: only A-Z fold). */
static inline uint8_t codec_ascii_lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/** codec_ascii_lower() of every octet, as a table: one load per octet
 *  where a loop that must go octet by octet (a hash from the right)
 *  would otherwise compare, add and select. */
extern const uint8_t codec_ascii_lower_tab[256];

/**
 * codec_ascii_lower() of the eight octets of a word at once: each octet's
 * low seven bits are compared with 'A' and 'Z' by two additions that
 * cannot carry into the next octet, and 0x20 is set where the octet is
 * ASCII and between them. No branch and no table load per octet.
 */
static inline uint64_t codec_ascii_lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull;
	uint64_t low7 = x & (0x7f * ones);
	uint64_t ge_a = low7 + (0x80 - 'A') * ones; /* top bit set: >= 'A' */
	uint64_t gt_z = low7 + (0x7f - 'Z') * ones; /* top bit set: > 'Z' */
	uint64_t upper = ge_a & ~gt_z & ~x & (0x80 * ones);

	return x | (upper >> 2);
}

/**
 * Writes name[0..len) (1..CODEC_MAX_NAME octets, any bytes) lowercased
 * into out and returns a seeded 64-bit hash of the lowercased octets and
 * len, finished with a full-avalanche mixer: one pass, eight octets at a
 * time (the hash of the caches' keys, which read every name they are
 * asked for). Equal names in any case hash alike.
 */
uint64_t codec_name_lower_hash(const uint8_t *name, size_t len, uint8_t *out, uint64_t seed);

/**
 * Is name[0..len) exactly one uncompressed wire name: labels of at most
 * 63 octets, no pointer, ending with the root label at name[len - 1],
 * 1..255 octets in all? NULL is not a name.
 */
bool codec_name_valid(const uint8_t *name, size_t len);

/** Lowercases an uncompressed wire name in place (ASCII only). */
void codec_name_lower(uint8_t *name, size_t len);

/**
 * Writes an uncompressed wire name in presentation format ("www.example.com.",
 * "." for the root; non-printable octets and '.' inside a label escaped as
 * RFC 1035 5.1 "\DDD" or "\.", and '\' as "\\"). Always NUL-terminates
 * when outlen > 0; a cut never splits an escape.
 * @return the text length, -EMSGSIZE if it did not fit (output cut), or
 *         -EBADMSG if name[0..len) holds no well-formed uncompressed name.
 */
int codec_name_to_text(const uint8_t *name, size_t len, char *out, size_t outlen);
