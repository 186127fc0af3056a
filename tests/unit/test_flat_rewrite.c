/* tests/unit/test_flat_rewrite.c - flattened answers parsed back with
 * codec_scan() and ldns and checked field by field.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <ldns/ldns.h>

#include "codec/ecs.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "flatten/policy.h"
#include "flatten/rewrite.h"
#include "tests/unit/helpers.h"

#define W(s) ((const uint8_t *)(s)), (sizeof(s))

struct pkt {
	uint8_t buf[8192];
	size_t len;
	struct codec_view v;
};

static void mk(struct pkt *p, const char *text)
{
	long n = th_pkt(text, p->buf, sizeof(p->buf));

	assert_true(n >= 12);
	p->len = (size_t)n;
	assert_int_equal(codec_scan(p->buf, p->len, &p->v), 0);
}

/* Scans a reply with codec_scan (must pass) and parses it with ldns. */
static ldns_pkt *parse(const uint8_t *m, ssize_t n, struct codec_view *v)
{
	ldns_pkt *p = NULL;

	assert_true(n >= 12);
	assert_int_equal(codec_scan(m, (size_t)n, v), 0);
	assert_int_equal(ldns_wire2pkt(&p, m, (size_t)n), LDNS_STATUS_OK);
	return p;
}

static void res_a(struct flat_result *r, unsigned n, uint32_t ttl)
{
	memset(r, 0, sizeof(*r));
	r->kind = FLAT_RES_ADDRS;
	r->qtype = CODEC_TYPE_A;
	r->n_addrs = (uint8_t)n;
	r->ttl = ttl;
	for (unsigned i = 0; i < n; i++) {
		r->addrs[i][0] = 192;
		r->addrs[i][1] = 0;
		r->addrs[i][2] = 2;
		r->addrs[i][3] = (uint8_t)(i + 1);
	}
}

static void res_aaaa(struct flat_result *r, unsigned n, uint32_t ttl)
{
	memset(r, 0, sizeof(*r));
	r->kind = FLAT_RES_ADDRS;
	r->qtype = CODEC_TYPE_AAAA;
	r->n_addrs = (uint8_t)n;
	r->ttl = ttl;
	for (unsigned i = 0; i < n; i++) {
		r->addrs[i][0] = 0x20;
		r->addrs[i][1] = 0x01;
		r->addrs[i][2] = 0x0d;
		r->addrs[i][3] = 0xb8;
		r->addrs[i][15] = (uint8_t)(i + 1);
	}
}

/* Checks one RR: owner (presentation, lowercase compare), type, TTL and
 * the RDATA in presentation form. */
static void check_rr(const ldns_rr *rr, const char *owner, ldns_rr_type type, uint32_t ttl,
                     const char *rdata)
{
	char *o = ldns_rdf2str(ldns_rr_owner(rr));

	assert_non_null(o);
	assert_string_equal(o, owner);
	free(o);
	assert_int_equal(ldns_rr_get_type(rr), type);
	assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
	assert_int_equal(ldns_rr_ttl(rr), ttl);
	if (rdata != NULL) {
		ldns_buffer *b = ldns_buffer_new(256);

		for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
			if (i > 0)
				ldns_buffer_printf(b, " ");
			ldns_rdf2buffer_str(b, ldns_rr_rdf(rr, i));
		}
		char *s = ldns_buffer_export2str(b);

		assert_string_equal(s, rdata);
		free(s);
		ldns_buffer_free(b);
	}
}

static int find_ede(const uint8_t *m, const struct codec_view *v, const uint8_t **body)
{
	size_t pos = v->opt_rdata_off;
	size_t end = pos + v->opt_rdlen;

	while (pos + 4 <= end) {
		uint16_t code = codec_get_u16(m + pos);
		uint16_t len = codec_get_u16(m + pos + 2);

		if (code == CODEC_EDNS_OPT_EDE) {
			*body = m + pos + 4;
			return len;
		}
		pos += 4 + (size_t)len;
	}
	return -1;
}

static const char soa_resp[] = "hdr 1 0x8400\nqd example.test. IN A\n"
                               "ns example.test. 3600 IN SOA ns1.example.test. "
                               "hostmaster.example.test. 2024010101 7200 3600 1209600 300\n";

static void get_soa(struct flat_soa *soa)
{
	struct pkt p;

	mk(&p, soa_resp);
	assert_int_equal(flat_policy_soa(p.buf, p.len, &p.v, soa), 0);
}

static void test_ttl_final_clamps_both_ways(void **state)
{
	(void)state;
	assert_int_equal(flat_ttl_final(10, 60, 3600), 60);
	assert_int_equal(flat_ttl_final(86400, 60, 3600), 3600);
	assert_int_equal(flat_ttl_final(300, 60, 3600), 300);
	assert_int_equal(flat_ttl_final(0, 0, 3600), 0);
	/* "No CNAME followed" (UINT32_MAX) never reaches the wire as-is. */
	assert_int_equal(flat_ttl_final(UINT32_MAX, 0, UINT32_MAX), FLAT_TTL_MAX);
	/* An inverted range: the floor wins. */
	assert_int_equal(flat_ttl_final(500, 100, 50), 100);
}

