/* proxy/engine/anscache.c - BIND's answers kept by TTL ([cache] answers = yes).
 *
 * One cache per worker: no lock and no shared cache line on the query
 * path, at the price of each worker filling its own (the kernel keeps a
 * client on one worker, so popular names warm every cache quickly).
 *
 * Key: the question name in lowercase wire form, type, class, and the
 * bits that change BIND's answer: DO, CD, EDNS present or not. Only plain
 * questions are kept: opcode QUERY, one question, no EDNS option but a
 * DNS cookie (a client subnet, say, would make the answer the client's
 * own), no TSIG, not a transfer, and in a flattened zone only an answer
 * flattening decided not to touch (see px_anscache_offer).
 *
 * Cookies (RFC 7873): resolvers such as BIND send one with every query,
 * so without them the cache would never serve a resolver. BIND's cookie
 * is cut out of a stored answer; a query that presents a client and a
 * server cookie gets that pair back in the served copy (as flattened
 * answers do, see flatten/rewrite.c). A query with a client cookie alone
 * goes to BIND, which gives the client its first server cookie. Only complete answers (NOERROR or
 * NXDOMAIN, TC=0, no TSIG) with a TTL above 0 are stored, for their smallest TTL.
 *
 * Serving copies the answer, puts in the client's ID, RD bit and the
 * question name as the client spelled it, and lowers every TTL by the
 * entry's age (each is at least the smallest, so none goes below 0). An
 * answer larger than the client's UDP size is not served from here: BIND
 * is asked and truncates it as it must.
 *
 * Patching the kept answer is only safe while no name is read through
 * the octets patched: a compression pointer may point at any earlier
 * octet, a TTL's or the header's included. BIND never does that, but an
 * answer where a name (an owner, or one in the RDATA of a type whose
 * names are decompressed) reads a TTL, the ID or the RD bit's octet would
 * change its names, or stop parsing, as it is served; such an answer is
 * relayed but not kept.
 *
 * A NOTIFY from the backend bumps a generation number shared by all
 * workers; entries of an older generation are misses.
 *
 * The names are the clients' to choose, and BIND's NXDOMAIN for each is
 * kept: with an unkeyed hash a client could pick names that share one
 * bucket and make every lookup there walk them all. The key is hashed
 * with SipHash-1-3 under a random key of each cache (codec/khash.h), the
 * table doubles when entries outnumber buckets, and a chain never grows
 * past CHAIN_MAX (the oldest entry of a full chain makes room), so even a
 * leaked key buys a lookup of CHAIN_MAX entries at most.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec/khash.h"
#include "codec/name.h"
#include "codec/rr.h"
#include "codec/ttl.h"
#include "proxy/engine/anscache.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"
#include "proxy/daemon/server.h"

#define KEY_MAX (CODEC_MAX_NAME + 5)
/* RRs whose TTL is patched on the way out; answers with more are not kept. */
#define TTL_OFFS_MAX 128
#define BUCKETS_MIN 1024
#define BUCKETS_MAX ((size_t)1 << 24)
/* Longest chain kept: with a random key and at most one entry per
 * bucket on average, a chain this long is a one-in-a-billion event. */
#define CHAIN_MAX 8
/* OPTION-CODE and OPTION-LENGTH. */
#define OPT_HDR_LEN 4

struct entry {
	struct entry *hnext;
	struct entry *prev, *next; /* LRU, most recent first */
	uint64_t stored_ms, expire_ms;
	uint32_t gen;
	uint32_t hash;
	uint16_t key_len, resp_len, n_ttl;
	uint16_t opt_rdlen_off; /* the answer's OPT RDLENGTH (OPT last, no options); 0: none */
	size_t bytes;
	uint8_t data[]; /* key, then the answer, then n_ttl uint16 offsets */
};

struct px_anscache {
	struct entry **buckets;
	size_t mask;
	struct codec_hkey key;
	struct entry *lru_head, *lru_tail;
	size_t bytes, max_bytes;
	size_t entries;
};

