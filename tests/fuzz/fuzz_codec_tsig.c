/* tests/fuzz/fuzz_codec_tsig.c - libFuzzer target for TSIG verification
 * of an answer stream, and for signing.
 *
 * Input layout: frames, each a two-octet big-endian length and that many
 * octets (DNS over TCP's framing; a short last frame is cut to what is
 * there).
 *   frame 0  8 octets of now_s (big-endian), then the request's MAC
 *   frame 1+ the answer's messages, fed to codec_tsig_verify_next() in
 *            order with the key of tests/data/tsig (apexd-key.,
 *            hmac-sha256)
 * Seeds (tests/fuzz/corpus/codec_tsig/) are the captures of
 * tests/data/tsig/capture.py in this layout, so the fuzzer starts from
 * streams that verify. Every message is also signed (a copy, when it has
 * no TSIG) to fuzz codec_tsig_sign(). A broken invariant aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/scan.h"
#include "codec/tsig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static const uint8_t secret[32] = {
        0xda, 0x64, 0x2d, 0x25, 0x8d, 0xe1, 0x9b, 0x58, 0x15, 0x6f, 0xc4,
        0xec, 0xe9, 0x8d, 0x1f, 0x2b, 0xab, 0x4c, 0x6d, 0x7e, 0xe5, 0x53,
        0x99, 0x06, 0xe1, 0x00, 0x08, 0x03, 0x70, 0x97, 0x53, 0xd0,
};

static const struct codec_tsig_key *fuzz_key(void)
{
	static struct codec_tsig_key k;

	if (k.secret_len == 0) {
		memcpy(k.name, "\11apexd-key", 11);
		k.name_len = 11;
		k.alg = CODEC_TSIG_HMAC_SHA256;
		memcpy(k.secret, secret, sizeof(secret));
		k.secret_len = sizeof(secret);
	}
	return &k;
}

/* The next frame of data[*pos..size), or false at the end. */
static bool next_frame(const uint8_t *data, size_t size, size_t *pos, const uint8_t **p, size_t *n)
{
	if (size - *pos < 2)
		return false;
	size_t len = (size_t)data[*pos] << 8 | data[*pos + 1];

	*pos += 2;
	if (len > size - *pos)
		len = size - *pos;
	*p = data + *pos;
	*n = len;
	*pos += len;
	return true;
}

static void fuzz_sign(const uint8_t *msg, size_t len)
{
	static uint8_t buf[CODEC_MAX_MSG + CODEC_TSIG_RR_MAX];
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	size_t mac_len = 0;
	struct codec_view v;

	if (len > CODEC_MAX_MSG)
		return;
	memcpy(buf, msg, len);
	ssize_t r = codec_tsig_sign(buf, len, len + CODEC_TSIG_RR_MAX, fuzz_key(), 1700000000, mac,
	                            &mac_len);
	if (r < 0) {
		check(r == -EINVAL || r == -EMSGSIZE);
		check(memcmp(buf, msg, len) == 0);
		return;
	}
	check((size_t)r > len && (size_t)r <= len + CODEC_TSIG_RR_MAX && mac_len == 32);
	check(codec_scan(buf, (size_t)r, &v) == 0 && v.has_tsig);
	check(memcmp(buf + CODEC_HDR_LEN, msg + CODEC_HDR_LEN, len - CODEC_HDR_LEN) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_tsig_verify v;
	const uint8_t *p;
	size_t n, pos = 0;
	uint64_t now = 0;
	bool failed = false, last_ok = false;
	unsigned fed = 0;

	if (!next_frame(data, size, &pos, &p, &n) || n < 8)
		return 0;
	for (int i = 0; i < 8; i++)
		now = now << 8 | p[i];
	codec_tsig_verify_begin(&v, fuzz_key(), p + 8, n - 8);
	while (next_frame(data, size, &pos, &p, &n)) {
		size_t body = (size_t)-1;
		int r = codec_tsig_verify_next(&v, p, n, now, &body);

		fed++;
		if (failed) {
			check(r == CODEC_TSIG_E_STATE);
			continue;
		}
		check(r >= CODEC_TSIG_E_STATE && r <= CODEC_TSIG_UNSIGNED &&
		      r != CODEC_TSIG_E_STATE);
		check(codec_tsig_status_text(r) != NULL);
		if (r < 0) {
			failed = true;
			if (r == CODEC_TSIG_E_SERVER)
				check(v.server_error != 0 &&
				      codec_tsig_error_name(v.server_error) != NULL);
			continue;
		}
		check(body <= n && (r == CODEC_TSIG_UNSIGNED ? body == n : body >= CODEC_HDR_LEN));
		check(v.messages == fed);
		last_ok = r == CODEC_TSIG_OK;
		fuzz_sign(p, r == CODEC_TSIG_OK ? body : n);
	}
	check(codec_tsig_verify_end(&v) == (!failed && last_ok));
	return 0;
}
