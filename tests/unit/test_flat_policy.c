/* tests/unit/test_flat_policy.c - flat_policy_inspect(), flat_policy_soa()
 * and flat_aname_parse() over queries and BIND answers built with ldns.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "codec/rr.h"
#include "codec/scan.h"
#include "flatten/policy.h"
#include "tests/unit/helpers.h"

/* A wire name literal and its length (the literal's NUL is the root). */
#define W(s) ((const uint8_t *)(s)), (sizeof(s))

struct pkt {
	uint8_t buf[4096];
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

static void mk_hex(struct pkt *p, const char *hex)
{
	long n = th_hex(hex, p->buf, sizeof(p->buf));

	assert_true(n >= 12);
	p->len = (size_t)n;
	assert_int_equal(codec_scan(p->buf, p->len, &p->v), 0);
}

/* The usual fixture: a query and BIND's answer, inspected under a mode. */
struct fx {
	struct pkt q;
	struct pkt r;
	struct flat_policy_in in;
	struct flat_policy_out out;
};

static enum flat_policy_action inspect(struct fx *f, const char *query, const char *resp,
                                       enum flat_cname_mode mode, bool is_apex)
{
	mk(&f->q, query);
	mk(&f->r, resp);
	memset(&f->in, 0, sizeof(f->in));
	f->in.query = f->q.buf;
	f->in.qlen = f->q.len;
	f->in.qv = &f->q.v;
	f->in.resp = f->r.buf;
	f->in.rlen = f->r.len;
	f->in.rv = &f->r.v;
	f->in.mode = mode;
	f->in.is_apex = is_apex;
	return flat_policy_inspect(&f->in, &f->out);
}

static void set_target(struct fx *f, const uint8_t *target, size_t len)
{
	f->in.target = target;
	f->in.target_len = len;
}

static enum flat_policy_action reinspect(struct fx *f)
{
	return flat_policy_inspect(&f->in, &f->out);
}

static const char q_apex_a[] = "hdr 0x1234 0x0100\nqd example.test. IN A\nedns 1232\n";
static const char q_apex_aaaa[] = "hdr 0x1234 0x0100\nqd example.test. IN AAAA\n";
static const char q_www_a[] = "hdr 7 0x0100\nqd www.example.test. IN A\n";

/* QR AA RD, NOERROR. */
static const char r_apex_cname[] = "hdr 0x1234 0x8500\nqd example.test. IN A\n"
                                   "an example.test. 300 IN CNAME cdn.Target.NET.\nedns 1232\n";
static const char r_www_cname[] = "hdr 7 0x8500\nqd www.example.test. IN A\n"
                                  "an www.example.test. 120 IN CNAME cdn.target.net.\n";

static const char soa_line[] =
        "ns example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. "
        "2024010101 7200 3600 1209600 300\n";

static void assert_target(const struct flat_policy_out *o, const uint8_t *name, size_t len)
{
	assert_int_equal(o->target_len, len);
	assert_memory_equal(o->target, name, len);
}

static void test_policy_apex_cname_mode_apex_chase(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a, r_apex_cname, FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	/* Lowercased for the chase and the cache key. */
	assert_target(&f.out, W("\3cdn\6target\3net"));
	assert_int_equal(f.out.chain_ttl, 300);
	assert_int_equal(f.out.hops, 1);
	assert_false(f.out.siblings);
	assert_false(f.out.signed_relay);
}

static void test_policy_apex_cname_aaaa_chase(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_aaaa,
	                         "hdr 0x1234 0x8400\nqd example.test. IN AAAA\n"
	                         "an example.test. 60 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\3net"));
	assert_int_equal(f.out.chain_ttl, 60);
}

static void test_policy_nonapex_cname_mode_apex_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_www_a, r_www_cname, FLAT_CNAME_APEX, false),
	                 FLAT_POLICY_RELAY);
	assert_false(f.out.signed_relay);
}

static void test_policy_nonapex_cname_mode_all_chase(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_www_a, r_www_cname, FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\3net"));
	assert_int_equal(f.out.chain_ttl, 120);
	assert_int_equal(f.out.hops, 1);
}

static void test_policy_mode_none_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a, r_apex_cname, FLAT_CNAME_NONE, true),
	                 FLAT_POLICY_RELAY);
	assert_int_equal(inspect(&f, q_www_a, r_www_cname, FLAT_CNAME_NONE, false),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_inzone_chain_addresses_local_ttl_min(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_www_a,
	                         "hdr 7 0x8500\nqd www.example.test. IN A\n"
	                         "an www.example.test. 300 IN CNAME a.example.test.\n"
	                         "an a.example.test. 90 IN CNAME B.example.test.\n"
	                         "an b.example.test. 120 IN A 192.0.2.1\n"
	                         "an b.example.test. 120 IN A 192.0.2.2\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_LOCAL);
	const struct flat_result *r = &f.out.local;

	assert_int_equal(r->kind, FLAT_RES_ADDRS);
	assert_int_equal(r->qtype, CODEC_TYPE_A);
	assert_int_equal(r->n_addrs, 2);
	assert_memory_equal(r->addrs[0], "\xc0\x00\x02\x01", 4);
	assert_memory_equal(r->addrs[1], "\xc0\x00\x02\x02", 4);
	assert_int_equal(r->ttl, 90);
	assert_int_equal(r->hops, 2);
	assert_int_equal(f.out.hops, 2);
}

static void test_policy_inzone_chain_aaaa_local_ttl_from_rrset(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_aaaa,
	                         "hdr 0x1234 0x8400\nqd example.test. IN AAAA\n"
	                         "an example.test. 300 IN CNAME www.example.test.\n"
	                         "an www.example.test. 30 IN AAAA 2001:db8::1\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_LOCAL);
	assert_int_equal(f.out.local.qtype, CODEC_TYPE_AAAA);
	assert_int_equal(f.out.local.n_addrs, 1);
	assert_memory_equal(f.out.local.addrs[0], "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
	assert_int_equal(f.out.local.ttl, 30);
}

static void test_policy_chain_leaving_zone_chase_last_target(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_www_a,
	                         "hdr 7 0x8500\nqd www.example.test. IN A\n"
	                         "an www.example.test. 300 IN CNAME a.example.test.\n"
	                         "an a.example.test. 200 IN CNAME lb.cdn.net.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\2lb\3cdn\3net"));
	assert_int_equal(f.out.chain_ttl, 200);
	assert_int_equal(f.out.hops, 2);
}

