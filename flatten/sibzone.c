/* flatten/sibzone.c - the sibling zone table, its transfers, the plan and
 * the UPDATE writer (flatten/sibzone.h).
 *
 * The table is a dense array of owner pointers, for iteration and so that
 * owners never move, plus a chained hash index under a random SipHash key:
 * owner names come from the zone, which the operator's customers may
 * shape. Each owner also keeps every ANAME RR the zone holds there,
 * packed, because an IXFR that deletes the target in use leaves the next
 * one in canonical order in charge, and a diff does not repeat it.
 *
 * Transfers collect into their own memory and touch the table only in
 * flat_sibxfr_commit(), which allocates everything it needs first and
 * then swaps it in, so that running out of memory leaves the table as it
 * was.
 */
#include "flatten/sibzone.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/khash.h"
#include "codec/name.h"
#include "codec/rd.h"
#include "codec/rr.h"
#include "codec/scan.h"
#include "codec/ttl.h"
#include "codec/update.h"

/* struct flat_sib_rrset counts its addresses in a uint8_t; a zone that
 * holds more at one owner is kept to the lowest 255, which the plan then
 * sees as a difference (a chase gives at most FLAT_MAX_ADDRS). */
#define SIB_RRSET_MAX 255
/* RFC 9460 2.2: the HTTPS type code (flat_qtype_is_rdata()). */
#define SIB_TYPE_HTTPS 65
/* The shortest HTTPS RDATA: SvcPriority (2) and the root as TargetName. */
#define SIB_RD_MIN 3
/* The largest HTTPS RDATA a chase can give: one item filling rdata[]. */
#define SIB_RD_ITEM_MAX (FLAT_RDATA_MAX - 2)
/* A packed ANAME entry: type (2), TTL (4), target length (1), target. */
#define SIB_AN_HDR 7
/* RFC 1035 3.3.13: SERIAL REFRESH RETRY EXPIRE MINIMUM follow the names. */
#define SIB_SOA_FIXED 20
/* RFC 1035 3.2.1: TYPE CLASS TTL RDLENGTH follow an RR's owner name. */
#define SIB_RR_FIXED 10
/* RFC 1035 4.1.2: QTYPE QCLASS follow the question name. */
#define SIB_Q_FIXED 4
/* A transfer keeps names and RDATA in blocks that never move, so that
 * its records can point into them. */
#define SIB_ARENA_BLOCK 65536
/* First sizes of the owner array and of the hash index (a power of two). */
#define SIB_MIN_SLOTS 16
/* A wire name of 255 octets has at most 127 labels besides the root. */
#define SIB_MAX_LABELS 128

struct sib_node {
	struct flat_sib_owner o; /* first member: the public owner is the node */
	struct sib_node *next;   /* hash chain */
	uint64_t hash;
	size_t idx;  /* position in z->own */
	uint8_t *an; /* the zone's ANAME RRs here, packed; NULL: none */
	size_t an_len;
	/* A commit's new state, allocated before anything changes. */
	bool staged;
	struct flat_sib_rrset *st_held[FLAT_SIB_FAMS];
	uint8_t *st_an;
	size_t st_an_len;
};

/* An SOA with the names an IXFR request repeats (RFC 1995 3). */
struct sib_soa {
	struct flat_sib_soa s;
	uint8_t mname[CODEC_MAX_NAME];
	uint8_t rname[CODEC_MAX_NAME];
	size_t mname_len, rname_len; /* 0: unknown, written as the root */
};

struct flat_sibzone {
	uint8_t apex[CODEC_MAX_NAME];
	size_t apex_len;
	uint16_t *types;
	unsigned n_types;
	struct sib_soa soa;
	/* An owner whose held[] no transfer has told yet (a new [alias]):
	 * only a full transfer can, so the next one is AXFR. */
	bool need_axfr;
	struct codec_hkey key;
	struct sib_node **own;
	size_t n, cap;
	struct sib_node **bucket;
	size_t n_bucket; /* 0 or a power of two */
};

/* A scratch address set as large as an RRset of the table may be. */
struct sib_scratch {
	unsigned n;
	uint32_t ttl;
	uint8_t addr[SIB_RRSET_MAX][16];
};

/* An HTTPS RRset being built or changed: items in canonical order
 * (rds_add() keeps them so), cut when RRs had to be left out. */
struct sib_rdscratch {
	unsigned n;
	uint32_t ttl;
	bool cut;
	size_t len;
	uint8_t b[FLAT_RDATA_MAX];
};

/* --- names --------------------------------------------------------------- */

uint16_t flat_sib_fam_type(enum flat_sib_fam fam)
{
	switch (fam) {
	case FLAT_SIB_AAAA:
		return CODEC_TYPE_AAAA;
	case FLAT_SIB_HTTPS:
		return SIB_TYPE_HTTPS;
	default:
		return CODEC_TYPE_A;
	}
}

/* The family of an RR type the table keeps, or -1. */
static int type_fam(uint16_t type)
{
	switch (type) {
	case CODEC_TYPE_A:
		return FLAT_SIB_A;
	case CODEC_TYPE_AAAA:
		return FLAT_SIB_AAAA;
	case SIB_TYPE_HTTPS:
		return FLAT_SIB_HTTPS;
	default:
		return -1;
	}
}

static size_t fam_width(enum flat_sib_fam fam)
{
	return fam == FLAT_SIB_AAAA ? 16 : 4;
}

/* At or below the apex; name is a valid lowercase wire name. */
static bool name_in_zone(const struct flat_sibzone *z, const uint8_t *name, size_t len)
{
	size_t off = 0;

	while (len - off > z->apex_len)
		off += (size_t)name[off] + 1;
	return len - off == z->apex_len && memcmp(name + off, z->apex, z->apex_len) == 0;
}

static unsigned name_labels(const uint8_t *name, size_t len, uint8_t *at)
{
	unsigned n = 0;
	size_t off = 0;

	while (off < len && name[off] != 0 && n < SIB_MAX_LABELS) {
		at[n++] = (uint8_t)off;
		off += (size_t)name[off] + 1;
	}
	return n;
}

/* RFC 4034 6.1 canonical order of two lowercase wire names: label by
 * label from the root, each compared as octets, a missing label first. */
static int canon_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t la[SIB_MAX_LABELS], lb[SIB_MAX_LABELS];
	unsigned na = name_labels(a, alen, la);
	unsigned nb = name_labels(b, blen, lb);

	while (na > 0 && nb > 0) {
		const uint8_t *x = a + la[--na];
		const uint8_t *y = b + lb[--nb];
		size_t m = x[0] < y[0] ? x[0] : y[0];
		int c = memcmp(x + 1, y + 1, m);

		if (c != 0)
			return c;
		if (x[0] != y[0])
			return x[0] < y[0] ? -1 : 1;
	}
	return na == nb ? 0 : na < nb ? -1 : 1;
}

/* Any total order of names; groups and finds, nothing more. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

/* Position of type in the configured order, or -1 when it is no ANAME type. */
static int type_rank(const struct flat_sibzone *z, uint16_t type)
{
	for (unsigned i = 0; i < z->n_types; i++)
		if (z->types[i] == type)
			return (int)i;
	return -1;
}

/* RFC 1982 3.2: is a before b in serial number arithmetic? */
static bool serial_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(b - a) > 0;
}

/* --- address sets ---------------------------------------------------------- */

static size_t rrset_size(unsigned n)
{
	return sizeof(struct flat_sib_rrset) + (size_t)n * 16;
}

/* What r takes, RDATA or addresses. */
static size_t rrset_bytes(const struct flat_sib_rrset *r)
{
	return r->rd_len > 0 || r->cut ? sizeof(*r) + r->rd_len : rrset_size(r->n);
}

/* Holds RRs of the zone (an RRset apexd might have to delete)? */
static bool rrset_present(const struct flat_sib_rrset *r)
{
	return r != NULL && (r->n > 0 || r->cut);
}

static struct flat_sib_rrset *rrset_new(const uint8_t (*addr)[16], unsigned n, uint32_t ttl)
{
	struct flat_sib_rrset *r = malloc(rrset_size(n));

	if (r == NULL)
		return NULL;
	r->n = (uint8_t)n;
	r->cut = false;
	r->rd_len = 0;
	r->ttl = ttl;
	memcpy(r->addr, addr, (size_t)n * 16);
	return r;
}

static struct flat_sib_rrset *rrset_new_rd(const uint8_t *rd, size_t len, unsigned n, uint32_t ttl,
                                           bool cut)
{
	struct flat_sib_rrset *r = malloc(sizeof(*r) + len);

	if (r == NULL)
		return NULL;
	r->n = (uint8_t)n;
	r->cut = cut;
	r->rd_len = (uint16_t)len;
	r->ttl = ttl;
	memcpy(r->addr, rd, len);
	return r;
}

static struct flat_sib_rrset *rrset_dup(const struct flat_sib_rrset *r)
{
	struct flat_sib_rrset *d = malloc(rrset_bytes(r));

