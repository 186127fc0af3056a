/* Unit tests for flatten/sibzone: the owner table, AXFR/IXFR answers,
 * the plan and the UPDATE batch writer. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/rr.h"
#include "codec/scan.h"
#include "flatten/sibzone.h"
#include "tests/unit/helpers.h"

#define T_ANAME 65401
#define T_ANAME2 65402
#define T_RRSIG 46
#define T_NSEC 47
#define T_NS 2

static const uint16_t types[] = {T_ANAME, T_ANAME2};

/* "www.example.com" (or "." / "") to an uncompressed wire name. */
static size_t wire(const char *text, uint8_t *out)
{
	size_t n = 0;

	while (*text != '\0' && strcmp(text, ".") != 0) {
		const char *dot = strchr(text, '.');
		size_t l = dot != NULL ? (size_t)(dot - text) : strlen(text);

		out[n++] = (uint8_t)l;
		memcpy(out + n, text, l);
		n += l;
		text += l + (dot != NULL);
	}
	out[n++] = 0;
	return n;
}

/* One message of a transfer answer, written by hand. */
struct tmsg {
	uint8_t b[16384];
	size_t len;
	bool question;
};

static void put16(struct tmsg *m, uint16_t v)
{
	m->b[m->len++] = (uint8_t)(v >> 8);
	m->b[m->len++] = (uint8_t)v;
}

static void put32(struct tmsg *m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}

static void put_name(struct tmsg *m, const char *text)
{
	/* "@": the question's name by a pointer, as servers compress it. */
	if (strcmp(text, "@") == 0 && m->question) {
		put16(m, 0xc00c);
		return;
	}
	m->len += wire(strcmp(text, "@") == 0 ? "example.com" : text, m->b + m->len);
}

static void m_begin(struct tmsg *m, uint16_t qtype, unsigned rcode, bool question)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x4242);
	put16(m, (uint16_t)(0x8000 | 0x0400 | rcode));
	put16(m, question ? 1 : 0);
	put16(m, 0);
	put16(m, 0);
	put16(m, 0);
	m->question = question;
	if (question) {
		m->len += wire("example.com", m->b + m->len);
		put16(m, qtype);
		put16(m, 1);
	}
}

static void m_rr(struct tmsg *m, const char *name, uint16_t type, uint32_t ttl, const void *rd,
                 size_t rdlen)
{
	put_name(m, name);
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, (uint16_t)rdlen);
	memcpy(m->b + m->len, rd, rdlen);
	m->len += rdlen;
	m->b[7]++; /* ANCOUNT < 256 in these tests */
}

static void m_a(struct tmsg *m, const char *name, const char *addr, uint32_t ttl)
{
	uint8_t a[16];

	if (strchr(addr, ':') != NULL) {
		assert_int_equal(inet_pton(AF_INET6, addr, a), 1);
		m_rr(m, name, CODEC_TYPE_AAAA, ttl, a, 16);
	} else {
		assert_int_equal(inet_pton(AF_INET, addr, a), 1);
		m_rr(m, name, CODEC_TYPE_A, ttl, a, 4);
	}
}

static void m_aname_t(struct tmsg *m, const char *name, uint16_t type, const char *target,
                      uint32_t ttl)
{
	uint8_t t[CODEC_MAX_NAME];

	m_rr(m, name, type, ttl, t, wire(target, t));
}

static void m_aname(struct tmsg *m, const char *name, const char *target)
{
	m_aname_t(m, name, T_ANAME, target, 300);
}

static void m_soa(struct tmsg *m, uint32_t serial)
{
	uint8_t rd[64];
	size_t n = 0;

	/* MNAME compressed against the question, as BIND writes it. */
	if (m->question) {
		memcpy(rd, "\3ns1\300\14", 6);
		n = 6;
	} else {
		n = wire("ns1.example.com", rd);
	}
	n += wire("hostmaster.example.com", rd + n);
	uint32_t f[5] = {serial, 3600, 600, 86400, 60};
	for (int i = 0; i < 5; i++) {
		rd[n++] = (uint8_t)(f[i] >> 24);
		rd[n++] = (uint8_t)(f[i] >> 16);
		rd[n++] = (uint8_t)(f[i] >> 8);
		rd[n++] = (uint8_t)f[i];
	}
	m_rr(m, "@", CODEC_TYPE_SOA, 3600, rd, n);
}

static void m_junk(struct tmsg *m, const char *name, uint16_t type)
{
	static const uint8_t rd[] = {0, 1, 8, 2, 0, 0, 1, 44, 1, 2, 3, 4, 5, 6, 7, 8, 9};

	m_rr(m, name, type, 300, rd, sizeof(rd));
}

static int feed(struct flat_sibxfr *x, const struct tmsg *m)
{
	return flat_sibxfr_feed(x, m->b, m->len);
}

static struct flat_sibzone *zone_new(void)
{
	struct flat_sibzone *z = NULL;
	uint8_t apex[CODEC_MAX_NAME];
	size_t n = wire("Example.COM", apex);

	assert_int_equal(flat_sibzone_new(&z, apex, n, types, 2), 0);
	return z;
}

static struct flat_sib_owner *find(struct flat_sibzone *z, const char *name)
{
	uint8_t w[CODEC_MAX_NAME];
	size_t n = wire(name, w);

	return flat_sibzone_find(z, w, n);
}

static bool name_is(const uint8_t *w, size_t len, const char *text)
{
	uint8_t t[CODEC_MAX_NAME];
	size_t n = wire(text, t);

	return n == len && memcmp(w, t, n) == 0;
}

static void assert_held(const struct flat_sib_owner *o, enum flat_sib_fam f, const char *a0,
                        const char *a1)
{
	const struct flat_sib_rrset *r = o->held[f];
	const char *want[2] = {a0, a1};
	unsigned n = a1 != NULL ? 2 : a0 != NULL ? 1 : 0;
	uint8_t a[16] = {0};

	if (n == 0) {
		assert_null(r);
		return;
	}
	assert_non_null(r);
	assert_int_equal(r->n, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(inet_pton(f == FLAT_SIB_A ? AF_INET : AF_INET6, want[i], a), 1);
		assert_memory_equal(r->addr[i], a, f == FLAT_SIB_A ? 4 : 16);
	}
}

/* The zone most tests start from, serial 10, in three messages:
 * @ ANAME cdn.example.net, A 192.0.2.9, AAAA 2001:db8::9
 * www ANAME cdn2.example.net, A 192.0.2.2 (before its ANAME) and 192.0.2.1
 * *.w ANAME wild.example.net, A 192.0.2.7
 * other A 192.0.2.8 (no owner), RRSIG/NSEC/NS here and there. */
static void axfr_std(struct flat_sibzone *z)
{
	struct flat_sibxfr *x = NULL;
	struct tmsg m;

	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	assert_false(flat_sibxfr_is_ixfr(x));
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 10);
	m_junk(&m, "@", T_RRSIG);
	m_rr(&m, "@", T_NS, 300, "\3ns1\300\14", 6);
	m_a(&m, "www.example.com", "192.0.2.2", 60);
	m_aname(&m, "@", "CDN.example.net");
	m_a(&m, "@", "192.0.2.9", 120);
	m_a(&m, "@", "2001:db8::9", 120);
	assert_int_equal(feed(x, &m), FLAT_XFR_MORE);
	m_begin(&m, CODEC_TYPE_AXFR, 0, false);
	m_aname(&m, "WWW.example.com", "cdn2.example.net");
	m_junk(&m, "www.example.com", T_RRSIG);
	m_aname(&m, "*.w.example.com", "wild.example.net");
	m_a(&m, "*.w.example.com", "192.0.2.7", 60);
	m_a(&m, "other.example.com", "192.0.2.8", 60);
	m_a(&m, "www.example.org", "192.0.2.66", 60);
	m_aname(&m, "www.example.org", "out.example.net");
	m_junk(&m, "other.example.com", T_NSEC);
	assert_int_equal(feed(x, &m), FLAT_XFR_MORE);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_a(&m, "www.example.com", "192.0.2.1", 60);
	m_soa(&m, 10);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_records(x), 17);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
}