static void test_policy_chain_nxdomain_local_nxdomain(void **state)
{
	(void)state;
	struct fx f;
	char resp[512];

	snprintf(resp, sizeof(resp),
	         "hdr 0x1234 0x8503\nqd example.test. IN A\n"
	         "an example.test. 600 IN CNAME gone.example.test.\n%s",
	         soa_line);
	assert_int_equal(inspect(&f, q_apex_a, resp, FLAT_CNAME_APEX, true), FLAT_POLICY_LOCAL);
	assert_int_equal(f.out.local.kind, FLAT_RES_NXDOMAIN);
	/* min(CNAME 600, SOA TTL 3600, MINIMUM 300) */
	assert_int_equal(f.out.local.ttl, 300);
}

static void test_policy_cname_loop_in_answer_chase_fails_on_depth(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_www_a,
	                         "hdr 7 0x8500\nqd www.example.test. IN A\n"
	                         "an www.example.test. 300 IN CNAME a.example.test.\n"
	                         "an a.example.test. 300 IN CNAME www.example.test.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_CHASE);
	assert_int_equal(f.out.hops, UINT8_MAX);
}

static void test_policy_not_aa_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8100\nqd example.test. IN A\n"
	                         "an example.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_truncated_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8700\nqd example.test. IN A\n"
	                         "an example.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_servfail_and_refused_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a, "hdr 0x1234 0x8502\nqd example.test. IN A\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
	assert_int_equal(inspect(&f, q_apex_a, "hdr 0x1234 0x8405\nqd example.test. IN A\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
	/* Even for an ANAME owner. */
	set_target(&f, W("\3cdn\6target\3net"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_RELAY);
}

static void test_policy_other_qtype_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 1 0\nqd example.test. IN MX\n",
	                         "hdr 1 0x8400\nqd example.test. IN MX\n"
	                         "an example.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\3net"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_RELAY);
}

static void test_policy_no_cname_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8400\nqd example.test. IN A\n"
	                         "an example.test. 300 IN A 192.0.2.7\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
	/* A CNAME that is not first, or not at the query name: not ours. */
	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8400\nqd example.test. IN A\n"
	                         "an other.example.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_question_mismatch_relay(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8400\nqd other.test. IN A\n"
	                         "an other.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, true),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_query_case_ignored(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 9 0x0100\nqd ExAmPle.TeSt. IN A\n",
	                         "hdr 9 0x8500\nqd ExAmPle.TeSt. IN A\n"
	                         "an example.TEST. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
}

/* BIND's question is compared without case, not only octet for octet;
 * a name of the same length that differs is another question. */
