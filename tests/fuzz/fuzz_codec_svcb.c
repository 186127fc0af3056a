/* tests/fuzz/fuzz_codec_svcb.c - libFuzzer target for the SVCB/HTTPS RDATA
 * reader (codec_svcb_parse, codec_svcb_param_next, codec_svcb_check_set,
 * codec_svcb_to_text), which sees the RDATA a CDN's resolver sent before
 * apexd caches it and serves it under the flattened owner.
 *
 * Input: one RDATA. Seeds (tests/fuzz/corpus/codec_svcb/, written by
 * tests/fuzz/seeds_codec_svcb.py) are the RFC 9460 appendix D vectors,
 * CDN-like records with every known key, and broken ones.
 *
 * Invariants, each checked with abort(): an accepted RDATA has its
 * TargetName inside it and its SvcParams walk to the end in strictly
 * ascending key order, n_params of them; it prints in full into a buffer
 * of 4 octets of text per octet of RDATA plus room for the name and key
 * names, and a shorter buffer gives -EMSGSIZE with a prefix of the full
 * text; it is accepted as a one-RR stream, and cut by its last octet it
 * is refused; a refused RDATA has a reason and prints nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/svcb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Big enough for any RDATA up to the size fuzzed: \DDD per octet, the
 * name, and a key name per SvcParam. */
#define FZ_MAX_RDATA 4096
#define FZ_TEXT (FZ_MAX_RDATA * 4 + 2048)

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_walk(const uint8_t *data, size_t size, const struct codec_svcb *sv)
{
	struct codec_svcb_param p;
	size_t pos = sv->params_off;
	unsigned n = 0;
	int prev = -1, rc;

	check(sv->target_off == 2 && sv->target_len >= 1 && sv->target_len <= 255);
	check((size_t)sv->target_off + sv->target_len == sv->params_off);
	check(sv->params_off <= size && data[sv->params_off - 1] == 0);
	while ((rc = codec_svcb_param_next(data, size, &pos, &p)) == 1) {
		check((int)p.key > prev && p.key != CODEC_SVCB_KEY_INVALID);
		check(p.val >= data && p.val + p.len <= data + size);
		prev = p.key;
		n++;
	}
	check(rc == 0 && pos == size && n == sv->n_params);
}

static void check_text(const uint8_t *data, size_t size)
{
	static char full[FZ_TEXT], part[FZ_TEXT];
	int n = codec_svcb_to_text(data, size, full, sizeof(full));

	check(n > 0 && (size_t)n == strlen(full));
	/* A cut keeps a prefix of whole items. */
	size_t cut = (size_t)n / 2 + 1;
	int m = codec_svcb_to_text(data, size, part, cut);
	check(m == -EMSGSIZE || m == n);
	check(strlen(part) < cut && strncmp(part, full, strlen(part)) == 0);
}

static void check_stream(const uint8_t *data, size_t size)
{
	static uint8_t s[FZ_MAX_RDATA + 2];
	unsigned count = 0;

	s[0] = (uint8_t)(size >> 8);
	s[1] = (uint8_t)size;
	memcpy(s + 2, data, size);
	check(codec_svcb_check_set(s, size + 2, &count, NULL) == 0 && count == 1);
	check(codec_svcb_check_set(s, size + 1, &count, NULL) == -EBADMSG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_svcb sv, cut;
	char small[8];

	if (size > FZ_MAX_RDATA)
		return 0;
	int rc = codec_svcb_parse(data, size, &sv);

	if (rc == 0) {
		check(sv.why == NULL);
		check_walk(data, size, &sv);
		check_text(data, size);
		check_stream(data, size);
		check(codec_svcb_parse(data, size - 1, &cut) == -EBADMSG);
	} else {
		check(rc == -EBADMSG && sv.why != NULL);
		check(codec_svcb_to_text(data, size, small, sizeof(small)) == -EBADMSG);
		check(small[0] == '\0');
	}
	return 0;
}
