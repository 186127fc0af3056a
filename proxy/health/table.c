/* proxy/health/table.c - the table the answer path reads without a lock.
 *
 * The checker is the only writer. It publishes an entry by writing the
 * address and state, then the tag with release order; it drops one by
 * zeroing the tag first (then a release fence) and only then reusing the
 * words. A reader loads the tag (acquire), the words, then, after an
 * acquire fence, the tag again: when both tags match the key, the words
 * belong to that entry (a seqlock whose sequence is the tag itself).
 */
#include <string.h>

#include "codec/name.h"
#include "proxy/health/internal.h"

static const char *const result_names[PX_HR_COUNT] = {
        [PX_HR_OK] = "ok",
        [PX_HR_REFUSED] = "refused",
        [PX_HR_CONNECT] = "connect",
        [PX_HR_TIMEOUT] = "timeout",
        [PX_HR_TLS] = "tls",
        [PX_HR_CERT] = "cert",
        [PX_HR_HTTP_STATUS] = "http_status",
        [PX_HR_HTTP_BAD] = "http_bad",
        [PX_HR_CLOSED] = "closed",
        [PX_HR_ERROR] = "error",
};

const char *px_health_result_name(enum px_health_result r)
{
	return (unsigned)r < PX_HR_COUNT ? result_names[r] : "unknown";
}

enum px_health_state px_health_sm_step(struct px_health_sm *sm, bool ok, unsigned fall,
                                       unsigned rise)
{
	enum px_health_state before = sm->state;

	if (ok) {
		sm->fails = 0;
		if (sm->oks < UINT8_MAX)
			sm->oks++;
		if (sm->state != PX_HS_DOWN || sm->oks >= rise)
			sm->state = PX_HS_UP;
	} else {
		sm->oks = 0;
		if (sm->fails < UINT8_MAX)
			sm->fails++;
		if (sm->fails >= fall)
			sm->state = PX_HS_DOWN;
	}
	return before;
}

/* Eight octets at a time into x, folded to lowercase when fold. */
static uint64_t mix_bytes(uint64_t x, const uint8_t *p, size_t n, bool fold)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		w = fold ? codec_ascii_lower8(w) : w;
		x = (x ^ w) * 0x9e3779b97f4a7c15ull;
		x ^= x >> 29;
	}
	if (n > 0) {
		w = 0;
		for (size_t i = 0; i < n; i++)
			w |= (uint64_t)p[i] << (8 * i);
		w = fold ? codec_ascii_lower8(w) : w;
		x = (x ^ w) * 0x9e3779b97f4a7c15ull;
		x ^= x >> 29;
	}
	return x;
}

uint64_t px_health_mix_name(uint64_t x, const uint8_t *name, size_t len)
{
	return mix_bytes(x, name, len, true);
}

/*
 * Not a keyed PRF on purpose: it runs for every answer with checks on,
 * and SipHash of the owner cost more than the rest of the check. The
 * owners are the zones' own flattened names and a full bucket only
 * leaves an address unchecked (served), so names chosen to collide buy
 * nothing; the random seed still keeps two processes' layouts apart.
 */
uint64_t px_health_key(const struct px_health *h, const struct cfg_check *c, const uint8_t *owner,
                       size_t owner_len, uint16_t qtype)
{
	uint64_t x = h->seed ^ ((uint64_t)c->kind | (uint64_t)c->port << 8 | (uint64_t)qtype << 24 |
	                        (uint64_t)owner_len << 40);

	x = mix_bytes(x, owner, owner_len, true);
	if (c->kind == CFG_CHECK_HTTP)
		x = mix_bytes(x, (const uint8_t *)c->path, strnlen(c->path, CFG_CHECK_PATH_MAX),
		              false);
	x ^= x >> 32;
	x *= 0xd6e8feb86659fd93ull;
	x ^= x >> 32;
	return x != 0 ? x : 1;
}

void px_health_addr_words(const uint8_t *addr, uint16_t qtype, uint64_t a[2])
{
	if (qtype == 28) {
		memcpy(&a[0], addr, 8);
		memcpy(&a[1], addr + 8, 8);
	} else {
		uint32_t v;
		memcpy(&v, addr, 4);
		a[0] = v;
		a[1] = 0;
	}
}

