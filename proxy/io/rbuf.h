/* proxy/io/rbuf.h - growable receive buffers for framed TCP streams. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/wire.h"

/* A client TCP frame is at most 65535 bytes plus its 2-byte prefix. */
#define PX_TCP_FRAME_MAX (2 + CODEC_MAX_MSG)
#define PX_TCP_RBUF_INITIAL 4096

/** Growable receive buffer for a framed TCP stream. */
struct px_rbuf {
	uint8_t *buf;
	size_t cap, start, end;
};

/* Hands libuv the free tail of in, compacting and growing it to hold one
 * whole frame; buf->len == 0 when out of memory. */
void px_rbuf_alloc(struct px_rbuf *in, uv_buf_t *buf);
