/* Unit tests for flatten/chase: the I/O-free chase state machine.
 *
 * Each test plays the proxy: it starts a chase, gives every query a fresh
 * ID, and answers with packets written in presentation format (th_pkt).
 * Our own zone is example.com; everything else goes to the resolvers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec/ecs.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "flatten/chase.h"
#include "flatten/zones.h"
#include "tests/unit/helpers.h"

#define RESP_MAX 8192

/* Header flag words of typical answers. */
#define F_RES 0x8180  /* QR RD RA, NOERROR: a resolver */
#define F_NXD 0x8183  /* the same with NXDOMAIN */
#define F_AUTH 0x8400 /* QR AA: the backend */

#define TYPE_SVCB 64
#define TYPE_HTTPS 65

struct fx {
	struct flat_zones *own;
	struct flat_chase c; /* large: lives in the heap fixture */
	uint16_t next_id;
};

static int setup(void **state)
{
	static const uint8_t apex[] = "\7example\3com";
	const uint8_t *names[] = {apex};
	size_t lens[] = {sizeof(apex)};
	struct fx *f = test_calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(flat_zones_new(&f->own, names, lens, 1), 0);
	f->next_id = 0x1234;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	flat_zones_free(f->own);
	test_free(f);
	return 0;
}

/* "a.b.c" (trailing dot optional) to an uncompressed wire name. */
static size_t wire(const char *text, uint8_t *out)
{
	size_t pos = 0;

	while (*text != '\0' && strcmp(text, ".") != 0) {
		const char *dot = strchr(text, '.');
		size_t l = dot != NULL ? (size_t)(dot - text) : strlen(text);

		out[pos++] = (uint8_t)l;
		memcpy(out + pos, text, l);
		pos += l;
		text += l;
		if (*text == '.')
			text++;
	}
	out[pos++] = 0;
	return pos;
}

static const char *qtype_text(uint16_t qtype)
{
	switch (qtype) {
	case CODEC_TYPE_A:
		return "A";
	case CODEC_TYPE_AAAA:
		return "AAAA";
	case TYPE_SVCB:
		return "SVCB";
	default:
		return "HTTPS";
	}
}

/* Gives the query in c->out a fresh ID, as the proxy must. */
static void give_id(struct fx *f)
{
	flat_chase_set_id(&f->c, f->next_id++);
}

static void init(struct fx *f, unsigned max_chain, unsigned n_resolvers)
{
	struct flat_chase_cfg cfg = {
	        .max_chain = max_chain,
	        .n_resolvers = n_resolvers,
	        .own = f->own,
	};

	flat_chase_init(&f->c, &cfg);
}

static enum flat_step begin(struct fx *f, const char *target, uint16_t qtype)
{
	uint8_t name[CODEC_MAX_NAME];
	size_t len = wire(target, name);
	enum flat_step s = flat_chase_begin(&f->c, name, len, qtype, UINT32_MAX, 0);

	if (s == FLAT_STEP_SEND)
		give_id(f);
	return s;
}

static enum flat_step start(struct fx *f, unsigned n_resolvers, const char *target, uint16_t qtype)
{
	init(f, 8, n_resolvers);
	return begin(f, target, qtype);
}

/* The question of the query in flight, as text. */
static void asked(const struct fx *f, char *buf, size_t n)
{
	uint8_t name[CODEC_MAX_NAME];
	int len = codec_name_unpack(f->c.out, f->c.out_len, CODEC_HDR_LEN, name);

	assert_true(len > 0);
	assert_true(codec_name_to_text(name, (size_t)len, buf, n) > 0);
}

static enum flat_step feed(struct fx *f, const uint8_t *resp, size_t len)
{
	enum flat_step s = flat_chase_input(&f->c, resp, len);

	if (s == FLAT_STEP_SEND)
		give_id(f);
	return s;
}

/*
 * Answers the query in flight: header with its ID and the given flags,
 * its question, then the RR lines of body (printf format).
 */
__attribute__((format(printf, 3, 4))) static enum flat_step reply(struct fx *f, unsigned flags,
                                                                  const char *fmt, ...)
{
	static char body[RESP_MAX * 2];
	static char text[RESP_MAX * 3];
	static uint8_t resp[RESP_MAX];
	char q[CODEC_MAX_NAME * 4 + 1];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	asked(f, q, sizeof(q));
	snprintf(text, sizeof(text), "hdr %u %u\nqd %s IN %s\n%s", codec_hdr_id(f->c.out), flags, q,
	         qtype_text(f->c.qtype), body);

	long n = th_pkt(text, resp, sizeof(resp));

	assert_true(n > 0);
	return feed(f, resp, (size_t)n);
}

static enum flat_step timeout(struct fx *f)
{
	return feed(f, NULL, 0);
}

static void assert_asking(const struct fx *f, const char *name, enum flat_server server,
                          unsigned resolver, bool tcp)
{
	char q[CODEC_MAX_NAME * 4 + 1];

	asked(f, q, sizeof(q));
	assert_string_equal(q, name);
	assert_int_equal(f->c.server, server);
	if (server == FLAT_SERVER_RESOLVER)
		assert_int_equal(f->c.resolver, resolver);
	assert_int_equal(f->c.tcp, tcp);
}

static void assert_addr4(const struct flat_result *r, unsigned i, uint8_t a, uint8_t b, uint8_t c,
                         uint8_t d)
{
	const uint8_t want[4] = {a, b, c, d};

	assert_true(i < r->n_addrs);
	assert_memory_equal(r->addrs[i], want, 4);
}

static void assert_hop(const struct fx *f, unsigned i, const char *name, uint32_t ttl)
{
	char text[CODEC_MAX_NAME * 4 + 1];

	assert_true(i < f->c.n_hop);
	assert_true(codec_name_to_text(f->c.hop[i].name, f->c.hop[i].len, text, sizeof(text)) > 0);
	assert_string_equal(text, name);
	assert_int_equal(f->c.hop[i].ttl, ttl);
}

static void test_chase_fail_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(flat_chase_fail_name(FLAT_CHASE_FAIL_TIMEOUT), "timeout");
	assert_string_equal(flat_chase_fail_name(FLAT_CHASE_FAIL_CHAIN), "chain_too_long");
	for (int i = 0; i < FLAT_CHASE_FAIL_COUNT; i++)
		assert_non_null(flat_chase_fail_name((enum flat_chase_fail)i));
	assert_string_equal(flat_chase_fail_name(FLAT_CHASE_FAIL_COUNT), "?");
}