/* The bucket index takes at most 24 bits; 32 are kept to compare. */
static uint32_t hash_key(const struct px_anscache *c, const uint8_t *k, size_t n)
{
	return (uint32_t)codec_khash(&c->key, k, n);
}

/* The query's EDNS options: 0 none, 1 exactly one COOKIE with a server
 * cookie (its data at *off, *len octets), -1 anything else. */
static int query_options(const uint8_t *q, const struct codec_view *v, size_t *off, uint16_t *len)
{
	if (!v->has_opt || v->opt_rdlen == 0)
		return 0;
	if (!codec_cookie_pair(q, v, off, len) || v->opt_rdlen != OPT_HDR_LEN + *len)
		return -1;
	return 1;
}

/* Builds the key of a query; 0 when the query is not one we keep. */
static size_t make_key(const uint8_t *q, const struct codec_view *v, uint8_t *key)
{
	size_t coff;
	uint16_t clen;

	if (v->opcode != CODEC_OPCODE_QUERY || v->qdcount != 1 || v->has_tsig ||
	    v->qtype == CODEC_TYPE_AXFR || v->qtype == CODEC_TYPE_IXFR ||
	    query_options(q, v, &coff, &clen) < 0 || v->ancount != 0 || v->nscount != 0)
		return 0;
	size_t n = v->qname_len;
	memcpy(key, q + v->qname_off, n);
	codec_name_lower(key, n);
	codec_put_u16(key + n, v->qtype);
	codec_put_u16(key + n + 2, v->qclass);
	key[n + 4] = (uint8_t)((v->do_bit ? 1 : 0) | ((v->flags & CODEC_FLAG_CD) ? 2 : 0) |
	                       (v->has_opt ? 4 : 0));
	return n + 5;
}

int px_anscache_new(struct px_anscache **out, size_t max_bytes)
{
	struct px_anscache *c = calloc(1, sizeof(*c));
	size_t nb = BUCKETS_MIN;

	if (c == NULL)
		return -ENOMEM;
	/* About one bucket per 256 bytes of budget: short chains. */
	while (nb < max_bytes / 256 && nb < BUCKETS_MAX)
		nb *= 2;
	c->buckets = calloc(nb, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return -ENOMEM;
	}
	c->mask = nb - 1;
	c->max_bytes = max_bytes;
	codec_hkey_random(&c->key);
	*out = c;
	return 0;
}

static void lru_unlink(struct px_anscache *c, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct px_anscache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head != NULL)
		c->lru_head->prev = e;
	else
		c->lru_tail = e;
	c->lru_head = e;
}

static void entry_remove(struct px_anscache *c, struct entry *e)
{
	for (struct entry **pp = &c->buckets[e->hash & c->mask]; *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			break;
		}
	}
	lru_unlink(c, e);
	c->bytes -= e->bytes;
	c->entries--;
	free(e);
}

void px_anscache_free(struct px_anscache *c)
{
	if (c == NULL)
		return;
	while (c->lru_head != NULL)
		entry_remove(c, c->lru_head);
	free(c->buckets);
	free(c);
}

size_t px_anscache_drop_name(struct px_anscache *c, const uint8_t *name, size_t len)
{
	uint8_t low[CODEC_MAX_NAME];
	size_t dropped = 0;

	if (c == NULL || len == 0 || len > CODEC_MAX_NAME)
		return 0;
	memcpy(low, name, len);
	codec_name_lower(low, len);
	/* The key is the lowercase name then 5 bytes of type, class, flags. */
	for (struct entry *e = c->lru_head, *next; e != NULL; e = next) {
		next = e->next;
		if (e->key_len == len + 5 && memcmp(e->data, low, len) == 0) {
			entry_remove(c, e);
			dropped++;
		}
	}
	return dropped;
}

size_t px_anscache_longest_chain(const struct px_anscache *c)
{
	size_t longest = 0;

	for (size_t b = 0; b <= c->mask; b++) {
		size_t n = 0;
		for (const struct entry *e = c->buckets[b]; e != NULL; e = e->hnext)
			n++;
		if (n > longest)
			longest = n;
	}
	return longest;
}

