/* proxy/health/checker.c - the checker thread: its loop, the schedule,
 * the entries' life, reload, and the log lines of state changes.
 *
 * One thread with a uv loop of its own, as the workers have, so probes
 * never run on a worker's loop and a slow CDN never delays an answer. A
 * timer ticks (interval / 8, between 10 ms and 1 s) while anything is
 * checked: it starts the checks that are due, at most
 * PX_HEALTH_MAX_INFLIGHT at once, and drops entries unused for
 * max(3 x interval, PX_HEALTH_IDLE_MIN_MS). With nothing to check the
 * timer stops and the thread sleeps in epoll. Misses from the workers,
 * reloads and the stop arrive through one async handle.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "proxy/health/internal.h"
#include "proxy/ops/log.h"
#include "tls/ctx.h"

#define NO_OWNER UINT32_MAX

static uint64_t now_ms(const struct px_health *h)
{
	return uv_now((uv_loop_t *)&h->loop);
}

static void addr_text(const struct px_health *h, uint32_t idx, uint16_t qtype, char *buf,
                      size_t size)
{
	const struct px_health_slot *s = &h->slots[idx];
	uint64_t a[2] = {atomic_load_explicit(&s->a[0], memory_order_relaxed),
	                 atomic_load_explicit(&s->a[1], memory_order_relaxed)};

	if (inet_ntop(qtype == 28 ? AF_INET6 : AF_INET, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

/* ---- owners ------------------------------------------------------------- */

static uint32_t owner_get(struct px_health *h, const struct px_health_miss *m)
{
	for (size_t i = 0; i < h->n_owners; i++)
		if (h->owners[i].live && h->owners[i].key == m->key)
			return (uint32_t)i;
	uint32_t i = h->owners_free;
	if (i != NO_OWNER) {
		h->owners_free = h->owners[i].next_free;
	} else {
		if (h->n_owners == h->owners_cap) {
			size_t cap = h->owners_cap ? h->owners_cap * 2 : 64;
			void *o = realloc(h->owners, cap * sizeof(*h->owners));
			if (o == NULL)
				return NO_OWNER;
			h->owners = o;
			h->owners_cap = cap;
		}
		i = (uint32_t)h->n_owners++;
	}
	struct px_health_owner *o = &h->owners[i];
	memset(o, 0, sizeof(*o));
	o->key = m->key;
	o->check = m->check;
	o->qtype = m->qtype;
	o->live = true;
	if (codec_name_to_text(m->owner, m->owner_len, o->host, sizeof(o->host)) < 0)
		snprintf(o->host, sizeof(o->host), "?");
	size_t l = strlen(o->host);
	if (l > 1 && o->host[l - 1] == '.')
		o->host[l - 1] = '\0';
	return i;
}

/* Logs the change when every live address of o went down or one came
 * back: all of them are served then (the answer path fails open). */
static void owner_judge(struct px_health_owner *o)
{
	bool all = o->n > 0 && o->n_down == o->n;
	char ck[160];

	if (all == o->all_down)
		return;
	o->all_down = all;
	cfg_check_text(&o->check, ck, sizeof(ck));
	if (all)
		px_log(CFG_LOG_WARNING, HEALTH,
		       "every %s address of %s is down (%s): serving all (fail open)",
		       o->qtype == 28 ? "IPv6" : "IPv4", o->host, ck);
	else
		px_log(CFG_LOG_INFO, HEALTH, "%s has %s addresses up again (%s): fail open ends",
		       o->host, o->qtype == 28 ? "IPv6" : "IPv4", ck);
}

/* ---- entries ------------------------------------------------------------ */

static void tick_arm(struct px_health *h);

static void insert(struct px_health *h, const struct px_health_miss *m)
{
	if (px_health_find(h, m->key, m->a) >= 0)
		return;
	if (h->n_live >= PX_HEALTH_MAX_ADDRS) {
		atomic_fetch_add_explicit(&h->dropped_misses, 1, memory_order_relaxed);
		return;
	}
	uint32_t b = px_health_bucket(m->key, m->a), idx;
	for (idx = b; idx < b + PX_HEALTH_WAYS; idx++)
		if (atomic_load_explicit(&h->slots[idx].tag, memory_order_relaxed) == 0)
			break;
	if (idx == b + PX_HEALTH_WAYS) {
		atomic_fetch_add_explicit(&h->dropped_misses, 1, memory_order_relaxed);
		return;
	}
	uv_mutex_lock(&h->info_mu);
	uint32_t oi = owner_get(h, m);
	if (oi == NO_OWNER) {
		uv_mutex_unlock(&h->info_mu);
		return;
	}
	struct px_health_slot *s = &h->slots[idx];
	struct px_health_ent *e = &h->ents[idx];
	uint32_t gen = e->gen;
	memset(e, 0, sizeof(*e));
	e->gen = gen;
	e->live = true;
	e->owner = oi;
	e->next_at = now_ms(h);
	e->live_pos = h->n_live;
	h->live[h->n_live++] = idx;
	h->owners[oi].n++;
	owner_judge(&h->owners[oi]);
	uv_mutex_unlock(&h->info_mu);
	atomic_store_explicit(&s->a[0], m->a[0], memory_order_relaxed);
	atomic_store_explicit(&s->a[1], m->a[1], memory_order_relaxed);
	atomic_store_explicit(&s->state, PX_HS_UNKNOWN, memory_order_relaxed);
	atomic_store_explicit(&s->used_s, atomic_load(&h->clock_s), memory_order_relaxed);
	atomic_store_explicit(&s->tag, m->key, memory_order_release);
	atomic_fetch_add_explicit(&h->n_addrs, 1, memory_order_relaxed);
	tick_arm(h);
}