static void test_policy_answer_question_case_ignored(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 9 0x0100\nqd ExAmPle.TeSt. IN A\n",
	                         "hdr 9 0x8500\nqd example.test. IN A\n"
	                         "an example.test. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\3net"));
	assert_int_equal(inspect(&f, "hdr 9 0x0100\nqd example.test. IN A\n",
	                         "hdr 9 0x8500\nqd example.tesu. IN A\n"
	                         "an example.tesu. 300 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
}

static void test_policy_do_with_rrsig_relay_signed(void **state)
{
	(void)state;
	struct fx f;
	const char *resp = "hdr 0x1234 0x8500\nqd example.test. IN A\n"
	                   "an example.test. 300 IN CNAME cdn.target.net.\n"
	                   "an example.test. 300 IN RRSIG CNAME 13 2 300 20300101000000 "
	                   "20200101000000 12345 example.test. AAAAAAAAAAAAAAAA\n"
	                   "edns 1232 do\n";

	assert_int_equal(inspect(&f, "hdr 0x1234 0x0100\nqd example.test. IN A\nedns 1232 do\n",
	                         resp, FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	assert_true(f.out.signed_relay);
	/* Without DO the zone is flattened whatever it holds. */
	assert_int_equal(inspect(&f, q_apex_a, resp, FLAT_CNAME_APEX, true), FLAT_POLICY_CHASE);
	assert_false(f.out.signed_relay);
}

static void test_policy_do_without_rrsig_flattens(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 0x1234 0x0100\nqd example.test. IN A\nedns 1232 do\n",
	                         r_apex_cname, FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	assert_false(f.out.signed_relay);
}

static void test_policy_aname_nodata_chase_no_siblings(void **state)
{
	(void)state;
	struct fx f;
	char resp[512];

	snprintf(resp, sizeof(resp), "hdr 0x1234 0x8500\nqd example.test. IN A\n%s", soa_line);
	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, q_apex_a, resp, FLAT_CNAME_NONE, true), FLAT_POLICY_RELAY);
	assert_int_equal(f.out.action, FLAT_POLICY_RELAY);
	set_target(&f, W("\3CDN\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\4test"));
	assert_false(f.out.siblings);
	assert_int_equal(f.out.hops, 0);
	assert_int_equal(f.out.chain_ttl, UINT32_MAX);
	assert_false(f.out.owner_nxdomain);
}

static void test_policy_aname_with_sibling_a_siblings_true(void **state)
{
	(void)state;
	struct fx f;

	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, q_apex_a,
	                         "hdr 0x1234 0x8500\nqd example.test. IN A\n"
	                         "an example.test. 300 IN A 192.0.2.99\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	assert_int_equal(f.out.action, FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_true(f.out.siblings);
}

static void test_policy_aname_any_chase(void **state)
{
	(void)state;
	struct fx f;

	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, "hdr 3 0\nqd example.test. IN ANY\n",
	                         "hdr 3 0x8400\nqd example.test. IN ANY\n"
	                         "an example.test. 300 IN AAAA 2001:db8::5\n"
	                         "an example.test. 300 IN MX 10 mail.example.test.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_true(f.out.siblings);
}

static void test_policy_alias_nxdomain_chase_aname_nxdomain_relay(void **state)
{
	(void)state;
	struct fx f;
	char resp[512];

	snprintf(resp, sizeof(resp), "hdr 0x1234 0x8503\nqd example.test. IN A\n%s", soa_line);
	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, q_apex_a, resp, FLAT_CNAME_APEX, true), FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	/* An ANAME owner exists: BIND's NXDOMAIN wins (the zone changed). */
	assert_int_equal(reinspect(&f), FLAT_POLICY_RELAY);
	f.in.target_is_alias = true;
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_true(f.out.owner_nxdomain);
	assert_false(f.out.siblings);
}

static void test_policy_bad_target_relay(void **state)
{
	(void)state;
	struct fx f;

	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, q_apex_a, "hdr 0x1234 0x8500\nqd example.test. IN A\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	f.in.target = (const uint8_t *)"\3cdn\6target"; /* no root label */
	f.in.target_len = 11;
	assert_int_equal(reinspect(&f), FLAT_POLICY_RELAY);
}

