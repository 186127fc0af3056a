/* flatten/pool.c - the merge of a pool's per-target results. */
#include "flatten/pool.h"

#include <string.h>

#include "codec/name.h"

static size_t addr_len(uint16_t qtype)
{
	return qtype == 28 /* AAAA */ ? 16 : 4;
}

/* Is addr already among r's addresses? At most 64 of them: a linear
 * scan costs less than anything that would need setting up. */
static bool has_addr(const struct flat_result *r, const uint8_t *addr, size_t alen)
{
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (memcmp(r->addrs[i], addr, alen) == 0)
			return true;
	return false;
}

static bool is_up(flat_health_down_fn *down, void *ctx, const uint8_t *addr, uint16_t qtype)
{
	return down == NULL || !down(ctx, addr, qtype);
}

/* Does in have an address that is up (any address when down is NULL)? */
static bool any_up(const struct flat_result *r, flat_health_down_fn *down, void *ctx)
{
	if (r->kind != FLAT_RES_ADDRS)
		return false;
	for (unsigned i = 0; i < r->n_addrs; i++)
		if (is_up(down, ctx, r->addrs[i], r->qtype))
			return true;
	return false;
}

/* Adds src's up addresses to dst (deduplicated, capped); counts the
 * down ones. Returns how many of src's addresses are up. */
static unsigned add_up(struct flat_result *dst, const struct flat_result *src,
                       flat_health_down_fn *down, void *ctx, struct flat_pool_out *out)
{
	size_t alen = addr_len(src->qtype);
	unsigned up = 0;

	for (unsigned i = 0; i < src->n_addrs; i++) {
		const uint8_t *a = src->addrs[i];
		if (!is_up(down, ctx, a, src->qtype)) {
			out->n_down++;
			continue;
		}
		up++;
		if (dst->n_addrs >= FLAT_MAX_ADDRS || has_addr(dst, a, alen))
			continue;
		memcpy(dst->addrs[dst->n_addrs++], a, alen);
	}
	return up;
}

static void use(struct flat_pool_out *out, const struct flat_pool_in *in, size_t i)
{
	out->used |= 1u << i;
	if (in[i].ttl < out->ttl)
		out->ttl = in[i].ttl;
}

/* Nothing with addresses: NODATA (or NXDOMAIN) from the targets that
 * answered, or the first failure. */
static const struct flat_result *merge_empty(const struct flat_pool_in *in, size_t n,
                                             struct flat_pool_out *out)
{
	const struct flat_result *first = NULL;

	for (size_t i = 0; i < n; i++) {
		if (in[i].res->kind == FLAT_RES_FAIL)
			continue;
		use(out, in, i);
		if (first == NULL)
			first = in[i].res;
	}
	if (first != NULL)
		return first;
	out->ttl = 0;
	return in[0].res;
}

/* Starts buf as an empty ADDRS result like proto. */
static void buf_start(struct flat_result *buf, const struct flat_result *proto)
{
	flat_result_clear(buf);
	buf->kind = FLAT_RES_ADDRS;
	buf->qtype = proto->qtype;
	buf->hops = proto->hops;
}

static const struct flat_result *merge_union(const struct flat_pool_in *in, size_t n,
                                             flat_health_down_fn *down, void *ctx,
                                             struct flat_result *buf, struct flat_pool_out *out)
{
	size_t first = n, n_with = 0;

	for (size_t i = 0; i < n; i++) {
		if (in[i].res->kind != FLAT_RES_ADDRS || in[i].res->n_addrs == 0)
			continue;
		if (first == n)
			first = i;
		n_with++;
	}
	if (first == n)
		return merge_empty(in, n, out);
	/* One target with addresses and nobody to ask about health: its
	 * result as it is, no copy (the common case: a pool of one). */
	if (n_with == 1 && down == NULL) {
		use(out, in, first);
		return in[first].res;
	}
	for (int pass = 0; pass < 2; pass++) {
		buf_start(buf, in[first].res);
		for (size_t i = first; i < n; i++) {
			const struct flat_result *r = in[i].res;
			if (r->kind != FLAT_RES_ADDRS || r->n_addrs == 0)
				continue;
			if (add_up(buf, r, down, ctx, out) > 0)
				use(out, in, i);
			if (r->hops > buf->hops)
				buf->hops = r->hops;
		}
		if (buf->n_addrs > 0)
			return buf;
		/* Every address is down: an empty apex is worse than a sick
		 * one, so all are served. */
		out->fail_open = true;
		out->used = 0;
		out->ttl = UINT32_MAX;
		down = NULL;
	}
	return buf; /* not reached: pass 1 has addresses */
}