	if (d != NULL)
		memcpy(d, r, rrset_bytes(r));
	return d;
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* Binary search in a sorted address array: the index of a, or of where
 * it would go (then *found is false). */
static unsigned addr_find(const uint8_t (*addr)[16], unsigned n, const uint8_t *a, bool *found)
{
	unsigned lo = 0, hi = n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		int c = memcmp(addr[mid], a, 16);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void scratch_load(struct sib_scratch *sc, const struct flat_sib_rrset *r)
{
	sc->n = r != NULL ? r->n : 0;
	sc->ttl = r != NULL ? r->ttl : 0;
	if (sc->n > 0)
		memcpy(sc->addr, r->addr, (size_t)sc->n * 16);
}

/* a holds 16 bytes, zero after the 4 of an A address. */
static void scratch_add(struct sib_scratch *sc, const uint8_t *a, uint32_t ttl)
{
	bool found;
	unsigned at = addr_find((const uint8_t(*)[16])sc->addr, sc->n, a, &found);

	/* An RRset has one TTL (RFC 2181 5.2): the last RR added sets it. */
	sc->ttl = ttl;
	if (found || sc->n == SIB_RRSET_MAX)
		return;
	memmove(sc->addr[at + 1], sc->addr[at], (size_t)(sc->n - at) * 16);
	memcpy(sc->addr[at], a, 16);
	sc->n++;
}

static void scratch_del(struct sib_scratch *sc, const uint8_t *a)
{
	bool found;
	unsigned at = addr_find((const uint8_t(*)[16])sc->addr, sc->n, a, &found);

	if (!found)
		return;
	memmove(sc->addr[at], sc->addr[at + 1], (size_t)(sc->n - at - 1) * 16);
	sc->n--;
}

/* The scratch set as a table RRset: *out NULL when empty. */
static int scratch_rrset(const struct sib_scratch *sc, struct flat_sib_rrset **out)
{
	*out = NULL;
	if (sc->n == 0)
		return 0;
	*out = rrset_new((const uint8_t(*)[16])sc->addr, sc->n, sc->ttl);
	return *out != NULL ? 0 : -ENOMEM;
}

/* --- RDATA item streams (HTTPS) -------------------------------------------- */

/* The next item of s[0..len) at *off: false at the end and at a malformed
 * item (then *off stays, short of len). */
static bool rd_next(const uint8_t *s, size_t len, size_t *off, const uint8_t **rd, size_t *rdlen)
{
	if (len - *off < 2)
		return false;
	size_t l = codec_get_u16(s + *off);

	if (l < SIB_RD_MIN || l > len - *off - 2)
		return false;
	*rd = s + *off + 2;
	*rdlen = l;
	*off += 2 + l;
	return true;
}

/* Is s[0..len) exactly n well-formed items? */
static bool rd_valid(const uint8_t *s, size_t len, unsigned n)
{
	size_t off = 0, l;
	const uint8_t *rd;
	unsigned k = 0;

	while (rd_next(s, len, &off, &rd, &l))
		k++;
	return off == len && k == n;
}

/* RFC 4034 6.3: RDATA compared as left-justified octet strings, the
 * shorter first when it is the other's prefix. */
static int rd_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen == blen ? 0 : alen < blen ? -1 : 1;
}

static void rds_load(struct sib_rdscratch *sc, const struct flat_sib_rrset *r)
{
	sc->n = r != NULL ? r->n : 0;
	sc->ttl = r != NULL ? r->ttl : 0;
	sc->cut = r != NULL && r->cut;
	sc->len = r != NULL ? r->rd_len : 0;
	if (sc->len > 0)
		memcpy(sc->b, flat_sib_rrset_rd(r), sc->len);
}

/* Adds one RR in its canonical place; rdlen 0 stands for an RR of the
 * zone too large to keep. What does not fit is left out (cut). */
static void rds_add(struct sib_rdscratch *sc, const uint8_t *rd, size_t rdlen, uint32_t ttl)
{
	size_t off = 0, at = 0, l;
	const uint8_t *cur;

	/* An RRset has one TTL (RFC 2181 5.2): the last RR added sets it. */
	sc->ttl = ttl;
	if (rdlen < SIB_RD_MIN || rdlen > SIB_RD_ITEM_MAX) {
		sc->cut = true;
		return;
	}
	while (rd_next(sc->b, sc->len, &off, &cur, &l)) {
		int c = rd_cmp(cur, l, rd, rdlen);

		if (c == 0)
			return;
		if (c > 0)
			break;
		at = off;
	}
	if (sc->n == SIB_RRSET_MAX || sc->len + 2 + rdlen > sizeof(sc->b)) {
		sc->cut = true;
		return;
	}
	memmove(sc->b + at + 2 + rdlen, sc->b + at, sc->len - at);
	codec_put_u16(sc->b + at, (uint16_t)rdlen);
	memcpy(sc->b + at + 2, rd, rdlen);
	sc->len += 2 + rdlen;
	sc->n++;
}

static void rds_del(struct sib_rdscratch *sc, const uint8_t *rd, size_t rdlen)
{
	size_t off = 0, at = 0, l;
	const uint8_t *cur;

	while (rd_next(sc->b, sc->len, &off, &cur, &l)) {
		if (rd_cmp(cur, l, rd, rdlen) == 0) {
			memmove(sc->b + at, sc->b + off, sc->len - off);
			sc->len -= off - at;
			sc->n--;
			return;
		}
		at = off;
	}
}

/* The scratch set as a table RRset: *out NULL when it holds nothing. */
static int rds_rrset(const struct sib_rdscratch *sc, struct flat_sib_rrset **out)
{
	*out = NULL;
	if (sc->n == 0 && !sc->cut)
		return 0;
	*out = rrset_new_rd(sc->b, sc->len, sc->n, sc->ttl, sc->cut);
	return *out != NULL ? 0 : -ENOMEM;
}

/* An HTTPS set in canonical order without duplicates; emptied when its
 * stream is not set->n well-formed items. */
static void rd_set_normalize(struct flat_sib_set *set)
{
	struct sib_rdscratch sc = {0};
	size_t off = 0, l;
	const uint8_t *rd;
	size_t len = set->rd_len <= sizeof(set->rd) ? set->rd_len : 0;

	if (!rd_valid(set->rd, len, set->n)) {
		set->n = 0;
		set->rd_len = 0;
		return;
	}
	while (rd_next(set->rd, len, &off, &rd, &l))
		rds_add(&sc, rd, l, set->ttl);
	memcpy(set->rd, sc.b, sc.len);
	set->n = (uint8_t)sc.n;
	set->rd_len = (uint16_t)sc.len;
}

void flat_sib_set_normalize(struct flat_sib_set *set, enum flat_sib_fam fam)
{
	if (flat_sib_fam_is_rdata(fam)) {
		rd_set_normalize(set);
		return;
	}
	unsigned n = set->n <= FLAT_MAX_ADDRS ? set->n : FLAT_MAX_ADDRS;
	unsigned out = 0;

	set->rd_len = 0;

	/* Zero what an A address does not use, so that whole 16-octet
	 * compares order and match A addresses by their 4 octets. */
	if (fam_width(fam) < 16)
		for (unsigned i = 0; i < n; i++)
			memset(set->addr[i] + 4, 0, 12);
	qsort(set->addr, n, 16, addr_cmp);
	for (unsigned i = 0; i < n; i++)
		if (out == 0 || memcmp(set->addr[out - 1], set->addr[i], 16) != 0)
			memmove(set->addr[out++], set->addr[i], 16);
	set->n = (uint8_t)out;
}

void flat_sib_set_from_result(struct flat_sib_set *set, enum flat_sib_fam fam,
                              const struct flat_result *res, uint32_t ttl)
{
	size_t w = fam_width(fam);

	memset(set, 0, sizeof(*set));
	set->ttl = ttl;
	if (res->kind != FLAT_RES_ADDRS)
		return;
	if (flat_sib_fam_is_rdata(fam)) {
		if (res->qtype != flat_sib_fam_type(fam) || res->rdata_len > sizeof(set->rd))
			return;
		set->n = res->n_addrs;
		set->rd_len = res->rdata_len;
		memcpy(set->rd, res->rdata, res->rdata_len);
		flat_sib_set_normalize(set, fam);
		return;
	}
	set->n = res->n_addrs <= FLAT_MAX_ADDRS ? res->n_addrs : FLAT_MAX_ADDRS;
	for (unsigned i = 0; i < set->n; i++)
		memcpy(set->addr[i], res->addrs[i], w);
	flat_sib_set_normalize(set, fam);
}

static struct flat_sib_rrset *rrset_from_set(const struct flat_sib_set *set, enum flat_sib_fam fam)
{
	struct flat_sib_set s = *set;

	flat_sib_set_normalize(&s, fam);
	if (flat_sib_fam_is_rdata(fam))
		return rrset_new_rd(s.rd, s.rd_len, s.n, s.ttl, false);
	return rrset_new((const uint8_t(*)[16])s.addr, s.n, s.ttl);
}

/* Do r and the normalized set s hold the same RRs? */
static bool rrset_same(const struct flat_sib_rrset *r, const struct flat_sib_set *s,
                       enum flat_sib_fam fam)
{
	size_t w = fam_width(fam);