static void test_max_size_rules(void **state)
{
	(void)state;
	struct pkt q;

	mk(&q, "hdr 1 0\nqd example.test. IN A\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 512);
	assert_int_equal(flat_rewrite_max_size(&q.v, true), 65535);
	mk(&q, "hdr 1 0\nqd example.test. IN A\nedns 1232\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 1232);
	mk(&q, "hdr 1 0\nqd example.test. IN A\nedns 1231\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 1231);
	/* Larger offers are capped: no fragments, bounded amplification. */
	mk(&q, "hdr 1 0\nqd example.test. IN A\nedns 4096\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 1232);
	mk(&q, "hdr 1 0\nqd example.test. IN A\nedns 65535\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 1232);
	assert_int_equal(flat_rewrite_max_size(&q.v, true), 65535);
	mk(&q, "hdr 1 0\nqd example.test. IN A\nedns 100\n");
	assert_int_equal(flat_rewrite_max_size(&q.v, false), 512);
}

static void test_rewrite_a_case_preserved_header(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct codec_view v;
	uint8_t out[512];

	/* RD and CD set, AD set by the client: AD must not come back. */
	mk(&q, "hdr 0xbeef 0x0130\nqd ExAmPle.TeSt. IN A\n");
	res_a(&r, 2, 999);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 300, NULL, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.id, 0xbeef);
	assert_int_equal(v.flags, CODEC_FLAG_QR | CODEC_FLAG_AA | CODEC_FLAG_RD | CODEC_FLAG_CD);
	assert_int_equal(v.qdcount, 1);
	assert_int_equal(v.ancount, 2);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 0);
	assert_false(v.has_opt);
	/* The question is the client's bytes, its case included. */
	assert_memory_equal(out + 12, q.buf + 12, q.v.question_end - 12);
	assert_memory_equal(out + 12, "\7ExAmPle\4TeSt", 13);
	/* Owners point at the question. */
	assert_int_equal(codec_get_u16(out + q.v.question_end), 0xc00c);

	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_true(ldns_pkt_aa(p));
	assert_false(ldns_pkt_ra(p));
	assert_false(ldns_pkt_ad(p));
	assert_false(ldns_pkt_tc(p));
	ldns_rr_list *an = ldns_pkt_answer(p);

	check_rr(ldns_rr_list_rr(an, 0), "ExAmPle.TeSt.", LDNS_RR_TYPE_A, 300, "192.0.2.1");
	check_rr(ldns_rr_list_rr(an, 1), "ExAmPle.TeSt.", LDNS_RR_TYPE_A, 300, "192.0.2.2");
	ldns_pkt_free(p);
}

static void test_rewrite_aaaa(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct codec_view v;
	uint8_t out[512];

	mk(&q, "hdr 2 0x0100\nqd example.test. IN AAAA\nedns 1232\n");
	res_aaaa(&r, 3, 60);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, 1232, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.ancount, 3);
	ldns_rr_list *an = ldns_pkt_answer(p);

	check_rr(ldns_rr_list_rr(an, 0), "example.test.", LDNS_RR_TYPE_AAAA, 60, "2001:db8::1");
	check_rr(ldns_rr_list_rr(an, 2), "example.test.", LDNS_RR_TYPE_AAAA, 60, "2001:db8::3");
	/* Our own OPT: 1232, version 0, no DO, no options. */
	assert_true(v.has_opt);
	assert_int_equal(v.udp_size, CODEC_EDNS_UDP_SIZE);
	assert_int_equal(v.edns_version, 0);
	assert_false(v.do_bit);
	assert_int_equal(v.opt_rdlen, 0);
	ldns_pkt_free(p);
}

static void test_rewrite_type_mismatch_einval(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	uint8_t out[512];

	mk(&q, "hdr 2 0x0100\nqd example.test. IN AAAA\n");
	res_a(&r, 1, 60);
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, 512, out, sizeof(out)),
	                 -EINVAL);
	mk(&q, "hdr 2 0x0100\nqd example.test. IN MX\n");
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, 512, out, sizeof(out)),
	                 -EINVAL);
}

static void test_rewrite_nodata_soa_ttl(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r = {.kind = FLAT_RES_NODATA, .qtype = CODEC_TYPE_AAAA};
	struct flat_soa soa;
	struct flat_rewrite_opts o = {.soa = &soa, .ede = CODEC_EDE_NONE};
	struct codec_view v;
	uint8_t out[512];

	get_soa(&soa);
	mk(&q, "hdr 3 0x0100\nqd example.test. IN AAAA\n");
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 123, &o, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.rcode, CODEC_RCODE_NOERROR);
	assert_true(v.flags & CODEC_FLAG_AA);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 1);
	check_rr(ldns_rr_list_rr(ldns_pkt_authority(p), 0), "example.test.", LDNS_RR_TYPE_SOA, 123,
	         "ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300");
	ldns_pkt_free(p);
}

