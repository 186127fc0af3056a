/* tests/fuzz/fuzz_px_dotframe.c - libFuzzer target for the TCP/DoT frame
 * peeler (px_frame_next in proxy/io/frame.h), driven the way conn_process()
 * in proxy/listen/conn.c drives it.
 *
 * Input: byte 0 is the read size (0 means 256), the rest is the byte
 * stream a client sends. The stream is fed in reads of that size into a
 * struct px_rbuf managed by io/rbuf.c's px_rbuf_alloc() (reset when
 * empty, leftover moved to the front when the tail is full, growth by
 * doubling up to one whole frame), and after each read every complete
 * frame is peeled off and handed to codec_scan(), as a query would be.
 *
 * Checked: frames never reach past the buffer; the buffer always has room
 * for the next read, since a full buffer holds a whole frame; and the
 * frames found read by read are exactly those found in the whole stream
 * at once, with the same leftover.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/scan.h"
#include "proxy/io/frame.h"
#include "proxy/io/rbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

/* A frame's message, scanned as a query would be; the result itself does
 * not matter here, only that the scanner stays inside the frame. */
static void handle(const uint8_t *msg, size_t len)
{
	struct codec_view v;
	/* An exact copy, so that a read past the frame is an ASan report. */
	uint8_t *copy = malloc(len > 0 ? len : 1);

	check(copy != NULL);
	memcpy(copy, msg, len);
	(void)codec_scan(copy, len, &v);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t chunk = data[0] != 0 ? data[0] : 256;
	const uint8_t *s = data + 1;
	size_t n = size - 1;

	/* Reference: the whole stream peeled at once. */
	size_t nframes = 0, ref_pos = 0, off, len;
	while (px_frame_next(s + ref_pos, n - ref_pos, &off, &len) == 1) {
		check(off == PX_FRAME_PREFIX_LEN && off + len <= n - ref_pos);
		ref_pos += off + len;
		nframes++;
	}
	check(n - ref_pos < PX_FRAME_PREFIX_LEN ||
	      n - ref_pos < PX_FRAME_PREFIX_LEN + (size_t)codec_get_u16(s + ref_pos));

	/* Read by read, as conn_process() sees it. */
	struct px_rbuf in = {0};
	size_t fed = 0, seen = 0, pos = 0;

	while (fed < n) {
		uv_buf_t ub;

		px_rbuf_alloc(&in, &ub);
		/* Whatever is pending is less than one whole frame, so there
		 * is always room for the next read. */
		check(ub.base != NULL && ub.len > 0);
		check((uint8_t *)ub.base == in.buf + in.end && ub.len == in.cap - in.end);
		check(in.cap <= PX_TCP_FRAME_MAX);
		size_t room = ub.len;
		size_t take = n - fed < chunk ? n - fed : chunk;
		if (take > room)
			take = room;
		memcpy(in.buf + in.end, s + fed, take);
		in.end += take;
		fed += take;
		while (in.end - in.start >= PX_FRAME_PREFIX_LEN) {
			if (px_frame_next(in.buf + in.start, in.end - in.start, &off, &len) == 0)
				break;
			check(off == PX_FRAME_PREFIX_LEN && in.start + off + len <= in.end);
			/* The same frame as in the reference walk. */
			check(seen < nframes && len == codec_get_u16(s + pos));
			check(memcmp(in.buf + in.start + off, s + pos + off, len) == 0);
			handle(in.buf + in.start + off, len);
			in.start += off + len;
			pos += off + len;
			seen++;
		}
		if (in.start == in.end)
			in.start = in.end = 0;
	}
	check(seen == nframes && pos == ref_pos);
	check(in.end - in.start == n - ref_pos);
	free(in.buf);
	return 0;
}