	if (r->n != s->n)
		return false;
	if (flat_sib_fam_is_rdata(fam))
		return !r->cut && r->rd_len == s->rd_len &&
		       memcmp(flat_sib_rrset_rd(r), s->rd, s->rd_len) == 0;
	for (unsigned i = 0; i < r->n; i++)
		if (memcmp(r->addr[i], s->addr[i], w) != 0)
			return false;
	return true;
}

void flat_sib_set_from_rrset(struct flat_sib_set *set, enum flat_sib_fam fam,
                             const struct flat_sib_rrset *r)
{
	memset(set, 0, sizeof(*set));
	if (r == NULL)
		return;
	set->ttl = r->ttl;
	if (flat_sib_fam_is_rdata(fam)) {
		if (r->rd_len > sizeof(set->rd))
			return;
		set->n = r->n;
		set->rd_len = r->rd_len;
		memcpy(set->rd, flat_sib_rrset_rd(r), r->rd_len);
		return;
	}
	set->n = r->n <= FLAT_MAX_ADDRS ? r->n : FLAT_MAX_ADDRS;
	memcpy(set->addr, r->addr, (size_t)set->n * 16);
}

/* --- packed ANAME RRs -------------------------------------------------- */

struct an_ent {
	uint16_t type;
	uint32_t ttl;
	const uint8_t *name;
	size_t len;
};

static bool an_next(const uint8_t *an, size_t an_len, size_t *off, struct an_ent *e)
{
	if (*off + SIB_AN_HDR > an_len)
		return false;
	e->type = codec_get_u16(an + *off);
	e->ttl = codec_get_u32(an + *off + 2);
	e->len = an[*off + 6];
	e->name = an + *off + SIB_AN_HDR;
	*off += SIB_AN_HDR + e->len;
	return true;
}

static size_t an_put(uint8_t *dst, uint16_t type, uint32_t ttl, const uint8_t *name, size_t len)
{
	codec_put_u16(dst, type);
	codec_put_u32(dst + 2, ttl);
	dst[6] = (uint8_t)len;
	memcpy(dst + SIB_AN_HDR, name, len);
	return SIB_AN_HDR + len;
}

/* Takes the entry (type, name) out of an[0..*an_len) if it is there. */
static void an_del(uint8_t *an, size_t *an_len, uint16_t type, const uint8_t *name, size_t len)
{
	size_t off = 0, at = 0;
	struct an_ent e;

	while (an_next(an, *an_len, &off, &e)) {
		if (e.type == type && e.len == len && memcmp(e.name, name, len) == 0) {
			memmove(an + at, an + off, *an_len - off);
			*an_len -= off - at;
			return;
		}
		at = off;
	}
}

/* The ANAME in charge at an owner: the first type in the configured
 * order, and of its RRs the lowest target in canonical order; the TTL is
 * the RRset's (the lowest, should its RRs disagree). */
static bool an_pick(const struct flat_sibzone *z, const uint8_t *an, size_t an_len,
                    struct an_ent *best, bool *several)
{
	int best_rank = -1;
	unsigned count = 0;
	size_t off = 0;
	struct an_ent e;

	*best = (struct an_ent){0};
	while (an_next(an, an_len, &off, &e)) {
		int rank = type_rank(z, e.type);

		if (rank < 0)
			continue;
		if (best_rank < 0 || rank < best_rank ||
		    (rank == best_rank && canon_cmp(e.name, e.len, best->name, best->len) < 0)) {
			uint32_t ttl = best_rank == rank ? best->ttl : e.ttl;

			*best = e;
			best->ttl = ttl < e.ttl ? ttl : e.ttl;
			best_rank = rank;
		} else if (rank == best_rank && e.ttl < best->ttl) {
			best->ttl = e.ttl;
		}
	}
	if (best_rank < 0)
		return false;
	off = 0;
	while (an_next(an, an_len, &off, &e))
		count += e.type == best->type;
	*several = count > 1;
	return true;
}

/* Sets o's pool to blob (n names; one or none: no pool). True when the
 * targets changed. Out of memory: the first target alone. */
static bool pool_set(struct flat_sib_owner *o, const uint8_t *blob, size_t len, unsigned n)
{
	if (n <= 1) {
		bool changed = o->pool != NULL;
		free(o->pool);
		o->pool = NULL;
		o->pool_len = 0;
		o->n_targets = 1;
		return changed;
	}
	if (o->pool != NULL && o->pool_len == len && memcmp(o->pool, blob, len) == 0)
		return false;
	uint8_t *p = realloc(o->pool, len);
	if (p == NULL) {
		free(o->pool);
		o->pool = NULL;
		o->pool_len = 0;
		o->n_targets = 1;
		return true;
	}
	memcpy(p, blob, len);
	o->pool = p;
	o->pool_len = (uint16_t)len;
	o->n_targets = (uint8_t)n;
	return true;
}

/* The targets of an's ANAMEs of type (best's), in canonical order (best
 * first), at most FLAT_POOL_MAX, into blob; returns how many. */
static unsigned an_pool(const uint8_t *an, size_t an_len, const struct an_ent *best, uint8_t *blob,
                        size_t *blob_len)
{
	const uint8_t *prev = NULL;
	size_t prev_len = 0;
	unsigned n = 0;

	*blob_len = 0;
	/* Selection in canonical order: the next is the least name above
	 * the previous one (at most FLAT_POOL_MAX rounds over a few RRs). */
	while (n < FLAT_POOL_MAX) {
		const uint8_t *next = NULL;
		size_t next_len = 0, off = 0;
		struct an_ent e;
		while (an_next(an, an_len, &off, &e)) {
			if (e.type != best->type)
				continue;
			if (prev != NULL && canon_cmp(e.name, e.len, prev, prev_len) <= 0)
				continue;
			if (next == NULL || canon_cmp(e.name, e.len, next, next_len) < 0) {
				next = e.name;
				next_len = e.len;
			}
		}
		if (next == NULL || *blob_len + next_len > FLAT_POOL_NAMES_MAX)
			break;
		memcpy(blob + *blob_len, next, next_len);
		*blob_len += next_len;
		prev = next;
		prev_len = next_len;
		n++;
	}
	return n;
}

/* --- the table -------------------------------------------------------------- */

static struct sib_node *node_of(struct flat_sib_owner *o)
{
	return (struct sib_node *)o;
}

/* The public fields that follow from [alias] and the zone's ANAME RRs. */
static void node_derive(const struct flat_sibzone *z, struct sib_node *nd)
{
	struct flat_sib_owner *o = &nd->o;
	bool was_gone = o->gone;
	struct an_ent e = {0};
	bool several = false;

	if (o->is_alias) {
		o->aname_type = 0;
		o->aname_ttl = UINT32_MAX;
		o->several = o->n_targets > 1;
		o->gone = false;
	} else if (an_pick(z, nd->an, nd->an_len, &e, &several)) {
		/* A new target is news to the caller: chase it now, not when
		 * the old one's TTL ends. */
		if (!was_gone && o->target_len != 0 &&
		    (o->target_len != e.len || memcmp(o->target, e.name, e.len) != 0))
			o->fresh = true;
		memcpy(o->target, e.name, e.len);
		o->target_len = (uint8_t)e.len;
		o->aname_type = e.type;
		o->aname_ttl = e.ttl;
		uint8_t blob[FLAT_POOL_NAMES_MAX];
		size_t blob_len = 0;
		unsigned n = several ? an_pool(nd->an, nd->an_len, &e, blob, &blob_len) : 1;
		if (pool_set(o, blob, blob_len, n) && !was_gone)
			o->fresh = true;
		o->several = o->n_targets > 1;
		o->gone = false;
	} else {
		/* target and aname_type stay: REMOVE's prerequisite names the
		 * type that went away. */
		o->gone = true;
	}
	/* An owner that comes back is new to the caller, whose state for it
	 * may already be winding down. */
	if (was_gone && !o->gone)
		o->fresh = true;
}

static struct sib_node *node_make(const struct flat_sibzone *z, const uint8_t *lname, size_t len)
{
	struct sib_node *nd = calloc(1, sizeof(*nd));

	if (nd == NULL)
		return NULL;
	memcpy(nd->o.name, lname, len);
	nd->o.len = (uint8_t)len;
	nd->o.fresh = true;
	nd->hash = codec_khash(&z->key, lname, len);
	return nd;
}

static void stage_drop(struct sib_node *nd)
{
	for (int f = 0; f < FLAT_SIB_FAMS; f++) {
		free(nd->st_held[f]);
		nd->st_held[f] = NULL;
	}
	free(nd->st_an);
	nd->st_an = NULL;
	nd->st_an_len = 0;
	nd->staged = false;
}

static void node_free(struct sib_node *nd)
{
	if (nd == NULL)
		return;
	stage_drop(nd);
	for (int f = 0; f < FLAT_SIB_FAMS; f++) {
		free(nd->o.held[f]);
		free(nd->o.mine[f]);
	}
	free(nd->an);
	free(nd->o.pool);
	free(nd);
}

static struct sib_node *lookup(const struct flat_sibzone *z, const uint8_t *lname, size_t len)
{
	if (z->n_bucket == 0)
		return NULL;
	uint64_t h = codec_khash(&z->key, lname, len);

