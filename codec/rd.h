/* codec/rd.h - bounds-checked wire cursors with a sticky error.
 *
 * A reader and a writer over caller memory. The first out-of-bounds access
 * sets err and every later call is a no-op returning 0, so a parser can
 * read a whole fixed-size header and check err once (knot wire_ctx style).
 * The writer is how anything outside codec/ that builds a message writes
 * it (flatten/rewrite.c), so that codec's pieces (codec_wr_opt()) append
 * to the same cursor.
 * Threads: any; a cursor belongs to one caller.
 */
#pragma once
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec/wire.h"

/** Reader over base[0..len); err becomes -EBADMSG on the first overrun. */
struct codec_rd {
	const uint8_t *base;
	size_t len;
	size_t pos;
	int err;
};

/** Writer into base[0..len); err becomes -EMSGSIZE on the first overflow. */
struct codec_wr {
	uint8_t *base;
	size_t len;
	size_t pos;
	int err;
};

static inline void codec_rd_init(struct codec_rd *rd, const uint8_t *base, size_t len, size_t pos)
{
	rd->base = base;
	rd->len = len;
	rd->pos = pos;
	rd->err = pos <= len ? 0 : -EBADMSG;
}

/* True when n more bytes can be read; sets the sticky error otherwise. */
static inline int codec_rd_need(struct codec_rd *rd, size_t n)
{
	if (rd->err == 0 && rd->len - rd->pos >= n)
		return 1;
	if (rd->err == 0)
		rd->err = -EBADMSG;
	return 0;
}

static inline size_t codec_rd_left(const struct codec_rd *rd)
{
	return rd->err == 0 ? rd->len - rd->pos : 0;
}

static inline uint8_t codec_rd_u8(struct codec_rd *rd)
{
	if (!codec_rd_need(rd, 1))
		return 0;
	return rd->base[rd->pos++];
}

static inline uint16_t codec_rd_u16(struct codec_rd *rd)
{
	if (!codec_rd_need(rd, 2))
		return 0;
	uint16_t v = codec_get_u16(rd->base + rd->pos);
	rd->pos += 2;
	return v;
}

static inline uint32_t codec_rd_u32(struct codec_rd *rd)
{
	if (!codec_rd_need(rd, 4))
		return 0;
	uint32_t v = codec_get_u32(rd->base + rd->pos);
	rd->pos += 4;
	return v;
}

static inline void codec_rd_skip(struct codec_rd *rd, size_t n)
{
	if (codec_rd_need(rd, n))
		rd->pos += n;
}

static inline void codec_wr_init(struct codec_wr *wr, uint8_t *base, size_t len)
{
	wr->base = base;
	wr->len = len;
	wr->pos = 0;
	wr->err = 0;
}

static inline size_t codec_wr_left(const struct codec_wr *wr)
{
	return wr->err == 0 ? wr->len - wr->pos : 0;
}

static inline int codec_wr_need(struct codec_wr *wr, size_t n)
{
	if (wr->err == 0 && wr->len - wr->pos >= n)
		return 1;
	if (wr->err == 0)
		wr->err = -EMSGSIZE;
	return 0;
}

static inline void codec_wr_u8(struct codec_wr *wr, uint8_t v)
{
	if (codec_wr_need(wr, 1))
		wr->base[wr->pos++] = v;
}

static inline void codec_wr_u16(struct codec_wr *wr, uint16_t v)
{
	if (!codec_wr_need(wr, 2))
		return;
	codec_put_u16(wr->base + wr->pos, v);
	wr->pos += 2;
}

static inline void codec_wr_u32(struct codec_wr *wr, uint32_t v)
{
	if (!codec_wr_need(wr, 4))
		return;
	codec_put_u32(wr->base + wr->pos, v);
	wr->pos += 4;
}

static inline void codec_wr_bytes(struct codec_wr *wr, const void *p, size_t n)
{
	if (!codec_wr_need(wr, n))
		return;
	if (n > 0)
		memcpy(wr->base + wr->pos, p, n);
	wr->pos += n;
}