static void test_sibzone_axfr_finds_owners_and_held(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_owner *o;
	size_t alen = 0;
	const uint8_t *apex = flat_sibzone_apex(z, &alen);

	assert_true(name_is(apex, alen, "example.com"));
	assert_false(flat_sibzone_soa(z)->known);
	axfr_std(z);
	assert_true(flat_sibzone_soa(z)->known);
	assert_int_equal(flat_sibzone_soa(z)->serial, 10);
	assert_int_equal(flat_sibzone_soa(z)->refresh, 3600);
	assert_int_equal(flat_sibzone_count(z), 3);

	o = find(z, "EXAMPLE.com");
	assert_non_null(o);
	assert_true(name_is(o->target, o->target_len, "cdn.example.net"));
	assert_int_equal(o->aname_type, T_ANAME);
	assert_int_equal(o->aname_ttl, 300);
	assert_true(o->fresh);
	assert_false(o->gone || o->is_alias || o->several);
	assert_held(o, FLAT_SIB_A, "192.0.2.9", NULL);
	assert_int_equal(o->held[FLAT_SIB_A]->ttl, 120);
	assert_held(o, FLAT_SIB_AAAA, "2001:db8::9", NULL);

	o = find(z, "www.example.com");
	assert_non_null(o);
	assert_true(name_is(o->name, o->len, "www.example.com"));
	assert_true(name_is(o->target, o->target_len, "cdn2.example.net"));
	assert_held(o, FLAT_SIB_A, "192.0.2.1", "192.0.2.2");
	assert_held(o, FLAT_SIB_AAAA, NULL, NULL);

	o = find(z, "*.w.example.com");
	assert_non_null(o);
	assert_held(o, FLAT_SIB_A, "192.0.2.7", NULL);
	assert_null(find(z, "other.example.com"));
	assert_null(find(z, "www.example.org"));

	for (size_t i = 0; i < flat_sibzone_count(z); i++)
		assert_non_null(flat_sibzone_at(z, i));
	assert_null(flat_sibzone_at(z, 3));
	flat_sibzone_free(z);
}

static void test_sibzone_several_anames_pick_first(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct flat_sib_owner *o;
	struct tmsg m;

	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 7);
	/* Canonical order: b.a.example < a.b.example (the root side first). */
	m_aname_t(&m, "a.example.com", T_ANAME, "a.b.example", 300);
	m_aname_t(&m, "a.example.com", T_ANAME, "b.a.example", 200);
	/* The second type only matters where the first is absent. */
	m_aname_t(&m, "a.example.com", T_ANAME2, "a.a.example", 100);
	m_aname_t(&m, "b.example.com", T_ANAME2, "z.example", 100);
	m_aname_t(&m, "b.example.com", T_ANAME2, "z.example", 100);
	/* Compressed RDATA and the root: no ANAME apexd can follow. */
	m_rr(&m, "c.example.com", T_ANAME, 300, "\3cdn\300\14", 6);
	m_rr(&m, "d.example.com", T_ANAME, 300, "\0", 1);
	m_soa(&m, 7);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);

	o = find(z, "a.example.com");
	assert_non_null(o);
	assert_int_equal(o->aname_type, T_ANAME);
	assert_true(name_is(o->target, o->target_len, "b.a.example"));
	assert_true(o->several);
	assert_int_equal(o->aname_ttl, 200);
	/* Issue 17: the whole RRset is the owner's pool, in canonical order. */
	size_t plen;
	unsigned pn;
	const uint8_t *pool = flat_sib_owner_targets(o, &plen, &pn);
	assert_int_equal(pn, 2);
	assert_int_equal(plen, 26);
	assert_memory_equal(pool, "\1b\1a\7example\0\1a\1b\7example\0", 26);
	o = find(z, "b.example.com");
	assert_non_null(o);
	assert_int_equal(o->aname_type, T_ANAME2);
	assert_false(o->several); /* the same target twice is one */
	assert_int_equal(o->n_targets, 1);
	assert_null(o->pool);
	assert_null(find(z, "c.example.com"));
	assert_null(find(z, "d.example.com"));
	assert_int_equal(flat_sibzone_count(z), 2);
	flat_sibzone_free(z);
}

static void test_sibzone_axfr_bad_stream_rejected(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct tmsg m;

	/* First RR not an SOA. */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_a(&m, "www.example.com", "192.0.2.1", 60);
	m_soa(&m, 1);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_FORMAT);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_DONE);
	assert_int_equal(flat_sibxfr_commit(x), -EINVAL);
	flat_sibxfr_free(x);

	/* Last SOA with another serial. */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	m_aname(&m, "www.example.com", "cdn.example.net");
	m_soa(&m, 2);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_FORMAT);
	flat_sibxfr_free(x);

	/* An RR after the closing SOA, then a message after the end. */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	m_soa(&m, 1);
	m_a(&m, "www.example.com", "192.0.2.1", 60);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_FORMAT);
	flat_sibxfr_free(x);
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	m_soa(&m, 1);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_DONE);
	flat_sibxfr_free(x);

	/* No question in the first message; the wrong type; garbage. */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, false);
	m_soa(&m, 1);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_QUESTION);
	flat_sibxfr_free(x);
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 1);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_QUESTION);
	flat_sibxfr_free(x);
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	m.len -= 3;
	assert_int_equal(feed(x, &m), FLAT_XFR_E_FORMAT);
	flat_sibxfr_free(x);
	/* A short A RDATA. */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	m_rr(&m, "www.example.com", CODEC_TYPE_A, 60, "\1\2\3", 3);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_FORMAT);
	flat_sibxfr_free(x);

	assert_int_equal(flat_sibzone_count(z), 0);
	assert_false(flat_sibzone_soa(z)->known);
	flat_sibzone_free(z);
}

static void test_sibzone_rcode_reported(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct tmsg m;

	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, CODEC_RCODE_REFUSED, true);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_RCODE);
	assert_int_equal(flat_sibxfr_rcode(x), CODEC_RCODE_REFUSED);
	flat_sibxfr_free(x);
	flat_sibzone_free(z);
}