static void test_chase_direct_a_gives_addrs(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(reply(f, F_RES,
	                       "an cdn.example.net. 300 IN A 192.0.2.1\n"
	                       "an cdn.example.net. 200 IN A 192.0.2.2\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.qtype, CODEC_TYPE_A);
	assert_int_equal(f->c.result.n_addrs, 2);
	assert_addr4(&f->c.result, 0, 192, 0, 2, 1);
	assert_addr4(&f->c.result, 1, 192, 0, 2, 2);
	assert_int_equal(f->c.result.ttl, 200);
	assert_int_equal(f->c.result.hops, 0);
	assert_int_equal(f->c.n_hop, 1);
	assert_hop(f, 0, "cdn.example.net.", 200);
}

static void test_chase_aaaa_gives_addrs(void **state)
{
	struct fx *f = *state;
	static const uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x42};

	assert_int_equal(start(f, 1, "v6.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(codec_get_u16(f->c.out + f->c.out_len - 11 - 4), CODEC_TYPE_AAAA);
	/* An A record in the answer is not what was asked; skipped. */
	assert_int_equal(reply(f, F_RES,
	                       "an v6.example.net. 120 IN AAAA 2001:db8::42\n"
	                       "an v6.example.net. 10 IN A 192.0.2.9\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.qtype, CODEC_TYPE_AAAA);
	assert_int_equal(f->c.result.n_addrs, 1);
	assert_memory_equal(f->c.result.addrs[0], want, 16);
	assert_int_equal(f->c.result.ttl, 120);
}

static void test_chase_chain_in_one_answer_gives_min_ttl(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	/* Out of order on purpose: the walk must not depend on it. */
	assert_int_equal(reply(f, F_RES,
	                       "an d.example.org. 900 IN A 198.51.100.7\n"
	                       "an b.example.org. 600 IN CNAME c.example.org.\n"
	                       "an a.example.net. 3600 IN CNAME b.example.org.\n"
	                       "an c.example.org. 45 IN CNAME d.example.org.\n"
	                       "an unrelated.example. 1 IN A 203.0.113.1\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, 1);
	assert_addr4(&f->c.result, 0, 198, 51, 100, 7);
	assert_int_equal(f->c.result.ttl, 45);
	assert_int_equal(f->c.result.hops, 3);
	assert_int_equal(f->c.n_hop, 4);
	assert_hop(f, 0, "a.example.net.", 3600);
	assert_hop(f, 1, "b.example.org.", 600);
	assert_hop(f, 2, "c.example.org.", 45);
	assert_hop(f, 3, "d.example.org.", 900);
}

static void test_chase_chain_needing_second_query_sends_again(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(timeout(f), FLAT_STEP_SEND); /* resolver 1 now */
	assert_asking(f, "a.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN CNAME b.example.org.\n"),
	                 FLAT_STEP_SEND);
	/* A new name starts again at resolver 0. */
	assert_asking(f, "b.example.org.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(f->c.hop[1].server, FLAT_SERVER_RESOLVER);
	assert_int_equal(reply(f, F_RES, "an b.example.org. 500 IN A 192.0.2.80\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.ttl, 300);
	assert_int_equal(f->c.result.hops, 1);
	assert_hop(f, 0, "a.example.net.", 300);
	assert_hop(f, 1, "b.example.org.", 500);
	assert_int_equal(f->c.hop[0].resolver, 1);
}

static void test_chase_chain_into_own_zone_asks_backend_without_rd(void **state)
{
	struct fx *f = *state;
	struct codec_view v;

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_true(codec_hdr_flags(f->c.out) & CODEC_FLAG_RD);
	assert_int_equal(reply(f, F_RES, "an cdn.example.net. 300 IN CNAME Edge.Example.COM.\n"),
	                 FLAT_STEP_SEND);
	assert_asking(f, "edge.example.com.", FLAT_SERVER_BACKEND, 0, false);
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_false(v.flags & CODEC_FLAG_RD);
	/* ... and out again to the resolver. */
	assert_int_equal(reply(f, F_AUTH, "an edge.example.com. 60 IN CNAME pop.example.org.\n"),
	                 FLAT_STEP_SEND);
	assert_asking(f, "pop.example.org.", FLAT_SERVER_RESOLVER, 0, false);
	assert_true(codec_hdr_flags(f->c.out) & CODEC_FLAG_RD);
	assert_int_equal(reply(f, F_RES, "an pop.example.org. 30 IN A 192.0.2.3\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.ttl, 30);
	assert_int_equal(f->c.result.hops, 2);
	assert_int_equal(f->c.hop[1].server, FLAT_SERVER_BACKEND);
}

static void test_chase_loop_gives_fail(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN CNAME b.example.net.\n"),
	                 FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an b.example.net. 300 IN CNAME A.example.net.\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.result.ede, CODEC_EDE_OTHER);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_LOOP);
	assert_string_equal(f->c.result.why, "CNAME loop at a.example.net.");
	/* Further input changes nothing. */
	assert_int_equal(timeout(f), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
}

static void test_chase_self_loop_gives_fail(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN CNAME a.example.net.\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_string_equal(f->c.result.why, "CNAME loop at a.example.net.");
}

static void test_chase_previsited_owner_gives_loop(void **state)
{
	struct fx *f = *state;
	uint8_t owner[CODEC_MAX_NAME];
	size_t len = wire("Example.COM", owner);

	init(f, 8, 1);
	assert_int_equal(flat_chase_visit(&f->c, owner, len), 0);
	assert_int_equal(flat_chase_visit(&f->c, (const uint8_t *)"\xc0\x0c", 2), -EINVAL);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an cdn.example.net. 300 IN CNAME example.com.\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_string_equal(f->c.result.why, "CNAME loop at example.com.");

	/* A target that is itself pre-visited fails at begin. */
	init(f, 8, 1);
	assert_int_equal(flat_chase_visit(&f->c, owner, len), 0);
	assert_int_equal(begin(f, "example.com", CODEC_TYPE_A), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "CNAME loop at example.com.");

	init(f, 8, 1);
	for (unsigned i = 0; i < FLAT_CHASE_MAX_PREVISIT; i++)
		assert_int_equal(flat_chase_visit(&f->c, owner, len), 0);
	assert_int_equal(flat_chase_visit(&f->c, owner, len), -ENOSPC);
}

/* A chain of n CNAMEs c0 -> c1 -> ... -> cn, then an A at cn. */
static enum flat_step chain_of(struct fx *f, unsigned max_chain, unsigned n)
{
	static char body[RESP_MAX];
	size_t pos = 0;

	init(f, max_chain, 1);
	assert_int_equal(begin(f, "c0.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	for (unsigned i = 0; i < n; i++)
		pos += (size_t)snprintf(body + pos, sizeof(body) - pos,
		                        "an c%u.example.net. %u IN CNAME c%u.example.net.\n", i,
		                        1000 - i, i + 1);
	snprintf(body + pos, sizeof(body) - pos, "an c%u.example.net. 5000 IN A 192.0.2.1\n", n);
	return reply(f, F_RES, "%s", body);
}

static void test_chase_depth_exactly_max_chain_gives_addrs(void **state)
{
	struct fx *f = *state;

	assert_int_equal(chain_of(f, 4, 4), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.hops, 4);
	assert_int_equal(f->c.result.ttl, 997);
	assert_int_equal(f->c.n_hop, 5);

	/* The hard cap: 32 CNAMEs fill all 33 hop slots. */
	assert_int_equal(chain_of(f, 1000, FLAT_CHASE_MAX_CHAIN), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.n_hop, FLAT_CHASE_MAX_CHAIN + 1);
}

static void test_chase_depth_over_max_chain_gives_fail(void **state)
{
	struct fx *f = *state;

	assert_int_equal(chain_of(f, 4, 5), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.result.ede, CODEC_EDE_OTHER);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_CHAIN);
	assert_string_equal(f->c.result.why, "chain longer than 4 at c5.example.net.");
	assert_int_equal(f->c.result.hops, 4);

	/* CNAMEs the caller followed before the chase count too. */
	uint8_t name[CODEC_MAX_NAME];
	size_t len = wire("t.example.net", name);

	init(f, 4, 1);
	assert_int_equal(flat_chase_begin(&f->c, name, len, CODEC_TYPE_A, 100, 4), FLAT_STEP_SEND);
	give_id(f);
	assert_int_equal(reply(f, F_RES, "an t.example.net. 50 IN CNAME u.example.net.\n"),
	                 FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "chain longer than 4 at u.example.net.");
	init(f, 4, 1);
	assert_int_equal(flat_chase_begin(&f->c, name, len, CODEC_TYPE_A, 100, 5), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "chain longer than 4 at t.example.net.");
}

static void test_chase_initial_ttl_and_hops_carry_into_result(void **state)
{
	struct fx *f = *state;
	uint8_t name[CODEC_MAX_NAME];
	size_t len = wire("t.example.net", name);

	init(f, 8, 1);
	assert_int_equal(flat_chase_begin(&f->c, name, len, CODEC_TYPE_A, 100, 2), FLAT_STEP_SEND);
	give_id(f);
	assert_int_equal(reply(f, F_RES, "an t.example.net. 3000 IN A 192.0.2.1\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.ttl, 100);
	assert_int_equal(f->c.result.hops, 2);
}

static void test_chase_ttl_with_top_bit_counts_as_zero(void **state)
{
	struct fx *f = *state;
	uint8_t resp[RESP_MAX];
	char text[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;

	assert_int_equal(start(f, 1, "t.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	snprintf(text, sizeof(text),
	         "hdr %u 0x8180\nqd t.example.net. IN A\n"
	         "an t.example.net. 300 IN A 192.0.2.1\n",
	         codec_hdr_id(f->c.out));
	long n = th_pkt(text, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(codec_scan(resp, (size_t)n, &v), 0);
	codec_rr_iter_init(&it, resp, (size_t)n, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	/* RFC 2181 8: 2^31 and above are read as 0. */
	codec_put_u32(resp + rr.ttl_off, 0x80000000u);
	assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.ttl, 0);
}

static void test_chase_nxdomain_gives_nxdomain(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "gone.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_NXD,
	                       "ns example.net. 3600 IN SOA ns.example.net. "
	                       "h.example.net. 1 7200 900 1209600 300\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NXDOMAIN);
	assert_int_equal(f->c.result.ttl, 300);

	/* After CNAMEs in the same answer it is about the last name. */
	assert_int_equal(start(f, 1, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_NXD,
	                       "an a.example.net. 100 IN CNAME x.example.org.\n"
	                       "ns example.org. 3600 IN SOA ns.example.org. "
	                       "h.example.org. 1 7200 900 1209600 300\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NXDOMAIN);
	assert_int_equal(f->c.result.ttl, 100);
	assert_int_equal(f->c.result.hops, 1);
	assert_hop(f, 1, "x.example.org.", 300);
}

static void test_chase_nodata_with_soa_gives_negative_ttl(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "v4only.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	/* min(SOA TTL 120, MINIMUM 600). */
	assert_int_equal(reply(f, F_RES,
	                       "an v4only.example.net. 60 IN A 192.0.2.1\n"
	                       "ns example.net. 120 IN SOA ns.example.net. "
	                       "h.example.net. 1 7200 900 1209600 600\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.result.ttl, 120);

	/* ... and MINIMUM when it is the smaller. */
	assert_int_equal(start(f, 1, "v4only.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "ns example.net. 3600 IN SOA ns.example.net. "
	                       "h.example.net. 1 7200 900 1209600 30\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.result.ttl, 30);
}

static void test_chase_nodata_without_soa_gives_60(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "v4only.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "ns example.net. 3600 IN NS ns.example.net.\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.result.ttl, FLAT_CHASE_NEG_TTL_NOSOA);
	assert_int_equal(FLAT_CHASE_NEG_TTL_NOSOA, 60);
}

static void test_chase_servfail_fails_over_to_next_resolver(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 3, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8182, ";"), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(reply(f, F_RES, "an cdn.example.net. 300 IN A 192.0.2.1\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	/* The first resolver's failure does not linger in a success. */
	assert_int_equal(f->c.result.ede, 0);
	assert_string_equal(f->c.result.why, "");
}

static void test_chase_errors_at_every_resolver_give_precise_text(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8182, ";"), FLAT_STEP_SEND);
	/* The last resolver timing out does not hide what the first said. */
	assert_int_equal(timeout(f), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.result.ede, CODEC_EDE_OTHER);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_RCODE);
	assert_string_equal(f->c.result.why, "resolver 0 answered SERVFAIL for cdn.example.net.");

	/* REFUSED without a question still counts as that server's answer. */
	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(timeout(f), FLAT_STEP_SEND);
	uint8_t refused[CODEC_HDR_LEN] = {0};

	codec_put_u16(refused, codec_hdr_id(f->c.out));
	codec_put_u16(refused + 2, 0x8105);
	assert_int_equal(feed(f, refused, sizeof(refused)), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "resolver 1 answered REFUSED for cdn.example.net.");

	/* A query (QR=0) is unusable: a network error. */
	assert_int_equal(start(f, 1, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x0100, ";"), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NETWORK_ERROR);
	assert_string_equal(f->c.result.why,
	                    "resolver 0 sent a query, not an answer for cdn.example.net.");

	/* So is another opcode. */
	assert_int_equal(start(f, 1, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0xa000, ";"), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why,
	                    "resolver 0 answered with opcode 4 for cdn.example.net.");
}

static void test_chase_all_timeouts_give_ede_22(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 3, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(timeout(f), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(timeout(f), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 2, false);
	assert_int_equal(timeout(f), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NO_REACHABLE_AUTHORITY);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_TIMEOUT);
	assert_string_equal(f->c.result.why, "no resolver answered for cdn.example.net.");
	assert_int_equal(f->c.hop[0].ttl, UINT32_MAX);
}

static void test_chase_backend_timeout_gives_fail_without_failover(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "www.example.com", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_asking(f, "www.example.com.", FLAT_SERVER_BACKEND, 0, false);
	assert_int_equal(timeout(f), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NO_REACHABLE_AUTHORITY);
	assert_string_equal(f->c.result.why, "backend did not answer for www.example.com.");

	assert_int_equal(start(f, 2, "www.example.com", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8002, ";"), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "backend answered SERVFAIL for www.example.com.");
}

static void test_chase_backend_referral_asks_resolver(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "www.cdn.example.com", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_asking(f, "www.cdn.example.com.", FLAT_SERVER_BACKEND, 0, false);
	/* AA=0, no answer, NS in authority: cdn.example.com is delegated. */
	assert_int_equal(reply(f, 0x8000, "ns cdn.example.com. 3600 IN NS ns1.cdn.example.org.\n"),
	                 FLAT_STEP_SEND);
	assert_asking(f, "www.cdn.example.com.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(reply(f, F_RES, "an www.cdn.example.com. 20 IN A 192.0.2.44\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);

	/* An authoritative NODATA from the backend is final. */
	assert_int_equal(start(f, 1, "www.example.com", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_AUTH,
	                       "ns example.com. 3600 IN SOA ns.example.com. "
	                       "h.example.com. 1 7200 900 1209600 90\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.result.ttl, 90);
}

static void test_chase_no_resolvers_gives_fail(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 0, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_NO_RESOLVER);
	assert_string_equal(f->c.result.why, "no resolver configured for cdn.example.net.");

	/* Invalid arguments are reported, not crashed on. */
	init(f, 8, 1);
	assert_int_equal(
	        flat_chase_begin(&f->c, (const uint8_t *)"\3abc", 4, CODEC_TYPE_A, UINT32_MAX, 0),
	        FLAT_STEP_DONE);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_MX), FLAT_STEP_DONE);
	assert_string_equal(f->c.result.why, "invalid chase target");
	/* Input before begin too. */
	init(f, 8, 1);
	assert_int_equal(flat_chase_input(&f->c, NULL, 0), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
}

static void test_chase_tc_over_udp_retries_tcp(void **state)
{
	struct fx *f = *state;
	uint8_t first[FLAT_CHASE_OUT_MAX];

	assert_int_equal(start(f, 2, "big.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	uint16_t first_len = f->c.out_len;

	memcpy(first, f->c.out, first_len);
	assert_int_equal(reply(f, 0x8380, ";"), FLAT_STEP_SEND);
	assert_asking(f, "big.example.net.", FLAT_SERVER_RESOLVER, 0, true);
	/* The same question, with a new ID. */
	assert_int_equal(f->c.out_len, first_len);
	assert_memory_equal(f->c.out + 2, first + 2, first_len - 2u);
	assert_int_not_equal(codec_hdr_id(f->c.out), codec_hdr_id(first));
	assert_int_equal(reply(f, F_RES, "an big.example.net. 300 IN A 192.0.2.1\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
}

static void test_chase_tc_over_tcp_fails_over(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 2, "big.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8380, ";"), FLAT_STEP_SEND);
	assert_true(f->c.tcp);
	assert_int_equal(reply(f, 0x8380, ";"), FLAT_STEP_SEND);
	/* The next resolver starts over UDP. */
	assert_asking(f, "big.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(reply(f, 0x8380, ";"), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8380, ";"), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NETWORK_ERROR);
	assert_string_equal(f->c.result.why,
	                    "resolver 1 truncated its TCP answer for big.example.net.");
}

static void test_chase_wrong_id_gives_wait(void **state)
{
	struct fx *f = *state;
	uint8_t resp[RESP_MAX];

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	uint8_t out[FLAT_CHASE_OUT_MAX];
	uint16_t out_len = f->c.out_len;

	memcpy(out, f->c.out, out_len);
	long n = th_pkt("hdr 7 0x8180\nqd cdn.example.net. IN A\n"
	                "an cdn.example.net. 300 IN A 6.6.6.6\n",
	                resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_not_equal(codec_hdr_id(f->c.out), 7);
	assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_WAIT);
	/* Too short to hold an ID: not ours either. */
	assert_int_equal(feed(f, resp, 1), FLAT_STEP_WAIT);
	/* Nothing moved. */
	assert_int_equal(f->c.out_len, out_len);
	assert_memory_equal(f->c.out, out, out_len);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(reply(f, F_RES, "an cdn.example.net. 300 IN A 192.0.2.1\n"),
	                 FLAT_STEP_DONE);
	assert_addr4(&f->c.result, 0, 192, 0, 2, 1);
}

static void test_chase_wrong_question_gives_wait(void **state)
{
	struct fx *f = *state;
	uint8_t resp[RESP_MAX];
	char text[512];
	const char *wrong[] = {"qd other.example.net. IN A", "qd cdn.example.net. IN AAAA",
	                       "qd cdn.example.net. CH A"};

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		snprintf(text, sizeof(text), "hdr %u 0x8180\n%s\n", codec_hdr_id(f->c.out),
		         wrong[i]);
		long n = th_pkt(text, resp, sizeof(resp));

		assert_true(n > 0);
		assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_WAIT);
	}
	/* The question echoed in another case is the same question. */
	snprintf(text, sizeof(text),
	         "hdr %u 0x8180\nqd CDN.Example.NET. IN A\nan cdn.example.net. 9 IN A 192.0.2.1\n",
	         codec_hdr_id(f->c.out));
	long n = th_pkt(text, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
}

static void test_chase_malformed_answer_fails_over(void **state)
{
	struct fx *f = *state;
	uint8_t resp[RESP_MAX];
	char text[512];

	assert_int_equal(start(f, 2, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	snprintf(text, sizeof(text),
	         "hdr %u 0x8180\nqd cdn.example.net. IN A\n"
	         "an cdn.example.net. 300 IN A 192.0.2.1\n",
	         codec_hdr_id(f->c.out));
	long n = th_pkt(text, resp, sizeof(resp));

	assert_true(n > 0);
	/* One octet short: the RR's RDATA runs past the end. */
	assert_int_equal(feed(f, resp, (size_t)n - 1), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	/* A header alone with our ID, claiming a question, is malformed too. */
	uint8_t hdr[CODEC_HDR_LEN] = {0};

	codec_put_u16(hdr, codec_hdr_id(f->c.out));
	codec_put_u16(hdr + 2, 0x8180);
	codec_put_u16(hdr + 4, 1);
	assert_int_equal(feed(f, hdr, sizeof(hdr)), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NETWORK_ERROR);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_BAD_ANSWER);
	assert_string_equal(f->c.result.why,
	                    "resolver 1 sent a malformed answer for cdn.example.net.");
}

static void test_chase_70_addresses_keeps_64(void **state)
{
	struct fx *f = *state;
	static char body[RESP_MAX];
	size_t pos = 0;

	assert_int_equal(start(f, 1, "many.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	for (unsigned i = 0; i < 70; i++)
		pos += (size_t)snprintf(body + pos, sizeof(body) - pos,
		                        "an many.example.net. %u IN A 10.0.0.%u\n", 500 - i, i + 1);
	assert_int_equal(reply(f, F_RES, "%s", body), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, FLAT_MAX_ADDRS);
	assert_addr4(&f->c.result, 0, 10, 0, 0, 1);
	assert_addr4(&f->c.result, 63, 10, 0, 0, 64);
	/* The TTL still covers every RR of the set. */
	assert_int_equal(f->c.result.ttl, 431);
}

static void test_chase_duplicate_addresses_deduplicated(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "dup.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an dup.example.net. 300 IN A 192.0.2.1\n"
	                       "an dup.example.net. 300 IN A 192.0.2.2\n"
	                       "an DUP.example.net. 300 IN A 192.0.2.1\n"
	                       "an dup.example.net. 300 IN A 192.0.2.2\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.n_addrs, 2);
	assert_addr4(&f->c.result, 0, 192, 0, 2, 1);
	assert_addr4(&f->c.result, 1, 192, 0, 2, 2);
}

static void test_chase_a_rdlen_5_fails_over(void **state)
{
	struct fx *f = *state;
	uint8_t resp[RESP_MAX];
	char text[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;

	assert_int_equal(start(f, 2, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	/* A CNAME first, so the rollback of a half-used answer is tested. A
	 * TXT "abcd" has 5 octets of RDATA; retyping it makes a bad A. */
	snprintf(text, sizeof(text),
	         "hdr %u 0x8180\nqd a.example.net. IN A\n"
	         "an a.example.net. 300 IN CNAME b.example.net.\n"
	         "an b.example.net. 300 IN TXT \"abcd\"\n",
	         codec_hdr_id(f->c.out));
	long n = th_pkt(text, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(codec_scan(resp, (size_t)n, &v), 0);
	codec_rr_iter_init(&it, resp, (size_t)n, &v, CODEC_SEC_ANSWER);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.rdlen, 5);
	codec_put_u16(resp + rr.ttl_off - 4, CODEC_TYPE_A);

	assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_SEND);
	assert_asking(f, "a.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(f->c.n_hop, 1);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN A 192.0.2.1\n"), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.hops, 0);
	assert_int_equal(f->c.result.n_addrs, 1);

	/* At the last resolver the text says what was wrong. */
	assert_int_equal(start(f, 1, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	codec_put_u16(resp, codec_hdr_id(f->c.out));
	assert_int_equal(feed(f, resp, (size_t)n), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.ede, CODEC_EDE_NETWORK_ERROR);
	assert_string_equal(f->c.result.why,
	                    "resolver 0 sent an A record of 5 octets for a.example.net.");
	assert_int_equal(f->c.result.hops, 0);
}

static void test_chase_mixed_case_owner_matched(void **state)
{
	struct fx *f = *state;
	uint8_t name[CODEC_MAX_NAME];
	size_t len = wire("WwW.Example.NET", name);

	init(f, 8, 1);
	assert_int_equal(flat_chase_begin(&f->c, name, len, CODEC_TYPE_A, UINT32_MAX, 0),
	                 FLAT_STEP_SEND);
	give_id(f);
	/* The query goes out lowercase. */
	assert_asking(f, "www.example.net.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(reply(f, F_RES,
	                       "an WWW.EXAMPLE.net. 300 IN CNAME Edge.CDN.example.\n"
	                       "an edge.cdn.EXAMPLE. 100 IN A 192.0.2.5\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.ttl, 100);
	assert_hop(f, 1, "edge.cdn.example.", 100);
}

static void test_chase_dname_then_cname_followed(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "www.old.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an old.example.net. 3600 IN DNAME new.example.org.\n"
	                       "an www.old.example.net. 3600 IN CNAME www.new.example.org.\n"
	                       "an www.new.example.org. 50 IN A 192.0.2.6\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.hops, 1);
	assert_int_equal(f->c.result.ttl, 50);
	assert_addr4(&f->c.result, 0, 192, 0, 2, 6);
}

static void test_chase_query_bytes_well_formed(void **state)
{
	struct fx *f = *state;
	struct codec_view v;
	uint8_t want[CODEC_MAX_NAME];
	size_t len = wire("cdn.example.net", want);
	uint8_t name[CODEC_MAX_NAME];

	init(f, 8, 1);
	size_t ulen = wire("CDN.Example.Net", name);

	assert_int_equal(flat_chase_begin(&f->c, name, ulen, CODEC_TYPE_A, UINT32_MAX, 0),
	                 FLAT_STEP_SEND);
	/* The chase leaves the ID to the caller. */
	assert_int_equal(codec_hdr_id(f->c.out), 0);
	flat_chase_set_id(&f->c, 0xbeef);
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_int_equal(v.id, 0xbeef);
	assert_int_equal(v.flags, CODEC_FLAG_RD);
	assert_int_equal(v.qdcount, 1);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 1);
	assert_int_equal(v.qname_len, len);
	assert_memory_equal(f->c.out + v.qname_off, want, len);
	assert_int_equal(v.qtype, CODEC_TYPE_A);
	assert_int_equal(v.qclass, CODEC_CLASS_IN);
	assert_true(v.has_opt);
	assert_int_equal(v.udp_size, CODEC_EDNS_UDP_SIZE);
	assert_false(v.do_bit);
	assert_int_equal(v.edns_version, 0);
	assert_int_equal(v.opt_rdlen, 0);
	assert_int_equal(v.end, f->c.out_len);

	/* Towards the backend: RD=0. */
	init(f, 8, 1);
	assert_int_equal(begin(f, "WWW.example.com", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_int_equal(v.flags, 0);
	assert_int_equal(v.qtype, CODEC_TYPE_AAAA);
	assert_true(v.has_opt);
	assert_asking(f, "www.example.com.", FLAT_SERVER_BACKEND, 0, false);
}

/* The defaults ([resolver] timeout = [flatten] deadline = 1500ms) with two
 * resolvers: the first try may not take the whole deadline, or failover
 * to the second never helps the query that caused it. */
static void test_chase_try_ms_splits_deadline_among_resolvers_left(void **state)
{
	(void)state;
	assert_int_equal(flat_chase_try_ms(1500, 2, 1500), 750);
	/* The first timed out at 750: the second gets what is left. */
	assert_int_equal(flat_chase_try_ms(750, 1, 1500), 750);
	/* A shorter key timeout wins over the share. */
	assert_int_equal(flat_chase_try_ms(1500, 2, 500), 500);
	/* One resolver (or the backend) gets the rest, capped by its key. */
	assert_int_equal(flat_chase_try_ms(1400, 1, 1500), 1400);
	assert_int_equal(flat_chase_try_ms(1400, 1, 1000), 1000);
	/* Little or nothing left: the floor, unless the key is shorter. */
	assert_int_equal(flat_chase_try_ms(0, 3, 1500), FLAT_CHASE_TRY_MIN_MS);
	assert_int_equal(flat_chase_try_ms(150, 3, 1500), FLAT_CHASE_TRY_MIN_MS);
	assert_int_equal(flat_chase_try_ms(0, 3, 60), 60);
	assert_int_equal(flat_chase_try_ms(900, 0, 1500), 900);
	/* Three resolvers fit in the default deadline. */
	assert_true(3 * flat_chase_try_ms(1500, 3, 1500) <= 1500);
}

/* --- SVCB and HTTPS (RFC 9460) -------------------------------------- */

/* One RR of a raw answer: RDATA as the test writes it, byte for byte. */
struct raw_rr {
	const uint8_t *rd;
	size_t len;
	uint32_t ttl;
};

/*
 * Answers the query in flight with n RRs of the asked type owned by the
 * question name (a pointer to it), written by hand: RDATA that ldns
 * would refuse to write (a compressed TargetName) comes out as given.
 */
static enum flat_step reply_raw(struct fx *f, const struct raw_rr *rrs, size_t n)
{
	static uint8_t resp[RESP_MAX];
	struct codec_view v;

	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	size_t qend = v.question_end;
	size_t pos = qend;

	memcpy(resp, f->c.out, qend);
	codec_put_u16(resp + 2, F_RES);
	codec_put_u16(resp + 6, (uint16_t)n);
	codec_put_u16(resp + 10, 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(pos + 12 + rrs[i].len <= sizeof(resp));
		codec_put_u16(resp + pos, 0xc00c);
		codec_put_u16(resp + pos + 2, f->c.qtype);
		codec_put_u16(resp + pos + 4, CODEC_CLASS_IN);
		codec_put_u32(resp + pos + 6, rrs[i].ttl);
		codec_put_u16(resp + pos + 10, (uint16_t)rrs[i].len);
		memcpy(resp + pos + 12, rrs[i].rd, rrs[i].len);
		pos += 12 + rrs[i].len;
	}
	return feed(f, resp, pos);
}

/* The i-th RDATA of the result's stream; fails the test past the end. */
static const uint8_t *rdata_at(const struct flat_result *r, unsigned i, size_t *len)
{
	size_t pos = 0;

	for (;;) {
		assert_true(pos + 2 <= r->rdata_len);
		size_t n = codec_get_u16(r->rdata + pos);

		assert_true(pos + 2 + n <= r->rdata_len);
		if (i-- == 0) {
			*len = n;
			return r->rdata + pos + 2;
		}
		pos += 2 + n;
	}
}

static void assert_rdata(const struct flat_result *r, unsigned i, const uint8_t *want,
                         size_t want_len)
{
	size_t len;
	const uint8_t *rd = rdata_at(r, i, &len);

	assert_int_equal(len, want_len);
	assert_memory_equal(rd, want, want_len);
}

static void test_chase_https_service_mode_keeps_rdata_in_order(void **state)
{
	struct fx *f = *state;
	/* 1 . alpn=h2,h3 ipv4hint=192.0.2.1 */
	static const uint8_t rd1[] = {0,   1,   0, 0, 1, 0, 6,   2, 'h', '2', 2,
	                              'h', '3', 0, 4, 0, 4, 192, 0, 2,   1};
	/* 2 svc.example.net. port=8443 */
	static const uint8_t rd2[] = {0,   2, 3,   's', 'v', 'c', 7, 'e', 'x', 'a', 'm',  'p', 'l',
	                              'e', 3, 'n', 'e', 't', 0,   0, 3,   0,   2,   0x20, 0xfb};
	struct codec_view v;

	assert_int_equal(start(f, 2, "www.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_int_equal(v.qtype, TYPE_HTTPS);
	/* The server's order, not the priority order: the client sorts. */
	assert_int_equal(reply(f, F_RES,
	                       "an www.example.net. 300 IN HTTPS 2 svc.example.net. port=8443\n"
	                       "an www.example.net. 120 IN A 192.0.2.7\n"
	                       "an www.example.net. 200 IN HTTPS 1 . alpn=h2,h3 "
	                       "ipv4hint=192.0.2.1\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.qtype, TYPE_HTTPS);
	assert_int_equal(f->c.result.n_addrs, 2);
	assert_int_equal(f->c.result.rdata_len, 2 + sizeof(rd2) + 2 + sizeof(rd1));
	assert_rdata(&f->c.result, 0, rd2, sizeof(rd2));
	assert_rdata(&f->c.result, 1, rd1, sizeof(rd1));
	/* Min over the RRset; the A next to it is not part of it. */
	assert_int_equal(f->c.result.ttl, 200);
	assert_hop(f, 0, "www.example.net.", 200);
}

static void test_chase_svcb_alias_mode_kept_as_is(void **state)
{
	struct fx *f = *state;
	/* 0 pool.example.org. */
	static const uint8_t rd[] = {0,   0,   4,   'p', 'o', 'o', 'l', 7,   'e', 'x',
	                             'a', 'm', 'p', 'l', 'e', 3,   'o', 'r', 'g', 0};

	assert_int_equal(start(f, 1, "_dns.resolver.example.net", TYPE_SVCB), FLAT_STEP_SEND);
	assert_int_equal(
	        reply(f, F_RES, "an _dns.resolver.example.net. 600 IN SVCB 0 pool.example.org.\n"),
	        FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.qtype, TYPE_SVCB);
	assert_int_equal(f->c.result.n_addrs, 1);
	assert_rdata(&f->c.result, 0, rd, sizeof(rd));
	assert_int_equal(f->c.result.ttl, 600);
}

static void test_chase_https_through_cname_min_ttl(void **state)
{
	struct fx *f = *state;
	static const uint8_t rd[] = {0, 1, 0, 0, 1, 0, 3, 2, 'h', '2'};
	struct codec_view v;

	assert_int_equal(start(f, 2, "a.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 50 IN CNAME b.example.org.\n"),
	                 FLAT_STEP_SEND);
	/* The next name is asked for the same type. */
	assert_asking(f, "b.example.org.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_int_equal(v.qtype, TYPE_HTTPS);
	assert_int_equal(reply(f, F_RES, "an b.example.org. 300 IN HTTPS 1 . alpn=h2\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, 1);
	assert_rdata(&f->c.result, 0, rd, sizeof(rd));
	assert_int_equal(f->c.result.ttl, 50);
	assert_int_equal(f->c.result.hops, 1);
	assert_hop(f, 0, "a.example.net.", 50);
	assert_hop(f, 1, "b.example.org.", 300);

	/* A CNAME and its target in one answer, as a resolver sends it. */
	assert_int_equal(start(f, 1, "a.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an b.example.org. 30 IN HTTPS 1 . alpn=h2\n"
	                       "an a.example.net. 50 IN CNAME b.example.org.\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_rdata(&f->c.result, 0, rd, sizeof(rd));
	assert_int_equal(f->c.result.ttl, 30);
}

static void test_chase_https_nodata_gives_nodata(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "plain.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an plain.example.net. 60 IN A 192.0.2.1\n"
	                       "ns example.net. 120 IN SOA ns.example.net. "
	                       "h.example.net. 1 7200 900 1209600 600\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.result.n_addrs, 0);
	assert_int_equal(f->c.result.ttl, 120);

	/* NXDOMAIN after a CNAME, as for addresses. */
	assert_int_equal(start(f, 1, "a.example.net", TYPE_SVCB), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_NXD,
	                       "an a.example.net. 300 IN CNAME gone.example.org.\n"
	                       "ns example.org. 40 IN SOA ns.example.org. "
	                       "h.example.org. 1 7200 900 1209600 600\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NXDOMAIN);
	assert_int_equal(f->c.result.ttl, 40);
}

/* 1 . ech=<vlen zero octets>: a record of 7 + vlen octets. */
static size_t big_rdata(uint8_t *rd, size_t vlen)
{
	memset(rd, 0, 7 + vlen);
	rd[1] = 1;
	rd[4] = 5; /* key 5, ech */
	codec_put_u16(rd + 5, (uint16_t)vlen);
	return 7 + vlen;
}

static void test_chase_https_too_large_fails_without_failover(void **state)
{
	struct fx *f = *state;
	static uint8_t rd[4][400];
	struct raw_rr rrs[4];

	for (unsigned i = 0; i < 4; i++) {
		rrs[i].len = big_rdata(rd[i], 300);
		rd[i][10] = (uint8_t)i; /* four different records */
		rrs[i].rd = rd[i];
		rrs[i].ttl = 300;
	}
	/* Three records fit FLAT_RDATA_MAX ... */
	assert_int_equal(start(f, 2, "big.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply_raw(f, rrs, 3), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, 3);
	assert_int_equal(f->c.result.rdata_len, 3 * (2 + 307));
	assert_rdata(&f->c.result, 2, rd[2], 307);

	/* ... four do not, and the next resolver would send the same. */
	assert_int_equal(start(f, 2, "big.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply_raw(f, rrs, 4), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_BAD_ANSWER);
	assert_int_equal(f->c.result.ede, CODEC_EDE_OTHER);
	assert_string_equal(f->c.result.why, "HTTPS RRset too large at big.example.net.");
	assert_int_equal(f->c.result.n_addrs, 0);
}

static void test_chase_svcb_too_many_records_fails(void **state)
{
	struct fx *f = *state;
	static uint8_t rd[FLAT_MAX_ADDRS + 1][8];
	struct raw_rr rrs[FLAT_MAX_ADDRS + 1];

	/* 65 small records of 8 octets fit the octets, not the count. */
	for (unsigned i = 0; i < FLAT_MAX_ADDRS + 1; i++) {
		big_rdata(rd[i], 1);
		rd[i][7] = (uint8_t)i;
		rrs[i].rd = rd[i];
		rrs[i].len = 8;
		rrs[i].ttl = 60;
	}
	assert_int_equal(start(f, 1, "many.example.net", TYPE_SVCB), FLAT_STEP_SEND);
	assert_int_equal(reply_raw(f, rrs, FLAT_MAX_ADDRS), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, FLAT_MAX_ADDRS);

	assert_int_equal(start(f, 1, "many.example.net", TYPE_SVCB), FLAT_STEP_SEND);
	assert_int_equal(reply_raw(f, rrs, FLAT_MAX_ADDRS + 1), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_string_equal(f->c.result.why, "SVCB RRset too large at many.example.net.");
}

static void test_chase_https_duplicates_deduplicated(void **state)
{
	struct fx *f = *state;
	static const uint8_t rd[] = {0, 1, 0};
	const struct raw_rr rrs[] = {{rd, sizeof(rd), 90}, {rd, sizeof(rd), 80}};

	assert_int_equal(start(f, 1, "dup.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply_raw(f, rrs, 2), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.result.n_addrs, 1);
	assert_int_equal(f->c.result.rdata_len, 2 + sizeof(rd));
	assert_int_equal(f->c.result.ttl, 80);
}

/* RDATA that cannot be copied into another message as it is. */
static void test_chase_https_malformed_rdata_fails_over(void **state)
{
	struct fx *f = *state;
	static const uint8_t good[] = {0, 1, 0};
	static uint8_t bad[8][200] = {
	        /* TargetName compressed: a pointer to the question name. */
	        {0, 1, 0xc0, 0x0c},
	        /* TargetName running past the RDATA. */
	        {0, 1, 3, 'w', 'w'},
	        /* no TargetName at all */
	        {0, 1},
	        /* A param running past the RDATA. */
	        {0, 1, 0, 0, 3, 0, 4, 0, 0x35},
	        /* Keys not strictly increasing: port, then alpn. */
	        {0, 1, 0, 0, 3, 0, 2, 0, 0x35, 0, 1, 0},
	        /* An extended label type in the TargetName. */
	        {0, 1, 0x41, 0},
	        /* Below: 0xc0 and 0x41 octets with room for them to be read
	         * as label lengths, so only the label type check stops them. */
	};
	static size_t bad_len[8] = {4, 5, 2, 9, 12, 4};

	/* A pointer octet followed by 192 more octets and a root. */
	bad[6][1] = 1;
	bad[6][2] = 0xc0;
	memset(bad[6] + 3, 'a', 192);
	bad_len[6] = 3 + 192 + 1;
	/* A 65-octet "label" (0x41 is type 01, extended). */
	bad[7][1] = 1;
	bad[7][2] = 0x41;
	memset(bad[7] + 3, 'a', 65);
	bad_len[7] = 3 + 65 + 1;
	for (unsigned i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		/* After a good record, so the rollback is exercised too. */
		const struct raw_rr rrs[] = {{good, sizeof(good), 60}, {bad[i], bad_len[i], 60}};
		const struct raw_rr ok[] = {{good, sizeof(good), 60}};

		assert_int_equal(start(f, 2, "x.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
		assert_int_equal(reply_raw(f, rrs, 2), FLAT_STEP_SEND);
		assert_asking(f, "x.example.net.", FLAT_SERVER_RESOLVER, 1, false);
		assert_int_equal(f->c.result.n_addrs, 0);
		assert_int_equal(f->c.result.rdata_len, 0);
		assert_int_equal(reply_raw(f, rrs, 2), FLAT_STEP_DONE);
		assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
		assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_BAD_ANSWER);
		assert_int_equal(f->c.result.ede, CODEC_EDE_NETWORK_ERROR);
		assert_string_equal(f->c.result.why,
		                    "resolver 1 sent a malformed HTTPS record for x.example.net.");

		/* The same record alone from the second resolver is fine. */
		assert_int_equal(start(f, 2, "x.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
		assert_int_equal(reply_raw(f, rrs, 2), FLAT_STEP_SEND);
		assert_int_equal(reply_raw(f, ok, 1), FLAT_STEP_DONE);
		assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
		assert_int_equal(f->c.result.ede, 0);
	}
}

static void test_chase_other_qtypes_refused(void **state)
{
	struct fx *f = *state;

	assert_int_equal(start(f, 1, "x.example.net", CODEC_TYPE_TXT), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_INVALID);
	assert_int_equal(start(f, 1, "x.example.net", CODEC_TYPE_ANY), FLAT_STEP_DONE);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_INVALID);
}

/* --- EDNS Client Subnet (RFC 7871) ----------------------------------- */

/* 192.0.2.0/24 and 2001:db8:1200::/40, as the proxy hands them over. */
static const struct codec_ecs ecs4 = {CODEC_ECS_FAMILY_IP4, 24, 0, {192, 0, 2}};
static const struct codec_ecs ecs6 = {CODEC_ECS_FAMILY_IP6, 40, 0, {0x20, 0x01, 0x0d, 0xb8, 0x12}};

/* The options of ecs4 with a given SCOPE, as "edns" lines of reply(). */
#define EDNS_ECS4(scope) "edns 1232 0008 0007 0001 18 " scope " c00002\n"

static void init_ecs(struct fx *f, unsigned n_resolvers, const struct codec_ecs *ecs)
{
	struct flat_chase_cfg cfg = {
	        .max_chain = 8,
	        .n_resolvers = n_resolvers,
	        .own = f->own,
	        .ecs = ecs,
	};

	flat_chase_init(&f->c, &cfg);
}

/* The query in flight's ECS option: 1 (out filled) or 0 (none). */
static int sent_ecs(const struct fx *f, struct codec_ecs *out)
{
	struct codec_view v;

	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_true(v.has_opt);
	return codec_ecs_find(f->c.out, &v, true, out);
}

static void test_chase_ecs_copied_at_init(void **state)
{
	struct fx *f = *state;
	/* Bits past SOURCE and a SCOPE: neither may reach the wire. */
	struct codec_ecs e = {CODEC_ECS_FAMILY_IP4, 20, 7, {192, 0, 0x2f, 9}};

	init_ecs(f, 1, &e);
	memset(&e, 0, sizeof(e)); /* the chase keeps its own copy */
	assert_ptr_equal(f->c.cfg.ecs, &f->c.ecs);
	assert_int_equal(f->c.ecs.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(f->c.ecs.scope, 0);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);

	struct codec_ecs got;
	const uint8_t want[4] = {192, 0, 0x20, 0};

	assert_int_equal(sent_ecs(f, &got), 1);
	assert_int_equal(got.source, 20);
	assert_int_equal(got.scope, 0);
	assert_memory_equal(got.addr, want, 4);

	/* None, family 0, or a prefix longer than the family: nothing sent. */
	const struct codec_ecs zero = {0};
	const struct codec_ecs bad = {CODEC_ECS_FAMILY_IP4, 33, 0, {192}};
	const struct codec_ecs *none[] = {NULL, &zero, &bad};

	for (unsigned i = 0; i < 3; i++) {
		init_ecs(f, 1, none[i]);
		assert_null(f->c.cfg.ecs);
		assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
		assert_int_equal(sent_ecs(f, &got), 0);
	}
}

static void test_chase_ecs_sent_to_resolvers_not_backend(void **state)
{
	struct fx *f = *state;
	struct codec_ecs got;
	static const uint8_t opt[] = {0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2};
	struct codec_view v;

	init_ecs(f, 2, &ecs4);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	/* The option is the whole OPT RDATA, byte for byte. */
	assert_int_equal(codec_scan(f->c.out, f->c.out_len, &v), 0);
	assert_int_equal(v.opt_rdlen, sizeof(opt));
	assert_memory_equal(f->c.out + v.opt_rdata_off, opt, sizeof(opt));
	assert_int_equal(v.end, f->c.out_len);
	/* ... to the second resolver too. */
	assert_int_equal(timeout(f), FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(sent_ecs(f, &got), 1);
	assert_int_equal(
	        reply(f, F_RES,
	              "an cdn.example.net. 300 IN CNAME edge.example.com.\n" EDNS_ECS4("00")),
	        FLAT_STEP_SEND);
	/* Our own zone: BIND never sees the client's subnet. */
	assert_asking(f, "edge.example.com.", FLAT_SERVER_BACKEND, 0, false);
	assert_int_equal(sent_ecs(f, &got), 0);
	/* An option in the backend's answer is not ours to check or use. */
	assert_int_equal(reply(f, F_AUTH,
	                       "an edge.example.com. 60 IN CNAME pop.example.org.\n"
	                       "edns 1232 0008 0007 0001 18 18 c63364\n"),
	                 FLAT_STEP_SEND);
	assert_asking(f, "pop.example.org.", FLAT_SERVER_RESOLVER, 0, false);
	assert_int_equal(sent_ecs(f, &got), 1);
	assert_true(codec_ecs_matches(&ecs4, &got));
	/* Over TCP after TC=1 as well. */
	assert_int_equal(reply(f, F_RES | CODEC_FLAG_TC, EDNS_ECS4("00")), FLAT_STEP_SEND);
	assert_true(f->c.tcp);
	assert_int_equal(sent_ecs(f, &got), 1);
	assert_int_equal(reply(f, F_RES, "an pop.example.org. 30 IN A 192.0.2.3\n" EDNS_ECS4("10")),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.scope, 16);
}

static void test_chase_ecs_mismatch_gives_wait(void **state)
{
	struct fx *f = *state;
	/* Another address, another SOURCE, another family. */
	const char *wrong[] = {
	        "edns 1232 0008 0007 0001 18 00 c00003\n",
	        "edns 1232 0008 0006 0001 10 00 c000\n",
	        "edns 1232 0008 0009 0002 28 00 20010db812\n",
	};
	uint8_t out[FLAT_CHASE_OUT_MAX];

	init_ecs(f, 2, &ecs4);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	uint16_t out_len = f->c.out_len;

	memcpy(out, f->c.out, out_len);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(
		        reply(f, F_RES, "an cdn.example.net. 300 IN A 6.6.6.6\n%s", wrong[i]),
		        FLAT_STEP_WAIT);
		/* Even an error answer: it is not the answer to our query. */
		assert_int_equal(reply(f, 0x8182, "%s", wrong[i]), FLAT_STEP_WAIT);
	}
	assert_int_equal(f->c.out_len, out_len);
	assert_memory_equal(f->c.out, out, out_len);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 0, false);
	/* The right answer still gets through. */
	assert_int_equal(
	        reply(f, F_RES, "an cdn.example.net. 300 IN A 192.0.2.1\n" EDNS_ECS4("18")),
	        FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_addr4(&f->c.result, 0, 192, 0, 2, 1);
	assert_int_equal(f->c.scope, 24);
}

static void test_chase_ecs_malformed_fails_over(void **state)
{
	struct fx *f = *state;

	init_ecs(f, 2, &ecs4);
	assert_int_equal(begin(f, "cdn.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	/* SCOPE 33 does not fit IPv4 (RFC 7871 6). */
	assert_int_equal(reply(f, F_RES,
	                       "an cdn.example.net. 300 IN A 6.6.6.6\n"
	                       "edns 1232 0008 0007 0001 18 21 c00002\n"),
	                 FLAT_STEP_SEND);
	assert_asking(f, "cdn.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(reply(f, F_RES,
	                       "an cdn.example.net. 300 IN A 6.6.6.6\n"
	                       "edns 1232 0008 0007 0001 18 21 c00002\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_FAIL);
	assert_int_equal(f->c.fail, FLAT_CHASE_FAIL_BAD_ANSWER);
	assert_string_equal(f->c.result.why,
	                    "resolver 1 sent a malformed ECS option for cdn.example.net.");
}

static void test_chase_ecs_scope_is_max_over_chain_capped(void **state)
{
	struct fx *f = *state;

	/* Two answers used: /16 then /20; the result is a /20 answer. */
	init_ecs(f, 1, &ecs4);
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(
	        reply(f, F_RES, "an a.example.net. 300 IN CNAME b.example.org.\n" EDNS_ECS4("10")),
	        FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an b.example.org. 300 IN A 192.0.2.9\n" EDNS_ECS4("14")),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.scope, 20);

	/* The larger first: the max, not the last. */
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(
	        reply(f, F_RES, "an a.example.net. 300 IN CNAME b.example.org.\n" EDNS_ECS4("14")),
	        FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an b.example.org. 300 IN A 192.0.2.9\n"), FLAT_STEP_DONE);
	assert_int_equal(f->c.scope, 20);

	/* A scope past the /24 sent is cut to 24. */
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN A 192.0.2.9\n" EDNS_ECS4("20")),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.scope, 24);

	/* A negative answer carries its scope too. */
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "ns example.net. 120 IN SOA ns.example.net. h.example.net. "
	                       "1 7200 900 1209600 600\n" EDNS_ECS4("18")),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_NODATA);
	assert_int_equal(f->c.scope, 24);

	/* IPv6, and a SOURCE of 0 (the client opted out): scope 0. */
	init_ecs(f, 1, &ecs6);
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_AAAA), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an a.example.net. 300 IN AAAA 2001:db8::1\n"
	                       "edns 1232 0008 0009 0002 28 30 20010db812\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.scope, 40);

	const struct codec_ecs optout = {CODEC_ECS_FAMILY_IP4, 0, 0, {0}};

	init_ecs(f, 1, &optout);
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an a.example.net. 300 IN A 192.0.2.9\n"
	                       "edns 1232 0008 0004 0001 00 18\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.scope, 0);
}

static void test_chase_ecs_scope_zero_without_option(void **state)
{
	struct fx *f = *state;

	/* No option in the answer: not tailored (RFC 7871 7.2.1). */
	init_ecs(f, 1, &ecs4);
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN A 192.0.2.9\n"), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.scope, 0);

	/* Every name the backend's. */
	assert_int_equal(begin(f, "www.example.com", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(f->c.server, FLAT_SERVER_BACKEND);
	assert_int_equal(
	        reply(f, F_AUTH, "an www.example.com. 300 IN A 192.0.2.9\n" EDNS_ECS4("18")),
	        FLAT_STEP_DONE);
	assert_int_equal(f->c.scope, 0);

	/* A scope from an answer that was not used does not count: a
	 * SERVFAIL, and an answer rolled back as unusable. */
	init_ecs(f, 2, &ecs4);
	assert_int_equal(begin(f, "a.example.net", CODEC_TYPE_A), FLAT_STEP_SEND);
	assert_int_equal(reply(f, 0x8182, EDNS_ECS4("18")), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN A 192.0.2.9\n"), FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.scope, 0);

	/* The CNAME was followed before the bad record turned up. */
	assert_int_equal(begin(f, "a.example.net", TYPE_HTTPS), FLAT_STEP_SEND);
	assert_int_equal(reply(f, F_RES,
	                       "an a.example.net. 300 IN CNAME b.example.org.\n"
	                       "an b.example.org. 300 IN HTTPS \\# 3 000100\n"
	                       "an b.example.org. 300 IN HTTPS \\# 2 0001\n" EDNS_ECS4("18")),
	                 FLAT_STEP_SEND);
	assert_asking(f, "a.example.net.", FLAT_SERVER_RESOLVER, 1, false);
	assert_int_equal(f->c.scope, 0);
	assert_int_equal(reply(f, F_RES, "an a.example.net. 300 IN HTTPS 1 . alpn=h2\n"),
	                 FLAT_STEP_DONE);
	assert_int_equal(f->c.result.kind, FLAT_RES_ADDRS);
	assert_int_equal(f->c.scope, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_chase_fail_names_are_stable),
	        cmocka_unit_test(test_chase_try_ms_splits_deadline_among_resolvers_left),
	        T(test_chase_direct_a_gives_addrs),
	        T(test_chase_aaaa_gives_addrs),
	        T(test_chase_chain_in_one_answer_gives_min_ttl),
	        T(test_chase_chain_needing_second_query_sends_again),
	        T(test_chase_chain_into_own_zone_asks_backend_without_rd),
	        T(test_chase_loop_gives_fail),
	        T(test_chase_self_loop_gives_fail),
	        T(test_chase_previsited_owner_gives_loop),
	        T(test_chase_depth_exactly_max_chain_gives_addrs),
	        T(test_chase_depth_over_max_chain_gives_fail),
	        T(test_chase_initial_ttl_and_hops_carry_into_result),
	        T(test_chase_ttl_with_top_bit_counts_as_zero),
	        T(test_chase_nxdomain_gives_nxdomain),
	        T(test_chase_nodata_with_soa_gives_negative_ttl),
	        T(test_chase_nodata_without_soa_gives_60),
	        T(test_chase_servfail_fails_over_to_next_resolver),
	        T(test_chase_errors_at_every_resolver_give_precise_text),
	        T(test_chase_all_timeouts_give_ede_22),
	        T(test_chase_backend_timeout_gives_fail_without_failover),
	        T(test_chase_backend_referral_asks_resolver),
	        T(test_chase_no_resolvers_gives_fail),
	        T(test_chase_tc_over_udp_retries_tcp),
	        T(test_chase_tc_over_tcp_fails_over),
	        T(test_chase_wrong_id_gives_wait),
	        T(test_chase_wrong_question_gives_wait),
	        T(test_chase_malformed_answer_fails_over),
	        T(test_chase_70_addresses_keeps_64),
	        T(test_chase_duplicate_addresses_deduplicated),
	        T(test_chase_a_rdlen_5_fails_over),
	        T(test_chase_mixed_case_owner_matched),
	        T(test_chase_dname_then_cname_followed),
	        T(test_chase_query_bytes_well_formed),
	        T(test_chase_https_service_mode_keeps_rdata_in_order),
	        T(test_chase_svcb_alias_mode_kept_as_is),
	        T(test_chase_https_through_cname_min_ttl),
	        T(test_chase_https_nodata_gives_nodata),
	        T(test_chase_https_too_large_fails_without_failover),
	        T(test_chase_svcb_too_many_records_fails),
	        T(test_chase_https_duplicates_deduplicated),
	        T(test_chase_https_malformed_rdata_fails_over),
	        T(test_chase_other_qtypes_refused),
	        T(test_chase_ecs_copied_at_init),
	        T(test_chase_ecs_sent_to_resolvers_not_backend),
	        T(test_chase_ecs_mismatch_gives_wait),
	        T(test_chase_ecs_malformed_fails_over),
	        T(test_chase_ecs_scope_is_max_over_chain_capped),
	        T(test_chase_ecs_scope_zero_without_option),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