static void test_rewrite_nxdomain_becomes_nodata(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r = {.kind = FLAT_RES_NXDOMAIN, .qtype = CODEC_TYPE_A};
	struct flat_soa soa;
	struct flat_rewrite_opts o = {.soa = &soa, .ede = CODEC_EDE_NONE};
	struct codec_view v;
	uint8_t out[512];

	get_soa(&soa);
	mk(&q, "hdr 3 0x0100\nqd example.test. IN A\n");
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	/* The owner exists: NOERROR, never NXDOMAIN. */
	assert_int_equal(v.rcode, CODEC_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 1);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(p), 0)), 30);
	ldns_pkt_free(p);
}

static void test_rewrite_negative_without_soa_einval(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r = {.kind = FLAT_RES_NODATA, .qtype = CODEC_TYPE_A};
	uint8_t out[512];

	mk(&q, "hdr 3 0x0100\nqd example.test. IN A\n");
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 30, NULL, 512, out, sizeof(out)),
	                 -EINVAL);
	/* ADDRS without any address is a NODATA too. */
	res_a(&r, 0, 30);
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 30, NULL, 512, out, sizeof(out)),
	                 -EINVAL);
}

static void test_rewrite_ede_stale_and_do_copied(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_STALE_ANSWER,
	                              .ede_text = "target unreachable"};
	struct codec_view v;
	uint8_t out[512];
	const uint8_t *ede = NULL;

	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\nedns 4096 do 000a0008 0102030405060708\n");
	res_a(&r, 1, 5);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 4096, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_true(v.has_opt);
	assert_true(v.do_bit);
	assert_true(ldns_pkt_edns_do(p));
	assert_int_equal(v.arcount, 1);
	assert_int_equal(find_ede(out, &v, &ede), 2 + strlen(o.ede_text));
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_STALE_ANSWER);
	assert_memory_equal(ede + 2, o.ede_text, strlen(o.ede_text));
	/* Only the EDE: a client cookie alone is not echoed. */
	assert_int_equal(v.opt_rdlen, 4 + 2 + strlen(o.ede_text));
	assert_int_equal(v.ancount, 1);
	ldns_pkt_free(p);
}

/* A client that holds a server cookie (learned from BIND through apexd)
 * gets its cookie pair back, before the EDE; a truncated answer too. */
static void test_rewrite_echoes_cookie_pair(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_STALE_ANSWER, .ede_text = "stale"};
	struct codec_view v;
	uint8_t out[4096];
	size_t off;
	uint16_t len;
	static const uint8_t pair[24] = {1, 2,  3,  4,  5,  6,  7,  8,  0x01, 0,  0,  0,
	                                 9, 10, 11, 12, 13, 14, 15, 16, 17,   18, 19, 20};

	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\n"
	       "edns 1232 000a0018 0102030405060708 0100000009 0a0b0c0d0e0f1011121314\n");
	res_a(&r, 1, 5);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 1232, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);
	assert_true(codec_edns_option(out, &v, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_int_equal(len, sizeof(pair));
	assert_memory_equal(out + off, pair, sizeof(pair));
	assert_int_equal(v.opt_rdlen, 4 + 24 + 4 + 2 + 5);
	assert_int_equal(v.ancount, 1);
	ldns_pkt_free(p);

	/* 64 addresses do not fit 512 octets: TC=1, the cookie stays. */
	res_a(&r, 64, 5);
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, NULL, 512, out, sizeof(out));
	p = parse(out, n, &v);
	assert_true(codec_hdr_tc(out));
	assert_int_equal(v.ancount, 0);
	assert_true(codec_edns_option(out, &v, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_memory_equal(out + off, pair, sizeof(pair));
	ldns_pkt_free(p);

	/* A malformed pair (client cookie plus 4 octets) is not echoed. */
	mk(&q,
	   "hdr 4 0x0100\nqd example.test. IN A\nedns 1232 000a000c 0102030405060708 01020304\n");
	res_a(&r, 1, 5);
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, NULL, 1232, out, sizeof(out));
	p = parse(out, n, &v);
	assert_false(codec_edns_option(out, &v, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_int_equal(v.opt_rdlen, 0);
	ldns_pkt_free(p);
}

/* The client's ECS option comes back with the answer's scope (RFC 7871
 * 7.2.1), next to the cookie pair and the EDE; never without one. */
static void test_rewrite_echoes_ecs_with_scope(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	/* As the proxy hands it over: the client's option, our scope. */
	const struct codec_ecs client = {CODEC_ECS_FAMILY_IP4, 24, 16, {192, 0, 2}};
	struct flat_rewrite_opts o = {
	        .ede = CODEC_EDE_STALE_ANSWER, .ede_text = "stale", .ecs = &client};
	struct codec_view v;
	uint8_t out[4096];
	struct codec_ecs got;
	size_t off;
	uint16_t len;
	const uint8_t *ede = NULL;

	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\n"
	       "edns 1232 000a0018 0102030405060708 0100000009 0a0b0c0d0e0f1011121314"
	       " 0008 0007 0001 18 00 c00002\n");
	res_a(&r, 1, 5);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 1232, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(codec_ecs_find(out, &v, false, &got), 1);
	assert_int_equal(got.family, CODEC_ECS_FAMILY_IP4);
	assert_int_equal(got.source, 24);
	assert_int_equal(got.scope, 16);
	assert_memory_equal(got.addr, client.addr, 4);
	assert_true(codec_edns_option(out, &v, CODEC_EDNS_OPT_COOKIE, &off, &len));
	assert_int_equal(find_ede(out, &v, &ede), 2 + 5);
	assert_int_equal(v.opt_rdlen, 4 + 24 + 4 + 2 + 5 + 4 + 7);
	assert_int_equal(v.ancount, 1);
	ldns_pkt_free(p);

	/* IPv6 and scope 0 (the answer is for everyone), on a NODATA. */
	struct flat_soa soa;
	const struct codec_ecs client6 = {
	        CODEC_ECS_FAMILY_IP6, 56, 0, {0x20, 1, 0xd, 0xb8, 1, 2, 3}};
	struct flat_rewrite_opts o6 = {.soa = &soa, .ede = CODEC_EDE_NONE, .ecs = &client6};

	get_soa(&soa);
	mk(&q, "hdr 4 0x0100\nqd example.test. IN AAAA\n"
	       "edns 1232 0008 000b 0002 38 00 20010db8010203\n");
	memset(&r, 0, sizeof(r));
	r.kind = FLAT_RES_NODATA;
	r.qtype = CODEC_TYPE_AAAA;
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o6, 1232, out, sizeof(out));
	p = parse(out, n, &v);
	assert_int_equal(v.nscount, 1);
	assert_int_equal(codec_ecs_find(out, &v, false, &got), 1);
	assert_true(codec_ecs_matches(&client6, &got));
	assert_int_equal(got.scope, 0);
	assert_int_equal(v.opt_rdlen, 4 + 11);
	ldns_pkt_free(p);

	/* The answer to a query for the ANAME type too. */
	struct flat_result ra;
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};

	mk(&q, "hdr 8 0x0100\nqd example.test. IN TYPE65401\n"
	       "edns 1232 0008 0007 0001 18 00 c00002\n");
	res_a(&ra, 1, 60);
	n = flat_rewrite_aname_query(q.buf, q.len, &q.v, W("\3cdn\6target\4test"), 600, &a, NULL,
	                             &o, 1232, out, sizeof(out));
	p = parse(out, n, &v);
	assert_int_equal(v.arcount, 2);
	assert_int_equal(codec_ecs_find(out, &v, false, &got), 1);
	assert_int_equal(got.scope, 16);
	ldns_pkt_free(p);
}

