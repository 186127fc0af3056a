/* tests/fuzz/fuzz_flat_sibxfr.c - libFuzzer target for the sibling zone
 * table: AXFR/IXFR answers, then the plan and the UPDATE writer.
 *
 * Input layout:
 *   byte 0   bit 0: set [alias] owners first; bit 1: the second transfer
 *            asks IXFR; bits 2-7: seed of the made-up chase results
 *   byte 1   k: the first transfer (an AXFR) takes messages until it
 *            ends or k were fed; the rest go to the second. k = 0: one
 *            transfer only, of bit 1's kind (begin() turns IXFR into AXFR
 *            without a serial)
 *   rest     messages, each after a two-octet length as on TCP; a
 *            length running past the end ends the input
 * The zone is example.com with ANAME types 65401 and 65402; the families
 * are A, AAAA and HTTPS (RDATA kept as the zone has it). After each
 * transfer that ends DONE or UPTODATE: commit, check the table, plan every
 * owner and family against made-up results, write the changes as UPDATEs
 * into a small buffer until all are taken (each checked by codec_scan),
 * record them as applied, and drop the gone owners. A broken invariant
 * aborts.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "codec/scan.h"
#include "flatten/sibzone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CHANGES 256

static const uint8_t apex[] = "\7example\3com";
static const uint16_t types[] = {65401, 65402};

static void check(int cond)
{
	if (!cond)
		abort();
}

static void set_aliases(struct flat_sibzone *z)
{
	static const uint8_t o1[] = "\3www\7example\3com";
	static const uint8_t o2[] = "\4shop\7example\3com";
	static const uint8_t t1[] = "\3cdn\7example\3net";
	const struct flat_sib_alias a[2] = {
	        {o1, sizeof(o1), t1, sizeof(t1), 1},
	        {o2, sizeof(o2), t1, sizeof(t1), 1},
	};

	check(flat_sibzone_set_aliases(z, a, 2) == 0);
}

/* An HTTPS item stream: n items of RDATA >= 3 octets, each after its
 * length, in strictly increasing canonical order (RFC 4034 6.3). */
static void check_rd_stream(const uint8_t *s, size_t len, unsigned n)
{
	const uint8_t *prev = NULL;
	size_t off = 0, prev_len = 0;
	unsigned k = 0;

	while (off < len) {
		check(len - off >= 2);
		size_t l = (size_t)s[off] << 8 | s[off + 1];

		check(l >= 3 && l <= len - off - 2);
		if (prev != NULL) {
			size_t m = prev_len < l ? prev_len : l;
			int c = memcmp(prev, s + off + 2, m);

			check(c < 0 || (c == 0 && prev_len < l));
		}
		prev = s + off + 2;
		prev_len = l;
		off += 2 + l;
		k++;
	}
	check(k == n);
}

static void check_rrset(const struct flat_sib_rrset *r, enum flat_sib_fam f)
{
	if (r == NULL)
		return;
	if (flat_sib_fam_is_rdata(f)) {
		check(r->n >= 1 || r->cut);
		check(r->rd_len <= FLAT_RDATA_MAX);
		check_rd_stream(flat_sib_rrset_rd(r), r->rd_len, r->n);
		return;
	}
	check(r->n >= 1 && !r->cut && r->rd_len == 0);
	for (unsigned i = 1; i < r->n; i++)
		check(memcmp(r->addr[i - 1], r->addr[i], 16) < 0);
}

static void check_table(struct flat_sibzone *z)
{
	size_t n = flat_sibzone_count(z);

	for (size_t i = 0; i < n; i++) {
		struct flat_sib_owner *o = flat_sibzone_at(z, i);

		check(o != NULL);
		check(codec_name_valid(o->name, o->len));
		check(flat_sibzone_find(z, o->name, o->len) == o);
		check(o->gone || codec_name_valid(o->target, o->target_len));
		check(!o->is_alias || (o->aname_type == 0 && !o->gone));
		for (int f = 0; f < FLAT_SIB_FAMS; f++) {
			check_rrset(o->held[f], (enum flat_sib_fam)f);
			check_rrset(o->mine[f], (enum flat_sib_fam)f);
		}
	}
	check(flat_sibzone_at(z, n) == NULL);
	check(flat_sibzone_bytes(z) > 0);
}

static void made_up_result(struct flat_result *r, enum flat_sib_fam f, unsigned seed)
{
	memset(r, 0, sizeof(*r));
	r->qtype = flat_sib_fam_type(f);
	r->kind = (enum flat_result_kind)(seed % 4);
	r->ttl = seed % 600;
	r->n_addrs = r->kind == FLAT_RES_ADDRS ? (uint8_t)(1 + seed % 3) : 0;
	if (flat_sib_fam_is_rdata(f)) {
		/* Priority 0..1, the root as target, alpn of one byte: duplicates
		 * and orders vary with the seed. */
		for (unsigned i = 0; i < r->n_addrs; i++) {
			static const uint8_t tmpl[] = {0, 0, 0, 0, 1, 0, 2, 1, 'a'};
			uint8_t *it = r->rdata + r->rdata_len;

			it[0] = 0;
			it[1] = sizeof(tmpl);
			memcpy(it + 2, tmpl, sizeof(tmpl));
			it[3] = (uint8_t)((seed >> i) & 1);
			it[2 + sizeof(tmpl) - 1] = (uint8_t)('a' + ((seed >> (i * 2)) & 3));
			r->rdata_len += 2 + sizeof(tmpl);
		}
		return;
	}
	for (unsigned i = 0; i < r->n_addrs; i++) {
		r->addrs[i][0] = 192;
		r->addrs[i][3] = (uint8_t)(seed >> (i * 2));
	}
}