static void test_policy_aname_signed_relay(void **state)
{
	(void)state;
	struct fx f;

	/* BIND's answer alone, before the target is known: relayed. */
	assert_int_equal(inspect(&f, "hdr 1 0\nqd example.test. IN A\nedns 1232 do\n",
	                         "hdr 1 0x8400\nqd example.test. IN A\n"
	                         "an example.test. 300 IN A 192.0.2.99\n"
	                         "an example.test. 300 IN RRSIG A 13 2 300 20300101000000 "
	                         "20200101000000 12345 example.test. AAAAAAAAAAAAAAAA\n"
	                         "edns 1232 do\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_RELAY);
	assert_true(f.out.signed_relay);
}

/* RFC 6672: below a DNAME, the CNAME at the query name is synthesized from
 * the client's own labels. Flattening it would let any client pick chase
 * targets, so it is relayed under every mode, whatever the record order. */
static void test_policy_dname_synthesized_relay(void **state)
{
	(void)state;
	struct fx f;
	static const char q[] = "hdr 4 0x0100\nqd RND.dn.example.test. IN A\n";

	/* BIND's order: the DNAME, then the CNAME it synthesized. */
	assert_int_equal(inspect(&f, q,
	                         "hdr 4 0x8500\nqd RND.dn.example.test. IN A\n"
	                         "an dn.example.test. 300 IN DNAME cdn.target.net.\n"
	                         "an RND.dn.example.test. 300 IN CNAME RND.cdn.target.net.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_RELAY);
	/* The synthesized CNAME first (RFC 6672 sets no order). */
	assert_int_equal(inspect(&f, q,
	                         "hdr 4 0x8500\nqd RND.dn.example.test. IN A\n"
	                         "an RND.dn.example.test. 300 IN CNAME RND.cdn.target.net.\n"
	                         "an dn.Example.test. 300 IN DNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_RELAY);
	/* At a configured apex that lies below a DNAME of BIND's zone too. */
	assert_int_equal(inspect(&f, q,
	                         "hdr 4 0x8500\nqd RND.dn.example.test. IN A\n"
	                         "an RND.dn.example.test. 300 IN CNAME RND.cdn.target.net.\n"
	                         "an example.test. 300 IN DNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	/* An in-zone chain ending below the DNAME, synthesized CNAME first. */
	assert_int_equal(inspect(&f, q,
	                         "hdr 4 0x8500\nqd RND.dn.example.test. IN A\n"
	                         "an RND.dn.example.test. 300 IN CNAME host.example.test.\n"
	                         "an host.example.test. 300 IN A 192.0.2.1\n"
	                         "an dn.example.test. 300 IN DNAME example.test.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_RELAY);
}

/* A CNAME the zone wrote is flattened even when its chain passes a DNAME
 * further on: every name on it is fixed by the zone, none by the client. */
static void test_policy_dname_later_in_chain_flattens(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 4 0x0100\nqd viadn.example.test. IN A\n",
	                         "hdr 4 0x8500\nqd viadn.example.test. IN A\n"
	                         "an viadn.example.test. 120 IN CNAME www.dn.example.test.\n"
	                         "an dn.example.test. 300 IN DNAME cdn.target.net.\n"
	                         "an www.dn.example.test. 300 IN CNAME www.cdn.target.net.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3www\3cdn\6target\3net"));
	assert_int_equal(f.out.hops, 2);
	assert_int_equal(f.out.chain_ttl, 120);
	/* A DNAME redirects only names below its owner, never the owner
	 * (RFC 6672 2.3); the rule looks only below. */
	assert_int_equal(inspect(&f, "hdr 4 0x0100\nqd dn.example.test. IN A\n",
	                         "hdr 4 0x8500\nqd dn.example.test. IN A\n"
	                         "an dn.example.test. 120 IN CNAME www.cdn.target.net.\n"
	                         "an dn.example.test. 300 IN DNAME cdn.target.net.\n",
	                         FLAT_CNAME_ALL, false),
	                 FLAT_POLICY_CHASE);
}

/* A query for the ANAME type itself: BIND's answer is the record. */
static enum flat_policy_action inspect_aname(struct fx *f, const char *query, const char *resp,
                                             struct flat_aname *an)
{
	mk(&f->q, query);
	mk(&f->r, resp);
	memset(&f->in, 0, sizeof(f->in));
	f->in.query = f->q.buf;
	f->in.qlen = f->q.len;
	f->in.qv = &f->q.v;
	f->in.resp = f->r.buf;
	f->in.rlen = f->r.len;
	f->in.rv = &f->r.v;
	return flat_policy_inspect_aname(&f->in, &f->out, an);
}

#define ANAME_Q_DO "hdr 2 0x0100\nqd example.test. IN TYPE65401\nedns 1232 do\n"
#define ANAME_R_HEAD "hdr 2 0x8500\nqd example.test. IN TYPE65401\n"
#define ANAME_R_RR "an example.test. 600 IN TYPE65401 \\# 17 0363646e06746172676574047465737400\n"
#define ANAME_R_SIG                                                                                \
	"an example.test. 600 IN RRSIG TYPE65401 13 2 600 20300101000000 20200101000000 "          \
	"12345 example.test. AAAAAAAAAAAAAAAA\n"

static void test_policy_aname_query_chase(void **state)
{
	(void)state;
	struct fx f;
	struct flat_aname an;

	assert_int_equal(inspect_aname(&f, "hdr 2 0x0100\nqd example.test. IN TYPE65401\n",
	                               ANAME_R_HEAD ANAME_R_RR, &an),
	                 FLAT_POLICY_CHASE);
	assert_int_equal(an.state, FLAT_ANAME_PRESENT);
	assert_target(&f.out, W("\3cdn\6target\4test"));
	assert_true(f.out.siblings);
	assert_int_equal(f.out.hops, 0);
	assert_int_equal(f.out.chain_ttl, UINT32_MAX);
	assert_false(f.out.signed_relay);
	/* DO=1 on an unsigned zone: flattened like A/AAAA. */
	assert_int_equal(
	        inspect_aname(&f, ANAME_Q_DO, ANAME_R_HEAD ANAME_R_RR "edns 1232 do\n", &an),
	        FLAT_POLICY_CHASE);
	assert_false(f.out.signed_relay);
}

static void test_policy_aname_query_signed_do_relay(void **state)
{
	(void)state;
	struct fx f;
	struct flat_aname an;

	/* The rewrite would drop the record's RRSIG: BIND's answer goes out. */
	assert_int_equal(inspect_aname(&f, ANAME_Q_DO,
	                               ANAME_R_HEAD ANAME_R_RR ANAME_R_SIG "edns 1232 do\n", &an),
	                 FLAT_POLICY_RELAY);
	assert_true(f.out.signed_relay);
	assert_int_equal(an.state, FLAT_ANAME_PRESENT);
	/* Without DO a signed zone is flattened whatever it holds. */
	assert_int_equal(inspect_aname(&f, "hdr 2 0x0100\nqd example.test. IN TYPE65401\n",
	                               ANAME_R_HEAD ANAME_R_RR ANAME_R_SIG, &an),
	                 FLAT_POLICY_CHASE);
	assert_false(f.out.signed_relay);
}

static void test_policy_aname_query_no_record_relay(void **state)
{
	(void)state;
	struct fx f;
	struct flat_aname an;

	/* NODATA, an invalid record, or not authoritative: BIND's answer. */
	assert_int_equal(inspect_aname(&f, ANAME_Q_DO, ANAME_R_HEAD "edns 1232 do\n", &an),
	                 FLAT_POLICY_RELAY);
	assert_int_equal(an.state, FLAT_ANAME_ABSENT);
	assert_false(f.out.signed_relay);
	assert_int_equal(inspect_aname(&f, ANAME_Q_DO,
	                               ANAME_R_HEAD "an example.test. 600 IN TYPE65401 \\# 1 00\n",
	                               &an),
	                 FLAT_POLICY_RELAY);
	assert_int_equal(an.state, FLAT_ANAME_INVALID);
	assert_int_equal(inspect_aname(&f, ANAME_Q_DO,
	                               "hdr 2 0x8100\nqd example.test. IN TYPE65401\n" ANAME_R_RR,
	                               &an),
	                 FLAT_POLICY_RELAY);
	/* Another name in BIND's question: not this query's answer. */
	assert_int_equal(inspect_aname(&f, ANAME_Q_DO,
	                               "hdr 2 0x8500\nqd other.test. IN TYPE65401\n"
	                               "an other.test. 600 IN TYPE65401 \\# 17 "
	                               "0363646e06746172676574047465737400\n",
	                               &an),
	                 FLAT_POLICY_RELAY);
}

static void test_soa_decompressed(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_soa soa;
	char resp[512];
	/* Both names point into the question, so they come back with its
	 * spelling: proof that the pointers were followed. */
	static const uint8_t want[] = "\3ns1\7Example\4test\0"
	                              "\12hostmaster\7Example\4test\0"
	                              "\x78\xa3\xf1\x75" /* 2024010101 */
	                              "\0\0\x1c\x20\0\0\x0e\x10\0\x12\x75\0\0\0\x01\x2c";

	snprintf(resp, sizeof(resp), "hdr 1 0x8400\nqd Example.test. IN A\n%s", soa_line);
	mk(&p, resp);
	/* ldns compresses the SOA names against the question: the test
	 * must see pointers in the RDATA. */
	struct codec_rr_iter it;
	struct codec_rr rr;

	codec_rr_iter_init(&it, p.buf, p.len, &p.v, CODEC_SEC_AUTHORITY);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_true(rr.rdlen < sizeof(want) - 1);
	assert_int_equal(flat_policy_soa(p.buf, p.len, &p.v, &soa), 0);
	assert_int_equal(soa.owner_len, 14);
	/* The owner is compressed against the question: its case follows. */
	assert_memory_equal(soa.owner, "\7Example\4test", 14);
	assert_int_equal(soa.ttl, 3600);
	assert_int_equal(soa.minimum, 300);
	assert_int_equal(soa.rdlen, sizeof(want) - 1);
	assert_memory_equal(soa.rdata, want, sizeof(want) - 1);
}

static void test_soa_absent_enoent(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_soa soa;

	mk(&p,
	   "hdr 1 0x8400\nqd example.test. IN A\nns example.test. 300 IN NS ns1.example.test.\n");
	assert_int_equal(flat_policy_soa(p.buf, p.len, &p.v, &soa), -ENOENT);
}

static void test_soa_short_rdata_ebadmsg(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_soa soa;

	/* SOA whose RDATA holds two root names and only 19 counter octets. */
	mk_hex(&p, "0001 8400 0001 0000 0001 0000"
	           "07 6578616d706c65 04 74657374 00 0001 0001"
	           "c00c 0006 0001 0000012c 0015 00 00"
	           "00000001 00000002 00000003 00000004 000000");
	assert_int_equal(flat_policy_soa(p.buf, p.len, &p.v, &soa), -EBADMSG);
}

/* BIND with recursion follows a CNAME into another zone it serves and puts
 * that zone's SOA in authority: not the SOA of the owner's zone. */
static void test_owner_soa_other_zone_enoent(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_soa soa;

	mk(&p, "hdr 1 0x8580\nqd xz.example.test. IN AAAA\n"
	       "an xz.example.test. 120 IN CNAME ns1.signed.test.\n"
	       "ns signed.test. 300 IN SOA ns1.signed.test. h.signed.test. 1 2 3 4 300\n");
	assert_int_equal(flat_policy_soa(p.buf, p.len, &p.v, &soa), 0);
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\2xz\7example\4test"),
	                                       W("\7example\4test"), &soa),
	                 -ENOENT);
	/* A zone whose name ends like the owner's but is not an ancestor. */
	mk(&p, "hdr 1 0x8580\nqd xz.example.test. IN AAAA\n"
	       "ns ample.test. 300 IN SOA ns1.signed.test. h.signed.test. 1 2 3 4 300\n");
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\2xz\7example\4test"),
	                                       W("\7example\4test"), &soa),
	                 -ENOENT);
	/* A parent zone above the configured one. */
	mk(&p, "hdr 1 0x8580\nqd www.sub.example.test. IN AAAA\n"
	       "ns example.test. 300 IN SOA ns1.example.test. h.example.test. 1 2 3 4 300\n");
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\3www\3sub\7example\4test"),
	                                       W("\3sub\7example\4test"), &soa),
	                 -ENOENT);
}

static void test_owner_soa_own_zone(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_soa soa;
	char resp[512];

	/* The owner's zone after another zone's SOA; case does not matter. */
	snprintf(resp, sizeof(resp),
	         "hdr 1 0x8400\nqd noaaaa.example.test. IN AAAA\n"
	         "ns signed.test. 300 IN SOA ns1.signed.test. h.signed.test. 1 2 3 4 300\n%s",
	         soa_line);
	mk(&p, resp);
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\6NOAAAA\7example\4test"),
	                                       W("\7Example\4test"), &soa),
	                 0);
	assert_int_equal(soa.owner_len, 14);
	assert_memory_equal(soa.owner, "\7example\4test", 14);
	assert_int_equal(soa.minimum, 300);
	/* At the apex itself, and a zone BIND serves inside the configured one. */
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\7example\4test"),
	                                       W("\7example\4test"), &soa),
	                 0);
	mk(&p, "hdr 1 0x8400\nqd www.sub.example.test. IN AAAA\n"
	       "ns sub.example.test. 300 IN SOA ns1.example.test. h.example.test. 1 2 3 4 60\n");
	assert_int_equal(flat_policy_owner_soa(p.buf, p.len, &p.v, W("\3www\3sub\7example\4test"),
	                                       W("\7example\4test"), &soa),
	                 0);
	assert_int_equal(soa.minimum, 60);
}

