/* proxy/io/rbuf.c - growable receive buffers for framed TCP streams. */
#include <stdlib.h>
#include <string.h>

#include "proxy/io/rbuf.h"

void px_rbuf_alloc(struct px_rbuf *in, uv_buf_t *buf)
{
	if (in->start > 0 && in->start == in->end)
		in->start = in->end = 0;
	if (in->end == in->cap && in->start > 0) {
		/* Move the partial frame to the front to make room. */
		memmove(in->buf, in->buf + in->start, in->end - in->start);
		in->end -= in->start;
		in->start = 0;
	}
	if (in->end == in->cap && in->cap < PX_TCP_FRAME_MAX) {
		size_t ncap = in->cap == 0 ? PX_TCP_RBUF_INITIAL : in->cap * 2;
		if (ncap > PX_TCP_FRAME_MAX)
			ncap = PX_TCP_FRAME_MAX;
		uint8_t *nb = realloc(in->buf, ncap);
		if (nb != NULL) {
			in->buf = nb;
			in->cap = ncap;
		}
	}
	if (in->end == in->cap) {
		buf->base = NULL; /* libuv reports UV_ENOBUFS */
		buf->len = 0;
		return;
	}
	buf->base = (char *)in->buf + in->end;
	buf->len = in->cap - in->end;
}
