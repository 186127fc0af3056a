/* tests/fuzz/fuzz_flat_chase.c - libFuzzer target for the chase state machine.
 *
 * Input layout:
 *   byte 0   flags: bit 0 AAAA (else A); bits 1-2 number of resolvers
 *            (0..3); bit 3 pre-visit the owner example.com; bits 4-5 which
 *            target to chase; bit 6 keep the input's ID (else it is patched
 *            to the query's); bit 7 keep the input's question (else a
 *            question of the same length is overwritten with the query's)
 *   byte 1   max_chain as given to init (init clamps it)
 *   byte 2   hops_already (low 4 bits)
 *   rest     answers, separated by the 4 octets c0 fe c0 fe; an empty one
 *            is a timeout
 * The answers are fed in order while the chase asks for more; then
 * timeouts until it finishes, which must happen within one per resolver.
 * Every step's output is checked; a broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
	if (c->server == FLAT_SERVER_RESOLVER) {
		check(c->resolver < n_resolvers);
		check(v.flags == CODEC_FLAG_RD);
	} else {
		check(c->server == FLAT_SERVER_BACKEND && v.flags == 0);
	}
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
		 * header; its name length is the out length minus header,
		 * type/class and the 11-octet OPT. */
		size_t qlen = (size_t)c->out_len - CODEC_HDR_LEN - 4 - 11;

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
	};
	const char *t = targets[(flags >> 4) & 3];
	size_t tlen = strlen(t) + 1;

	flat_chase_init(&c, &cfg);
	check(c.cfg.max_chain >= 1 && c.cfg.max_chain <= FLAT_CHASE_MAX_CHAIN);
	if (flags & 0x08)
		check(flat_chase_visit(&c, (const uint8_t *)targets[3], strlen(targets[3]) + 1) ==
		      0);

	enum flat_step s = flat_chase_begin(&c, (const uint8_t *)t, tlen,
	                                    flags & 1 ? CODEC_TYPE_AAAA : CODEC_TYPE_A, UINT32_MAX,
	                                    data[2] & 0x0f);
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