static void test_sibzone_aliases(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_owner *o;
	uint8_t own1[CODEC_MAX_NAME], own2[CODEC_MAX_NAME], own3[CODEC_MAX_NAME],
	        own4[CODEC_MAX_NAME];
	uint8_t tg1[CODEC_MAX_NAME], tg2[CODEC_MAX_NAME];
	struct flat_sib_alias al[3] = {
	        {own1, wire("Shop.example.com", own1), tg1, wire("shops.example.net", tg1), 1},
	        {own2, wire("www.example.com", own2), tg2, wire("alias.example.net", tg2), 1},
	        {own3, wire("shop.example.com", own3), tg2, wire("alias.example.net", tg2), 1},
	};
	static const uint8_t root[1] = {0};
	struct flat_sib_alias outside = {own4, wire("x.example.org", own4), tg1, al[0].target_len,
	                                 1};

	assert_int_equal(flat_sibzone_set_aliases(z, al, 3), 0);
	assert_int_equal(flat_sibzone_count(z), 2);
	o = find(z, "shop.example.com");
	assert_non_null(o);
	assert_true(o->is_alias && o->fresh && !o->gone);
	assert_true(name_is(o->target, o->target_len, "shops.example.net")); /* the first wins */
	assert_int_equal(o->aname_type, 0);
	assert_int_equal(o->aname_ttl, UINT32_MAX);
	assert_null(o->held[FLAT_SIB_A]);
	assert_int_equal(flat_sibzone_set_aliases(z, &outside, 1), -EINVAL);
	outside.owner_len = wire("y.example.com", own4);
	outside.target = root;
	outside.target_len = 1;
	assert_int_equal(flat_sibzone_set_aliases(z, &outside, 1), -EINVAL); /* root target */
	assert_int_equal(flat_sibzone_count(z), 2);

	/* An [alias] pool: every target kept in listed order (issue 17). */
	uint8_t pool[2 * CODEC_MAX_NAME];
	size_t pl = wire("Shops.example.net", pool);
	pl += wire("alias.example.net", pool + pl);
	struct flat_sib_alias ap = {own3, al[2].owner_len, pool, pl, 2};
	assert_int_equal(flat_sibzone_set_aliases(z, &ap, 1), 0);
	o = find(z, "shop.example.com");
	assert_true(o->several && o->n_targets == 2);
	assert_true(name_is(o->target, o->target_len, "shops.example.net"));
	size_t got_len;
	unsigned got_n;
	const uint8_t *got = flat_sib_owner_targets(o, &got_len, &got_n);
	assert_int_equal(got_n, 2);
	assert_int_equal(got_len, pl);
	assert_memory_equal(got, "\5shops\7example\3net\0\5alias\7example\3net\0", pl);
	ap.n_targets = 3; /* disagrees with the names */
	assert_int_equal(flat_sibzone_set_aliases(z, &ap, 1), -EINVAL);
	assert_int_equal(flat_sibzone_set_aliases(z, al, 3), 0);
	o = find(z, "shop.example.com");
	assert_false(o->several);
	assert_null(o->pool);

	/* The transfer finds the [alias] owners' addresses; at www the
	 * [alias] wins over the ANAME. */
	axfr_std(z);
	assert_int_equal(flat_sibzone_count(z), 4);
	o = find(z, "www.example.com");
	assert_true(o->is_alias);
	assert_true(name_is(o->target, o->target_len, "alias.example.net"));
	assert_held(o, FLAT_SIB_A, "192.0.2.1", "192.0.2.2");

	/* Dropping the [alias]es: www goes back to its ANAME, shop is gone,
	 * and then removed. */
	al[0] = al[1];
	al[0].owner_len = wire("*.w.example.com", own2);
	assert_int_equal(flat_sibzone_set_aliases(z, al, 1), 0);
	o = find(z, "www.example.com");
	assert_false(o->is_alias || o->gone);
	assert_int_equal(o->aname_type, T_ANAME);
	assert_true(name_is(o->target, o->target_len, "cdn2.example.net"));
	o = find(z, "*.w.example.com");
	assert_true(o->is_alias && !o->gone);
	o = find(z, "shop.example.com");
	assert_true(o->gone && !o->is_alias);
	flat_sibzone_remove(z, o);
	assert_null(find(z, "shop.example.com"));
	assert_int_equal(flat_sibzone_count(z), 3);
	assert_int_equal(flat_sibzone_set_aliases(z, NULL, 0), 0);
	assert_false(find(z, "*.w.example.com")->gone); /* an ANAME owns it */
	flat_sibzone_free(z);
}

/* An IXFR answer: SOA(new) then steps, each "old SOA, deletions, new
 * SOA, additions", then SOA(new). */
static void test_sibzone_ixfr_incremental(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct flat_sib_owner *www, *apex;
	uint8_t q[512];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	struct tmsg m;

	axfr_std(z);
	www = find(z, "www.example.com");
	apex = find(z, "example.com");
	www->track[FLAT_SIB_A].written_s = 1234;
	www->track[FLAT_SIB_A].failures = 3;
	assert_int_equal(flat_sibzone_confirm(z, www, FLAT_SIB_A), 0);
	www->fresh = false;

	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	assert_true(flat_sibxfr_is_ixfr(x));
	ssize_t ql = flat_sibxfr_query(x, 0x7777, q, sizeof(q));
	assert_true(ql > 0);
	assert_int_equal(codec_scan(q, (size_t)ql, &v), 0);
	assert_int_equal(v.id, 0x7777);
	assert_int_equal(v.flags, 0);
	assert_int_equal(v.qtype, CODEC_TYPE_IXFR);
	assert_int_equal(v.nscount, 1);
	assert_int_equal(v.ancount + v.arcount, 0);
	codec_rr_iter_init(&it, q, (size_t)ql, &v, CODEC_SEC_AUTHORITY);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.type, CODEC_TYPE_SOA);
	assert_int_equal(rr.rdlen, 17 + 24 + 20); /* the names the AXFR gave */
	assert_int_equal(codec_get_u32(q + rr.rdata_off + rr.rdlen - 20), 10);
	assert_int_equal(flat_sibxfr_query(x, 1, q, (size_t)ql - 1), -EMSGSIZE);

	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 12);
	m_soa(&m, 10); /* 10 -> 11: www loses .2, gains .3; @ loses its AAAA */
	m_a(&m, "www.example.com", "192.0.2.2", 60);
	m_a(&m, "@", "2001:db8::9", 120);
	m_junk(&m, "www.example.com", T_RRSIG);
	m_soa(&m, 11);
	m_a(&m, "www.example.com", "192.0.2.3", 30);
	m_a(&m, "other.example.com", "192.0.2.99", 30);
	assert_int_equal(feed(x, &m), FLAT_XFR_MORE);
	m_begin(&m, CODEC_TYPE_IXFR, 0, false);
	m_soa(&m, 11); /* 11 -> 12: www swaps .3 for .2; a second ANAME at @ */
	m_a(&m, "www.example.com", "192.0.2.3", 30);
	m_soa(&m, 12);
	m_a(&m, "www.example.com", "192.0.2.2", 30);
	m_aname(&m, "@", "a.example.net");
	m_soa(&m, 12);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	assert_int_equal(flat_sibxfr_commit(x), -EINVAL);
	flat_sibxfr_free(x);

	assert_int_equal(flat_sibzone_soa(z)->serial, 12);
	assert_ptr_equal(find(z, "www.example.com"), www);
	assert_held(www, FLAT_SIB_A, "192.0.2.1", "192.0.2.2");
	assert_int_equal(www->held[FLAT_SIB_A]->ttl, 30);
	assert_held(www, FLAT_SIB_AAAA, NULL, NULL);
	/* mine[] and track[] are the caller's: the commit keeps them. */
	assert_non_null(www->mine[FLAT_SIB_A]);
	assert_int_equal(www->mine[FLAT_SIB_A]->n, 2);
	assert_int_equal(www->track[FLAT_SIB_A].written_s, 1234);
	assert_int_equal(www->track[FLAT_SIB_A].failures, 3);
	assert_false(www->fresh);
	assert_held(apex, FLAT_SIB_AAAA, NULL, NULL);
	assert_held(apex, FLAT_SIB_A, "192.0.2.9", NULL);
	assert_true(apex->several);
	assert_true(name_is(apex->target, apex->target_len, "a.example.net"));
	assert_null(find(z, "other.example.com"));
	flat_sibzone_free(z);
}

