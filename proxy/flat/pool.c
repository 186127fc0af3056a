/* proxy/flat/pool.c - flattening states, recycled per worker.
 *
 * Every eligible query that the caches cannot answer directly needs a
 * struct px_flat (several KiB: two lookups, each with a result and a
 * stale one) and, while probes or a chase run, a copy of BIND's answer.
 * Allocating and zeroing both per query went through malloc's locks and
 * fresh pages; a worker instead keeps the states of ended queries, with
 * their answer buffers, on a free list of at most PX_FLAT_POOL_MAX, and
 * frees the rest. A burst of more queries in flight than that allocates
 * as before, and returns the memory when they end.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/flat/flat_int.h"
#include "proxy/ops/stats.h"

/* Spare states per worker: covers the queries a worker keeps in flight
 * under load (dnsperf -q 128 across two workers stays below it) for
 * about 0.8 MiB at most. */
#define PX_FLAT_POOL_MAX 128
/* A kept answer buffer is at least this large, so that most answers
 * reuse it; one grown past PX_FLAT_RESP_KEEP (a large TCP answer) is not
 * kept on the free list. */
#define PX_FLAT_RESP_MIN 1232
#define PX_FLAT_RESP_KEEP 4096

struct px_flat *px_flat_alloc(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	if (fl != NULL)
		return fl;
	fl = w->flat_free;
	if (fl != NULL) {
		uint8_t *buf = fl->resp_buf;
		size_t cap = fl->resp_cap;
		w->flat_free = fl->next_free;
		w->n_flat_free--;
		memset(fl, 0, offsetof(struct px_flat, targets));
		fl->resp_buf = buf;
		fl->resp_cap = cap;
	} else {
		fl = calloc(1, sizeof(*fl));
		if (fl == NULL)
			return NULL;
	}
	fl->lk = fl->lk_one;
	t->flat.fl = fl;
	/* px_flat_query() answered a malformed option with FORMERR before
	 * anything is allocated, so this cannot fail on the option now. */
	(void)px_flat_ecs_of(t, &fl->ecs);
	return fl;
}

bool px_flat_keep_resp(struct px_flat *fl, const uint8_t *msg, size_t len)
{
	if (msg == fl->resp)
		return true;
	if (len > fl->resp_cap) {
		size_t cap = len < PX_FLAT_RESP_MIN ? PX_FLAT_RESP_MIN : len;
		uint8_t *buf = malloc(cap);
		if (buf == NULL)
			return false;
		free(fl->resp_buf);
		fl->resp_buf = buf;
		fl->resp_cap = cap;
	}
	memcpy(fl->resp_buf, msg, len);
	fl->resp = fl->resp_buf;
	fl->resp_len = len;
	return true;
}

void px_flat_set_targets(struct px_flat *fl, const uint8_t *blob, size_t len, unsigned n)
{
	size_t off = 0, tl;
	const uint8_t *name;
	unsigned i = 0;

	if (len > sizeof(fl->targets))
		len = 0;
	memcpy(fl->targets, blob, len);
	fl->targets_len = (uint16_t)len;
	while (i < n && i < FLAT_POOL_MAX && flat_pool_next(fl->targets, len, &off, &name, &tl)) {
		fl->toff[i] = (uint16_t)(name - fl->targets);
		fl->tlen[i] = (uint8_t)tl;
		i++;
	}
	fl->n_targets = (uint8_t)i;
}

bool px_flat_lookups(struct px_flat *fl, unsigned n_types)
{
	size_t n = (size_t)fl->n_targets * n_types;

	if (fl->lk != fl->lk_one)
		free(fl->lk);
	fl->lk = fl->lk_one;
	if (n > 2) {
		/* A pool: its lookups live as long as the query. */
		fl->lk = calloc(n, sizeof(*fl->lk));
		if (fl->lk == NULL) {
			fl->lk = fl->lk_one;
			return false;
		}
	}
	fl->n_types = n_types;
	fl->n_lookups = (unsigned)n;
	for (unsigned i = 0; i < n; i++)
		fl->lk[i].ti = (uint8_t)(i / n_types);
	return true;
}

void px_flat_free(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	if (fl == NULL)
		return;
	t->flat.fl = NULL;
	if (fl->lk != fl->lk_one) {
		free(fl->lk);
		fl->lk = fl->lk_one;
	}
	/* The query ended (BIND's timeout, say) before these had a verdict. */
	for (unsigned i = 0; i < fl->n_probes; i++)
		if (fl->probe[i].state != PX_PROBE_DONE)
			PX_STAT_INC(&w->stats, aname_probe_failed);
	if (fl->resp_cap > PX_FLAT_RESP_KEEP) {
		free(fl->resp_buf);
		fl->resp_buf = NULL;
		fl->resp_cap = 0;
	}
	if (w->n_flat_free >= PX_FLAT_POOL_MAX) {
		free(fl->resp_buf);
		free(fl);
		return;
	}
	fl->next_free = w->flat_free;
	w->flat_free = fl;
	w->n_flat_free++;
}

void px_flat_pool_free(struct px_worker *w)
{
	while (w->flat_free != NULL) {
		struct px_flat *fl = w->flat_free;
		w->flat_free = fl->next_free;
		free(fl->resp_buf);
		free(fl);
	}
	w->n_flat_free = 0;
	px_flat_probe_spares_free(w);
}