static size_t plan_all(struct flat_sibzone *z, unsigned seed, struct flat_sib_change *ch)
{
	size_t n = 0;

	for (size_t i = 0; i < flat_sibzone_count(z) && n < MAX_CHANGES; i++) {
		struct flat_sib_owner *o = flat_sibzone_at(z, i);

		for (int f = 0; f < FLAT_SIB_FAMS && n < MAX_CHANGES; f++) {
			struct flat_sib_change *c = &ch[n];
			struct flat_result r;

			memset(c, 0, sizeof(*c));
			c->o = o;
			c->fam = (enum flat_sib_fam)f;
			if (o->gone) {
				const struct flat_sib_rrset *m = o->mine[f];

				if (m == NULL || m->n > FLAT_MAX_ADDRS)
					continue;
				c->act = FLAT_SIB_REMOVE;
				flat_sib_set_from_rrset(&c->set, c->fam, m);
				check(c->set.n == m->n);
				n += c->set.n > 0;
				continue;
			}
			made_up_result(&r, c->fam, seed + (unsigned)(i * 7 + (size_t)f));
			c->act = flat_sib_plan(o, c->fam, &r, 300);
			check(c->act <= FLAT_SIB_HOLD);
			if (c->act != FLAT_SIB_REPLACE && c->act != FLAT_SIB_DELETE)
				continue;
			flat_sib_set_from_result(&c->set, c->fam, &r, r.ttl);
			n++;
		}
	}
	return n;
}

static void write_updates(struct flat_sibzone *z, const struct flat_sib_change *ch, size_t n)
{
	/* Room for the largest single change (a 255-octet owner: its
	 * prerequisite, the delete and three AAAA, 1402 octets) and the
	 * reserve, small enough that a batch is split. */
	uint8_t buf[1600];
	size_t done = 0;

	while (done < n) {
		size_t taken = 0;
		struct codec_view v;
		ssize_t len = flat_sib_update_build(z, ch + done, n - done, 1, buf, sizeof(buf),
		                                    100, &taken);

		check(len > 0 && (size_t)len <= sizeof(buf) - 100);
		check(taken >= 1 && taken <= n - done);
		check(codec_scan(buf, (size_t)len, &v) == 0);
		check(v.opcode == CODEC_OPCODE_UPDATE && v.qdcount == 1 && v.arcount == 0);
		for (size_t i = done; i < done + taken; i++)
			check(flat_sibzone_applied(z, &ch[i]) == 0);
		done += taken;
	}
}

static void round_trip(struct flat_sibzone *z, unsigned seed)
{
	static struct flat_sib_change ch[MAX_CHANGES];
	size_t n;

	check_table(z);
	n = plan_all(z, seed, ch);
	write_updates(z, ch, n);
	for (size_t i = flat_sibzone_count(z); i-- > 0;) {
		struct flat_sib_owner *o = flat_sibzone_at(z, i);

		o->fresh = false;
		if (o->gone)
			flat_sibzone_remove(z, o);
		else if (i % 2 == 0)
			check(flat_sibzone_confirm(z, o, FLAT_SIB_A) == 0 &&
			      flat_sibzone_confirm(z, o, FLAT_SIB_HTTPS) == 0);
	}
	check_table(z);
}

/* One transfer, fed from *p at most max_msgs messages. */
static void transfer(struct flat_sibzone *z, bool ixfr, const uint8_t **p, const uint8_t *end,
                     size_t max_msgs, unsigned seed)
{
	struct flat_sibxfr *x = NULL;
	uint8_t q[600];
	int rc = FLAT_XFR_MORE;

	check(flat_sibxfr_begin(&x, z, ixfr) == 0);
	check(flat_sibxfr_query(x, 7, q, sizeof(q)) > 0);
	for (size_t m = 0; m < max_msgs && end - *p >= 2; m++) {
		size_t len = (size_t)(*p)[0] << 8 | (*p)[1];

		if ((size_t)(end - *p) - 2 < len) {
			*p = end;
			break;
		}
		rc = flat_sibxfr_feed(x, *p + 2, len);
		*p += 2 + len;
		check(rc >= FLAT_XFR_E_DONE && rc <= FLAT_XFR_NEED_AXFR);
		if (rc != FLAT_XFR_MORE)
			break;
	}
	if (rc == FLAT_XFR_DONE || rc == FLAT_XFR_UPTODATE) {
		check(flat_sibxfr_commit(x) == 0);
		check(flat_sibzone_soa(z)->known);
		round_trip(z, seed);
	} else {
		check(flat_sibxfr_commit(x) == -EINVAL);
	}
	flat_sibxfr_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct flat_sibzone *z = NULL;
	const uint8_t *p = data + 2, *end = data + size;

	if (size < 2)
		return 0;
	check(flat_sibzone_new(&z, apex, sizeof(apex), types, 2) == 0);
	if (data[0] & 1)
		set_aliases(z);
	if (data[1] > 0)
		transfer(z, false, &p, end, data[1], data[0] >> 2);
	transfer(z, (data[0] & 2) != 0, &p, end, SIZE_MAX, data[0] >> 2);
	flat_sibzone_free(z);
	return 0;
}