/* The first input with addresses (with one up, when up) that is fresh,
 * else stale; n when none. */
static size_t first_with(const struct flat_pool_in *in, size_t n, bool up,
                         flat_health_down_fn *down, void *ctx)
{
	for (int stale = 0; stale < 2; stale++) {
		for (size_t i = 0; i < n; i++) {
			const struct flat_result *r = in[i].res;
			if (r->kind != FLAT_RES_ADDRS || r->n_addrs == 0 || in[i].stale != stale)
				continue;
			if (!up || any_up(r, down, ctx))
				return i;
		}
	}
	return n;
}

static const struct flat_result *merge_failover(const struct flat_pool_in *in, size_t n,
                                                flat_health_down_fn *down, void *ctx,
                                                struct flat_result *buf, struct flat_pool_out *out)
{
	size_t pick = first_with(in, n, true, down, ctx);

	if (pick == n) {
		pick = first_with(in, n, false, NULL, NULL);
		if (pick == n)
			return merge_empty(in, n, out);
		/* Health left nothing: an empty apex is worse than a sick one. */
		out->fail_open = true;
		down = NULL;
	}
	use(out, in, pick);
	if (down == NULL)
		return in[pick].res;
	buf_start(buf, in[pick].res);
	add_up(buf, in[pick].res, down, ctx, out);
	return buf;
}

const struct flat_result *flat_pool_merge_n(enum flat_pool_mode mode, const struct flat_pool_in *in,
                                            size_t n, flat_health_down_fn *down, void *down_ctx,
                                            struct flat_result *buf, struct flat_pool_out *out)
{
	memset(out, 0, sizeof(*out));
	out->ttl = UINT32_MAX;
	if (n > FLAT_POOL_MAX)
		n = FLAT_POOL_MAX;
	if (flat_qtype_is_rdata(in[0].res->qtype)) {
		/* HTTPS/SVCB: RRsets are not merged (two providers' ECH keys
		 * and ALPNs do not mix), nor checked: they hold no addresses. */
		for (size_t i = 0; i < n; i++) {
			if (in[i].res->kind == FLAT_RES_ADDRS && in[i].res->n_addrs > 0) {
				use(out, in, i);
				return in[i].res;
			}
		}
		return merge_empty(in, n, out);
	}
	if (mode == FLAT_POOL_FAILOVER)
		return merge_failover(in, n, down, down_ctx, buf, out);
	return merge_union(in, n, down, down_ctx, buf, out);
}

bool flat_pool_next(const uint8_t *blob, size_t blob_len, size_t *off, const uint8_t **name,
                    size_t *len)
{
	size_t p = *off;

	if (p >= blob_len)
		return false;
	while (p < blob_len && blob[p] != 0) {
		if (blob[p] > 63)
			return false;
		p += 1u + blob[p];
	}
	if (p >= blob_len)
		return false;
	*name = blob + *off;
	*len = p + 1 - *off;
	*off = p + 1;
	return codec_name_valid(*name, *len);
}

unsigned flat_pool_count(const uint8_t *blob, size_t blob_len)
{
	size_t off = 0, len;
	const uint8_t *name;
	unsigned n = 0;

	if (blob_len == 0 || blob_len > FLAT_POOL_NAMES_MAX)
		return 0;
	while (off < blob_len) {
		if (!flat_pool_next(blob, blob_len, &off, &name, &len) || n == FLAT_POOL_MAX)
			return 0;
		n++;
	}
	return n;
}

/* The offsets of name's labels, root excluded; returns their count. */
static size_t label_offsets(const uint8_t *name, size_t len, uint8_t offs[128])
{
	size_t n = 0;

	for (size_t p = 0; p < len && name[p] != 0 && n < 128; p += 1u + name[p])
		offs[n++] = (uint8_t)p;
	return n;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

int flat_pool_name_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	uint8_t ao[128], bo[128];
	size_t na = label_offsets(a, alen, ao), nb = label_offsets(b, blen, bo);

	while (na > 0 && nb > 0) {
		const uint8_t *la = a + ao[--na], *lb = b + bo[--nb];
		size_t l = la[0] < lb[0] ? la[0] : lb[0];
		for (size_t i = 1; i <= l; i++)
			if (lower(la[i]) != lower(lb[i]))
				return lower(la[i]) < lower(lb[i]) ? -1 : 1;
		if (la[0] != lb[0])
			return la[0] < lb[0] ? -1 : 1;
	}
	return na == nb ? 0 : na < nb ? -1 : 1;
}