/* ANAME probe answers: query name example.test, type 65401. */
#define PROBE_Q "hdr 5 0x8400\nqd example.test. IN TYPE65401\n"
#define ANAME_RD "\\# 17 0363646e06746172676574047465737400" /* cdn.target.test. */

static enum flat_aname_state probe(const char *resp, struct flat_aname *a)
{
	struct pkt p;

	mk(&p, resp);
	return flat_aname_parse(p.buf, p.len, &p.v, W("\7example\4test"), 65401, a);
}

static void test_aname_valid_present(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 " ANAME_RD "\n", &a),
	                 FLAT_ANAME_PRESENT);
	assert_int_equal(a.target_len, 17);
	assert_memory_equal(a.target, "\3cdn\6target\4test", 17);
	assert_int_equal(a.ttl, 600);
}

static void test_aname_owner_case_and_target_lowercased(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe(PROBE_Q "an EXAMPLE.Test. 60 IN TYPE65401 "
	                               "\\# 17 0343444e06546172676574047465737400\n",
	                       &a),
	                 FLAT_ANAME_PRESENT);
	assert_memory_equal(a.target, "\3cdn\6target\4test", 17);
}

static void test_aname_compressed_rdata_invalid(void **state)
{
	(void)state;
	struct pkt p;
	struct flat_aname a;

	/* RDATA = "cdn" + pointer to the question name at offset 12. */
	mk_hex(&p, "0005 8400 0001 0001 0000 0000"
	           "07 6578616d706c65 04 74657374 00 ff79 0001"
	           "c00c ff79 0001 0000003c 0006 03 63646e c00c");
	assert_int_equal(flat_aname_parse(p.buf, p.len, &p.v, W("\7example\4test"), 65401, &a),
	                 FLAT_ANAME_INVALID);
}