/* The EDE text gives way to the ECS option, which a client that sent
 * one must get back; a truncated answer keeps it too. */
static void test_rewrite_ecs_kept_when_room_is_short(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	const struct codec_ecs client = {CODEC_ECS_FAMILY_IP4, 24, 24, {192, 0, 2}};
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_NONE, .ecs = &client};
	struct codec_view v;
	uint8_t out[4096];
	struct codec_ecs got;
	const uint8_t *ede = NULL;

	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\nedns 1232 0008 0007 0001 18 00 c00002\n");
	res_a(&r, 1, 5);
	ssize_t base = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 1232, out, sizeof(out));

	assert_true(base > 0);
	/* Room for the EDE header and 10 octets of its text. */
	o.ede = CODEC_EDE_STALE_ANSWER;
	o.ede_text = "resolution failed; serving the last good answer";
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, (size_t)base + 6 + 10, out,
	                         sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_false(v.flags & CODEC_FLAG_TC);
	assert_int_equal(n, base + 6 + 10);
	assert_int_equal(v.ancount, 1);
	assert_int_equal(find_ede(out, &v, &ede), 2 + 10);
	assert_int_equal(codec_ecs_find(out, &v, false, &got), 1);
	assert_int_equal(got.scope, 24);
	ldns_pkt_free(p);

	/* 64 addresses in 512 octets: TC=1, the option stays. */
	res_a(&r, 64, 5);
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 512, out, sizeof(out));
	p = parse(out, n, &v);
	assert_true(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(codec_ecs_find(out, &v, false, &got), 1);
	assert_int_equal(got.scope, 24);
	ldns_pkt_free(p);
}

static void test_rewrite_no_ecs_unless_client_sent_one(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	const struct codec_ecs client = {CODEC_ECS_FAMILY_IP4, 24, 24, {192, 0, 2}};
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_NONE};
	struct codec_view v;
	uint8_t out[512];
	struct codec_ecs got;

	/* opts->ecs NULL: nothing echoed, whatever the query held. */
	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\nedns 1232 0008 0007 0001 18 00 c00002\n");
	res_a(&r, 1, 5);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_true(v.has_opt);
	assert_int_equal(codec_ecs_find(out, &v, false, &got), 0);
	assert_int_equal(v.opt_rdlen, 0);
	ldns_pkt_free(p);

	/* No OPT in the query: no OPT, so no ECS (RFC 6891 7). */
	o.ecs = &client;
	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\n");
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 512, out, sizeof(out));
	p = parse(out, n, &v);
	assert_false(v.has_opt);
	assert_int_equal(v.arcount, 0);
	ldns_pkt_free(p);
}

