/* tests/fuzz/fuzz_codec_ecs.c - libFuzzer target for the EDNS Client
 * Subnet option parser (codec_ecs_parse), as apexd runs it on a client's
 * query and on a resolver's answer.
 *
 * Input: option data (FAMILY, SOURCE, SCOPE, ADDRESS). Seeds under
 * tests/fuzz/corpus/codec_ecs/ are IPv4 and IPv6 subnets, source 0, and
 * broken options.
 *
 * Invariants, each checked with abort(): whatever parses writes back to
 * the same octets; a query-side parse never accepts a scope; the parsed
 * subnet covers itself and matches itself; its text form reads back to
 * the same subnet; cutting never lengthens it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ecs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_parsed(const uint8_t *data, size_t size, const struct codec_ecs *e)
{
	uint8_t out[CODEC_ECS_OPT_MAX];
	size_t n = codec_ecs_write(e, out, sizeof(out));
	check(n == size + 4);
	check(memcmp(out + 4, data, size) == 0);
	check(codec_ecs_matches(e, e));
	check(codec_ecs_covers(e->family, e->source, e->addr, e));

	char text[80];
	struct codec_ecs back;
	codec_ecs_format(e, false, text, sizeof(text));
	check(codec_ecs_from_text(text, &back) == 0);
	check(back.family == e->family && back.source == e->source);
	check(memcmp(back.addr, e->addr, sizeof(e->addr)) == 0);

	struct codec_ecs cut = *e;
	codec_ecs_cut(&cut, e->source / 2);
	check(cut.source <= e->source);
	check(codec_ecs_covers(cut.family, cut.source, cut.addr, e));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct codec_ecs e;

	if (codec_ecs_parse(data, size, false, &e) == 0)
		check_parsed(data, size, &e);
	if (codec_ecs_parse(data, size, true, &e) == 0) {
		check(e.scope == 0);
		check_parsed(data, size, &e);
	}
	return 0;
}