uint32_t px_health_bucket(uint64_t key, const uint64_t a[2])
{
	/* key is keyed already; mixing the address in with a multiply and
	 * shifts spreads an owner's addresses over the buckets. */
	uint64_t x = key ^ (a[0] * 0x9e3779b97f4a7c15ull) ^ (a[1] * 0xc2b2ae3d27d4eb4full);
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint32_t)(x % PX_HEALTH_BUCKETS) * PX_HEALTH_WAYS;
}

int px_health_find(const struct px_health *h, uint64_t key, const uint64_t a[2])
{
	uint32_t b = px_health_bucket(key, a);

	for (uint32_t i = b; i < b + PX_HEALTH_WAYS; i++) {
		const struct px_health_slot *s = &h->slots[i];
		if (atomic_load_explicit(&s->tag, memory_order_acquire) == key &&
		    atomic_load_explicit(&s->a[0], memory_order_relaxed) == a[0] &&
		    atomic_load_explicit(&s->a[1], memory_order_relaxed) == a[1])
			return (int)i;
	}
	return -1;
}

/* An address the table does not hold: queued for the checker, unless
 * the table is at its bound or the queue is full (the next answer asks
 * again). The only lock on the answer path, taken once per new address. */
static void hand_over(struct px_health *h, const struct px_health_ask *ask, const uint64_t a[2],
                      uint16_t qtype)
{
	if (!atomic_load_explicit(&h->running, memory_order_acquire) ||
	    atomic_load_explicit(&h->n_addrs, memory_order_relaxed) >= PX_HEALTH_MAX_ADDRS ||
	    atomic_load_explicit(&h->pending_full, memory_order_relaxed))
		return;
	uv_mutex_lock(&h->pend_mu);
	unsigned i;
	for (i = 0; i < h->n_pending; i++)
		if (h->pending[i].key == ask->key && h->pending[i].a[0] == a[0] &&
		    h->pending[i].a[1] == a[1])
			break;
	bool queued = false;
	if (i == h->n_pending && h->n_pending < PX_HEALTH_PENDING_MAX) {
		struct px_health_miss *m = &h->pending[h->n_pending++];
		m->key = ask->key;
		m->a[0] = a[0];
		m->a[1] = a[1];
		m->qtype = qtype;
		m->owner_len = ask->owner_len;
		memcpy(m->owner, ask->owner, ask->owner_len);
		codec_name_lower(m->owner, m->owner_len);
		m->check = *ask->check;
		queued = true;
	} else if (i == h->n_pending) {
		atomic_store_explicit(&h->pending_full, true, memory_order_relaxed);
	}
	uv_mutex_unlock(&h->pend_mu);
	if (queued)
		uv_async_send(&h->wake);
}

bool px_health_any_down(const struct px_health *h)
{
	return h != NULL && atomic_load_explicit(&h->n_down, memory_order_relaxed) > 0;
}

uint32_t px_health_clock(const struct px_health *h)
{
	return h == NULL ? 0 : atomic_load_explicit(&h->clock_s, memory_order_relaxed);
}

bool px_health_down(void *arg, const uint8_t *addr, uint16_t qtype)
{
	struct px_health_ask *ask = arg;
	struct px_health *h = ask->h;
	uint64_t a[2];

	if (h == NULL || ask->check == NULL || ask->check->kind == CFG_CHECK_NONE ||
	    (qtype != 1 && qtype != 28))
		return false;
	if (ask->key == 0 || ask->key_qtype != qtype) {
		ask->key = px_health_key(h, ask->check, ask->owner, ask->owner_len, qtype);
		ask->key_qtype = qtype;
	}
	px_health_addr_words(addr, qtype, a);
	uint32_t b = px_health_bucket(ask->key, a);
	for (uint32_t i = b; i < b + PX_HEALTH_WAYS; i++) {
		struct px_health_slot *s = &h->slots[i];
		uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);
		if (t != ask->key || atomic_load_explicit(&s->a[0], memory_order_relaxed) != a[0] ||
		    atomic_load_explicit(&s->a[1], memory_order_relaxed) != a[1])
			continue;
		uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->tag, memory_order_relaxed) != t)
			return false; /* dropped under us: as unknown */
		/* One store a second at most: answers do not bounce the line. */
		uint32_t now = atomic_load_explicit(&h->clock_s, memory_order_relaxed);
		if (atomic_load_explicit(&s->used_s, memory_order_relaxed) != now)
			atomic_store_explicit(&s->used_s, now, memory_order_relaxed);
		return st == PX_HS_DOWN;
	}
	hand_over(h, ask, a, qtype);
	return false;
}