	for (struct sib_node *nd = z->bucket[h & (z->n_bucket - 1)]; nd != NULL; nd = nd->next)
		if (nd->hash == h && nd->o.len == len && memcmp(nd->o.name, lname, len) == 0)
			return nd;
	return NULL;
}

/* Room for more owners in the array and the index, made before any is
 * added so that adding cannot fail. Growing the index rehashes, which no
 * caller can see. */
static int table_reserve(struct flat_sibzone *z, size_t more)
{
	size_t want = z->n + more;

	if (want > z->cap) {
		size_t cap = z->cap > SIB_MIN_SLOTS ? z->cap : SIB_MIN_SLOTS;

		while (cap < want)
			cap *= 2;
		struct sib_node **own = realloc(z->own, cap * sizeof(*own));

		if (own == NULL)
			return -ENOMEM;
		z->own = own;
		z->cap = cap;
	}
	if (want > z->n_bucket) {
		size_t nb = z->n_bucket > SIB_MIN_SLOTS ? z->n_bucket : SIB_MIN_SLOTS;

		while (nb < want)
			nb *= 2;
		struct sib_node **b = calloc(nb, sizeof(*b));

		if (b == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < z->n; i++) {
			struct sib_node *nd = z->own[i];

			nd->next = b[nd->hash & (nb - 1)];
			b[nd->hash & (nb - 1)] = nd;
		}
		free(z->bucket);
		z->bucket = b;
		z->n_bucket = nb;
	}
	return 0;
}

/* After table_reserve(). */
static void table_link(struct flat_sibzone *z, struct sib_node *nd)
{
	struct sib_node **b = &z->bucket[nd->hash & (z->n_bucket - 1)];

	nd->idx = z->n;
	z->own[z->n++] = nd;
	nd->next = *b;
	*b = nd;
}

static bool table_owns(const struct flat_sibzone *z, const struct flat_sib_owner *o)
{
	const struct sib_node *nd = (const struct sib_node *)o;

	return o != NULL && nd->idx < z->n && z->own[nd->idx] == nd;
}

int flat_sibzone_new(struct flat_sibzone **out, const uint8_t *apex, size_t len,
                     const uint16_t *types, unsigned n_types)
{
	struct flat_sibzone *z;

	*out = NULL;
	if (!codec_name_valid(apex, len) || types == NULL || n_types == 0)
		return -EINVAL;
	for (unsigned i = 0; i < n_types; i++)
		if (types[i] == 0 || types[i] == CODEC_TYPE_A || types[i] == CODEC_TYPE_AAAA ||
		    types[i] == CODEC_TYPE_SOA)
			return -EINVAL;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		return -ENOMEM;
	z->types = malloc(n_types * sizeof(*z->types));
	if (z->types == NULL) {
		free(z);
		return -ENOMEM;
	}
	memcpy(z->types, types, n_types * sizeof(*z->types));
	z->n_types = n_types;
	memcpy(z->apex, apex, len);
	z->apex_len = len;
	codec_name_lower(z->apex, len);
	codec_hkey_random(&z->key);
	*out = z;
	return 0;
}

void flat_sibzone_free(struct flat_sibzone *z)
{
	if (z == NULL)
		return;
	for (size_t i = 0; i < z->n; i++)
		node_free(z->own[i]);
	free(z->own);
	free(z->bucket);
	free(z->types);
	free(z);
}

const uint8_t *flat_sibzone_apex(const struct flat_sibzone *z, size_t *len)
{
	*len = z->apex_len;
	return z->apex;
}

const struct flat_sib_soa *flat_sibzone_soa(const struct flat_sibzone *z)
{
	return &z->soa.s;
}

size_t flat_sibzone_count(const struct flat_sibzone *z)
{
	return z->n;
}

struct flat_sib_owner *flat_sibzone_at(struct flat_sibzone *z, size_t i)
{
	return i < z->n ? &z->own[i]->o : NULL;
}

struct flat_sib_owner *flat_sibzone_find(struct flat_sibzone *z, const uint8_t *name, size_t len)
{
	uint8_t lname[CODEC_MAX_NAME];

	if (!codec_name_valid(name, len))
		return NULL;
	memcpy(lname, name, len);
	codec_name_lower(lname, len);
	struct sib_node *nd = lookup(z, lname, len);

	return nd != NULL ? &nd->o : NULL;
}

/* The last owner takes the removed one's place in the array: the order
 * of flat_sibzone_at() changes there, as its comment allows. */
void flat_sibzone_remove(struct flat_sibzone *z, struct flat_sib_owner *o)
{
	if (!table_owns(z, o))
		return;
	struct sib_node *nd = node_of(o);
	struct sib_node **p = &z->bucket[nd->hash & (z->n_bucket - 1)];

	while (*p != nd)
		p = &(*p)->next;
	*p = nd->next;
	z->own[nd->idx] = z->own[z->n - 1];
	z->own[nd->idx]->idx = nd->idx;
	z->n--;
	node_free(nd);
}

size_t flat_sibzone_bytes(const struct flat_sibzone *z)
{
	size_t b = sizeof(*z) + z->n_types * sizeof(*z->types) + z->cap * sizeof(*z->own) +
	           z->n_bucket * sizeof(*z->bucket);

	for (size_t i = 0; i < z->n; i++) {
		const struct sib_node *nd = z->own[i];

		b += sizeof(*nd) + nd->an_len;
		for (int f = 0; f < FLAT_SIB_FAMS; f++) {
			if (nd->o.held[f] != NULL)
				b += rrset_bytes(nd->o.held[f]);
			if (nd->o.mine[f] != NULL)
				b += rrset_bytes(nd->o.mine[f]);
		}
	}
	return b;
}

/* held less the RRs of set (a REMOVE BIND acknowledged), into *out. */
static int held_less(const struct flat_sib_rrset *held, const struct flat_sib_set *set,
                     enum flat_sib_fam f, struct flat_sib_rrset **out)
{
	struct flat_sib_set s = *set;

	flat_sib_set_normalize(&s, f);
	if (flat_sib_fam_is_rdata(f)) {
		struct sib_rdscratch sc;
		size_t off = 0, l;
		const uint8_t *rd;

		rds_load(&sc, held);
		while (rd_next(s.rd, s.rd_len, &off, &rd, &l))
			rds_del(&sc, rd, l);
		return rds_rrset(&sc, out);
	}
	struct sib_scratch sc;

	scratch_load(&sc, held);
	for (unsigned i = 0; i < s.n; i++)
		scratch_del(&sc, s.addr[i]);
	return scratch_rrset(&sc, out);
}

int flat_sibzone_applied(struct flat_sibzone *z, const struct flat_sib_change *ch)
{
	if (z == NULL || ch == NULL || !table_owns(z, ch->o) || (unsigned)ch->fam >= FLAT_SIB_FAMS)
		return -EINVAL;
	struct flat_sib_owner *o = ch->o;
	enum flat_sib_fam f = ch->fam;
	struct flat_sib_rrset *held = NULL, *mine = NULL;

	if (ch->act == FLAT_SIB_REPLACE && ch->set.n > 0) {
		held = rrset_from_set(&ch->set, f);
		mine = rrset_from_set(&ch->set, f);
		if (held == NULL || mine == NULL) {
			free(held);
			free(mine);
			return -ENOMEM;
		}
	} else if (ch->act == FLAT_SIB_REMOVE) {
		if (held_less(o->held[f], &ch->set, f, &held) < 0)
			return -ENOMEM;
		free(o->mine[f]);
		o->mine[f] = NULL;
		free(o->held[f]);
		o->held[f] = held;
		return 0;
	} else if (ch->act != FLAT_SIB_DELETE && ch->act != FLAT_SIB_REPLACE) {
		return -EINVAL;
	}
	free(o->held[f]);
	free(o->mine[f]);
	o->held[f] = held;
	o->mine[f] = mine;
	return 0;
}

int flat_sibzone_confirm(struct flat_sibzone *z, struct flat_sib_owner *o, enum flat_sib_fam fam)
{
	if (z == NULL || !table_owns(z, o) || (unsigned)fam >= FLAT_SIB_FAMS)
		return -EINVAL;
	struct flat_sib_rrset *m = NULL;
	const struct flat_sib_rrset *h = o->held[fam];

	if (h != NULL) {
		m = rrset_dup(h);
		if (m == NULL)
			return -ENOMEM;
	}
	free(o->mine[fam]);
	o->mine[fam] = m;
	return 0;
}

/* One [alias] entry, checked and lowercased. */
struct sib_alias_in {
	uint8_t owner[CODEC_MAX_NAME];
	uint8_t target[CODEC_MAX_NAME]; /* the first */
	size_t owner_len, target_len;
	uint8_t pool[FLAT_POOL_NAMES_MAX]; /* every target, lowercase */
	size_t pool_len;
	unsigned n_targets;
	bool dup;            /* an earlier entry names the same owner: the first wins */
	bool made;           /* nd is new, not in the table yet */
	struct sib_node *nd; /* the owner */
};

static int aliases_read(const struct flat_sibzone *z, const struct flat_sib_alias *a, size_t n,
                        struct sib_alias_in *in)
{
	for (size_t i = 0; i < n; i++) {
		struct sib_alias_in *e = &in[i];

		unsigned nt = a[i].n_targets > 1 ? a[i].n_targets : 1;
		const uint8_t *first;
		size_t off = 0, flen;

		/* The root as target names no host (as flat_aname_parse()). */
		if (!codec_name_valid(a[i].owner, a[i].owner_len) || a[i].target_len == 0 ||
		    a[i].target_len > FLAT_POOL_NAMES_MAX ||
		    flat_pool_count(a[i].target, a[i].target_len) != nt ||
		    !flat_pool_next(a[i].target, a[i].target_len, &off, &first, &flen) || flen == 1)
			return -EINVAL;
		memcpy(e->owner, a[i].owner, a[i].owner_len);
		e->owner_len = a[i].owner_len;
		codec_name_lower(e->owner, e->owner_len);
		memcpy(e->target, first, flen);
		e->target_len = flen;
		codec_name_lower(e->target, e->target_len);
		memcpy(e->pool, a[i].target, a[i].target_len);
		e->pool_len = a[i].target_len;
		codec_name_lower(e->pool, e->pool_len);
		e->n_targets = nt;
		if (!name_in_zone(z, e->owner, e->owner_len))
			return -EINVAL;
		for (size_t j = 0; j < i && !e->dup; j++)
			e->dup = key_cmp(in[j].owner, in[j].owner_len, e->owner, e->owner_len) == 0;
		if (!e->dup)
			e->nd = lookup(z, e->owner, e->owner_len);
	}
	return 0;
}

static void aliases_apply(struct flat_sibzone *z, struct sib_alias_in *in, size_t n)
{
	/* staged is false outside a commit; here it marks "listed". */
	for (size_t i = 0; i < n; i++) {
		struct sib_node *nd = in[i].nd;

		if (in[i].dup)
			continue;
		if (in[i].made)
			table_link(z, nd);
		nd->staged = true;
		nd->o.is_alias = true;
		memcpy(nd->o.target, in[i].target, in[i].target_len);
		nd->o.target_len = (uint8_t)in[i].target_len;
		if (pool_set(&nd->o, in[i].pool, in[i].pool_len, in[i].n_targets))
			nd->o.fresh = true;
	}
	for (size_t i = 0; i < z->n; i++) {
		struct sib_node *nd = z->own[i];

		if (!nd->staged)
			nd->o.is_alias = false;
		nd->staged = false;
		node_derive(z, nd);
	}
}

int flat_sibzone_set_aliases(struct flat_sibzone *z, const struct flat_sib_alias *a, size_t n)
{
	struct sib_alias_in *in = NULL;
	size_t made = 0;
	int rc;

	if (n > 0 && a == NULL)
		return -EINVAL;
	if (n > 0) {
		in = calloc(n, sizeof(*in));
		if (in == NULL)
			return -ENOMEM;
	}
	rc = aliases_read(z, a, n, in);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (in[i].dup || in[i].nd != NULL)
			continue;
		in[i].nd = node_make(z, in[i].owner, in[i].owner_len);
		if (in[i].nd == NULL)
			rc = -ENOMEM;
		in[i].made = in[i].nd != NULL;
		made += in[i].made;
	}
	if (rc == 0)
		rc = table_reserve(z, made);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			if (in[i].made)
				node_free(in[i].nd);
		free(in);
		return rc;
	}
	aliases_apply(z, in, n);
	if (made > 0)
		z->need_axfr = true;
	free(in);
	return 0;
}