static int ixfr_one_step(struct flat_sibzone *z, uint32_t from, uint32_t to,
                         void (*del)(struct tmsg *), void (*add)(struct tmsg *))
{
	struct flat_sibxfr *x = NULL;
	struct tmsg m;
	int rc;

	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, to);
	m_soa(&m, from);
	if (del != NULL)
		del(&m);
	m_soa(&m, to);
	if (add != NULL)
		add(&m);
	m_soa(&m, to);
	rc = feed(x, &m);
	if (rc == FLAT_XFR_DONE)
		assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	return rc;
}

static void del_www_aname(struct tmsg *m)
{
	m_aname(m, "www.example.com", "cdn2.example.net");
}

static void add_new_aname(struct tmsg *m)
{
	m_aname(m, "new.example.com", "cdn.example.net");
}

static void add_www_aname(struct tmsg *m)
{
	m_aname(m, "www.example.com", "cdn3.example.net");
}

static void test_sibzone_ixfr_aname_deleted_gone_and_back(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_owner *www;

	axfr_std(z);
	www = find(z, "www.example.com");
	www->fresh = false;
	assert_int_equal(ixfr_one_step(z, 10, 11, del_www_aname, NULL), FLAT_XFR_DONE);
	assert_true(www->gone);
	assert_int_equal(www->aname_type, T_ANAME); /* REMOVE's prerequisite needs it */
	assert_held(www, FLAT_SIB_A, "192.0.2.1", "192.0.2.2");
	assert_false(www->fresh);

	/* An ANAME added at a name the table does not know. */
	assert_int_equal(ixfr_one_step(z, 11, 12, NULL, add_new_aname), FLAT_XFR_NEED_AXFR);
	assert_int_equal(flat_sibzone_soa(z)->serial, 11);
	/* At a gone owner, it is known: back, and fresh. */
	assert_int_equal(ixfr_one_step(z, 11, 12, NULL, add_www_aname), FLAT_XFR_DONE);
	assert_false(www->gone);
	assert_true(www->fresh);
	assert_true(name_is(www->target, www->target_len, "cdn3.example.net"));
	flat_sibzone_free(z);
}

static void test_sibzone_ixfr_uptodate_and_serial(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct tmsg m;

	axfr_std(z);
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 10);
	assert_int_equal(feed(x, &m), FLAT_XFR_UPTODATE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_DONE);
	flat_sibxfr_free(x);

	/* A first step that does not start at our serial. */
	assert_int_equal(ixfr_one_step(z, 9, 11, NULL, NULL), FLAT_XFR_E_SERIAL);
	/* A zone behind us. */
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 9);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_SERIAL);
	flat_sibxfr_free(x);
	/* A broken chain: 10 -> 11, then a step from 12. */
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 13);
	m_soa(&m, 10);
	m_soa(&m, 11);
	m_soa(&m, 12);
	assert_int_equal(feed(x, &m), FLAT_XFR_E_SERIAL);
	flat_sibxfr_free(x);
	/* A single SOA of a newer zone may go on in the next message. */
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 11);
	assert_int_equal(feed(x, &m), FLAT_XFR_MORE);
	flat_sibxfr_free(x);
	/* Serial arithmetic across the wrap: 4294967295 -> 3 is forward. */
	assert_int_equal(flat_sibzone_soa(z)->serial, 10);
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 4294967295u);
	m_soa(&m, 4294967295u);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	assert_int_equal(ixfr_one_step(z, 4294967295u, 3, NULL, NULL), FLAT_XFR_DONE);
	assert_int_equal(flat_sibzone_soa(z)->serial, 3);
	flat_sibzone_free(z);
}

static void test_sibzone_ixfr_axfr_form(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct flat_sib_owner *www;
	struct tmsg m;

	axfr_std(z);
	www = find(z, "www.example.com");
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 20);
	m_junk(&m, "@", T_RRSIG);
	m_aname(&m, "www.example.com", "cdn2.example.net");
	m_aname(&m, "n.example.com", "cdn.example.net");
	m_a(&m, "n.example.com", "192.0.2.50", 60);
	m_soa(&m, 20);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	assert_int_equal(flat_sibzone_soa(z)->serial, 20);
	assert_int_equal(flat_sibzone_count(z), 4);
	assert_ptr_equal(find(z, "www.example.com"), www);
	assert_held(www, FLAT_SIB_A, NULL, NULL);
	assert_true(find(z, "example.com")->gone);
	assert_true(find(z, "*.w.example.com")->gone);
	assert_held(find(z, "n.example.com"), FLAT_SIB_A, "192.0.2.50", NULL);
	flat_sibzone_free(z);
}

static struct flat_result res_addrs(uint16_t qtype, const char *a0, const char *a1, uint32_t ttl)
{
	struct flat_result r = {0};
	const char *a[2] = {a0, a1};

	r.kind = FLAT_RES_ADDRS;
	r.qtype = qtype;
	r.ttl = ttl;
	for (int i = 0; i < 2 && a[i] != NULL; i++)
		assert_int_equal(inet_pton(qtype == CODEC_TYPE_A ? AF_INET : AF_INET6, a[i],
		                           r.addrs[r.n_addrs++]),
		                 1);
	return r;
}

static void test_sibzone_plan(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_owner *www;
	struct flat_result r;
	struct flat_sib_set s;

	axfr_std(z);
	www = find(z, "www.example.com"); /* A 192.0.2.1 192.0.2.2 TTL 60 */
	/* The same set in another order, a lower TTL: nothing to write. */
	r = res_addrs(CODEC_TYPE_A, "192.0.2.2", "192.0.2.1", 5);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_KEEP);
	/* Held TTL above the cap. */
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 59), FLAT_SIB_REPLACE);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 60), FLAT_SIB_KEEP);
	r = res_addrs(CODEC_TYPE_A, "192.0.2.1", NULL, 60);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_REPLACE);
	r = res_addrs(CODEC_TYPE_AAAA, "2001:db8::1", NULL, 60);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_AAAA, &r, 300), FLAT_SIB_REPLACE);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_HOLD);
	r.kind = FLAT_RES_NODATA;
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_DELETE);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_AAAA, &r, 300), FLAT_SIB_KEEP);
	r.kind = FLAT_RES_NXDOMAIN;
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_DELETE);
	r.kind = FLAT_RES_FAIL;
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 300), FLAT_SIB_HOLD);

	r = res_addrs(CODEC_TYPE_A, "192.0.2.9", "192.0.2.1", 42);
	r.addrs[2][0] = 192;
	r.addrs[2][2] = 2;
	r.addrs[2][3] = 1;
	r.addrs[2][5] = 0xee; /* bytes an A does not use */
	r.n_addrs = 3;
	flat_sib_set_from_result(&s, FLAT_SIB_A, &r, 77);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ttl, 77);
	assert_int_equal(s.addr[0][3], 1);
	assert_int_equal(s.addr[1][3], 9);
	flat_sibzone_free(z);
}

