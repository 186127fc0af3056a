/* codec/proxyv2.h - the PROXY protocol version 2 header (haproxy's
 * proxy-protocol.txt, section 2.2), read from the front of a datagram or a
 * connection's first bytes.
 *
 * A load balancer that speaks it puts one binary header before what it
 * relays: a 12-byte signature, version and command, family and transport,
 * a length, then the original source and destination addresses and ports
 * and optional TLVs. The parser only reads bytes the caller holds; it
 * never reads from a socket and allocates nothing. Whether a header is to
 * be believed at all (only from the configured balancers) is the caller's
 * decision, made before calling it.
 * Threads: any (pure functions).
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** The signature, 12 bytes; its NUL at offset 4 means it is no C string. */
#define CODEC_PP2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define CODEC_PP2_SIG_LEN 12
/** Signature, version/command, family/transport, 2-byte length. */
#define CODEC_PP2_FIXED_LEN 16

/**
 * The longest header apexd accepts, fixed part included. The format allows
 * 16 + 65535 bytes, but the specification asks senders to send the whole
 * header at once and notes that it stays below one TCP segment (an MSS of
 * 1460 bytes on Ethernet). What haproxy and dnsdist send is 28 or 52 bytes
 * of addresses plus at most a few hundred bytes of TLVs (ALPN, the SNI of
 * at most 255 bytes, a unique ID of at most 128, the TLS version and
 * cipher), so 1024 leaves room for all of them, and a connection that
 * starts with a signature and an absurd length is turned away as soon as
 * its first 16 bytes are in, without buffering anything.
 */
#define CODEC_PP2_MAX_LEN 1024

/** The command (low nibble of byte 13). */
enum codec_pp2_cmd {
	CODEC_PP2_LOCAL = 0, /**< the balancer's own connection (health checks) */
	CODEC_PP2_PROXY = 1, /**< relayed on behalf of the client in the header */
};

/** A socket address, IPv4 or IPv6, small enough to copy per query. */
union codec_pp2_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/** What a valid header says. */
struct codec_pp2 {
	size_t len;             /**< header bytes, 16 + the length field */
	enum codec_pp2_cmd cmd; /**< LOCAL or PROXY */
	/** True for PROXY over AF_INET or AF_INET6 (STREAM or DGRAM): src
	 *  and dst are the original client and the address it reached. An
	 *  IPv4-mapped IPv6 address (::ffff:a.b.c.d) is given as AF_INET, so
	 *  every consumer sees one form per client. False for LOCAL and for
	 *  PROXY over UNSPEC or AF_UNIX: the header names no IP client, and
	 *  the real peer stands for it. */
	bool has_addr;
	union codec_pp2_addr src, dst; /**< set when has_addr */
};

/**
 * Reads a PROXY v2 header at p[0..len), the start of a datagram or of a
 * connection's bytes.
 *
 * Checked: the signature; version 2; command LOCAL or PROXY; for PROXY,
 * a family of UNSPEC, AF_INET, AF_INET6 or AF_UNIX and a transport of
 * UNSPEC, STREAM or DGRAM (other values must be rejected, says the
 * specification); for PROXY over AF_INET, AF_INET6 or AF_UNIX with STREAM
 * or DGRAM, an address block as long as the family needs, and after it
 * TLVs, each of whose 3-byte head and value lie inside the header, which
 * they fill exactly. A LOCAL header's family, address block and TLVs are
 * ignored, as the specification asks, and so is everything after byte 16
 * of a PROXY header whose family or transport is UNSPEC; their length
 * still counts.
 *
 * TLVs (ALPN, SNI, TLS details, unique IDs, custom types) are skipped
 * whatever their type; apexd needs none of them, so a CRC32C TLV is not
 * verified either (the specification asks that only of receivers that
 * support it).
 *
 * @return the header's length (> 0) with *out filled;
 *         0 when p holds a correct beginning of a header but not all of it
 *         (a stream caller reads more; for a datagram it is invalid);
 *         -EBADMSG: not a PROXY v2 signature. A mismatch is reported at
 *                   the first wrong byte, so a stream that starts with
 *                   anything else fails at once;
 *         -EPROTONOSUPPORT: a version other than 2;
 *         -EOPNOTSUPP: a command other than LOCAL and PROXY;
 *         -EAFNOSUPPORT: an unassigned family or transport (PROXY only);
 *         -EINVAL: an address block shorter than its family needs;
 *         -EILSEQ: TLVs that overrun the header or do not fill it;
 *         -EMSGSIZE: a length beyond CODEC_PP2_MAX_LEN (known from the
 *                    first 16 bytes, before the rest arrives).
 *         *out is undefined unless the return value is > 0.
 */
int codec_pp2_parse(const uint8_t *p, size_t len, struct codec_pp2 *out);

/** What a negative codec_pp2_parse() result means, for logs. */
const char *codec_pp2_strerror(int rc);
