/* proxy/io/frame.h - DNS over TCP framing (RFC 1035 4.2.2, RFC 7766 8).
 *
 * A frame is a 2-byte big-endian length and that many message bytes; TCP
 * and DoT (RFC 7858 3.3) carry queries this way. The peeler only looks at
 * a buffer the caller owns and tells where the next message lies, so the
 * connection code and the fuzz target share the same arithmetic.
 *
 * Owns: nothing. Threads: any. No libuv, no logging.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "codec/wire.h"

/* Bytes of the length prefix in front of every message. */
#define PX_FRAME_PREFIX_LEN 2

/**
 * Finds the first frame in buf[0, len).
 *
 * @param msg_off  on 1: offset of the message in buf (always
 *                 PX_FRAME_PREFIX_LEN)
 * @param msg_len  on 1: length of the message, 0 to 65535; a zero-length
 *                 frame is still a frame, the caller decides what it means
 * @return 1 when a whole frame is there (it ends at *msg_off + *msg_len),
 *         0 when more bytes are needed; the outputs are left alone then.
 */
static inline int px_frame_next(const uint8_t *buf, size_t len, size_t *msg_off, size_t *msg_len)
{
	if (len < PX_FRAME_PREFIX_LEN)
		return 0;
	size_t flen = codec_get_u16(buf);
	/* Written as a subtraction so that no sum can wrap. */
	if (len - PX_FRAME_PREFIX_LEN < flen)
		return 0;
	*msg_off = PX_FRAME_PREFIX_LEN;
	*msg_len = flen;
	return 1;
}