static void test_rewrite_no_opt_when_query_had_none(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_STALE_ANSWER};
	struct codec_view v;
	uint8_t out[512];

	mk(&q, "hdr 4 0x0100\nqd example.test. IN A\n");
	res_a(&r, 1, 5);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 30, &o, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_false(v.has_opt);
	assert_int_equal(v.arcount, 0);
	assert_false(ldns_pkt_edns(p));
	ldns_pkt_free(p);
}

static void test_rewrite_64_aaaa_truncated_at_512(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct codec_view v;
	uint8_t out[4096];

	mk(&q, "hdr 5 0x0100\nqd example.test. IN AAAA\n");
	res_aaaa(&r, 64, 60);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL,
	                         flat_rewrite_max_size(&q.v, false), out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(n, q.len);
	assert_true(v.flags & CODEC_FLAG_TC);
	assert_true(ldns_pkt_tc(p));
	assert_int_equal(v.qdcount, 1);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 0);
	ldns_pkt_free(p);

	/* With EDNS the OPT stays in the truncated answer. */
	mk(&q, "hdr 5 0x0100\nqd example.test. IN AAAA\nedns 512 do\n");
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, flat_rewrite_max_size(&q.v, false), out,
	                 sizeof(out));
	p = parse(out, n, &v);
	assert_true(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 0);
	assert_true(v.has_opt);
	assert_true(v.do_bit);
	ldns_pkt_free(p);

	/* Over TCP all 64 fit. */
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, flat_rewrite_max_size(&q.v, true), out,
	                 sizeof(out));
	p = parse(out, n, &v);
	assert_false(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 64);
	assert_true((size_t)n > 512);
	ldns_pkt_free(p);
}

/* Every size a client may offer, A and AAAA, 1..64 addresses: the answer
 * is never larger than the client's size, and it is truncated (TC=1, no
 * answer RRs) exactly when the full answer would not fit. */
static void test_rewrite_never_exceeds_client_size(void **state)
{
	(void)state;
	static const int sizes[] = {0, 512, 600, 1000, 1100, 1232, 1400, 4096, 65535};
	struct pkt q;
	struct flat_result r;
	struct codec_view v;
	uint8_t out[CODEC_MAX_MSG], full[CODEC_MAX_MSG];
	char text[128];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		for (int aaaa = 0; aaaa < 2; aaaa++) {
			snprintf(text, sizeof(text), "hdr 9 0x0100\nqd example.test. IN %s\n%s%d\n",
			         aaaa ? "AAAA" : "A", sizes[s] ? "edns " : "; ",
			         sizes[s] ? sizes[s] : 0);
			mk(&q, text);
			size_t max = flat_rewrite_max_size(&q.v, false);
			assert_true(max <= (sizes[s] < 512 ? 512u : (size_t)sizes[s]));
			for (unsigned n = 1; n <= FLAT_MAX_ADDRS; n++) {
				if (aaaa)
					res_aaaa(&r, n, 60);
				else
					res_a(&r, n, 60);
				ssize_t fl = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL,
				                          CODEC_MAX_MSG, full, sizeof(full));
				ssize_t got = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, max,
				                           out, sizeof(out));
				assert_true(fl > 0 && got > 0);
				assert_true((size_t)got <= max);
				assert_int_equal(codec_scan(out, (size_t)got, &v), 0);
				if ((size_t)fl <= max) {
					assert_false(v.flags & CODEC_FLAG_TC);
					assert_int_equal(v.ancount, n);
					assert_memory_equal(out, full, (size_t)fl);
				} else {
					assert_true(v.flags & CODEC_FLAG_TC);
					assert_int_equal(v.ancount, 0);
				}
			}
		}
	}
	/* 64 A fit 1232 with room to spare; 64 AAAA never fit UDP. */
	mk(&q, "hdr 9 0x0100\nqd example.test. IN A\nedns 1232\n");
	res_a(&r, 64, 60);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL,
	                         flat_rewrite_max_size(&q.v, false), out, sizeof(out));
	assert_int_equal(codec_scan(out, (size_t)n, &v), 0);
	assert_int_equal(v.ancount, 64);
	mk(&q, "hdr 9 0x0100\nqd example.test. IN AAAA\nedns 4096\n");
	res_aaaa(&r, 64, 60);
	n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, flat_rewrite_max_size(&q.v, false), out,
	                 sizeof(out));
	assert_int_equal(codec_scan(out, (size_t)n, &v), 0);
	assert_true(v.flags & CODEC_FLAG_TC);
	assert_true((size_t)n <= 1232);
}

static void test_rewrite_too_small_emsgsize(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	uint8_t out[512];

	mk(&q, "hdr 5 0x0100\nqd example.test. IN A\n");
	res_a(&r, 1, 60);
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, 512, out, q.len - 1),
	                 -EMSGSIZE);
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 60, NULL, 11, out, sizeof(out)),
	                 -EMSGSIZE);
}

