/* proxy/flat/siblings.c - sibling upkeep: zones, timing, NOTIFY, reload
 * and explain. Transfers are in sib_xfr.c, chases and UPDATEs in
 * sib_upd.c; the rules in flatten/sibzone.c.
 *
 * One tick timer drives everything: a zone transfers when it has never
 * done so, when the backend's NOTIFY or the SOA refresh says so, or
 * when an UPDATE's prerequisite failed; owners are chased when their
 * siblings' TTL ends; changes go out as one UPDATE per zone per batch.
 * A failure of any step only delays that step: what BIND holds stays.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/name.h"
#include "flatten/zones.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/engine/worker.h"
#include "proxy/flat/sib_int.h"
#include "proxy/ops/log.h"
#include "proxy/ops/statsfmt.h"

static const char *const xfr_kind_names[PX_SIB_XFR_KINDS] = {"axfr", "ixfr"};
static const char *const xfr_result_names[PX_SIB_XFR_RESULTS] = {"ok", "uptodate", "failed"};
static const char *const upd_result_names[PX_SIB_UPD_RESULTS] = {"ok",     "refused", "notauth",
                                                                 "prereq", "timeout", "error"};

const char *px_sib_xfr_kind_name(enum px_sib_xfr_kind k)
{
	return (unsigned)k < PX_SIB_XFR_KINDS ? xfr_kind_names[k] : "?";
}

const char *px_sib_xfr_result_name(enum px_sib_xfr_result r)
{
	return (unsigned)r < PX_SIB_XFR_RESULTS ? xfr_result_names[r] : "?";
}

const char *px_sib_upd_result_name(enum px_sib_upd_result r)
{
	return (unsigned)r < PX_SIB_UPD_RESULTS ? upd_result_names[r] : "?";
}

uint64_t sib_now(const struct px_sib *sib)
{
	return uv_now(sib->loop);
}

uint32_t sib_backoff_next(uint32_t cur)
{
	if (cur < SIB_BACKOFF_MIN_S)
		return SIB_BACKOFF_MIN_S;
	return cur >= SIB_BACKOFF_MAX_S / 2 ? SIB_BACKOFF_MAX_S : cur * 2;
}

struct px_gen *sib_gen(struct px_sib *sib)
{
	return sib->stopping ? NULL : sib->srv->gen;
}

bool sib_key(const struct cfg *cfg, struct codec_tsig_key *key)
{
	const struct cfg_tsig_key *ck = &cfg->backend.update_key;

	if (!ck->present || ck->secret_len == 0 || ck->secret_len > CODEC_TSIG_SECRET_MAX ||
	    codec_tsig_alg_by_name(ck->algorithm, &key->alg) != 0)
		return false;
	memcpy(key->name, ck->name.wire, ck->name.wire_len);
	key->name_len = ck->name.wire_len;
	memcpy(key->secret, ck->secret, ck->secret_len);
	key->secret_len = ck->secret_len;
	return true;
}

void sib_note_error(struct sib_zone *z, char *last, size_t lastlen, const char *why,
                    const char *full)
{
	snprintf(z->last_error, sizeof(z->last_error), "%s", full);
	z->last_error_ms = sib_now(z->sib);
	if (strcmp(last, why) == 0)
		return;
	snprintf(last, lastlen, "%s", why);
	px_log(CFG_LOG_WARNING, XFR, "siblings: zone %s: %s", z->text, full);
}

int sib_send_signed(struct sib_zone *z, const struct cfg *cfg, const struct codec_tsig_key *key,
                    struct codec_tsig_verify *tv, uint8_t *msg, size_t len, size_t cap,
                    uint64_t timeout_ms, px_up_cb *cb, void *arg)
{
	uint8_t mac[CODEC_TSIG_MAC_MAX];
	size_t mac_len = 0;
	ssize_t n = codec_tsig_sign(msg, len, cap, key, (uint64_t)time(NULL), mac, &mac_len);

	if (n < 0)
		return (int)n;
	codec_tsig_verify_begin(tv, key, mac, mac_len);
	int rc = px_up_send(&z->sib->home, (const struct sockaddr *)&cfg->backend.address.sa, msg,
	                    (size_t)n, true, timeout_ms, cb, arg);
	if (rc < 0) {
		codec_tsig_verify_end(tv);
		return rc;
	}
	z->refs++;
	return 0;
}

/* --- zones --------------------------------------------------------------- */