static void test_aname_trailing_bytes_invalid(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 "
	                               "\\# 18 0363646e06746172676574047465737400ff\n",
	                       &a),
	                 FLAT_ANAME_INVALID);
	/* Missing root label: the name runs off the RDATA. */
	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 "
	                               "\\# 16 0363646e067461726765740474657374\n",
	                       &a),
	                 FLAT_ANAME_INVALID);
	/* The root as target. */
	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 \\# 1 00\n", &a),
	                 FLAT_ANAME_INVALID);
}

static void test_aname_two_records_invalid(void **state)
{
	(void)state;
	struct flat_aname a;

	/* One record of a pool malformed (a label length of 0x65): all go. */
	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 " ANAME_RD "\n"
	                               "an example.test. 600 IN TYPE65401 "
	                               "\\# 13 036f7468657204746573740000\n",
	                       &a),
	                 FLAT_ANAME_INVALID);
	assert_int_equal(a.n_targets, 0);
	assert_int_equal(a.targets_len, 0);
}

/* Issue 17: several ANAMEs at one owner are a pool, in RFC 4034 6.1
 * canonical order whatever order BIND sent, the smallest TTL. */
static void test_aname_pool_canonical_order(void **state)
{
	(void)state;
	struct flat_aname a;

	/* shop.cdn-b.net., z.cdn-a.net. (uppercase), cdn.target.test. again. */
	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 "
	                               "\\# 16 0473686f700563646e2d62036e657400\n"
	                               "an example.test. 300 IN TYPE65401 "
	                               "\\# 13 015a0563646e2d41036e657400\n"
	                               "an example.test. 600 IN TYPE65401 " ANAME_RD "\n",
	                       &a),
	                 FLAT_ANAME_PRESENT);
	assert_int_equal(a.n_targets, 3);
	assert_int_equal(a.ttl, 300);
	/* net before test; under net, cdn-a before cdn-b (z.cdn-a before
	 * shop.cdn-b: the rightmost labels decide first). */
	assert_int_equal(a.targets_len, 13 + 16 + 17);
	assert_memory_equal(a.targets, "\1z\5cdn-a\3net\0\4shop\5cdn-b\3net\0\3cdn\6target\4test\0",
	                    46);
	assert_memory_equal(a.target, "\1z\5cdn-a\3net\0", 13);
	assert_int_equal(flat_pool_count(a.targets, a.targets_len), 3);
}

static void test_aname_pool_limits(void **state)
{
	(void)state;
	struct flat_aname a;
	char resp[4096];
	int o = snprintf(resp, sizeof(resp), PROBE_Q);

	/* The same target twice counts once. */
	assert_int_equal(probe(PROBE_Q "an example.test. 600 IN TYPE65401 " ANAME_RD "\n"
	                               "an example.test. 60 IN TYPE65401 " ANAME_RD "\n",
	                       &a),
	                 FLAT_ANAME_PRESENT);
	assert_int_equal(a.n_targets, 1);
	assert_int_equal(a.ttl, 60);
	/* FLAT_POOL_MAX records pass, one more does not. */
	for (int i = 0; i <= FLAT_POOL_MAX; i++) {
		o += snprintf(resp + o, sizeof(resp) - (size_t)o,
		              "an example.test. 600 IN TYPE65401 \\# 7 01%02x036e657400\n",
		              'a' + i);
		if (i == FLAT_POOL_MAX - 1) {
			assert_int_equal(probe(resp, &a), FLAT_ANAME_PRESENT);
			assert_int_equal(a.n_targets, FLAT_POOL_MAX);
		}
	}
	assert_int_equal(probe(resp, &a), FLAT_ANAME_INVALID);
	assert_int_equal(a.n_targets, 0);
}