static void test_rewrite_fail_servfail_ede(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r = {.kind = FLAT_RES_FAIL,
	                        .qtype = CODEC_TYPE_A,
	                        .ede = CODEC_EDE_NO_REACHABLE_AUTHORITY,
	                        .why = "chase timed out"};
	struct codec_view v;
	uint8_t out[512];
	const uint8_t *ede = NULL;

	mk(&q, "hdr 6 0x0100\nqd example.test. IN A\nedns 1232\n");
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 0, NULL, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.rcode, CODEC_RCODE_SERVFAIL);
	assert_int_equal(find_ede(out, &v, &ede), 2 + strlen(r.why));
	assert_int_equal(codec_get_u16(ede), CODEC_EDE_NO_REACHABLE_AUTHORITY);
	ldns_pkt_free(p);
}

static void test_rewrite_show_aname(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result r;
	struct flat_rewrite_opts o = {.ede = CODEC_EDE_NONE,
	                              .show_aname = true,
	                              .aname_type = 65401,
	                              .aname_target = W("\3cdn\6target\4test"),
	                              .aname_ttl = 600};
	struct codec_view v;
	uint8_t out[512];

	mk(&q, "hdr 7 0x0100\nqd example.test. IN A\n");
	res_a(&r, 2, 60);
	ssize_t n = flat_rewrite(q.buf, q.len, &q.v, &r, 60, &o, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.ancount, 3);
	ldns_rr_list *an = ldns_pkt_answer(p);

	check_rr(ldns_rr_list_rr(an, 0), "example.test.", LDNS_RR_TYPE_A, 60, "192.0.2.1");
	check_rr(ldns_rr_list_rr(an, 2), "example.test.", 65401, 600, NULL);
	const ldns_rdf *rd = ldns_rr_rdf(ldns_rr_list_rr(an, 2), 0);

	assert_int_equal(ldns_rdf_size(rd), 17);
	assert_memory_equal(ldns_rdf_data(rd), "\3cdn\6target\4test", 17);
	ldns_pkt_free(p);

	/* A malformed target is refused rather than written. */
	o.aname_target_len = 5;
	assert_int_equal(flat_rewrite(q.buf, q.len, &q.v, &r, 60, &o, 512, out, sizeof(out)),
	                 -EINVAL);
}

static void test_rewrite_aname_query(void **state)
{
	(void)state;
	struct pkt q;
	struct flat_result ra;
	struct flat_result raaaa;
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};
	struct flat_rrset_in aaaa = {.res = &raaaa, .ttl = 90};
	struct codec_view v;
	uint8_t out[512];

	mk(&q, "hdr 8 0x0100\nqd Example.test. IN TYPE65401\nedns 1232\n");
	res_a(&ra, 1, 60);
	res_aaaa(&raaaa, 2, 90);
	ssize_t n = flat_rewrite_aname_query(q.buf, q.len, &q.v, W("\3cdn\6target\4test"), 600, &a,
	                                     &aaaa, NULL, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.flags, CODEC_FLAG_QR | CODEC_FLAG_AA | CODEC_FLAG_RD);
	assert_int_equal(v.ancount, 1);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 4); /* A, 2 AAAA, OPT */
	check_rr(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "Example.test.", 65401, 600, NULL);
	const ldns_rdf *rd = ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(p), 0), 0);

	assert_memory_equal(ldns_rdf_data(rd), "\3cdn\6target\4test", 17);
	ldns_rr_list *ar = ldns_pkt_additional(p);

	assert_int_equal(ldns_rr_list_rr_count(ar), 3);
	check_rr(ldns_rr_list_rr(ar, 0), "cdn.target.test.", LDNS_RR_TYPE_A, 60, "192.0.2.1");
	check_rr(ldns_rr_list_rr(ar, 1), "cdn.target.test.", LDNS_RR_TYPE_AAAA, 90, "2001:db8::1");
	check_rr(ldns_rr_list_rr(ar, 2), "cdn.target.test.", LDNS_RR_TYPE_AAAA, 90, "2001:db8::2");
	ldns_pkt_free(p);

	/* No room for the additional data: dropped without TC. */
	res_aaaa(&raaaa, 40, 90);
	mk(&q, "hdr 8 0x0100\nqd example.test. IN TYPE65401\n");
	n = flat_rewrite_aname_query(q.buf, q.len, &q.v, W("\3cdn\6target\4test"), 600, &a, &aaaa,
	                             NULL, 512, out, sizeof(out));
	p = parse(out, n, &v);
	assert_false(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 1);
	assert_int_equal(v.arcount, 0);
	ldns_pkt_free(p);

	/* Not even the ANAME fits: TC. */
	n = flat_rewrite_aname_query(q.buf, q.len, &q.v, W("\3cdn\6target\4test"), 600, &a, &aaaa,
	                             NULL, q.len + 10, out, sizeof(out));
	p = parse(out, n, &v);
	assert_true(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 0);
	ldns_pkt_free(p);
}

static void test_rewrite_any_minimal(void **state)
{
	(void)state;
	struct pkt q;
	struct codec_view v;
	uint8_t out[512];

	mk(&q, "hdr 9 0x0100\nqd eXample.test. IN ANY\nedns 1232 do\n");
	ssize_t n = flat_rewrite_any_minimal(q.buf, q.len, &q.v, 3600, 512, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.rcode, CODEC_RCODE_NOERROR);
	assert_true(v.flags & CODEC_FLAG_AA);
	assert_int_equal(v.ancount, 1);
	assert_true(v.has_opt);
	assert_true(v.do_bit);
	check_rr(ldns_rr_list_rr(ldns_pkt_answer(p), 0), "eXample.test.", LDNS_RR_TYPE_HINFO, 3600,
	         "\"RFC8482\" \"\"");
	ldns_pkt_free(p);
}