static struct entry *find(struct px_anscache *c, const uint8_t *key, size_t klen, uint32_t h)
{
	for (struct entry *e = c->buckets[h & c->mask]; e != NULL; e = e->hnext)
		if (e->hash == h && e->key_len == klen && memcmp(e->data, key, klen) == 0)
			return e;
	return NULL;
}

ssize_t px_anscache_get(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                        uint64_t now_ms, uint32_t gen, size_t max_size, uint8_t *out)
{
	uint8_t key[KEY_MAX];
	size_t klen = make_key(q, v, key);

	if (klen == 0)
		return -ENOENT;
	uint32_t h = hash_key(c, key, klen);
	struct entry *e = find(c, key, klen, h);
	if (e == NULL)
		return -ENOENT;
	if (e->gen != gen || e->expire_ms <= now_ms) {
		entry_remove(c, e);
		return -ENOENT;
	}
	size_t coff = 0;
	uint16_t clen = 0;
	size_t cookie = 0;
	if (query_options(q, v, &coff, &clen) == 1 && e->opt_rdlen_off != 0)
		cookie = OPT_HDR_LEN + (size_t)clen;
	if (e->resp_len + cookie > max_size)
		return -EMSGSIZE;
	if (c->lru_head != e) {
		lru_unlink(c, e);
		lru_push(c, e);
	}
	const uint8_t *resp = e->data + e->key_len;
	memcpy(out, resp, e->resp_len);
	if (cookie > 0) {
		/* The OPT is the last RR and has no options: the client's
		 * pair goes at the end, inside it. */
		uint8_t *o = out + e->resp_len;
		codec_put_u16(o, CODEC_EDNS_OPT_COOKIE);
		codec_put_u16(o + 2, clen);
		memcpy(o + OPT_HDR_LEN, q + coff, clen);
		codec_put_u16(out + e->opt_rdlen_off, (uint16_t)cookie);
	}
	/* The client's ID, RD bit and spelling of the name. */
	out[0] = q[0];
	out[1] = q[1];
	out[2] = (uint8_t)((out[2] & ~0x01) | (q[2] & 0x01));
	memcpy(out + CODEC_HDR_LEN, q + v->qname_off, v->qname_len);
	uint32_t age = (uint32_t)((now_ms - e->stored_ms) / 1000);
	if (age > 0) {
		const uint8_t *offs = e->data + e->key_len + e->resp_len;
		for (unsigned i = 0; i < e->n_ttl; i++) {
			uint16_t off;
			memcpy(&off, offs + 2 * i, 2);
			codec_put_u32(out + off, codec_get_u32(out + off) - age);
		}
	}
	return (ssize_t)(e->resp_len + cookie);
}

/* Is any octet of [a, b) inside a TTL field? offs: the TTL offsets, in
 * ascending order (RRs come in message order). */