static void test_aname_nodata_with_soa_absent_ttl_min(void **state)
{
	(void)state;
	struct flat_aname a;
	char resp[512];

	snprintf(resp, sizeof(resp), PROBE_Q "%s", soa_line);
	assert_int_equal(probe(resp, &a), FLAT_ANAME_ABSENT);
	assert_int_equal(a.ttl, 300); /* min(3600, MINIMUM 300) */
	assert_int_equal(probe(PROBE_Q "ns example.test. 45 IN SOA ns1.example.test. "
	                               "h.example.test. 1 2 3 4 300\n",
	                       &a),
	                 FLAT_ANAME_ABSENT);
	assert_int_equal(a.ttl, 45); /* min(SOA TTL 45, 300) */
}

static void test_aname_nodata_without_soa_absent_ttl_zero(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe(PROBE_Q, &a), FLAT_ANAME_ABSENT);
	assert_int_equal(a.ttl, 0);
	/* A record of the type at another name is not ours. */
	assert_int_equal(probe(PROBE_Q "an www.example.test. 600 IN TYPE65401 " ANAME_RD "\n", &a),
	                 FLAT_ANAME_ABSENT);
}

static void test_aname_nxdomain_absent(void **state)
{
	(void)state;
	struct flat_aname a;
	char resp[512];

	snprintf(resp, sizeof(resp), "hdr 5 0x8403\nqd example.test. IN TYPE65401\n%s", soa_line);
	assert_int_equal(probe(resp, &a), FLAT_ANAME_ABSENT);
	assert_int_equal(a.ttl, 300);
}

static void test_aname_cname_owner_absent_cname_ttl(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe(PROBE_Q "an example.test. 77 IN CNAME elsewhere.test.\n", &a),
	                 FLAT_ANAME_ABSENT);
	assert_int_equal(a.ttl, 77);
}

static void test_aname_servfail_unknown(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe("hdr 5 0x8002\nqd example.test. IN TYPE65401\n", &a),
	                 FLAT_ANAME_UNKNOWN);
	assert_int_equal(a.ttl, 0);
}

static void test_aname_not_aa_or_mismatch_unknown(void **state)
{
	(void)state;
	struct flat_aname a;

	assert_int_equal(probe("hdr 5 0x8000\nqd example.test. IN TYPE65401\n"
	                       "an example.test. 600 IN TYPE65401 " ANAME_RD "\n",
	                       &a),
	                 FLAT_ANAME_UNKNOWN);
	assert_int_equal(probe("hdr 5 0x8400\nqd example.test. IN TYPE65305\n"
	                       "an example.test. 600 IN TYPE65305 " ANAME_RD "\n",
	                       &a),
	                 FLAT_ANAME_UNKNOWN);
	assert_int_equal(probe("hdr 5 0x8400\nqd other.test. IN TYPE65401\n", &a),
	                 FLAT_ANAME_UNKNOWN);
}

/* HTTPS (65) and SVCB (64) flatten like A/AAAA (RFC 9460 at the apex). */
static const char q_apex_https[] = "hdr 0x1234 0x0100\nqd example.test. IN TYPE65\n";