/* Walks a written UPDATE; returns the classes of its RRs, in order. */
static void parse_update(const uint8_t *b, size_t len, struct codec_view *v, uint16_t *cls,
                         uint16_t *typ, size_t max)
{
	struct codec_rr_iter it;
	struct codec_rr rr;
	size_t k = 0;

	assert_int_equal(codec_scan(b, len, v), 0);
	assert_int_equal(v->opcode, CODEC_OPCODE_UPDATE);
	assert_int_equal(v->qdcount, 1);
	assert_int_equal(v->qtype, CODEC_TYPE_SOA);
	assert_int_equal(v->arcount, 0);
	for (int sec = CODEC_SEC_ANSWER; sec <= CODEC_SEC_AUTHORITY; sec++) {
		codec_rr_iter_init(&it, b, len, v, (enum codec_section)sec);
		while (codec_rr_next(&it, &rr) == 1) {
			assert_true(k < max);
			cls[k] = rr.rclass;
			typ[k++] = rr.type;
			if (rr.rclass != CODEC_CLASS_IN)
				assert_int_equal(rr.ttl, 0);
		}
	}
}

static void test_sibzone_update_layout(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_change ch[4];
	struct flat_result r;
	uint8_t buf[1024];
	uint16_t cls[32], typ[32];
	struct codec_view v;
	size_t taken = 99;

	axfr_std(z);
	memset(ch, 0, sizeof(ch));
	ch[0].o = find(z, "www.example.com");
	ch[0].fam = FLAT_SIB_A;
	ch[0].act = FLAT_SIB_REPLACE;
	r = res_addrs(CODEC_TYPE_A, "192.0.2.5", "192.0.2.6", 0);
	flat_sib_set_from_result(&ch[0].set, FLAT_SIB_A, &r, 45);
	ch[1] = ch[0];
	ch[1].fam = FLAT_SIB_AAAA;
	ch[1].act = FLAT_SIB_DELETE; /* same owner: one prerequisite */
	ch[2].o = find(z, "*.w.example.com");
	ch[2].fam = FLAT_SIB_A;
	ch[2].act = FLAT_SIB_REMOVE;
	ch[2].set.n = 1;
	ch[2].set.addr[0][0] = 192;
	ch[2].o->gone = true;
	ssize_t len = flat_sib_update_build(z, ch, 3, 0x5151, buf, sizeof(buf), 100, &taken);
	assert_true(len > 0);
	assert_int_equal(taken, 3);
	parse_update(buf, (size_t)len, &v, cls, typ, 32);
	assert_int_equal(v.id, 0x5151);
	assert_int_equal(v.ancount, 2); /* prerequisites */
	assert_int_equal(v.nscount, 5); /* updates */
	assert_int_equal(cls[0], 255);  /* exists, www */
	assert_int_equal(typ[0], T_ANAME);
	assert_int_equal(cls[1], 254); /* absent, *.w */
	assert_int_equal(typ[1], T_ANAME);
	assert_int_equal(cls[2], 255); /* delete www A */
	assert_int_equal(typ[2], CODEC_TYPE_A);
	assert_int_equal(cls[3], CODEC_CLASS_IN);
	assert_int_equal(cls[4], CODEC_CLASS_IN);
	assert_int_equal(cls[5], 255); /* delete www AAAA */
	assert_int_equal(typ[5], CODEC_TYPE_AAAA);
	assert_int_equal(cls[6], 254); /* delete one RR at *.w */
	/* Exact size: 12 + 13+4 zone, 2 prereqs, 5 updates. */
	assert_int_equal(len, 12 + 17 + (17 + 10) + (17 + 10) + (17 + 10) + 2 * (17 + 14) +
	                              (17 + 10) + (17 + 14));

	/* The TTL and RDATA of an added RR. */
	struct codec_rr_iter it;
	struct codec_rr rr;
	codec_rr_iter_init(&it, buf, (size_t)len, &v, CODEC_SEC_AUTHORITY);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.ttl, 45);
	assert_int_equal(rr.rdlen, 4);
	assert_memory_equal(buf + rr.rdata_off, "\300\0\2\5", 4);

	/* An [alias] owner has no prerequisite; bad changes are refused. */
	ch[0].o->is_alias = true;
	len = flat_sib_update_build(z, ch, 1, 1, buf, sizeof(buf), 0, &taken);
	parse_update(buf, (size_t)len, &v, cls, typ, 32);
	assert_int_equal(v.ancount, 0);
	ch[0].set.n = 0;
	assert_int_equal(flat_sib_update_build(z, ch, 1, 1, buf, sizeof(buf), 0, &taken), -EINVAL);
	assert_int_equal(flat_sib_update_build(z, ch, 0, 1, buf, sizeof(buf), 0, &taken), -EINVAL);
	assert_int_equal(flat_sib_update_build(z, &ch[1], 1, 1, buf, 40, 0, &taken), -EMSGSIZE);
	assert_int_equal(taken, 0);
	flat_sibzone_free(z);
}

static void test_sibzone_update_split_by_cap(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_change ch[3];
	uint8_t buf[512];
	uint16_t cls[64], typ[64];
	struct codec_view v;
	size_t taken, done = 0, msgs = 0;

	axfr_std(z);
	memset(ch, 0, sizeof(ch));
	const char *own[3] = {"example.com", "www.example.com", "*.w.example.com"};
	for (int i = 0; i < 3; i++) {
		ch[i].o = find(z, own[i]);
		ch[i].fam = FLAT_SIB_AAAA;
		ch[i].act = FLAT_SIB_REPLACE;
		ch[i].set.n = 4;
		ch[i].set.ttl = 30;
		for (int k = 0; k < 4; k++)
			ch[i].set.addr[k][15] = (uint8_t)k;
	}
	/* 29 octets of header and zone, then 202 for the apex's change and
	 * 226 for each of the others: two do not fit 300 - 20. */
	while (done < 3) {
		ssize_t len =
		        flat_sib_update_build(z, ch + done, 3 - done, 9, buf, 300, 20, &taken);

		assert_true(len > 0 && len <= 280);
		assert_int_equal(taken, 1);
		parse_update(buf, (size_t)len, &v, cls, typ, 64);
		assert_int_equal(v.ancount, 1);
		assert_int_equal(v.nscount, 5);
		done += taken;
		msgs++;
	}
	assert_int_equal(msgs, 3);
	ssize_t len = flat_sib_update_build(z, ch, 3, 9, buf, sizeof(buf), 0, &taken);
	assert_true(len > 0);
	assert_int_equal(taken, 2);
	flat_sibzone_free(z);
}

static void test_sibzone_applied(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_change c;
	struct flat_result r;
	struct flat_sib_owner *www;

	axfr_std(z);
	www = find(z, "www.example.com");
	memset(&c, 0, sizeof(c));
	c.o = www;
	c.fam = FLAT_SIB_A;
	c.act = FLAT_SIB_REPLACE;
	r = res_addrs(CODEC_TYPE_A, "192.0.2.5", NULL, 0);
	flat_sib_set_from_result(&c.set, FLAT_SIB_A, &r, 30);
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_held(www, FLAT_SIB_A, "192.0.2.5", NULL);
	assert_int_equal(www->mine[FLAT_SIB_A]->n, 1);
	assert_int_equal(www->mine[FLAT_SIB_A]->ttl, 30);
	r.ttl = 30;
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_A, &r, 30), FLAT_SIB_KEEP);

	c.act = FLAT_SIB_DELETE;
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_null(www->held[FLAT_SIB_A]);
	assert_null(www->mine[FLAT_SIB_A]);

	/* REMOVE takes mine's RRs out of held and leaves the rest. */
	www = find(z, "example.com");
	assert_int_equal(flat_sibzone_confirm(z, www, FLAT_SIB_AAAA), 0);
	assert_int_equal(www->mine[FLAT_SIB_AAAA]->n, 1);
	c.o = www;
	c.fam = FLAT_SIB_AAAA;
	c.act = FLAT_SIB_REMOVE;
	c.set.n = 1;
	memcpy(c.set.addr[0], www->mine[FLAT_SIB_AAAA]->addr[0], 16);
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_null(www->held[FLAT_SIB_AAAA]);
	assert_null(www->mine[FLAT_SIB_AAAA]);
	assert_held(www, FLAT_SIB_A, "192.0.2.9", NULL);
	c.act = FLAT_SIB_KEEP;
	assert_int_equal(flat_sibzone_applied(z, &c), -EINVAL);
	flat_sibzone_free(z);
}

