/* tests/fuzz/fuzz_flat_chase.c - libFuzzer target for the chase state machine.
 *
 * Input layout:
 *   byte 0   flags: bit 0 AAAA (else A); bits 1-2 number of resolvers
 *            (0..3); bit 3 pre-visit the owner example.com; bits 4-5 which
 *            target to chase; bit 6 keep the input's ID (else it is patched
 *            to the query's); bit 7 keep the input's question (else a
 *            question of the same length is overwritten with the query's)
 *   byte 1   max_chain as given to init (init clamps it)
 *   byte 2   hops_already (bits 0-3); bits 4-5 the type: 0 and 3 A or
 *            AAAA as byte 0 says, 1 SVCB, 2 HTTPS; bits 6-7 the client
 *            subnet sent to resolvers: 0 none, 1 192.0.2.0/24,
 *            2 2001:db8:1200::/40, 3 an opt-out 0.0.0.0/0
 *   rest     answers, separated by the 4 octets c0 fe c0 fe; an empty one
 *            is a timeout
 * The answers are fed in order while the chase asks for more; then
 * timeouts until it finishes, which must happen within one per resolver.
 * Every step's output is checked; a broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ecs.h"
#include "codec/scan.h"
#include "flatten/chase.h"
#include "flatten/zones.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t sep[4] = {0xc0, 0xfe, 0xc0, 0xfe};

static void check(int cond)
{
	if (!cond)
		abort();
}

static const struct flat_zones *own_zones(void)
{
	static struct flat_zones *z;

	if (z == NULL) {
		static const uint8_t a[] = "\7example\3com";
		static const uint8_t b[] = "\3own\4test";
		const uint8_t *names[] = {a, b};
		size_t lens[] = {sizeof(a), sizeof(b)};

		check(flat_zones_new(&z, names, lens, 2) == 0);
	}
	return z;
}

/* What SEND must leave in the struct. */
static void check_send(const struct flat_chase *c, unsigned n_resolvers)
{
	struct codec_view v;
	const struct flat_chase_hop *h;

	check(c->n_hop >= 1 && c->n_hop <= c->cfg.max_chain + 1);
	h = &c->hop[c->n_hop - 1];
	check(c->out_len > CODEC_HDR_LEN && c->out_len <= FLAT_CHASE_OUT_MAX);
	check(codec_scan(c->out, c->out_len, &v) == 0);
	check(v.qdcount == 1 && v.ancount == 0 && v.nscount == 0 && v.arcount == 1);
	check(v.has_opt && !v.do_bit && v.udp_size == CODEC_EDNS_UDP_SIZE);
	check(v.qname_len == h->len && memcmp(c->out + v.qname_off, h->name, h->len) == 0);
	check(v.qtype == c->qtype && v.qclass == CODEC_CLASS_IN);

	/* The subnet goes to resolvers, never to the backend. */
	struct codec_ecs sent;
	int ecs = codec_ecs_find(c->out, &v, true, &sent);

	if (c->server == FLAT_SERVER_RESOLVER && c->ecs.family != 0)
		check(ecs == 1 && codec_ecs_matches(&c->ecs, &sent) && sent.scope == 0);
	else
		check(ecs == 0 && v.opt_rdlen == 0);
	if (c->server == FLAT_SERVER_RESOLVER) {
		check(c->resolver < n_resolvers);
		check(v.flags == CODEC_FLAG_RD);
	} else {
		check(c->server == FLAT_SERVER_BACKEND && v.flags == 0);
	}
}

/* An SVCB/HTTPS result: n_addrs framed RDATA filling rdata_len, each
 * with a TargetName that stays inside it uncompressed (RFC 9460 2.2),
 * none twice. */
static void check_rdata(const struct flat_result *r)
{
	size_t pos = 0;
	unsigned n = 0;

	check(r->rdata_len <= FLAT_RDATA_MAX);
	while (pos < r->rdata_len) {
		check(r->rdata_len - pos >= 2);
		size_t len = (size_t)r->rdata[pos] << 8 | r->rdata[pos + 1];
		const uint8_t *rd = r->rdata + pos + 2;

		check(len >= 3 && r->rdata_len - pos - 2 >= len);
		for (size_t i = 2; rd[i] != 0; i += 1 + (size_t)rd[i])
			check(rd[i] <= 63 && i + 1 + rd[i] < len);
		for (size_t k = 0; k < pos;) {
			size_t klen = (size_t)r->rdata[k] << 8 | r->rdata[k + 1];

			check(klen != len || memcmp(r->rdata + k + 2, rd, len) != 0);
			k += 2 + klen;
		}
		pos += 2 + len;
		n++;
	}
	check(n == r->n_addrs);
}