static void zone_free(struct sib_zone *z)
{
	flat_sibxfr_free(z->x);
	codec_tsig_verify_end(&z->tv);
	sib_upd_clear(z);
	flat_sibzone_free(z->tab);
	free(z);
}

void sib_zone_unref(struct sib_zone *z)
{
	if (--z->refs == 0)
		zone_free(z);
}

static struct sib_zone *zone_new(struct px_sib *sib, const struct cfg_zone *cz,
                                 const struct cfg *cfg)
{
	struct sib_zone *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return NULL;
	z->sib = sib;
	z->refs = 1;
	memcpy(z->apex, cz->name.wire, cz->name.wire_len);
	z->apex_len = cz->name.wire_len;
	snprintf(z->text, sizeof(z->text), "%s", cz->name.text);
	memcpy(z->types, cfg->flatten.aname_types, sizeof(z->types));
	z->n_types = cfg->flatten.n_aname_types;
	sib_upd_init(z);
	if (flat_sibzone_new(&z->tab, z->apex, z->apex_len, z->types, z->n_types) != 0) {
		free(z);
		return NULL;
	}
	return z;
}

/* The [alias] owners of cfg that belong to zone cz (the most specific
 * configured zone holding them, as the query path decides). */
static int zone_set_aliases(struct sib_zone *z, const struct px_gen *g, size_t zidx)
{
	const struct cfg *cfg = g->cfg;
	struct flat_sib_alias *a = calloc(cfg->n_aliases + 1, sizeof(*a));
	size_t n = 0;

	if (a == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->n_aliases; i++) {
		const struct cfg_alias *al = &cfg->aliases[i];
		size_t at;
		bool apex;
		if (g->zones == NULL ||
		    flat_zones_find(g->zones, al->owner.wire, al->owner.wire_len, &at, &apex) !=
		            0 ||
		    at != zidx)
			continue;
		a[n++] = (struct flat_sib_alias){al->owner.wire, al->owner.wire_len, al->pool_wire,
		                                 al->pool_wire_len, al->n_targets};
	}
	int rc = flat_sibzone_set_aliases(z->tab, a, n);
	free(a);
	return rc;
}

static struct sib_zone *zone_find(struct px_sib *sib, const uint8_t *apex, size_t len)
{
	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next)
		if (z->apex_len == len && memcmp(z->apex, apex, len) == 0)
			return z;
	return NULL;
}

static bool same_types(const struct sib_zone *z, const struct cfg *cfg)
{
	return z->n_types == cfg->flatten.n_aname_types &&
	       memcmp(z->types, cfg->flatten.aname_types, z->n_types * sizeof(z->types[0])) == 0;
}

/* Makes the zone list match g: zones kept transfer again in full (the
 * aliases, key or types may have changed), new ones start, removed ones
 * end once their queries in flight have. */
