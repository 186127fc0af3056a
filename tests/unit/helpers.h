/* tests/unit/helpers.h - shared helpers for the cmocka unit tests.
 *
 * Packet fixtures from hex text and from ldns presentation format, so a
 * test can state its input the way a human reads DNS.
 * Threads: test main thread only.
 */
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "codec/scan.h"

/**
 * Decodes hex text ("0a 1b2c", whitespace and '#'-to-end-of-line comments
 * ignored) into out.
 * @return the byte count, or -1 on a bad digit or overflow of outlen.
 */
long th_hex(const char *hex, uint8_t *out, size_t outlen);

/**
 * Builds a wire message with ldns from presentation text, one item per
 * line (blank lines and lines starting with ';' are ignored):
 *
 *   hdr <id> <flags>            ID and the whole flags word, both numbers
 *                               (strtoul base 0: "0x8180" works); default 0 0
 *   qd <name> <class> <type>    a question (zone section for UPDATE)
 *   an|ns|ar <rr>               an RR in presentation format; an RR with no
 *                               RDATA is allowed (UPDATE prerequisites)
 *   edns <udp> [do] [<hex>]     an OPT RR: payload size, DO bit, and the raw
 *                               option area as hex
 *
 * ldns compresses names when it writes the message, so repeated names come
 * out as backward pointers, as a real server writes them.
 * @return the length, or -1 if ldns rejects a line or out is too small.
 */
long th_pkt(const char *text, uint8_t *out, size_t outlen);

/** A test message and its codec_scan() view. */
struct th_msg {
	uint8_t buf[4096];
	size_t len;
	struct codec_view v;
};

/* Inline, so that tests of modules that do not link apex_codec (config,
 * tls) can include this header without needing codec_scan(). */

/** th_pkt() into m, then codec_scan(); the test fails unless both work. */
static inline void th_msg_pkt(struct th_msg *m, const char *text)
{
	long n = th_pkt(text, m->buf, sizeof(m->buf));

	assert_true(n >= CODEC_HDR_LEN);
	m->len = (size_t)n;
	assert_int_equal(codec_scan(m->buf, m->len, &m->v), 0);
}

/** th_hex() into m, then codec_scan(); the test fails unless both work. */
static inline void th_msg_hex(struct th_msg *m, const char *hex)
{
	long n = th_hex(hex, m->buf, sizeof(m->buf));

	assert_true(n >= CODEC_HDR_LEN);
	m->len = (size_t)n;
	assert_int_equal(codec_scan(m->buf, m->len, &m->v), 0);
}

/**
 * A loopback IPv4 socket of type (SOCK_DGRAM, SOCK_STREAM), non-blocking,
 * with SO_REUSEPORT, bound to port (0: any); *got is the port it got.
 * For the steering tests, which build reuseport groups. Fails the test
 * on any error.
 */
int th_reuseport_socket(int type, uint16_t port, uint16_t *got);