/* --- transfers -------------------------------------------------------------- */

enum xfr_phase {
	XP_START,     /* waiting for the first SOA */
	XP_FIRST,     /* IXFR: the first SOA seen; the second RR tells the form */
	XP_AXFR,      /* the zone's RRs until the closing SOA */
	XP_DEL,       /* IXFR step: deletions until the step's new SOA */
	XP_ADD,       /* IXFR step: additions until the next step's old SOA */
	XP_DONE,      /* complete, not committed */
	XP_COMMITTED, /* complete and applied */
	XP_UPTODATE,  /* IXFR: nothing to transfer */
	XP_NEED_AXFR, /* IXFR: abandoned for a full transfer */
	XP_FAILED,    /* an error was returned */
};

/* An RR a transfer keeps: an address or an ANAME, with where it came. */
struct xrec {
	const uint8_t *name; /* lowercase, in the arena */
	const uint8_t
	        *data; /* 16 address octets (an A's zero after 4), HTTPS RDATA, or the target */
	uint32_t ttl;
	uint32_t seq; /* arrival order: IXFR applies its changes in it */
	uint16_t type;
	uint8_t name_len;
	bool add;          /* IXFR: an addition (else a deletion); AXFR: true */
	uint16_t data_len; /* HTTPS: 0 for an RR too large to keep */
};

struct xblk {
	struct xblk *next;
	size_t used;
	uint8_t data[SIB_ARENA_BLOCK];
};

struct flat_sibxfr {
	struct flat_sibzone *z;
	bool ixfr;        /* asked IXFR */
	bool incremental; /* the answer is a diff (else the whole zone) */
	enum xfr_phase phase;
	unsigned rcode;
	size_t records;
	size_t msgs;
	struct sib_soa ours; /* the table's SOA when asked */
	struct sib_soa soa;  /* the answer's first SOA: the zone's new one */
	uint32_t cur_old, cur_new;
	struct xrec *rec;
	size_t n_rec, cap_rec;
	struct xblk *blk;
	const uint8_t *last_name; /* names repeat in runs: stored once per run */
	size_t last_len;
};

int flat_sibxfr_begin(struct flat_sibxfr **out, struct flat_sibzone *z, bool ixfr)
{
	struct flat_sibxfr *x = calloc(1, sizeof(*x));

	*out = NULL;
	if (x == NULL)
		return -ENOMEM;
	x->z = z;
	x->ixfr = ixfr && z->soa.s.known && !z->need_axfr;
	x->ours = z->soa;
	x->phase = XP_START;
	*out = x;
	return 0;
}

bool flat_sibxfr_is_ixfr(const struct flat_sibxfr *x)
{
	return x->ixfr;
}

unsigned flat_sibxfr_rcode(const struct flat_sibxfr *x)
{
	return x->rcode;
}

size_t flat_sibxfr_records(const struct flat_sibxfr *x)
{
	return x->records;
}

void flat_sibxfr_free(struct flat_sibxfr *x)
{
	if (x == NULL)
		return;
	while (x->blk != NULL) {
		struct xblk *b = x->blk;

		x->blk = b->next;
		free(b);
	}
	free(x->rec);
	free(x);
}

static void wr_name_or_root(struct codec_wr *wr, const uint8_t *name, size_t len)
{
	if (len == 0)
		codec_wr_u8(wr, 0);
	else
		codec_wr_bytes(wr, name, len);
}

ssize_t flat_sibxfr_query(const struct flat_sibxfr *x, uint16_t id, uint8_t *out, size_t cap)
{
	const struct flat_sibzone *z = x->z;
	const struct sib_soa *s = &x->ours;
	struct codec_wr wr;

	codec_wr_init(&wr, out, cap);
	codec_wr_u16(&wr, id);
	codec_wr_u16(&wr, 0); /* a plain query: no RD for a transfer */
	codec_wr_u16(&wr, 1);
	codec_wr_u16(&wr, 0);
	codec_wr_u16(&wr, x->ixfr ? 1 : 0);
	codec_wr_u16(&wr, 0);
	codec_wr_bytes(&wr, z->apex, z->apex_len);
	codec_wr_u16(&wr, x->ixfr ? CODEC_TYPE_IXFR : CODEC_TYPE_AXFR);
	codec_wr_u16(&wr, CODEC_CLASS_IN);
	if (x->ixfr) {
		/* RFC 1995 3: the SOA we hold; servers read its serial, and the
		 * names are the last transfer's (the root when none gave them). */
		size_t ml = s->mname_len ? s->mname_len : 1, rl = s->rname_len ? s->rname_len : 1;

		codec_wr_bytes(&wr, z->apex, z->apex_len);
		codec_wr_u16(&wr, CODEC_TYPE_SOA);
		codec_wr_u16(&wr, CODEC_CLASS_IN);
		codec_wr_u32(&wr, s->s.ttl);
		codec_wr_u16(&wr, (uint16_t)(ml + rl + SIB_SOA_FIXED));
		wr_name_or_root(&wr, s->mname, s->mname_len);
		wr_name_or_root(&wr, s->rname, s->rname_len);
		codec_wr_u32(&wr, s->s.serial);
		codec_wr_u32(&wr, s->s.refresh);
		codec_wr_u32(&wr, s->s.retry);
		codec_wr_u32(&wr, s->s.expire);
		codec_wr_u32(&wr, s->s.minimum);
	}
	if (wr.err != 0)
		return -EMSGSIZE;
	return (ssize_t)wr.pos;
}

static uint8_t *arena_put(struct flat_sibxfr *x, const uint8_t *p, size_t n)
{
	struct xblk *b = x->blk;

	if (b == NULL || SIB_ARENA_BLOCK - b->used < n) {
		b = malloc(sizeof(*b));
		if (b == NULL)
			return NULL;
		b->used = 0;
		b->next = x->blk;
		x->blk = b;
	}
	uint8_t *at = b->data + b->used;

	memcpy(at, p, n);
	b->used += n;
	return at;
}

/* Keeps one RR: name lowercase, data as the record will hold it. */
static int xfr_keep(struct flat_sibxfr *x, const uint8_t *name, size_t nlen, uint16_t type,
                    uint32_t ttl, const uint8_t *data, size_t dlen, bool add)
{
	struct xrec *r;

	if (x->n_rec == x->cap_rec) {
		size_t cap = x->cap_rec ? x->cap_rec * 2 : 256;
		struct xrec *nr = realloc(x->rec, cap * sizeof(*nr));

		if (nr == NULL)
			return FLAT_XFR_E_NOMEM;
		x->rec = nr;
		x->cap_rec = cap;
	}
	r = &x->rec[x->n_rec];
	if (x->last_name == NULL || key_cmp(x->last_name, x->last_len, name, nlen) != 0) {
		x->last_name = arena_put(x, name, nlen);
		x->last_len = nlen;
	}
	r->name = x->last_name;
	r->data = arena_put(x, data, dlen);
	if (r->name == NULL || r->data == NULL)
		return FLAT_XFR_E_NOMEM;
	r->name_len = (uint8_t)nlen;
	r->data_len = (uint16_t)dlen;
	r->type = type;
	r->ttl = codec_ttl_sane(ttl);
	r->seq = (uint32_t)x->n_rec;
	r->add = add;
	x->n_rec++;
	return FLAT_XFR_MORE;
}

/* A data RR (not the zone's SOA) of the transfer: A, AAAA, HTTPS and the
 * ANAME types at or below the apex are kept, everything else (RRSIG,
 * NSEC*, DNSKEY, glue outside the zone...) is passed over. */