static void zones_sync(struct px_sib *sib, const struct px_gen *g)
{
	const struct cfg *cfg = g->cfg;
	struct sib_zone *keep = NULL, **tail = &keep;

	for (size_t i = 0; i < cfg->n_zones; i++) {
		const struct cfg_zone *cz = &cfg->zones[i];
		if (cz->siblings != CFG_SIBLINGS_UPDATE)
			continue;
		struct sib_zone *z = zone_find(sib, cz->name.wire, cz->name.wire_len);
		if (z != NULL && !same_types(z, cfg)) {
			z->dead = true;
			z = NULL;
		}
		if (z != NULL) {
			/* Unlink from the old list. */
			struct sib_zone **pp = &sib->zones;
			while (*pp != z)
				pp = &(*pp)->next;
			*pp = z->next;
		} else if ((z = zone_new(sib, cz, cfg)) == NULL) {
			px_log(CFG_LOG_ERROR, XFR, "siblings: zone %s: out of memory",
			       cz->name.text);
			continue;
		}
		if (zone_set_aliases(z, g, i) != 0)
			px_log(CFG_LOG_ERROR, XFR, "siblings: zone %s: [alias] owners not taken",
			       z->text);
		z->want_axfr = true;
		z->xfr_due_ms = 0;
		z->next = NULL;
		*tail = z;
		tail = &z->next;
	}
	for (struct sib_zone *z = sib->zones, *nx; z != NULL; z = nx) {
		nx = z->next;
		px_log(CFG_LOG_INFO, XFR, "siblings: zone %s no longer kept", z->text);
		z->dead = true;
		sib_zone_unref(z);
	}
	sib->zones = keep;
	uint64_t nz = 0;
	for (struct sib_zone *z = keep; z != NULL; z = z->next)
		nz++;
	atomic_store_explicit(&sib->st->zones, nz, memory_order_relaxed);
}

/* --- the tick, NOTIFY ------------------------------------------------------ */

static void zone_step(struct sib_zone *z, uint64_t now)
{
	if (!z->xfr_busy) {
		if (z->loaded && now >= z->soa_due_ms)
			z->want_xfr = true;
		if ((!z->loaded || z->want_axfr || z->want_xfr) && now >= z->xfr_due_ms)
			sib_xfr_start(z);
	}
	if (!z->loaded)
		return;
	sib_owners_step(z, now);
	sib_upd_step(z, now);
}

static void update_gauges(struct px_sib *sib)
{
	uint64_t owners = 0, bytes = 0;

	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next) {
		owners += flat_sibzone_count(z->tab);
		bytes += flat_sibzone_bytes(z->tab);
	}
	atomic_store_explicit(&sib->st->owners, owners, memory_order_relaxed);
	atomic_store_explicit(&sib->st->bytes, bytes, memory_order_relaxed);
}

/* This tick's share of SIB_SPREAD_S: every owner family once per window. */
static uint64_t tick_budget(const struct px_sib *sib)
{
	uint64_t fams =
	        FLAT_SIB_FAMS * atomic_load_explicit(&sib->st->owners, memory_order_relaxed);
	uint64_t per_s = fams / SIB_SPREAD_S;

	if (per_s < SIB_RATE_MIN)
		per_s = SIB_RATE_MIN;
	return (per_s * SIB_TICK_MS + 999) / 1000;
}

static void tick_cb(uv_timer_t *t)
{
	struct px_sib *sib = t->data;
	uint64_t now = sib_now(sib);

	if (sib->stopping)
		return;
	sib->budget = tick_budget(sib);
	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next)
		zone_step(z, now);
	update_gauges(sib);
}

static void kick_cb(uv_timer_t *t)
{
	struct px_sib *sib = t->data;
	uint64_t now = sib_now(sib);

	if (sib->stopping)
		return;
	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next)
		if (z->capped && z->loaded)
			sib_owners_step(z, now);
}

void sib_kick(struct px_sib *sib)
{
	if (!sib->stopping && !uv_is_active((uv_handle_t *)&sib->kick))
		uv_timer_start(&sib->kick, kick_cb, 0, 0);
}

static void wake_cb(uv_async_t *a)
{
	struct px_sib *sib = a->data;

	uv_mutex_lock(&sib->mu);
	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next) {
		bool hit = sib->posted_all;
		for (unsigned i = 0; i < sib->n_posted && !hit; i++)
			hit = sib->posted[i].len == z->apex_len &&
			      memcmp(sib->posted[i].name, z->apex, z->apex_len) == 0;
		if (hit) {
			z->want_xfr = true;
			/* A NOTIFY is news: it ends a transfer backoff. */
			z->xfr_due_ms = 0;
		}
	}
	sib->n_posted = 0;
	sib->posted_all = false;
	uv_mutex_unlock(&sib->mu);
	tick_cb(&sib->tick);
}

