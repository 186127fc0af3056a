/* tests/fuzz/fuzz_codec_scan.c - libFuzzer target for the codec scanner.
 *
 * Scans the input; when it is accepted, walks every RR of every section,
 * decompresses and compares every owner name, renders it as text, and
 * builds error replies from the view, which must scan again. Any crash,
 * sanitizer report or broken invariant (abort) is a bug.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void walk_names(const uint8_t *data, size_t size, const struct codec_view *v, size_t off)
{
	uint8_t name[CODEC_MAX_NAME];
	char text[CODEC_MAX_NAME * 4 + 1];
	size_t end;
	int len = codec_name_skip(data, size, off, &end);

	/* The scanner accepted the message, so every owner name is valid. */
	check(len >= 1 && len <= CODEC_MAX_NAME && end > off && end <= size);
	check(codec_name_unpack(data, size, off, name) == len);
	check(codec_name_equal(data, size, off, data, size, off) == 1);
	if (v->qdcount > 0)
		check(codec_name_equal(data, size, off, data, size, v->qname_off) >= 0);
	check(codec_name_to_text(name, (size_t)len, text, sizeof(text)) > 0);
	/* A short output buffer must cut cleanly, never overrun. */
	int t = codec_name_to_text(name, (size_t)len, text, 8);

	check(t > 0 || t == -EMSGSIZE);
	check(strlen(text) < 8);
	codec_name_lower(name, (size_t)len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_view v;
	static uint8_t out[CODEC_MAX_MSG];

	if (codec_scan(data, size, &v) < 0) {
		/* A query that does not scan still gets a header-only FORMERR
		 * when it has a header at all. */
		if (size >= CODEC_HDR_LEN)
			check(codec_build_error(data, size, NULL, CODEC_RCODE_FORMERR,
			                        CODEC_EDE_NONE, NULL, out,
			                        sizeof(out)) == CODEC_HDR_LEN);
		return 0;
	}
	check(v.end == size);
	check(v.an_off <= v.ns_off && v.ns_off <= v.ar_off && v.ar_off <= v.end);
	if (v.qdcount > 0)
		walk_names(data, size, &v, v.qname_off);

	static const enum codec_section secs[] = {CODEC_SEC_ANSWER, CODEC_SEC_AUTHORITY,
	                                          CODEC_SEC_ADDITIONAL};
	unsigned total = 0;

	for (size_t s = 0; s < sizeof(secs) / sizeof(secs[0]); s++) {
		struct codec_rr_iter it;
		struct codec_rr rr;
		int rc;

		codec_rr_iter_init(&it, data, size, &v, secs[s]);
		while ((rc = codec_rr_next(&it, &rr)) == 1) {
			check((size_t)rr.rdata_off + rr.rdlen <= size);
			check(codec_get_u32(data + rr.ttl_off) == rr.ttl);
			walk_names(data, size, &v, rr.owner_off);
			total++;
		}
		check(rc == 0);
	}
	check(total == (unsigned)v.ancount + v.nscount + v.arcount);
	check(codec_question_equal(data, size, &v, data, size, &v) == (v.qdcount > 0));

	/* Replies built from the view must themselves scan, at every size. */
	static const size_t sizes[] = {CODEC_HDR_LEN, 40, 64, 512, CODEC_MAX_MSG};
	const char *texts[] = {NULL, "", "upstream timed out", "\xc3\xa9t\xc3\xa9"};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]); k++) {
			uint16_t ede = k == 0 ? CODEC_EDE_NONE : CODEC_EDE_NO_REACHABLE_AUTHORITY;
			ssize_t n = codec_build_error(data, size, &v, CODEC_RCODE_SERVFAIL, ede,
			                              texts[k], out, sizes[i]);
			struct codec_view r;

			if (n == -EMSGSIZE)
				continue;
			check(n >= CODEC_HDR_LEN && (size_t)n <= sizes[i]);
			check(codec_scan(out, (size_t)n, &r) == 0);
			check(r.id == v.id && r.rcode == CODEC_RCODE_SERVFAIL);
			check(r.has_opt == v.has_opt);
			if (v.qdcount > 0)
				check(codec_question_equal(data, size, &v, out, (size_t)n, &r));
		}
	}
	return 0;
}