static void test_sibzone_new_rejects(void **state)
{
	(void)state;
	struct flat_sibzone *z = (struct flat_sibzone *)1;
	static const uint16_t bad[] = {CODEC_TYPE_A};

	assert_int_equal(flat_sibzone_new(&z, (const uint8_t *)"\3com", 4, types, 2), -EINVAL);
	assert_null(z);
	assert_int_equal(flat_sibzone_new(&z, (const uint8_t *)"\3com", 5, types, 0), -EINVAL);
	assert_int_equal(flat_sibzone_new(&z, (const uint8_t *)"\3com", 5, bad, 1), -EINVAL);
	flat_sibxfr_free(NULL);
	flat_sibzone_free(NULL);
}

/* The memory figure for bench/README.md: 10 000 ANAME owners, each with
 * one A and one AAAA held, and apexd's copy of both. */
static void test_sibzone_bytes_10000_owners(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct tmsg m;
	char name[64];
	int rc = FLAT_XFR_MORE;

	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 1);
	for (int i = 0; i < 10000; i++) {
		if (m.b[7] > 200) {
			assert_int_equal(feed(x, &m), FLAT_XFR_MORE);
			m_begin(&m, CODEC_TYPE_AXFR, 0, false);
		}
		snprintf(name, sizeof(name), "owner-%05d.example.com", i);
		m_aname(&m, name, "cdn.provider.example.net");
		m_a(&m, name, "192.0.2.1", 300);
		m_a(&m, name, "2001:db8::1", 300);
	}
	m_soa(&m, 1);
	rc = feed(x, &m);
	assert_int_equal(rc, FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	assert_int_equal(flat_sibzone_count(z), 10000);
	for (size_t i = 0; i < 10000; i++) {
		struct flat_sib_owner *o = flat_sibzone_at(z, i);

		assert_int_equal(flat_sibzone_confirm(z, o, FLAT_SIB_A), 0);
		assert_int_equal(flat_sibzone_confirm(z, o, FLAT_SIB_AAAA), 0);
	}
	size_t b = flat_sibzone_bytes(z);
	print_message("flat_sibzone_bytes, 10000 owners: %zu (%zu per owner; "
	              "struct flat_sib_owner %zu)\n",
	              b, b / 10000, sizeof(struct flat_sib_owner));
	assert_true(b > 10000 * sizeof(struct flat_sib_owner));
	flat_sibzone_free(z);
}

/* --- HTTPS, the third family ------------------------------------------------ */

#define T_HTTPS 65

/* HTTPS RDATA: priority, target, then params as given (already wire). */
static size_t https_rd(uint8_t *out, uint16_t prio, const char *target, const void *params,
                       size_t plen)
{
	size_t n = 0;

	out[n++] = (uint8_t)(prio >> 8);
	out[n++] = (uint8_t)prio;
	n += wire(target, out + n);
	if (plen > 0)
		memcpy(out + n, params, plen);
	return n + plen;
}

/* alpn=h3,h2 ipv4hint=192.0.2.1 */
static const uint8_t P_H3[] = {0, 1, 0, 6, 2, 'h', '3', 2, 'h', '2', 0, 4, 0, 4, 192, 0, 2, 1};
/* alpn=h2 */
static const uint8_t P_H2[] = {0, 1, 0, 3, 2, 'h', '2'};

/* Three RRs a CDN might publish: r1 ServiceMode "." h3, r2 ServiceMode
 * alt.cdn h2, r3 AliasMode. Canonical order: r3 (priority 0), r1, r2. */
struct https3 {
	uint8_t r[3][64];
	size_t len[3];
};

static void https3(struct https3 *h)
{
	h->len[0] = https_rd(h->r[0], 1, ".", P_H3, sizeof(P_H3));
	h->len[1] = https_rd(h->r[1], 2, "alt.cdn.example.net", P_H2, sizeof(P_H2));
	h->len[2] = https_rd(h->r[2], 0, "pool.cdn.example.net", NULL, 0);
}

/* A result of HTTPS RRs, in the order given. */
static struct flat_result res_https(const struct https3 *h, const int *which, int n, uint32_t ttl)
{
	struct flat_result r = {0};

	r.kind = FLAT_RES_ADDRS;
	r.qtype = T_HTTPS;
	r.ttl = ttl;
	for (int i = 0; i < n; i++) {
		size_t l = h->len[which[i]];

		r.rdata[r.rdata_len++] = (uint8_t)(l >> 8);
		r.rdata[r.rdata_len++] = (uint8_t)l;
		memcpy(r.rdata + r.rdata_len, h->r[which[i]], l);
		r.rdata_len += (uint16_t)l;
		r.n_addrs++;
	}
	return r;
}

/* The item stream of RRs which[0..n) in that order. */
static size_t stream(const struct https3 *h, const int *which, int n, uint8_t *out)
{
	struct flat_result r = res_https(h, which, n, 0);

	memcpy(out, r.rdata, r.rdata_len);
	return r.rdata_len;
}

static void assert_held_https(const struct flat_sib_owner *o, const struct https3 *h,
                              const int *which, int n)
{
	const struct flat_sib_rrset *r = o->held[FLAT_SIB_HTTPS];
	uint8_t want[FLAT_RDATA_MAX];
	size_t wl = stream(h, which, n, want);

	if (n == 0) {
		assert_null(r);
		return;
	}
	assert_non_null(r);
	assert_false(r->cut);
	assert_int_equal(r->n, n);
	assert_int_equal(r->rd_len, wl);
	assert_memory_equal(flat_sib_rrset_rd(r), want, wl);
}

/* axfr_std's zone plus HTTPS: @ has r2, r1 and r2 again (TTLs 300, 200);
 * www one RR larger than a chase can give; other (no owner) r1. */
static void axfr_https(struct flat_sibzone *z, const struct https3 *h)
{
	struct flat_sibxfr *x = NULL;
	struct tmsg m;
	static uint8_t big[1100];

	big[1] = 1; /* priority 1, then zeros: the root and a key 0 of... */
	assert_int_equal(flat_sibxfr_begin(&x, z, false), 0);
	m_begin(&m, CODEC_TYPE_AXFR, 0, true);
	m_soa(&m, 10);
	m_rr(&m, "@", T_HTTPS, 300, h->r[1], h->len[1]);
	m_aname(&m, "@", "cdn.example.net");
	m_a(&m, "@", "192.0.2.9", 120);
	m_rr(&m, "@", T_HTTPS, 200, h->r[0], h->len[0]);
	m_rr(&m, "@", T_HTTPS, 300, h->r[1], h->len[1]);
	m_junk(&m, "@", T_RRSIG);
	m_aname(&m, "www.example.com", "cdn2.example.net");
	m_rr(&m, "www.example.com", T_HTTPS, 60, big, sizeof(big));
	m_aname(&m, "*.w.example.com", "wild.example.net");
	m_rr(&m, "other.example.com", T_HTTPS, 60, h->r[0], h->len[0]);
	m_soa(&m, 10);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
}