void px_sib_notify(struct px_server *srv, const uint8_t *zone, size_t len)
{
	struct px_sib *sib = srv->sib;
	uint8_t lower[CODEC_MAX_NAME];

	if (sib == NULL || len == 0 || len > CODEC_MAX_NAME)
		return;
	memcpy(lower, zone, len);
	codec_name_lower(lower, len);
	uv_mutex_lock(&sib->mu);
	if (!sib->stopping) {
		if (sib->n_posted < sizeof(sib->posted) / sizeof(sib->posted[0])) {
			memcpy(sib->posted[sib->n_posted].name, lower, len);
			sib->posted[sib->n_posted++].len = (uint8_t)len;
		} else {
			sib->posted_all = true;
		}
		uv_async_send(&sib->wake);
	}
	uv_mutex_unlock(&sib->mu);
}

/* --- life ------------------------------------------------------------------ */

/* The tick runs only while some zone keeps siblings: a configuration
 * without any costs no wake-ups of the main loop. */
static void tick_arm(struct px_sib *sib)
{
	if (sib->zones == NULL)
		uv_timer_stop(&sib->tick);
	else if (!uv_is_active((uv_handle_t *)&sib->tick))
		uv_timer_start(&sib->tick, tick_cb, 0, SIB_TICK_MS);
}

static bool any_siblings(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->n_zones; i++)
		if (cfg->zones[i].siblings == CFG_SIBLINGS_UPDATE)
			return true;
	return false;
}

int px_sib_start(struct px_server *srv, uv_loop_t *loop)
{
	struct px_sib *sib = calloc(1, sizeof(*sib));

	if (sib == NULL)
		return -ENOMEM;
	sib->own.rx = malloc(PX_UDP_DGRAM_MAX);
	if (sib->own.rx == NULL || uv_mutex_init(&sib->mu) != 0) {
		free(sib->own.rx);
		free(sib);
		return -ENOMEM;
	}
	sib->srv = srv;
	sib->loop = loop;
	sib->st = &srv->sib_stats;
	sib->home = (struct px_up_home){.loop = loop, .own = &sib->own};
	uv_timer_init(loop, &sib->tick);
	uv_timer_init(loop, &sib->kick);
	uv_async_init(loop, &sib->wake, wake_cb);
	sib->tick.data = sib;
	sib->kick.data = sib;
	sib->wake.data = sib;
	sib->handles_open = 3;
	srv->sib = sib;
	zones_sync(sib, srv->gen);
	tick_arm(sib);
	if (any_siblings(srv->cfg))
		px_log(CFG_LOG_INFO, XFR,
		       "siblings: keeping A/AAAA/HTTPS in %llu zone(s) by UPDATE",
		       (unsigned long long)atomic_load(&sib->st->zones));
	return 0;
}

void px_sib_reload(struct px_server *srv)
{
	struct px_sib *sib = srv->sib;

	if (sib == NULL || sib->stopping)
		return;
	zones_sync(sib, srv->gen);
	tick_arm(sib);
}

static void handle_closed(uv_handle_t *h)
{
	struct px_sib *sib = h->data;

	sib->handles_open--;
}

void px_sib_stop(struct px_server *srv)
{
	struct px_sib *sib = srv->sib;

	if (sib == NULL || sib->stopping)
		return;
	uv_mutex_lock(&sib->mu);
	sib->stopping = true;
	uv_mutex_unlock(&sib->mu);
	/* Each callback sees UV_ECANCELED and drops its zone reference. */
	px_up_cancel_home(&sib->home);
	for (struct sib_zone *z = sib->zones, *nx; z != NULL; z = nx) {
		nx = z->next;
		z->dead = true;
		sib_zone_unref(z);
	}
	sib->zones = NULL;
	uv_close((uv_handle_t *)&sib->tick, handle_closed);
	uv_close((uv_handle_t *)&sib->kick, handle_closed);
	uv_close((uv_handle_t *)&sib->wake, handle_closed);
}

void px_sib_free(struct px_server *srv)
{
	struct px_sib *sib = srv->sib;

	if (sib == NULL)
		return;
	srv->sib = NULL;
	uv_mutex_destroy(&sib->mu);
	free(sib->own.rx);
	free(sib);
}