static void drop(struct px_health *h, uint32_t idx)
{
	struct px_health_slot *s = &h->slots[idx];
	struct px_health_ent *e = &h->ents[idx];

	/* Readers that see the tag gone treat the address as unknown; the
	 * fence keeps the next owner's words behind the zeroed tag. */
	atomic_store_explicit(&s->tag, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	uv_mutex_lock(&h->info_mu);
	struct px_health_owner *o = &h->owners[e->owner];
	o->n--;
	if (e->sm.state == PX_HS_DOWN) {
		o->n_down--;
		atomic_fetch_sub_explicit(&h->n_down, 1, memory_order_relaxed);
	}
	if (o->n == 0) {
		if (o->all_down)
			owner_judge(o);
		o->live = false;
		o->next_free = h->owners_free;
		h->owners_free = e->owner;
	} else {
		owner_judge(o);
	}
	e->live = false;
	e->gen++;
	uint32_t last = h->live[--h->n_live];
	h->live[e->live_pos] = last;
	h->ents[last].live_pos = e->live_pos;
	uv_mutex_unlock(&h->info_mu);
	atomic_fetch_sub_explicit(&h->n_addrs, 1, memory_order_relaxed);
}

void px_health_verdict(struct px_health *h, uint32_t idx, uint32_t gen, enum px_health_result r,
                       const char *why)
{
	struct px_health_ent *e = &h->ents[idx];
	char addr[64], ck[160];

	h->inflight--;
	if (h->c_stopping || !e->live || e->gen != gen)
		return;
	atomic_fetch_add_explicit(&h->checks[r], 1, memory_order_relaxed);
	uv_mutex_lock(&h->info_mu);
	struct px_health_owner *o = &h->owners[e->owner];
	enum px_health_state before =
	        px_health_sm_step(&e->sm, r == PX_HR_OK, h->c_fall, h->c_rise);
	e->in_flight = false;
	e->last = (uint8_t)r;
	e->last_at = uv_hrtime() / 1000000;
	if (r != PX_HR_OK)
		snprintf(e->why, sizeof(e->why), "%s", why);
	if (e->sm.state != before && (before == PX_HS_DOWN || e->sm.state == PX_HS_DOWN)) {
		atomic_fetch_add_explicit(&h->changes, 1, memory_order_relaxed);
		addr_text(h, idx, o->qtype, addr, sizeof(addr));
		cfg_check_text(&o->check, ck, sizeof(ck));
		if (e->sm.state == PX_HS_DOWN) {
			o->n_down++;
			/* Before the slot says down: an answer that sees the
			 * state also takes the full path. */
			atomic_fetch_add_explicit(&h->n_down, 1, memory_order_release);
			e->down_since = e->last_at;
			px_log(CFG_LOG_WARNING, HEALTH,
			       "%s of %s is down (%s): %s (%u checks failed)", addr, o->host, ck,
			       e->why, e->sm.fails);
		} else {
			o->n_down--;
			atomic_fetch_sub_explicit(&h->n_down, 1, memory_order_relaxed);
			px_log(CFG_LOG_INFO, HEALTH, "%s of %s is up again (%s, %u checks passed)",
			       addr, o->host, ck, e->sm.oks);
		}
		owner_judge(o);
	}
	uv_mutex_unlock(&h->info_mu);
	atomic_store_explicit(&h->slots[idx].state, e->sm.state, memory_order_relaxed);
}

/* ---- the schedule ------------------------------------------------------- */

static uint64_t tick_ms(const struct px_health *h)
{
	uint64_t t = h->c_interval / 8;
	return t < 10 ? 10 : t > 1000 ? 1000 : t;
}

static uint64_t idle_ms(const struct px_health *h)
{
	uint64_t t = 3 * h->c_interval;
	return t < PX_HEALTH_IDLE_MIN_MS ? PX_HEALTH_IDLE_MIN_MS : t;
}

static void tick_cb(uv_timer_t *t)
{
	struct px_health *h = t->data;
	uint64_t now = now_ms(h);
	uint32_t clock = (uint32_t)((now - h->start_ms) / 1000) + 1;
	uint32_t idle_s = (uint32_t)(idle_ms(h) / 1000);

	atomic_store_explicit(&h->clock_s, clock, memory_order_relaxed);
	for (uint32_t k = h->n_live; k-- > 0;) {
		uint32_t idx = h->live[k];
		struct px_health_ent *e = &h->ents[idx];
		uint32_t used = atomic_load_explicit(&h->slots[idx].used_s, memory_order_relaxed);
		if (clock - used > idle_s) {
			drop(h, idx);
			continue;
		}
		if (e->in_flight || e->next_at > now || h->inflight >= PX_HEALTH_MAX_INFLIGHT)
			continue;
		/* Up to a tenth early, so that addresses added together spread
		 * out instead of being checked in one burst forever. */
		h->rng = h->rng * 1103515245u + 12345u;
		uint64_t jitter = h->c_interval / 10 ? (h->rng >> 8) % (h->c_interval / 10) : 0;
		e->next_at = now + h->c_interval - jitter;
		if (px_health_probe_start(h, idx) == 0)
			e->in_flight = true;
		else
			px_log_rl(CFG_LOG_WARNING, HEALTH,
			          "cannot start a check: out of memory or sockets");
	}
	if (h->n_live == 0) {
		uv_timer_stop(&h->tick);
		h->tick_on = false;
	}
}

static void tick_arm(struct px_health *h)
{
	if (h->tick_on)
		return;
	h->tick_on = true;
	uv_timer_start(&h->tick, tick_cb, 0, tick_ms(h));
}

/* ---- from other threads ------------------------------------------------- */

static void walk_close(uv_handle_t *hd, void *arg)
{
	if (hd->data == arg) {
		if (!uv_is_closing(hd))
			uv_close(hd, NULL);
		return;
	}
	px_health_probe_abort(hd);
}

static bool check_active(const struct px_health *h, const struct cfg_check *c)
{
	for (size_t i = 0; i < h->n_active; i++)
		if (cfg_check_equal(&h->active[i], c))
			return true;
	return false;
}

/* A reload: the new parameters, and the entries of checks nobody uses
 * any more dropped. Under cfg_mu. */
static void apply_cfg(struct px_health *h)
{
	bool restart = h->c_interval != h->interval_ms;

	h->c_interval = h->interval_ms;
	h->c_timeout = h->timeout_ms;
	h->c_fall = h->fall;
	h->c_rise = h->rise;
	for (uint32_t k = h->n_live; k-- > 0;) {
		uint32_t idx = h->live[k];
		if (!check_active(h, &h->owners[h->ents[idx].owner].check))
			drop(h, idx);
	}
	if (restart && h->tick_on) {
		h->tick_on = false;
		uv_timer_stop(&h->tick);
		if (h->n_live > 0)
			tick_arm(h);
	}
}

static void wake_cb(uv_async_t *a)
{
	struct px_health *h = a->data;
	struct px_health_miss *batch = h->pending + PX_HEALTH_PENDING_MAX;
	unsigned n;

	uv_mutex_lock(&h->cfg_mu);
	if (h->stopping) {
		uv_mutex_unlock(&h->cfg_mu);
		h->c_stopping = true;
		uv_walk(&h->loop, walk_close, h);
		return;
	}
	if (h->cfg_changed) {
		h->cfg_changed = false;
		apply_cfg(h);
	}
	uv_mutex_unlock(&h->cfg_mu);
	uv_mutex_lock(&h->pend_mu);
	n = h->n_pending;
	memcpy(batch, h->pending, n * sizeof(*batch));
	h->n_pending = 0;
	atomic_store_explicit(&h->pending_full, false, memory_order_relaxed);
	uv_mutex_unlock(&h->pend_mu);
	for (unsigned i = 0; i < n; i++)
		insert(h, &batch[i]);
}

static void checker_main(void *arg)
{
	struct px_health *h = arg;

	uv_run(&h->loop, UV_RUN_DEFAULT);
}

/* ---- the main thread ---------------------------------------------------- */

static bool has_checks(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_zones; i++)
		if (cfg->zones[i].check.kind != CFG_CHECK_NONE)
			return true;
	return false;
}