static int xfr_data(struct flat_sibxfr *x, const uint8_t *msg, size_t len,
                    const struct codec_rr *rr, bool add)
{
	const struct flat_sibzone *z = x->z;
	uint8_t name[CODEC_MAX_NAME], data[CODEC_MAX_NAME] = {0};
	const uint8_t *rd = msg + rr->rdata_off, *keep = data;
	size_t dlen = rr->rdlen;
	bool aname = false;
	int nlen;

	if (rr->rclass != CODEC_CLASS_IN)
		return FLAT_XFR_MORE;
	if (rr->type == SIB_TYPE_HTTPS) {
		/* As the zone has it (RFC 9460 names are never compressed); one
		 * that no chase could give is only marked (flat_sib_rrset.cut). */
		keep = rd;
		if (dlen < SIB_RD_MIN || dlen > SIB_RD_ITEM_MAX)
			dlen = 0;
	} else if (rr->type == CODEC_TYPE_A || rr->type == CODEC_TYPE_AAAA) {
		if (dlen != (rr->type == CODEC_TYPE_A ? 4u : 16u))
			return FLAT_XFR_E_FORMAT;
		memcpy(data, rd, dlen);
		dlen = 16;
	} else if (type_rank(z, rr->type) >= 0) {
		/* As the query path reads it (flat_aname_parse()): one
		 * uncompressed name, not the root; anything else is no ANAME
		 * apexd can follow, so the owner does not count through it. */
		if (!codec_name_valid(rd, dlen) || dlen == 1)
			return FLAT_XFR_MORE;
		memcpy(data, rd, dlen);
		codec_name_lower(data, dlen);
		aname = true;
	} else {
		return FLAT_XFR_MORE;
	}
	nlen = codec_name_unpack(msg, len, rr->owner_off, name);
	if (nlen < 0)
		return FLAT_XFR_E_FORMAT;
	codec_name_lower(name, (size_t)nlen);
	if (!name_in_zone(z, name, (size_t)nlen))
		return FLAT_XFR_MORE;
	/* A diff matters only at owners the table has; an ANAME added
	 * elsewhere makes an owner whose addresses the diff cannot tell. */
	if (x->incremental && lookup(z, name, (size_t)nlen) == NULL)
		return aname && add ? FLAT_XFR_NEED_AXFR : FLAT_XFR_MORE;
	return xfr_keep(x, name, (size_t)nlen, rr->type, rr->ttl, keep, dlen, add);
}

/* Reads an SOA's RDATA (its names maybe compressed) into s. */
static int soa_read(const uint8_t *msg, size_t len, const struct codec_rr *rr, struct sib_soa *s)
{
	size_t lim = (size_t)rr->rdata_off + rr->rdlen, end;
	int n;

	n = codec_name_unpack(msg, len, rr->rdata_off, s->mname);
	if (n < 0 || codec_name_skip(msg, len, rr->rdata_off, &end) < 0 || end > lim)
		return -EBADMSG;
	s->mname_len = (size_t)n;
	n = codec_name_unpack(msg, len, end, s->rname);
	if (n < 0 || codec_name_skip(msg, len, end, &end) < 0 || end > lim)
		return -EBADMSG;
	s->rname_len = (size_t)n;
	if (lim - end != SIB_SOA_FIXED)
		return -EBADMSG;
	s->s.known = true;
	s->s.serial = codec_get_u32(msg + end);
	s->s.refresh = codec_get_u32(msg + end + 4);
	s->s.retry = codec_get_u32(msg + end + 8);
	s->s.expire = codec_get_u32(msg + end + 12);
	s->s.minimum = codec_get_u32(msg + end + 16);
	s->s.ttl = codec_ttl_sane(rr->ttl);
	return 0;
}

/* The first SOA: AXFR goes on to the zone; IXFR learns the new serial. */
static int xfr_first(struct flat_sibxfr *x, const struct sib_soa *soa)
{
	x->soa = *soa;
	if (!x->ixfr) {
		x->phase = XP_AXFR;
		return FLAT_XFR_MORE;
	}
	if (soa->s.serial == x->ours.s.serial) {
		x->phase = XP_UPTODATE;
		return FLAT_XFR_UPTODATE;
	}
	/* Behind us: the zone went back (reloaded, restored); a diff from
	 * our serial cannot exist, a full transfer can set things right. */
	if (serial_lt(soa->s.serial, x->ours.s.serial))
		return FLAT_XFR_E_SERIAL;
	x->phase = XP_FIRST;
	return FLAT_XFR_MORE;
}

/* One RR of the answer section, by the RFC 1995 4 / RFC 5936 2.2 grammar. */
static int xfr_rr(struct flat_sibxfr *x, const uint8_t *msg, size_t len, const struct codec_rr *rr)
{
	struct sib_soa soa;
	bool is_soa = rr->type == CODEC_TYPE_SOA && rr->rclass == CODEC_CLASS_IN &&
	              codec_name_is(msg, len, rr->owner_off, x->z->apex, x->z->apex_len);
	uint32_t sn;

	if (is_soa && soa_read(msg, len, rr, &soa) < 0)
		return FLAT_XFR_E_FORMAT;
	sn = is_soa ? soa.s.serial : 0;
	switch (x->phase) {
	case XP_START:
		return is_soa ? xfr_first(x, &soa) : FLAT_XFR_E_FORMAT;
	case XP_FIRST:
		if (!is_soa) {
			x->phase = XP_AXFR;
			return xfr_data(x, msg, len, rr, true);
		}
		if (sn == x->soa.s.serial) { /* AXFR form of a zone of one SOA */
			x->phase = XP_DONE;
			return FLAT_XFR_DONE;
		}
		if (sn != x->ours.s.serial)
			return FLAT_XFR_E_SERIAL;
		x->incremental = true;
		x->cur_old = sn;
		x->phase = XP_DEL;
		return FLAT_XFR_MORE;
	case XP_AXFR:
		if (!is_soa)
			return xfr_data(x, msg, len, rr, true);
		if (sn != x->soa.s.serial)
			return FLAT_XFR_E_FORMAT;
		x->phase = XP_DONE;
		return FLAT_XFR_DONE;
	case XP_DEL:
		if (!is_soa)
			return xfr_data(x, msg, len, rr, false);
		if (!serial_lt(x->cur_old, sn) || serial_lt(x->soa.s.serial, sn))
			return FLAT_XFR_E_SERIAL;
		x->cur_new = sn;
		x->phase = XP_ADD;
		return FLAT_XFR_MORE;
	case XP_ADD:
		if (!is_soa)
			return xfr_data(x, msg, len, rr, true);
		if (sn == x->soa.s.serial && x->cur_new == sn) {
			x->phase = XP_DONE;
			return FLAT_XFR_DONE;
		}
		if (sn != x->cur_new)
			return FLAT_XFR_E_SERIAL;
		x->cur_old = sn;
		x->phase = XP_DEL;
		return FLAT_XFR_MORE;
	default:
		return FLAT_XFR_E_DONE;
	}
}

/* The header and question of one message of the answer. */
static int xfr_check_msg(struct flat_sibxfr *x, const uint8_t *msg, size_t len,
                         const struct codec_view *v)
{
	const struct flat_sibzone *z = x->z;
	uint16_t qtype = x->ixfr ? CODEC_TYPE_IXFR : CODEC_TYPE_AXFR;

	if (!(v->flags & CODEC_FLAG_QR) || (v->flags & CODEC_FLAG_TC) ||
	    v->opcode != CODEC_OPCODE_QUERY)
		return FLAT_XFR_E_FORMAT;
	x->rcode = v->rcode | (v->has_opt ? (unsigned)v->ext_rcode << 4 : 0);
	if (x->rcode != 0)
		return FLAT_XFR_E_RCODE;
	/* RFC 5936 2.2: the first message repeats the question, later ones
	 * may; whichever does must repeat it right. */
	if (v->qdcount == 0 && x->msgs > 0)
		return 0;
	if (v->qdcount != 1 || v->qtype != qtype || v->qclass != CODEC_CLASS_IN ||
	    !codec_name_is(msg, len, v->qname_off, z->apex, z->apex_len))
		return FLAT_XFR_E_QUESTION;
	if (x->msgs == 0 && v->ancount == 0)
		return FLAT_XFR_E_FORMAT;
	return 0;
}

int flat_sibxfr_feed(struct flat_sibxfr *x, const uint8_t *msg, size_t len)
{
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	int rc;

	if (x->phase >= XP_DONE)
		return FLAT_XFR_E_DONE;
	if (codec_scan(msg, len, &v) < 0) {
		x->phase = XP_FAILED;
		return FLAT_XFR_E_FORMAT;
	}
	rc = xfr_check_msg(x, msg, len, &v);
	codec_rr_iter_init(&it, msg, len, &v, CODEC_SEC_ANSWER);
	while (rc == FLAT_XFR_MORE) {
		int got = codec_rr_next(&it, &rr);

		if (got <= 0) {
			rc = got < 0 ? FLAT_XFR_E_FORMAT : rc;
			break;
		}
		x->records++;
		rc = xfr_rr(x, msg, len, &rr);
		/* The closing SOA ends the answer: RFC 5936 2.2. */
		if (rc == FLAT_XFR_DONE && it.left > 0)
			rc = FLAT_XFR_E_FORMAT;
	}
	x->msgs++;
	if (rc < 0)
		x->phase = XP_FAILED;
	else if (rc == FLAT_XFR_NEED_AXFR)
		x->phase = XP_NEED_AXFR;
	return rc;
}

/* --- commit ------------------------------------------------------------------ */