static void test_sibzone_https_transfers(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sibxfr *x = NULL;
	struct https3 h;
	struct tmsg m;
	struct flat_sib_owner *apex, *www;

	https3(&h);
	axfr_https(z, &h);
	apex = find(z, "example.com");
	www = find(z, "www.example.com");
	/* Canonical order (r1 before r2), one copy each, the lowest TTL. */
	assert_held_https(apex, &h, (const int[]){0, 1}, 2);
	assert_int_equal(apex->held[FLAT_SIB_HTTPS]->ttl, 200);
	assert_held(apex, FLAT_SIB_A, "192.0.2.9", NULL);
	/* Too large to keep: only marked. */
	assert_non_null(www->held[FLAT_SIB_HTTPS]);
	assert_true(www->held[FLAT_SIB_HTTPS]->cut);
	assert_int_equal(www->held[FLAT_SIB_HTTPS]->n, 0);
	assert_null(find(z, "*.w.example.com")->held[FLAT_SIB_HTTPS]);
	assert_null(find(z, "other.example.com"));

	/* IXFR 10 -> 11: @ loses r1, gains r3 (TTL 30); *.w gains r1. */
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 11);
	m_soa(&m, 10);
	m_rr(&m, "@", T_HTTPS, 200, h.r[0], h.len[0]);
	m_soa(&m, 11);
	m_rr(&m, "@", T_HTTPS, 30, h.r[2], h.len[2]);
	m_rr(&m, "*.w.example.com", T_HTTPS, 30, h.r[0], h.len[0]);
	m_soa(&m, 11);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	assert_held_https(apex, &h, (const int[]){2, 1}, 2);
	assert_int_equal(apex->held[FLAT_SIB_HTTPS]->ttl, 30);
	assert_held_https(find(z, "*.w.example.com"), &h, (const int[]){0}, 1);
	assert_true(www->held[FLAT_SIB_HTTPS]->cut);

	/* IXFR 11 -> 12: @ loses both: no HTTPS left there. */
	assert_int_equal(flat_sibxfr_begin(&x, z, true), 0);
	m_begin(&m, CODEC_TYPE_IXFR, 0, true);
	m_soa(&m, 12);
	m_soa(&m, 11);
	m_rr(&m, "@", T_HTTPS, 30, h.r[2], h.len[2]);
	m_rr(&m, "@", T_HTTPS, 30, h.r[1], h.len[1]);
	m_soa(&m, 12);
	m_soa(&m, 12);
	assert_int_equal(feed(x, &m), FLAT_XFR_DONE);
	assert_int_equal(flat_sibxfr_commit(x), 0);
	flat_sibxfr_free(x);
	assert_null(apex->held[FLAT_SIB_HTTPS]);
	assert_held(apex, FLAT_SIB_A, "192.0.2.9", NULL);
	flat_sibzone_free(z);
}

static void test_sibzone_https_plan(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_owner *apex, *www, *wild;
	struct flat_result r;
	struct flat_sib_set s;
	struct https3 h;
	uint8_t want[FLAT_RDATA_MAX];

	https3(&h);
	axfr_https(z, &h);
	apex = find(z, "example.com"); /* r1 r2, TTL 200 */
	www = find(z, "www.example.com");
	wild = find(z, "*.w.example.com");
	assert_int_equal(flat_sib_fam_type(FLAT_SIB_HTTPS), T_HTTPS);

	/* The same RRs in another order, a lower TTL: nothing to write. */
	r = res_https(&h, (const int[]){1, 0}, 2, 5);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_KEEP);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 199), FLAT_SIB_REPLACE);
	/* One RR fewer, one more, another one. */
	r = res_https(&h, (const int[]){0}, 1, 5);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_REPLACE);
	r = res_https(&h, (const int[]){0, 1, 2}, 3, 5);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_REPLACE);
	/* A changed parameter is a change. */
	r = res_https(&h, (const int[]){1, 0}, 2, 5);
	r.rdata[r.rdata_len - 1] ^= 1;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_REPLACE);
	/* None at the target: delete what the zone holds, if anything. */
	r.kind = FLAT_RES_NODATA;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_DELETE);
	assert_int_equal(flat_sib_plan(wild, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_KEEP);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_DELETE);
	r.kind = FLAT_RES_NXDOMAIN;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_DELETE);
	r.kind = FLAT_RES_FAIL;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_HOLD);
	/* A set the zone holds cut never equals a chase. */
	r = res_https(&h, (const int[]){0}, 1, 5);
	assert_int_equal(flat_sib_plan(www, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_REPLACE);
	assert_int_equal(flat_sib_plan(wild, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_REPLACE);
	/* Not HTTPS, or not well formed: leave the zone alone. */
	r = res_addrs(CODEC_TYPE_A, "192.0.2.1", NULL, 60);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_HOLD);
	r = res_https(&h, (const int[]){0, 1}, 2, 5);
	r.n_addrs = 3;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_HOLD);
	r = res_https(&h, (const int[]){0, 1}, 2, 5);
	r.rdata_len--;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_HOLD);
	r = res_https(&h, (const int[]){0}, 1, 5);
	r.rdata[1] = 2; /* an item of two octets: no HTTPS RDATA */
	r.rdata_len = 4;
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 300), FLAT_SIB_HOLD);
	/* HTTPS results say nothing about addresses. */
	r = res_https(&h, (const int[]){0}, 1, 5);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_A, &r, 300), FLAT_SIB_HOLD);

	/* The set: canonical order, duplicates dropped. */
	r = res_https(&h, (const int[]){1, 0, 2, 1}, 4, 5);
	flat_sib_set_from_result(&s, FLAT_SIB_HTTPS, &r, 77);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ttl, 77);
	size_t wl = stream(&h, (const int[]){2, 0, 1}, 3, want);
	assert_int_equal(s.rd_len, wl);
	assert_memory_equal(s.rd, want, wl);
	r.n_addrs = 5;
	flat_sib_set_from_result(&s, FLAT_SIB_HTTPS, &r, 77);
	assert_int_equal(s.n, 0);
	flat_sibzone_free(z);
}