/* Copies cfg's parameters and the checks its zones use; under cfg_mu. */
static void set_cfg(struct px_health *h, const struct cfg *cfg)
{
	h->interval_ms = cfg->health.interval_ms;
	h->timeout_ms = cfg->health.timeout_ms;
	h->fall = cfg->health.fall;
	h->rise = cfg->health.rise;
	h->n_active = 0;
	struct cfg_check *v = realloc(h->active, (cfg->n_zones + 1) * sizeof(*v));
	if (v == NULL)
		return; /* no check active: every entry goes, none comes back */
	h->active = v;
	for (size_t i = 0; i < cfg->n_zones; i++) {
		const struct cfg_check *c = &cfg->zones[i].check;
		if (c->kind != CFG_CHECK_NONE && !check_active(h, c))
			h->active[h->n_active++] = *c;
	}
	h->cfg_changed = true;
}

static void start(struct px_health *h)
{
	struct tls_client_opts o = {.no_resume = true};
	char err[256];

	if (tls_ctx_new_client(&h->tls, &o, err, sizeof(err)) < 0) {
		h->tls = NULL;
		px_log(CFG_LOG_ERROR, HEALTH, "tls: checks cannot run: %s", err);
	}
	h->start_ms = now_ms(h);
	h->c_interval = h->interval_ms;
	h->c_timeout = h->timeout_ms;
	h->c_fall = h->fall;
	h->c_rise = h->rise;
	h->cfg_changed = false;
	int rc = uv_thread_create(&h->thread, checker_main, h);
	if (rc < 0) {
		px_log(CFG_LOG_ERROR, HEALTH, "cannot start the checker thread: %s; no checks",
		       uv_strerror(rc));
		return;
	}
	atomic_store_explicit(&h->running, true, memory_order_release);
}