static void test_policy_https_aname_chase_siblings(void **state)
{
	(void)state;
	struct fx f;
	char resp[512];

	snprintf(resp, sizeof(resp), "hdr 0x1234 0x8500\nqd example.test. IN TYPE65\n%s", soa_line);
	assert_int_equal(inspect(&f, q_apex_https, resp, FLAT_CNAME_APEX, true), FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\4test"));
	assert_false(f.out.siblings);
	/* An HTTPS RRset of the zone's own at the owner is the fallback. */
	assert_int_equal(inspect(&f, q_apex_https,
	                         "hdr 0x1234 0x8500\nqd example.test. IN TYPE65\n"
	                         "an example.test. 300 IN TYPE65 \\# 3 000100\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_RELAY);
	set_target(&f, W("\3cdn\6target\4test"));
	assert_int_equal(reinspect(&f), FLAT_POLICY_CHASE);
	assert_true(f.out.siblings);
}

static void test_policy_svcb_apex_cname_chase(void **state)
{
	(void)state;
	struct fx f;

	assert_int_equal(inspect(&f, "hdr 5 0x0100\nqd example.test. IN TYPE64\n",
	                         "hdr 5 0x8400\nqd example.test. IN TYPE64\n"
	                         "an example.test. 60 IN CNAME cdn.target.net.\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3cdn\6target\3net"));
	assert_int_equal(f.out.chain_ttl, 60);
}

static void test_policy_https_inzone_chain_local_rdata(void **state)
{
	(void)state;
	struct fx f;

	/* 1 . alpn=h2 and 0 svc.example.test., at the end of the chain. */
	assert_int_equal(inspect(&f, q_apex_https,
	                         "hdr 0x1234 0x8400\nqd example.test. IN TYPE65\n"
	                         "an example.test. 300 IN CNAME www.example.test.\n"
	                         "an www.example.test. 40 IN TYPE65 \\# 10 0001 00 0001 0003 "
	                         "026832\n"
	                         "an www.example.test. 50 IN TYPE65 \\# 20 0000 03737663 "
	                         "076578616d706c65 0474657374 00\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_LOCAL);
	const struct flat_result *r = &f.out.local;
	uint8_t want[64];
	long n = th_hex("000a 0001 00 0001 0003 026832"
	                "0014 0000 03737663 076578616d706c65 0474657374 00",
	                want, sizeof(want));

	assert_int_equal(r->kind, FLAT_RES_ADDRS);
	assert_int_equal(r->qtype, 65);
	assert_int_equal(r->n_addrs, 2);
	assert_int_equal(r->rdata_len, n);
	assert_memory_equal(r->rdata, want, (size_t)n);
	assert_int_equal(r->ttl, 40);
	assert_int_equal(r->hops, 1);
	/* A malformed RDATA (port of 1 octet) is not served from BIND's
	 * chain either: the chase decides. */
	assert_int_equal(inspect(&f, q_apex_https,
	                         "hdr 0x1234 0x8400\nqd example.test. IN TYPE65\n"
	                         "an example.test. 300 IN CNAME www.example.test.\n"
	                         "an www.example.test. 40 IN TYPE65 \\# 8 0001 00 0003 0001 "
	                         "35\n",
	                         FLAT_CNAME_APEX, true),
	                 FLAT_POLICY_CHASE);
	assert_target(&f.out, W("\3www\7example\4test"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_policy_https_aname_chase_siblings),
	        cmocka_unit_test(test_policy_svcb_apex_cname_chase),
	        cmocka_unit_test(test_policy_https_inzone_chain_local_rdata),
	        cmocka_unit_test(test_policy_apex_cname_mode_apex_chase),
	        cmocka_unit_test(test_policy_apex_cname_aaaa_chase),
	        cmocka_unit_test(test_policy_nonapex_cname_mode_apex_relay),
	        cmocka_unit_test(test_policy_nonapex_cname_mode_all_chase),
	        cmocka_unit_test(test_policy_mode_none_relay),
	        cmocka_unit_test(test_policy_inzone_chain_addresses_local_ttl_min),
	        cmocka_unit_test(test_policy_inzone_chain_aaaa_local_ttl_from_rrset),
	        cmocka_unit_test(test_policy_chain_leaving_zone_chase_last_target),
	        cmocka_unit_test(test_policy_chain_nxdomain_local_nxdomain),
	        cmocka_unit_test(test_policy_cname_loop_in_answer_chase_fails_on_depth),
	        cmocka_unit_test(test_policy_not_aa_relay),
	        cmocka_unit_test(test_policy_truncated_relay),
	        cmocka_unit_test(test_policy_servfail_and_refused_relay),
	        cmocka_unit_test(test_policy_other_qtype_relay),
	        cmocka_unit_test(test_policy_no_cname_relay),
	        cmocka_unit_test(test_policy_question_mismatch_relay),
	        cmocka_unit_test(test_policy_query_case_ignored),
	        cmocka_unit_test(test_policy_answer_question_case_ignored),
	        cmocka_unit_test(test_policy_do_with_rrsig_relay_signed),
	        cmocka_unit_test(test_policy_do_without_rrsig_flattens),
	        cmocka_unit_test(test_policy_aname_nodata_chase_no_siblings),
	        cmocka_unit_test(test_policy_aname_with_sibling_a_siblings_true),
	        cmocka_unit_test(test_policy_aname_any_chase),
	        cmocka_unit_test(test_policy_alias_nxdomain_chase_aname_nxdomain_relay),
	        cmocka_unit_test(test_policy_bad_target_relay),
	        cmocka_unit_test(test_policy_aname_signed_relay),
	        cmocka_unit_test(test_policy_dname_synthesized_relay),
	        cmocka_unit_test(test_policy_dname_later_in_chain_flattens),
	        cmocka_unit_test(test_policy_aname_query_chase),
	        cmocka_unit_test(test_policy_aname_query_signed_do_relay),
	        cmocka_unit_test(test_policy_aname_query_no_record_relay),
	        cmocka_unit_test(test_soa_decompressed),
	        cmocka_unit_test(test_soa_absent_enoent),
	        cmocka_unit_test(test_soa_short_rdata_ebadmsg),
	        cmocka_unit_test(test_owner_soa_other_zone_enoent),
	        cmocka_unit_test(test_owner_soa_own_zone),
	        cmocka_unit_test(test_aname_valid_present),
	        cmocka_unit_test(test_aname_owner_case_and_target_lowercased),
	        cmocka_unit_test(test_aname_compressed_rdata_invalid),
	        cmocka_unit_test(test_aname_trailing_bytes_invalid),
	        cmocka_unit_test(test_aname_two_records_invalid),
	        cmocka_unit_test(test_aname_pool_canonical_order),
	        cmocka_unit_test(test_aname_pool_limits),
	        cmocka_unit_test(test_aname_nodata_with_soa_absent_ttl_min),
	        cmocka_unit_test(test_aname_nodata_without_soa_absent_ttl_zero),
	        cmocka_unit_test(test_aname_nxdomain_absent),
	        cmocka_unit_test(test_aname_cname_owner_absent_cname_ttl),
	        cmocka_unit_test(test_aname_servfail_unknown),
	        cmocka_unit_test(test_aname_not_aa_or_mismatch_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