/* BIND's ANY answer at the apex, compressed by ldns as BIND would. */
static const char any_resp[] =
        "hdr 0x4242 0x8500\nqd Example.Test. IN ANY\n"
        "an example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. "
        "1 7200 3600 1209600 300\n"
        "an example.test. 3600 IN NS ns1.example.test.\n"
        "an example.test. 3600 IN MX 10 mail.example.test.\n"
        "an example.test. 3600 IN CNAME bogus.example.test.\n"
        "an example.test. 300 IN A 198.51.100.9\n"
        "an example.test. 300 IN RRSIG A 13 2 300 20300101000000 20200101000000 "
        "12345 example.test. AAAAAAAAAAAAAAAA\n"
        "an example.test. 3600 IN RRSIG MX 13 2 3600 20300101000000 20200101000000 "
        "12345 example.test. AAAAAAAAAAAAAAAA\n"
        "an example.test. 300 IN TXT \"v=spf1 -all\"\n"
        "an example.test. 300 IN SRV 0 5 443 www.example.test.\n"
        "ns example.test. 3600 IN NS ns1.example.test.\n"
        "ar ns1.example.test. 3600 IN A 192.0.2.53\n"
        "edns 1232\n";

/* True when the name at m[off] is written out in full, ending by lim. */
static bool name_uncompressed(const uint8_t *m, size_t off, size_t lim)
{
	while (off < lim && m[off] != 0) {
		if (m[off] > 63)
			return false;
		off += (size_t)m[off] + 1;
	}
	return off < lim;
}

static void test_rewrite_append_any_tcp_decompressed(void **state)
{
	(void)state;
	struct pkt r;
	struct flat_result ra;
	struct flat_result raaaa;
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};
	struct flat_rrset_in aaaa = {.res = &raaaa, .ttl = 90};
	struct codec_view v;
	static uint8_t out[65535];

	mk(&r, any_resp);
	/* The input really is compressed: the MX exchange holds a pointer
	 * (uncompressed it would take 2 + 19 octets). */
	struct codec_rr_iter it;
	struct codec_rr rr;

	codec_rr_iter_init(&it, r.buf, r.len, &r.v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1 && rr.type != CODEC_TYPE_MX)
		;
	assert_int_equal(rr.type, CODEC_TYPE_MX);
	assert_true(rr.rdlen < 2 + 19);
	res_a(&ra, 2, 60);
	res_aaaa(&raaaa, 1, 90);
	ssize_t n = flat_rewrite_append(r.buf, r.len, &r.v, &a, &aaaa, 65535, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_int_equal(v.id, 0x4242);
	assert_int_equal(v.flags, CODEC_FLAG_QR | CODEC_FLAG_AA | CODEC_FLAG_RD);
	assert_memory_equal(out + 12, "\7Example\4Test", 13);
	/* SOA NS MX RRSIG(MX) TXT SRV + 2 A + 1 AAAA; CNAME, sibling A and
	 * its RRSIG gone. */
	assert_int_equal(v.ancount, 9);
	assert_int_equal(v.nscount, 1);
	assert_int_equal(v.arcount, 2);
	ldns_rr_list *an = ldns_pkt_answer(p);

	/* Names decompressed from the original keep the spelling they point
	 * at (the question's), and name the right labels. */
	check_rr(ldns_rr_list_rr(an, 0), "Example.Test.", LDNS_RR_TYPE_SOA, 3600,
	         "ns1.Example.Test. hostmaster.Example.Test. 1 7200 3600 1209600 300");
	check_rr(ldns_rr_list_rr(an, 1), "Example.Test.", LDNS_RR_TYPE_NS, 3600,
	         "ns1.Example.Test.");
	check_rr(ldns_rr_list_rr(an, 2), "Example.Test.", LDNS_RR_TYPE_MX, 3600,
	         "10 mail.Example.Test.");
	check_rr(ldns_rr_list_rr(an, 3), "Example.Test.", LDNS_RR_TYPE_RRSIG, 3600, NULL);
	check_rr(ldns_rr_list_rr(an, 4), "Example.Test.", LDNS_RR_TYPE_TXT, 300, "\"v=spf1 -all\"");
	check_rr(ldns_rr_list_rr(an, 5), "Example.Test.", LDNS_RR_TYPE_SRV, 300, NULL);
	check_rr(ldns_rr_list_rr(an, 6), "Example.Test.", LDNS_RR_TYPE_A, 60, "192.0.2.1");
	check_rr(ldns_rr_list_rr(an, 7), "Example.Test.", LDNS_RR_TYPE_A, 60, "192.0.2.2");
	check_rr(ldns_rr_list_rr(an, 8), "Example.Test.", LDNS_RR_TYPE_AAAA, 90, "2001:db8::1");
	check_rr(ldns_rr_list_rr(ldns_pkt_authority(p), 0), "Example.Test.", LDNS_RR_TYPE_NS, 3600,
	         "ns1.Example.Test.");
	check_rr(ldns_rr_list_rr(ldns_pkt_additional(p), 0), "ns1.Example.Test.", LDNS_RR_TYPE_A,
	         3600, "192.0.2.53");
	/* The OPT is last and as BIND wrote it. */
	assert_true(v.has_opt);
	assert_int_equal(v.opt_rdata_off + v.opt_rdlen, n);
	assert_memory_equal(out + v.opt_off, r.buf + r.v.opt_off,
	                    r.v.opt_rdata_off + r.v.opt_rdlen - r.v.opt_off);

	/* The only pointers left are ours, to the question. */
	unsigned ptrs = 0;

	codec_rr_iter_init(&it, out, (size_t)n, &v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		if ((out[rr.owner_off] & 0xc0) == 0xc0) {
			assert_int_equal(codec_get_u16(out + rr.owner_off), 0xc00c);
			ptrs++;
		}
	}
	assert_int_equal(ptrs, 3);
	/* No RDATA name may keep a pointer into the old message. */
	codec_rr_iter_init(&it, out, (size_t)n, &v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		size_t off = rr.rdata_off;

		if (rr.type == CODEC_TYPE_MX)
			off += 2;
		else if (rr.type == 33) /* SRV */
			off += 6;
		else if (rr.type != CODEC_TYPE_NS && rr.type != CODEC_TYPE_SOA)
			continue;
		assert_true(name_uncompressed(out, off, rr.rdata_off + rr.rdlen));
	}
	ldns_pkt_free(p);
}