static void test_sibzone_https_update(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_change ch[4];
	struct flat_result r;
	struct https3 h;
	uint8_t buf[2048];
	uint16_t cls[32], typ[32];
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	size_t taken = 0;

	https3(&h);
	axfr_https(z, &h);
	memset(ch, 0, sizeof(ch));
	/* @: HTTPS replaced by r2 r1 (written r1 r2), and A replaced. */
	ch[0].o = find(z, "example.com");
	ch[0].fam = FLAT_SIB_HTTPS;
	ch[0].act = FLAT_SIB_REPLACE;
	r = res_https(&h, (const int[]){1, 0}, 2, 0);
	flat_sib_set_from_result(&ch[0].set, FLAT_SIB_HTTPS, &r, 45);
	ch[1].o = ch[0].o;
	ch[1].fam = FLAT_SIB_A;
	ch[1].act = FLAT_SIB_REPLACE;
	r = res_addrs(CODEC_TYPE_A, "192.0.2.5", NULL, 0);
	flat_sib_set_from_result(&ch[1].set, FLAT_SIB_A, &r, 45);
	/* www: HTTPS deleted. */
	ch[2].o = find(z, "www.example.com");
	ch[2].fam = FLAT_SIB_HTTPS;
	ch[2].act = FLAT_SIB_DELETE;
	/* *.w, gone: remove the one RR apexd wrote. */
	ch[3].o = find(z, "*.w.example.com");
	ch[3].o->gone = true;
	ch[3].fam = FLAT_SIB_HTTPS;
	ch[3].act = FLAT_SIB_REMOVE;
	r = res_https(&h, (const int[]){2}, 1, 0);
	flat_sib_set_from_result(&ch[3].set, FLAT_SIB_HTTPS, &r, 45);

	ssize_t len = flat_sib_update_build(z, ch, 4, 0x6565, buf, sizeof(buf), 100, &taken);
	assert_true(len > 0);
	assert_int_equal(taken, 4);
	parse_update(buf, (size_t)len, &v, cls, typ, 32);
	assert_int_equal(v.ancount, 3); /* exists @, exists www, absent *.w */
	assert_int_equal(v.nscount, 7);
	assert_int_equal(cls[3], 255); /* delete @ HTTPS */
	assert_int_equal(typ[3], T_HTTPS);
	assert_int_equal(cls[4], CODEC_CLASS_IN);
	assert_int_equal(typ[4], T_HTTPS);
	assert_int_equal(cls[5], CODEC_CLASS_IN);
	assert_int_equal(typ[5], T_HTTPS);
	assert_int_equal(cls[6], 255); /* delete @ A, add one */
	assert_int_equal(typ[6], CODEC_TYPE_A);
	assert_int_equal(cls[8], 255); /* delete www HTTPS */
	assert_int_equal(typ[8], T_HTTPS);
	assert_int_equal(cls[9], 254); /* delete the one RR at *.w */
	assert_int_equal(typ[9], T_HTTPS);
	/* Exact size: the owners are 13, 17 and 17 octets long. */
	size_t want = 12 + 17 + (13 + 10) + (17 + 10) + (17 + 10)       /* prereqs */
	              + (13 + 10) + 2 * (13 + 10) + h.len[0] + h.len[1] /* @ HTTPS */
	              + (13 + 10) + (13 + 14)                           /* @ A */
	              + (17 + 10)                                       /* www */
	              + (17 + 10) + h.len[2];                           /* *.w */
	assert_int_equal(len, want);
	/* The added RRs: TTL 45, each RDATA as the CDN had it, canonical order. */
	codec_rr_iter_init(&it, buf, (size_t)len, &v, CODEC_SEC_AUTHORITY);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.ttl, 45);
	assert_int_equal(rr.rdlen, h.len[0]);
	assert_memory_equal(buf + rr.rdata_off, h.r[0], h.len[0]);
	assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.rdlen, h.len[1]);
	assert_memory_equal(buf + rr.rdata_off, h.r[1], h.len[1]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(codec_rr_next(&it, &rr), 1);
	assert_int_equal(rr.rdlen, h.len[2]);
	assert_memory_equal(buf + rr.rdata_off, h.r[2], h.len[2]);

	/* Cut to fit: the first change alone. */
	len = flat_sib_update_build(z, ch, 4, 1, buf, 12 + 17 + 23 + 23 + 46 + h.len[0] + h.len[1],
	                            0, &taken);
	assert_true(len > 0);
	assert_int_equal(taken, 1);
	/* A malformed stream is refused. */
	ch[0].set.rd_len--;
	assert_int_equal(flat_sib_update_build(z, ch, 1, 1, buf, sizeof(buf), 0, &taken), -EINVAL);
	ch[0].set.rd_len++;
	ch[0].set.n = 3;
	assert_int_equal(flat_sib_update_build(z, ch, 1, 1, buf, sizeof(buf), 0, &taken), -EINVAL);
	flat_sibzone_free(z);
}

static void test_sibzone_https_applied(void **state)
{
	(void)state;
	struct flat_sibzone *z = zone_new();
	struct flat_sib_change c;
	struct flat_result r;
	struct flat_sib_set s;
	struct https3 h;
	struct flat_sib_owner *apex, *www;

	https3(&h);
	axfr_https(z, &h);
	size_t before = flat_sibzone_bytes(z);
	apex = find(z, "example.com");
	memset(&c, 0, sizeof(c));
	c.o = apex;
	c.fam = FLAT_SIB_HTTPS;
	c.act = FLAT_SIB_REPLACE;
	r = res_https(&h, (const int[]){2, 1, 0}, 3, 0);
	flat_sib_set_from_result(&c.set, FLAT_SIB_HTTPS, &r, 30);
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_held_https(apex, &h, (const int[]){2, 0, 1}, 3);
	assert_int_equal(apex->mine[FLAT_SIB_HTTPS]->n, 3);
	assert_int_equal(apex->mine[FLAT_SIB_HTTPS]->ttl, 30);
	assert_int_equal(flat_sib_plan(apex, FLAT_SIB_HTTPS, &r, 30), FLAT_SIB_KEEP);
	assert_true(flat_sibzone_bytes(z) > before);
	/* The addresses are untouched. */
	assert_held(apex, FLAT_SIB_A, "192.0.2.9", NULL);

	/* REMOVE of mine's r1 leaves r3 and r2. */
	c.act = FLAT_SIB_REMOVE;
	r = res_https(&h, (const int[]){0}, 1, 0);
	flat_sib_set_from_result(&c.set, FLAT_SIB_HTTPS, &r, 30);
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_held_https(apex, &h, (const int[]){2, 1}, 2);
	assert_null(apex->mine[FLAT_SIB_HTTPS]);

	/* Confirm, and back to a set (what a REMOVE of a gone owner takes). */
	assert_int_equal(flat_sibzone_confirm(z, apex, FLAT_SIB_HTTPS), 0);
	flat_sib_set_from_rrset(&s, FLAT_SIB_HTTPS, apex->mine[FLAT_SIB_HTTPS]);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ttl, 30);
	assert_int_equal(s.rd_len, apex->held[FLAT_SIB_HTTPS]->rd_len);
	assert_memory_equal(s.rd, flat_sib_rrset_rd(apex->held[FLAT_SIB_HTTPS]), s.rd_len);
	flat_sib_set_from_rrset(&s, FLAT_SIB_HTTPS, NULL);
	assert_int_equal(s.n, 0);

	/* DELETE of the cut set at www. */
	www = find(z, "www.example.com");
	c.o = www;
	c.act = FLAT_SIB_DELETE;
	assert_int_equal(flat_sibzone_applied(z, &c), 0);
	assert_null(www->held[FLAT_SIB_HTTPS]);
	flat_sibzone_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sibzone_axfr_finds_owners_and_held),
	        cmocka_unit_test(test_sibzone_several_anames_pick_first),
	        cmocka_unit_test(test_sibzone_axfr_bad_stream_rejected),
	        cmocka_unit_test(test_sibzone_rcode_reported),
	        cmocka_unit_test(test_sibzone_aliases),
	        cmocka_unit_test(test_sibzone_ixfr_incremental),
	        cmocka_unit_test(test_sibzone_ixfr_aname_deleted_gone_and_back),
	        cmocka_unit_test(test_sibzone_ixfr_uptodate_and_serial),
	        cmocka_unit_test(test_sibzone_ixfr_axfr_form),
	        cmocka_unit_test(test_sibzone_plan),
	        cmocka_unit_test(test_sibzone_update_layout),
	        cmocka_unit_test(test_sibzone_update_split_by_cap),
	        cmocka_unit_test(test_sibzone_applied),
	        cmocka_unit_test(test_sibzone_new_rejects),
	        cmocka_unit_test(test_sibzone_bytes_10000_owners),
	        cmocka_unit_test(test_sibzone_https_transfers),
	        cmocka_unit_test(test_sibzone_https_plan),
	        cmocka_unit_test(test_sibzone_https_update),
	        cmocka_unit_test(test_sibzone_https_applied),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