static void check_done(const struct flat_chase *c)
{
	const struct flat_result *r = &c->result;

	check(r->kind <= FLAT_RES_FAIL);
	check(memchr(r->why, 0, sizeof(r->why)) != NULL);
	check(r->n_addrs <= FLAT_MAX_ADDRS);
	check((r->kind == FLAT_RES_ADDRS) == (r->n_addrs > 0));
	check(c->n_hop <= c->cfg.max_chain + 1);
	/* A failure always says why; a success never carries a stale why. */
	if (r->kind == FLAT_RES_FAIL)
		check(r->why[0] != '\0');
	else
		check(r->hops <= c->cfg.max_chain && r->ttl <= 0x7fffffffu && r->ede == 0 &&
		      r->why[0] == '\0');
	/* The scope: only for a good result with a subnet sent, at most
	 * the SOURCE sent. */
	if (r->kind == FLAT_RES_FAIL || c->ecs.family == 0)
		check(c->scope == 0);
	else
		check(c->scope <= c->ecs.source);
	if (flat_qtype_is_rdata(r->qtype)) {
		check_rdata(r);
		return;
	}
	check(r->rdata_len == 0);
	/* Addresses are deduplicated. */
	size_t alen = r->qtype == CODEC_TYPE_A ? 4 : 16;

	for (unsigned i = 0; i < r->n_addrs; i++)
		for (unsigned k = i + 1; k < r->n_addrs; k++)
			check(memcmp(r->addrs[i], r->addrs[k], alen) != 0);
}

/* Makes an answer look like one to the query in flight, as the flags ask. */
static size_t patch(const struct flat_chase *c, const uint8_t *in, size_t len, uint8_t *buf,
                    uint8_t flags)
{
	memcpy(buf, in, len);
	if (!(flags & 0x40) && len >= 2)
		memcpy(buf, c->out, 2);
	if (!(flags & 0x80) && len >= CODEC_HDR_LEN) {
		/* The query's question: name, type, class right after the
		 * header (the query scans: check_send()). */
		struct codec_view v;

		check(codec_scan(c->out, c->out_len, &v) == 0);
		size_t qlen = (size_t)v.qname_len;

		if (len >= CODEC_HDR_LEN + qlen + 4 &&
		    memchr(buf + CODEC_HDR_LEN, 0, qlen) == buf + CODEC_HDR_LEN + qlen - 1)
			memcpy(buf + CODEC_HDR_LEN, c->out + CODEC_HDR_LEN, qlen + 4);
	}
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const targets[] = {
	        "\3cdn\7example\3net",
	        "\3www\7example\3com",
	        "\1a\3own\4test",
	        "\7example\3com",
	};
	static const struct codec_ecs subnets[4] = {
	        {0},
	        {CODEC_ECS_FAMILY_IP4, 24, 0, {192, 0, 2}},
	        {CODEC_ECS_FAMILY_IP6, 40, 0, {0x20, 0x01, 0x0d, 0xb8, 0x12}},
	        {CODEC_ECS_FAMILY_IP4, 0, 0, {0}},
	};
	static const uint16_t qtypes[4] = {0, 64 /* SVCB */, 65 /* HTTPS */, 0};
	static struct flat_chase c;
	static uint8_t buf[CODEC_MAX_MSG];

	if (size < 3)
		return 0;

	uint8_t flags = data[0];
	unsigned n_resolvers = (flags >> 1) & 3;
	struct flat_chase_cfg cfg = {
	        .max_chain = data[1],
	        .n_resolvers = n_resolvers,
	        .own = own_zones(),
	        .ecs = &subnets[data[2] >> 6],
	};
	uint16_t qtype = qtypes[(data[2] >> 4) & 3];

	if (qtype == 0)
		qtype = flags & 1 ? CODEC_TYPE_AAAA : CODEC_TYPE_A;
	const char *t = targets[(flags >> 4) & 3];
	size_t tlen = strlen(t) + 1;

	flat_chase_init(&c, &cfg);
	check(c.cfg.max_chain >= 1 && c.cfg.max_chain <= FLAT_CHASE_MAX_CHAIN);
	if (flags & 0x08)
		check(flat_chase_visit(&c, (const uint8_t *)targets[3], strlen(targets[3]) + 1) ==
		      0);

	check(c.ecs.family == cfg.ecs->family && c.ecs.scope == 0);
	check((c.cfg.ecs == NULL) == (c.ecs.family == 0));

	enum flat_step s =
	        flat_chase_begin(&c, (const uint8_t *)t, tlen, qtype, UINT32_MAX, data[2] & 0x0f);
	const uint8_t *p = data + 3;
	size_t left = size - 3;
	uint16_t id = 1;

	while (s != FLAT_STEP_DONE && left > 0) {
		const uint8_t *end = memmem(p, left, sep, sizeof(sep));
		size_t n = end != NULL ? (size_t)(end - p) : left;
		uint8_t before[FLAT_CHASE_OUT_MAX];
		uint16_t before_len = c.out_len;

		if (s == FLAT_STEP_SEND) {
			check_send(&c, n_resolvers);
			flat_chase_set_id(&c, id++);
		}
		memcpy(before, c.out, c.out_len);
		s = flat_chase_input(&c, buf, patch(&c, p, n, buf, flags));
		if (s == FLAT_STEP_WAIT)
			check(c.out_len == before_len && memcmp(c.out, before, before_len) == 0);
		if (end == NULL)
			break;
		p = end + sizeof(sep);
		left = size - (size_t)(p - data);
	}
	/* Only timeouts from here: each moves to the next resolver or ends. */
	for (unsigned i = 0; s != FLAT_STEP_DONE; i++) {
		check(i <= n_resolvers);
		if (s == FLAT_STEP_SEND)
			check_send(&c, n_resolvers);
		s = flat_chase_input(&c, NULL, 0);
	}
	check_done(&c);
	check(flat_chase_input(&c, NULL, 0) == FLAT_STEP_DONE);
	return 0;
}