static void test_rewrite_append_failed_chase_keeps_siblings(void **state)
{
	(void)state;
	struct pkt r;
	struct flat_result ra = {.kind = FLAT_RES_FAIL, .qtype = CODEC_TYPE_A};
	struct flat_rrset_in a = {.res = &ra, .ttl = 60};
	struct codec_view v;
	static uint8_t out[65535];

	mk(&r, any_resp);
	ssize_t n = flat_rewrite_append(r.buf, r.len, &r.v, &a, NULL, 65535, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	/* The sibling A stays (the operator's fallback), its RRSIG and the
	 * CNAME never. */
	assert_int_equal(v.ancount, 7);
	ldns_rr_list *an = ldns_pkt_answer(p);
	bool sibling = false;

	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		ldns_rr *x = ldns_rr_list_rr(an, i);

		assert_int_not_equal(ldns_rr_get_type(x), LDNS_RR_TYPE_CNAME);
		if (ldns_rr_get_type(x) == LDNS_RR_TYPE_A)
			sibling = true;
	}
	assert_true(sibling);
	ldns_pkt_free(p);
}

static void test_rewrite_append_too_big_truncates(void **state)
{
	(void)state;
	struct pkt r;
	struct codec_view v;
	uint8_t out[512];

	mk(&r, any_resp);
	ssize_t n = flat_rewrite_append(r.buf, r.len, &r.v, NULL, NULL, 100, out, sizeof(out));
	ldns_pkt *p = parse(out, n, &v);

	assert_true(v.flags & CODEC_FLAG_TC);
	assert_int_equal(v.ancount, 0);
	assert_int_equal(v.nscount, 0);
	assert_int_equal(v.arcount, 1);
	assert_true(v.has_opt);
	ldns_pkt_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ttl_final_clamps_both_ways),
	        cmocka_unit_test(test_max_size_rules),
	        cmocka_unit_test(test_rewrite_a_case_preserved_header),
	        cmocka_unit_test(test_rewrite_aaaa),
	        cmocka_unit_test(test_rewrite_type_mismatch_einval),
	        cmocka_unit_test(test_rewrite_nodata_soa_ttl),
	        cmocka_unit_test(test_rewrite_nxdomain_becomes_nodata),
	        cmocka_unit_test(test_rewrite_negative_without_soa_einval),
	        cmocka_unit_test(test_rewrite_ede_stale_and_do_copied),
	        cmocka_unit_test(test_rewrite_echoes_cookie_pair),
	        cmocka_unit_test(test_rewrite_no_opt_when_query_had_none),
	        cmocka_unit_test(test_rewrite_echoes_ecs_with_scope),
	        cmocka_unit_test(test_rewrite_ecs_kept_when_room_is_short),
	        cmocka_unit_test(test_rewrite_no_ecs_unless_client_sent_one),
	        cmocka_unit_test(test_rewrite_64_aaaa_truncated_at_512),
	        cmocka_unit_test(test_rewrite_never_exceeds_client_size),
	        cmocka_unit_test(test_rewrite_too_small_emsgsize),
	        cmocka_unit_test(test_rewrite_fail_servfail_ede),
	        cmocka_unit_test(test_rewrite_show_aname),
	        cmocka_unit_test(test_rewrite_aname_query),
	        cmocka_unit_test(test_rewrite_any_minimal),
	        cmocka_unit_test(test_rewrite_append_any_tcp_decompressed),
	        cmocka_unit_test(test_rewrite_append_failed_chase_keeps_siblings),
	        cmocka_unit_test(test_rewrite_append_too_big_truncates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