/* AXFR: by name, then type, then RDATA, so that each owner's RRs form a
 * run in which equal RRs are neighbours and addresses are in order. */
static int cmp_axfr(const void *pa, const void *pb)
{
	const struct xrec *a = pa, *b = pb;
	int c = key_cmp(a->name, a->name_len, b->name, b->name_len);

	if (c != 0)
		return c;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	return key_cmp(a->data, a->data_len, b->data, b->data_len);
}

/* IXFR: by name, then in the order the changes came. */
static int cmp_ixfr(const void *pa, const void *pb)
{
	const struct xrec *a = pa, *b = pb;
	int c = key_cmp(a->name, a->name_len, b->name, b->name_len);

	if (c != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The end of the run of records that share r[lo]'s name. */
static size_t run_end(const struct xrec *r, size_t n, size_t lo)
{
	size_t hi = lo + 1;

	while (hi < n && r[hi].name_len == r[lo].name_len &&
	       memcmp(r[hi].name, r[lo].name, r[lo].name_len) == 0)
		hi++;
	return hi;
}

/* The run of records named name in r[0..n) sorted by name: [*lo, return). */
static size_t run_find(const struct xrec *r, size_t n, const uint8_t *name, size_t len, size_t *lo)
{
	size_t a = 0, b = n;

	while (a < b) {
		size_t mid = a + (b - a) / 2;

		if (key_cmp(r[mid].name, r[mid].name_len, name, len) < 0)
			a = mid + 1;
		else
			b = mid;
	}
	*lo = a;
	if (a == n || key_cmp(r[a].name, r[a].name_len, name, len) != 0)
		return a;
	return run_end(r, n, a);
}

/* Puts the staged state in place; cannot fail. */
static void stage_apply(const struct flat_sibzone *z, struct sib_node *nd)
{
	for (int f = 0; f < FLAT_SIB_FAMS; f++) {
		free(nd->o.held[f]);
		nd->o.held[f] = nd->st_held[f];
		nd->st_held[f] = NULL;
	}
	free(nd->an);
	nd->an = nd->st_an;
	nd->an_len = nd->st_an_len;
	nd->st_an = NULL;
	nd->st_an_len = 0;
	nd->staged = false;
	node_derive(z, nd);
}

/* The HTTPS RRset of an owner's run of an AXFR. */
static int stage_axfr_rd(struct sib_node *nd, const struct xrec *r, size_t n)
{
	struct sib_rdscratch sc = {0};
	uint32_t ttl = UINT32_MAX;

	for (size_t i = 0; i < n; i++) {
		if (r[i].type != SIB_TYPE_HTTPS)
			continue;
		/* The lowest, should the RRs of the set disagree. */
		ttl = r[i].ttl < ttl ? r[i].ttl : ttl;
		rds_add(&sc, r[i].data, r[i].data_len, ttl);
	}
	return rds_rrset(&sc, &nd->st_held[FLAT_SIB_HTTPS]);
}

/* An owner's new state from its run of an AXFR (sorted by cmp_axfr). */
static int stage_axfr(const struct flat_sibzone *z, struct sib_node *nd, const struct xrec *r,
                      size_t n)
{
	struct sib_scratch sc;
	size_t an_bytes = 0;

	nd->staged = true;
	if (stage_axfr_rd(nd, r, n) < 0)
		return -ENOMEM;
	for (int f = 0; f < FLAT_SIB_FAMS; f++) {
		uint16_t t = flat_sib_fam_type((enum flat_sib_fam)f);

		if (flat_sib_fam_is_rdata((enum flat_sib_fam)f))
			continue;
		sc.n = 0;
		sc.ttl = UINT32_MAX;
		for (size_t i = 0; i < n; i++) {
			if (r[i].type != t)
				continue;
			/* The lowest, should the RRs of the set disagree. */
			sc.ttl = r[i].ttl < sc.ttl ? r[i].ttl : sc.ttl;
			if (sc.n < SIB_RRSET_MAX &&
			    (sc.n == 0 || memcmp(sc.addr[sc.n - 1], r[i].data, 16) != 0))
				memcpy(sc.addr[sc.n++], r[i].data, 16);
		}
		if (scratch_rrset(&sc, &nd->st_held[f]) < 0)
			return -ENOMEM;
	}
	for (int pass = 0; pass < 2; pass++) {
		size_t at = 0;

		for (size_t i = 0; i < n; i++) {
			if (type_rank(z, r[i].type) < 0 ||
			    (i > 0 && cmp_axfr(&r[i - 1], &r[i]) == 0))
				continue;
			if (pass == 0)
				an_bytes += SIB_AN_HDR + r[i].data_len;
			else
				at += an_put(nd->st_an + at, r[i].type, r[i].ttl, r[i].data,
				             r[i].data_len);
		}
		if (pass == 1 || an_bytes == 0)
			break;
		nd->st_an = malloc(an_bytes);
		if (nd->st_an == NULL)
			return -ENOMEM;
		nd->st_an_len = an_bytes;
	}
	return 0;
}

/* New owners of an AXFR: names with an ANAME that the table lacks. */
static int axfr_new_owners(struct flat_sibxfr *x, struct sib_node ***nw, size_t *n_nw)
{
	const struct flat_sibzone *z = x->z;
	size_t cap = 0;

	for (size_t lo = 0, hi; lo < x->n_rec; lo = hi) {
		const struct xrec *r = &x->rec[lo];
		bool has_an = false;

		hi = run_end(x->rec, x->n_rec, lo);
		for (size_t i = lo; i < hi && !has_an; i++)
			has_an = type_rank(z, x->rec[i].type) >= 0;
		if (!has_an || lookup(z, r->name, r->name_len) != NULL)
			continue;
		if (*n_nw == cap) {
			cap = cap ? cap * 2 : 64;
			struct sib_node **g = realloc(*nw, cap * sizeof(*g));

			if (g == NULL)
				return -ENOMEM;
			*nw = g;
		}
		struct sib_node *nd = node_make(z, r->name, r->name_len);

		if (nd == NULL)
			return -ENOMEM;
		(*nw)[(*n_nw)++] = nd;
		if (stage_axfr(z, nd, r, hi - lo) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int axfr_commit(struct flat_sibxfr *x)
{
	struct flat_sibzone *z = x->z;
	struct sib_node **nw = NULL;
	size_t n_nw = 0, lo, hi;
	int rc;

	if (x->n_rec > 0)
		qsort(x->rec, x->n_rec, sizeof(*x->rec), cmp_axfr);
	rc = axfr_new_owners(x, &nw, &n_nw);
	/* Every owner gets held[] from the transfer, gone ones too. */
	for (size_t i = 0; rc == 0 && i < z->n; i++) {
		struct sib_node *nd = z->own[i];

		hi = run_find(x->rec, x->n_rec, nd->o.name, nd->o.len, &lo);
		rc = stage_axfr(z, nd, x->rec + lo, hi - lo);
	}
	if (rc == 0)
		rc = table_reserve(z, n_nw);
	if (rc < 0) {
		for (size_t i = 0; i < z->n; i++)
			stage_drop(z->own[i]);
		for (size_t i = 0; i < n_nw; i++)
			node_free(nw[i]);
		free(nw);
		return rc;
	}
	for (size_t i = 0; i < z->n; i++)
		stage_apply(z, z->own[i]);
	for (size_t i = 0; i < n_nw; i++) {
		table_link(z, nw[i]);
		stage_apply(z, nw[i]);
	}
	free(nw);
	return 0;
}

/* An owner's new state: its state now with one run of an IXFR's changes
 * (sorted by cmp_ixfr) applied in order. */
static int stage_ixfr(const struct flat_sibzone *z, struct sib_node *nd, const struct xrec *r,
                      size_t n)
{
	struct sib_scratch sc[2];
	struct sib_rdscratch rs;
	size_t cap = nd->an_len, an_len = nd->an_len;

	nd->staged = true;
	scratch_load(&sc[FLAT_SIB_A], nd->o.held[FLAT_SIB_A]);
	scratch_load(&sc[FLAT_SIB_AAAA], nd->o.held[FLAT_SIB_AAAA]);
	rds_load(&rs, nd->o.held[FLAT_SIB_HTTPS]);
	for (size_t i = 0; i < n; i++)
		if (r[i].add && type_rank(z, r[i].type) >= 0)
			cap += SIB_AN_HDR + r[i].data_len;
	if (cap > 0) {
		nd->st_an = malloc(cap);
		if (nd->st_an == NULL)
			return -ENOMEM;
		if (an_len > 0)
			memcpy(nd->st_an, nd->an, an_len);
	}
	for (size_t i = 0; i < n; i++) {
		int f = type_fam(r[i].type);

		if (f == FLAT_SIB_HTTPS) {
			/* Deleting an RR too large to keep cannot uncut the set:
			 * the next AXFR does (or the next write). */
			if (r[i].add)
				rds_add(&rs, r[i].data, r[i].data_len, r[i].ttl);
			else
				rds_del(&rs, r[i].data, r[i].data_len);
		} else if (f >= 0) {
			if (r[i].add)
				scratch_add(&sc[f], r[i].data, r[i].ttl);
			else
				scratch_del(&sc[f], r[i].data);
		} else {
			an_del(nd->st_an, &an_len, r[i].type, r[i].data, r[i].data_len);
			if (r[i].add)
				an_len += an_put(nd->st_an + an_len, r[i].type, r[i].ttl, r[i].data,
				                 r[i].data_len);
		}
	}
	nd->st_an_len = an_len;
	if (scratch_rrset(&sc[FLAT_SIB_A], &nd->st_held[FLAT_SIB_A]) < 0 ||
	    scratch_rrset(&sc[FLAT_SIB_AAAA], &nd->st_held[FLAT_SIB_AAAA]) < 0 ||
	    rds_rrset(&rs, &nd->st_held[FLAT_SIB_HTTPS]) < 0)
		return -ENOMEM;
	return 0;
}

static int ixfr_commit(struct flat_sibxfr *x)
{
	struct flat_sibzone *z = x->z;
	int rc = 0;

	if (x->n_rec > 0)
		qsort(x->rec, x->n_rec, sizeof(*x->rec), cmp_ixfr);
	for (size_t lo = 0, hi; rc == 0 && lo < x->n_rec; lo = hi) {
		const struct xrec *r = &x->rec[lo];
		/* Gone from the table since the RR came (removed): nothing to do. */
		struct sib_node *nd = lookup(z, r->name, r->name_len);

		hi = run_end(x->rec, x->n_rec, lo);
		if (nd != NULL)
			rc = stage_ixfr(z, nd, r, hi - lo);
	}
	for (size_t i = 0; i < z->n; i++) {
		struct sib_node *nd = z->own[i];

		if (!nd->staged)
			continue;
		if (rc < 0)
			stage_drop(nd);
		else
			stage_apply(z, nd);
	}
	return rc;
}

int flat_sibxfr_commit(struct flat_sibxfr *x)
{
	struct flat_sibzone *z = x->z;
	int rc;

	if (x->phase == XP_UPTODATE)
		return 0;
	if (x->phase != XP_DONE)
		return -EINVAL;
	/* A diff applies to the state it was taken against. */
	if (x->incremental && (!z->soa.s.known || z->soa.s.serial != x->ours.s.serial))
		return -EINVAL;
	rc = x->incremental ? ixfr_commit(x) : axfr_commit(x);
	if (rc < 0)
		return rc;
	z->soa = x->soa;
	if (!x->incremental)
		z->need_axfr = false;
	x->phase = XP_COMMITTED;
	return 0;
}

/* --- plan and UPDATE ---------------------------------------------------------- */

enum flat_sib_action flat_sib_plan(const struct flat_sib_owner *o, enum flat_sib_fam fam,
                                   const struct flat_result *res, uint32_t ttl_cap)
{
	const struct flat_sib_rrset *h;
	struct flat_sib_set s;

	if (o == NULL || res == NULL || (unsigned)fam >= FLAT_SIB_FAMS)
		return FLAT_SIB_HOLD;
	h = o->held[fam];
	switch (res->kind) {
	case FLAT_RES_NODATA:
	case FLAT_RES_NXDOMAIN:
		return rrset_present(h) ? FLAT_SIB_DELETE : FLAT_SIB_KEEP;
	case FLAT_RES_ADDRS:
		break;
	default:
		return FLAT_SIB_HOLD;
	}
	/* Addresses of the other family, or none at all, say nothing
	 * about this one: leave the zone alone. */
	if (res->qtype != flat_sib_fam_type(fam) || res->n_addrs == 0)
		return FLAT_SIB_HOLD;
	flat_sib_set_from_result(&s, fam, res, 0);
	/* RDATA the zone could not take as it is: leave the zone alone. */
	if (s.n == 0)
		return FLAT_SIB_HOLD;
	if (h == NULL || !rrset_same(h, &s, fam) || h->ttl > ttl_cap)
		return FLAT_SIB_REPLACE;
	return FLAT_SIB_KEEP;
}

/* The prerequisite a change needs: 1 "exists", -1 "absent", 0 none. */
static int change_prereq(const struct flat_sib_change *c)
{
	if (c->o->aname_type == 0 || c->o->is_alias)
		return 0;
	if (c->act != FLAT_SIB_REMOVE)
		return 1;
	/* The ANAME must stay gone while its siblings go: one that came
	 * back meanwhile keeps them. */
	return c->o->gone ? -1 : 0;
}

/* Was the same prerequisite written for an earlier change of the batch
 * (the other family of the same owner)? */
static bool prereq_seen(const struct flat_sib_change *ch, size_t i)
{
	int p = change_prereq(&ch[i]);

	for (size_t j = 0; j < i; j++)
		if (ch[j].o == ch[i].o && change_prereq(&ch[j]) == p)
			return true;
	return false;
}

static bool change_valid(const struct flat_sibzone *z, const struct flat_sib_change *c)
{
	if (!table_owns(z, c->o) || (unsigned)c->fam >= FLAT_SIB_FAMS ||
	    (c->set.n > FLAT_MAX_ADDRS && !flat_sib_fam_is_rdata(c->fam)))
		return false;
	switch (c->act) {
	case FLAT_SIB_REPLACE:
	case FLAT_SIB_REMOVE:
		if (flat_sib_fam_is_rdata(c->fam))
			return c->set.n > 0 && c->set.rd_len <= sizeof(c->set.rd) &&
			       rd_valid(c->set.rd, c->set.rd_len, c->set.n);
		return c->set.n > 0;
	case FLAT_SIB_DELETE:
		return true;
	default:
		return false;
	}
}

/* Octets change i adds to the message: names go uncompressed, so the
 * size is exact. */
static size_t change_bytes(const struct flat_sib_change *ch, size_t i)
{
	const struct flat_sib_change *c = &ch[i];
	size_t rr = c->o->len + SIB_RR_FIXED, w = fam_width(c->fam);
	size_t b = change_prereq(c) != 0 && !prereq_seen(ch, i) ? rr : 0;

	/* RDATA: each item's 2-octet length becomes the RR's RDLENGTH. */
	if (flat_sib_fam_is_rdata(c->fam) && c->act != FLAT_SIB_DELETE) {
		size_t rrs = c->set.n * (rr - 2) + c->set.rd_len;

		return b + rrs + (c->act == FLAT_SIB_REPLACE ? rr : 0);
	}
	switch (c->act) {
	case FLAT_SIB_REPLACE:
		return b + rr + c->set.n * (rr + w);
	case FLAT_SIB_DELETE:
		return b + rr;
	default:
		return b + c->set.n * (rr + w);
	}
}

/* One RR of an HTTPS change: add (REPLACE) or delete (REMOVE) it. */
static void change_write_rd(struct codec_upd *u, const struct flat_sib_change *c)
{
	const struct flat_sib_owner *o = c->o;
	uint16_t type = flat_sib_fam_type(c->fam);
	size_t off = 0, l;
	const uint8_t *rd;

	while (rd_next(c->set.rd, c->set.rd_len, &off, &rd, &l)) {
		if (c->act == FLAT_SIB_REPLACE)
			codec_upd_add_rr(u, o->name, o->len, type, c->set.ttl, rd, (uint16_t)l);
		else
			codec_upd_delete_rr(u, o->name, o->len, type, rd, (uint16_t)l);
	}
}

static void change_write(struct codec_upd *u, const struct flat_sib_change *c)
{
	const struct flat_sib_owner *o = c->o;
	uint16_t type = flat_sib_fam_type(c->fam);
	uint16_t w = (uint16_t)fam_width(c->fam);

	if (c->act != FLAT_SIB_REMOVE)
		codec_upd_delete_rrset(u, o->name, o->len, type);
	if (flat_sib_fam_is_rdata(c->fam)) {
		if (c->act != FLAT_SIB_DELETE)
			change_write_rd(u, c);
		return;
	}
	for (unsigned i = 0; c->act != FLAT_SIB_DELETE && i < c->set.n; i++) {
		if (c->act == FLAT_SIB_REPLACE)
			codec_upd_add_rr(u, o->name, o->len, type, c->set.ttl, c->set.addr[i], w);
		else
			codec_upd_delete_rr(u, o->name, o->len, type, c->set.addr[i], w);
	}
}

ssize_t flat_sib_update_build(const struct flat_sibzone *z, const struct flat_sib_change *ch,
                              size_t n, uint16_t id, uint8_t *out, size_t cap, size_t reserve,
                              size_t *taken)
{
	struct codec_upd u;
	size_t total, k;

	if (taken != NULL)
		*taken = 0;
	if (z == NULL || ch == NULL || n == 0 || out == NULL || taken == NULL)
		return -EINVAL;
	total = CODEC_HDR_LEN + z->apex_len + SIB_Q_FIXED;
	if (reserve > cap)
		return -EMSGSIZE;
	/* Every prerequisite goes before the first update (RFC 2136 2), so
	 * first find how many changes fit, then write. */
	for (k = 0; k < n; k++) {
		if (!change_valid(z, &ch[k]))
			return -EINVAL;
		size_t b = change_bytes(ch, k);

		if (total + b > cap - reserve)
			break;
		total += b;
	}
	if (k == 0)
		return -EMSGSIZE;
	codec_upd_begin(&u, out, cap - reserve, id, z->apex, z->apex_len);
	for (size_t i = 0; i < k; i++) {
		int p = change_prereq(&ch[i]);

		if (p == 0 || prereq_seen(ch, i))
			continue;
		if (p > 0)
			codec_upd_prereq_exists(&u, ch[i].o->name, ch[i].o->len,
			                        ch[i].o->aname_type);
		else
			codec_upd_prereq_absent(&u, ch[i].o->name, ch[i].o->len,
			                        ch[i].o->aname_type);
	}
	for (size_t i = 0; i < k; i++)
		change_write(&u, &ch[i]);
	ssize_t len = codec_upd_end(&u);

	if (len >= 0)
		*taken = k;
	return len;
}