struct px_health *px_health_new(const struct cfg *cfg)
{
	struct px_health *h = calloc(1, sizeof(*h));

	if (h == NULL)
		goto oom;
	h->slots = calloc(PX_HEALTH_SLOTS, sizeof(*h->slots));
	h->ents = calloc(PX_HEALTH_SLOTS, sizeof(*h->ents));
	h->live = calloc(PX_HEALTH_MAX_ADDRS, sizeof(*h->live));
	/* Twice: the workers' queue, and the checker's copy of a batch. */
	h->pending = calloc(2 * PX_HEALTH_PENDING_MAX, sizeof(*h->pending));
	if (h->slots == NULL || h->ents == NULL || h->live == NULL || h->pending == NULL)
		goto oom;
	struct codec_hkey hk;
	codec_hkey_random(&hk);
	h->seed = hk.k0 ^ hk.k1;
	h->owners_free = NO_OWNER;
	h->rng = (uint32_t)uv_hrtime() | 1;
	uv_mutex_init(&h->pend_mu);
	uv_mutex_init(&h->cfg_mu);
	uv_mutex_init(&h->info_mu);
	if (uv_loop_init(&h->loop) != 0)
		goto oom;
	uv_async_init(&h->loop, &h->wake, wake_cb);
	uv_timer_init(&h->loop, &h->tick);
	h->wake.data = h->tick.data = h;
	set_cfg(h, cfg);
	if (has_checks(cfg))
		start(h);
	return h;
oom:
	px_log(CFG_LOG_ERROR, HEALTH, "out of memory: no health checks");
	if (h != NULL) {
		free(h->slots);
		free(h->ents);
		free(h->live);
		free(h->pending);
		free(h);
	}
	return NULL;
}

void px_health_reload(struct px_health *h, const struct cfg *cfg)
{
	if (h == NULL)
		return;
	uv_mutex_lock(&h->cfg_mu);
	set_cfg(h, cfg);
	uv_mutex_unlock(&h->cfg_mu);
	if (atomic_load(&h->running))
		uv_async_send(&h->wake);
	else if (has_checks(cfg))
		start(h);
}

void px_health_free(struct px_health *h)
{
	if (h == NULL)
		return;
	if (atomic_load(&h->running)) {
		uv_mutex_lock(&h->cfg_mu);
		h->stopping = true;
		uv_mutex_unlock(&h->cfg_mu);
		uv_async_send(&h->wake);
		uv_thread_join(&h->thread);
	} else {
		uv_close((uv_handle_t *)&h->wake, NULL);
		uv_close((uv_handle_t *)&h->tick, NULL);
		uv_run(&h->loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&h->loop);
	tls_ctx_unref(h->tls);
	uv_mutex_destroy(&h->pend_mu);
	uv_mutex_destroy(&h->cfg_mu);
	uv_mutex_destroy(&h->info_mu);
	free(h->active);
	free(h->owners);
	free(h->slots);
	free(h->ents);
	free(h->live);
	free(h->pending);
	free(h);
}