static bool hits_ttl(const uint16_t *offs, unsigned n, size_t a, size_t b)
{
	unsigned lo = 0, hi = n;

	/* The first TTL field that ends after a. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if ((size_t)offs[mid] + 4 <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && offs[lo] < b;
}

/* Does reading the name at off, pointers followed, touch an octet that
 * serving patches: the header (no name lives there) or a TTL? A name
 * that cannot be read at all counts as touching one. */
static bool name_hits_patched(const uint8_t *msg, size_t len, size_t off, const uint16_t *offs,
                              unsigned n)
{
	unsigned hops = 0;

	for (;;) {
		if (off < CODEC_HDR_LEN || off >= len)
			return true;
		uint8_t c = msg[off];
		if ((c & 0xc0) == 0xc0) {
			if (off + 2 > len || hits_ttl(offs, n, off, off + 2) ||
			    ++hops > CODEC_MAX_PTR_HOPS)
				return true;
			off = (size_t)(c & 0x3f) << 8 | msg[off + 1];
			continue;
		}
		if ((c & 0xc0) != 0 || off + 1 + c > len || hits_ttl(offs, n, off, off + 1 + c))
			return true;
		if (c == 0)
			return false;
		off += 1 + (size_t)c;
	}
}

/* End of the name at off as it lies in the message (after its root label
 * or its first pointer); 0 if it runs past end. */
static size_t name_end_in_place(const uint8_t *msg, size_t end, size_t off)
{
	while (off < end) {
		uint8_t c = msg[off];
		if ((c & 0xc0) == 0xc0)
			return off + 2 <= end ? off + 2 : 0;
		if ((c & 0xc0) != 0)
			return 0;
		off += 1 + (size_t)c;
		if (c == 0)
			return off <= end ? off : 0;
	}
	return 0;
}

/* Do the names of rr, its owner's and those in its RDATA that readers
 * decompress (RFC 3597 4 for RFC 1035's types; SRV, DNAME, AFSDB, RT,
 * KX and RP, whose readers decompress too), stay clear of what serving
 * patches? */
static bool rr_names_clear(const uint8_t *msg, size_t len, const struct codec_rr *rr,
                           const uint16_t *offs, unsigned n)
{
	size_t rd = rr->rdata_off, rd_end = (size_t)rr->rdata_off + rr->rdlen;
	unsigned names = 1;

	if (name_hits_patched(msg, len, rr->owner_off, offs, n))
		return false;
	switch (rr->type) {
	case CODEC_TYPE_NS:
	case 3: /* MD */
	case 4: /* MF */
	case CODEC_TYPE_CNAME:
	case 7: /* MB */
	case 8: /* MG */
	case 9: /* MR */
	case CODEC_TYPE_PTR:
	case 39: /* DNAME */
		break;
	case CODEC_TYPE_SOA:
	case 14: /* MINFO */
	case 17: /* RP */
		names = 2;
		break;
	case CODEC_TYPE_MX:
	case 18:         /* AFSDB */
	case 21:         /* RT */
	case 36:         /* KX */
		rd += 2; /* after a 16-bit preference */
		break;
	case 33:         /* SRV */
		rd += 6; /* after priority, weight and port */
		break;
	default:
		return true;
	}
	for (unsigned i = 0; i < names; i++) {
		if (rd >= rd_end || name_hits_patched(msg, len, rd, offs, n))
			return false;
		rd = name_end_in_place(msg, rd_end, rd);
		if (rd == 0)
			return false;
	}
	return true;
}

/* A complete answer to this very question, one that may be kept. */
static bool answer_keepable(const uint8_t *q, const struct codec_view *v, const uint8_t *resp,
                            size_t rlen, struct codec_view *rv)
{
	if (rlen < CODEC_HDR_LEN || codec_hdr_tc(resp))
		return false;
	unsigned rcode = codec_hdr_rcode(resp);
	if (rcode != CODEC_RCODE_NOERROR && rcode != CODEC_RCODE_NXDOMAIN)
		return false;
	if (codec_scan(resp, rlen, rv) < 0 || rv->has_tsig || rv->qdcount != 1 ||
	    rv->qname_len != v->qname_len || rv->ext_rcode != 0)
		return false;
	/* The answer to this very question: serving puts the client's
	 * spelling of the name in its place, which must change nothing but
	 * the case of letters (the caller matched it; checked here too). */
	return rv->qtype == v->qtype && rv->qclass == v->qclass &&
	       codec_name_equal(resp, rlen, rv->qname_off, q, v->end, v->qname_off) == 1;
}

/* Records where each TTL is, for serving; returns the smallest, the
 * answer's life in seconds: 0 when it may not be kept (no RR says how
 * long, a TTL of 0, or more RRs than offs holds). */
static uint32_t collect_ttls(const uint8_t *resp, size_t rlen, const struct codec_view *rv,
                             uint16_t offs[TTL_OFFS_MAX], unsigned *n_ttl)
{
	uint32_t min_ttl;

	for (int sec = CODEC_SEC_ANSWER; sec <= CODEC_SEC_ADDITIONAL; sec++) {
		struct codec_rr_iter it;
		struct codec_rr rr;
		codec_rr_iter_init(&it, resp, rlen, rv, (enum codec_section)sec);
		while (codec_rr_next(&it, &rr) == 1) {
			if (rr.type == CODEC_TYPE_OPT)
				continue;
			if (*n_ttl == TTL_OFFS_MAX)
				return 0;
			offs[(*n_ttl)++] = rr.ttl_off;
		}
	}
	if (codec_min_ttl(resp, rlen, rv, CODEC_SEC_ADDITIONAL, &min_ttl) < 0)
		return 0;
	return min_ttl;
}

/* Do the answer's names survive being served (see the top)? */
static bool names_survive(const uint8_t *resp, size_t rlen, const struct codec_view *rv,
                          const uint16_t *offs, unsigned n_ttl)
{
	if (name_hits_patched(resp, rlen, rv->qname_off, offs, n_ttl))
		return false;
	for (int sec = CODEC_SEC_ANSWER; sec <= CODEC_SEC_ADDITIONAL; sec++) {
		struct codec_rr_iter it;
		struct codec_rr rr;
		codec_rr_iter_init(&it, resp, rlen, rv, (enum codec_section)sec);
		while (codec_rr_next(&it, &rr) == 1)
			if (rr.type != CODEC_TYPE_OPT &&
			    !rr_names_clear(resp, rlen, &rr, offs, n_ttl))
				return false;
	}
	return true;
}

/* What of an answer is kept: BIND's cookie is the asking client's and is
 * cut out, so what is kept has an OPT without options as its last RR,
 * or no OPT. */
struct kept {
	size_t cut_off, cut_len; /* the cookie option; cut_len 0: none */
	uint16_t opt_rdlen_off;  /* 0: no OPT */
	uint32_t min_ttl;
	unsigned n_ttl;
	uint16_t offs[TTL_OFFS_MAX];
};

/* false when the OPT holds anything but a cookie. */
static bool cookie_cut(const uint8_t *resp, size_t rlen, const struct codec_view *rv,
                       struct kept *k)
{
	size_t coff;
	uint16_t clen;

	if (!rv->has_opt)
		return true;
	if ((size_t)rv->opt_rdata_off + rv->opt_rdlen != rlen)
		return false;
	if (codec_edns_option(resp, rv, CODEC_EDNS_OPT_COOKIE, &coff, &clen)) {
		k->cut_off = coff - OPT_HDR_LEN;
		k->cut_len = OPT_HDR_LEN + (size_t)clen;
	}
	if (rv->opt_rdlen != k->cut_len)
		return false;
	k->opt_rdlen_off = (uint16_t)(rv->opt_rdata_off - 2);
	return true;
}

/* Twice the buckets once entries outnumber them; at the limit, or
 * without the memory, chains just get longer (up to CHAIN_MAX). */
static void maybe_grow(struct px_anscache *c)
{
	size_t nb = c->mask + 1;

	if (c->entries <= nb || nb >= BUCKETS_MAX)
		return;
	struct entry **nbk = calloc(2 * nb, sizeof(*nbk));
	if (nbk == NULL)
		return;
	size_t mask = 2 * nb - 1;
	for (size_t b = 0; b < nb; b++) {
		for (struct entry *e = c->buckets[b], *next; e != NULL; e = next) {
			next = e->hnext;
			e->hnext = nbk[e->hash & mask];
			nbk[e->hash & mask] = e;
		}
	}
	free(c->buckets);
	c->buckets = nbk;
	c->mask = mask;
}

/* A full chain gives up its last entry, the one stored first. */
static void chain_make_room(struct px_anscache *c, uint32_t h)
{
	struct entry *last = NULL;
	unsigned n = 0;

	for (struct entry *e = c->buckets[h & c->mask]; e != NULL; e = e->hnext) {
		last = e;
		n++;
	}
	if (n >= CHAIN_MAX)
		entry_remove(c, last);
}

/* Stores the answer under key, in place of an older entry for it and of
 * the least recently used ones while the cache is over its bound. */
static void entry_store(struct px_anscache *c, const uint8_t *key, size_t klen, const uint8_t *resp,
                        size_t rlen, const struct kept *k, uint64_t now_ms, uint32_t gen)
{
	size_t keep = rlen - k->cut_len;
	uint32_t h = hash_key(c, key, klen);
	struct entry *old = find(c, key, klen, h);

	if (old != NULL)
		entry_remove(c, old);
	size_t bytes = sizeof(struct entry) + klen + keep + 2 * (size_t)k->n_ttl;
	if (bytes > c->max_bytes)
		return;
	while (c->bytes + bytes > c->max_bytes && c->lru_tail != NULL)
		entry_remove(c, c->lru_tail);
	struct entry *e = malloc(bytes);
	if (e == NULL)
		return;
	e->stored_ms = now_ms;
	e->expire_ms = now_ms + (uint64_t)k->min_ttl * 1000;
	e->gen = gen;
	e->hash = h;
	e->key_len = (uint16_t)klen;
	e->resp_len = (uint16_t)keep;
	e->n_ttl = (uint16_t)k->n_ttl;
	e->opt_rdlen_off = k->opt_rdlen_off;
	e->bytes = bytes;
	memcpy(e->data, key, klen);
	uint8_t *r = e->data + klen;
	if (k->cut_len > 0) {
		/* The cookie is the OPT's only option, at its end. */
		memcpy(r, resp, k->cut_off);
		codec_put_u16(r + k->opt_rdlen_off, 0);
	} else {
		memcpy(r, resp, rlen);
	}
	memcpy(e->data + klen + keep, k->offs, 2 * (size_t)k->n_ttl);
	chain_make_room(c, h);
	e->hnext = c->buckets[h & c->mask];
	c->buckets[h & c->mask] = e;
	lru_push(c, e);
	c->bytes += bytes;
	c->entries++;
	maybe_grow(c);
}

void px_anscache_put(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                     const uint8_t *resp, size_t rlen, uint64_t now_ms, uint32_t gen)
{
	px_anscache_put_max(c, q, v, resp, rlen, now_ms, gen, UINT32_MAX);
}

void px_anscache_put_max(struct px_anscache *c, const uint8_t *q, const struct codec_view *v,
                         const uint8_t *resp, size_t rlen, uint64_t now_ms, uint32_t gen,
                         uint32_t max_ttl)
{
	uint8_t key[KEY_MAX];
	size_t klen = make_key(q, v, key);
	struct codec_view rv;
	struct kept k;

	if (klen == 0 || !answer_keepable(q, v, resp, rlen, &rv))
		return;
	k.n_ttl = 0;
	k.cut_off = k.cut_len = 0;
	k.opt_rdlen_off = 0;
	/* Nothing says how long it may live, or it may not live at all. */
	k.min_ttl = collect_ttls(resp, rlen, &rv, k.offs, &k.n_ttl);
	if (k.min_ttl > max_ttl)
		k.min_ttl = max_ttl;
	if (k.min_ttl == 0 || !names_survive(resp, rlen, &rv, k.offs, k.n_ttl) ||
	    !cookie_cut(resp, rlen, &rv, &k))
		return;
	entry_store(c, key, klen, resp, rlen, &k, now_ms, gen);
}

void px_anscache_offer(struct px_worker *w, const struct px_txn *t, const uint8_t *msg, size_t len)
{
	/* Called only for answers relayed as BIND wrote them. A name in a
	 * flattened zone is kept only when flattening decided it does not
	 * apply (every ANAME type known absent), and no longer than that
	 * verdict holds: a relay at a name whose presence is unknown or
	 * positive is a fallback that must not outlive its query. A NOTIFY
	 * empties the cache when the zone changes; a probe that finds an
	 * ANAME drops the name (flat/notify.c). */
	if (t->keepalive || (t->flat.eligible && !t->flat.cacheable))
		return;
	px_anscache_put_max(w->anscache, t->q, &t->qv, msg, len, px_now(w),
	                    atomic_load_explicit(&w->srv->anscache_gen, memory_order_relaxed),
	                    t->flat.eligible ? t->flat.absent_ttl : UINT32_MAX);
}
