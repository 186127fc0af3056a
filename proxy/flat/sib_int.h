/* proxy/flat/sib_int.h - sibling upkeep's own structs, shared by
 * siblings.c (zones, timing, NOTIFY, reload, explain), sib_xfr.c
 * (transfers) and sib_upd.c (chases and UPDATEs). Main thread only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "codec/tsig.h"
#include "config/config.h"
#include "flatten/sibzone.h"
#include "proxy/flat/flat.h"
#include "proxy/flat/siblings.h"
#include "proxy/flat/upstream.h"

/* The tick: owners due for a chase, transfers and batches due. 10 000
 * owners cost a few hundred microseconds a tick. */
#define SIB_TICK_MS 250
/* Chases of all zones at once. */
#define SIB_CHASES_MAX 32
/* Owner refreshes started per second, all zones: every owner family
 * once per SIB_SPREAD_S, at least SIB_RATE_MIN. The first round of a
 * large zone is spread over that window instead of hitting the
 * resolvers in one burst, and since each owner comes back one TTL
 * after its own refresh, the spread lasts. */
#define SIB_SPREAD_S 10
#define SIB_RATE_MIN 400
/* After a target's TTL ends, wait this much more before the refresh:
 * a resolver's copy may still live its last second, and a refresh in
 * it would learn nothing and come back min-ttl later. */
#define SIB_EXPIRY_MARGIN_MS 1000
/* A change waits this long for others, so that one UPDATE (one serial,
 * one round of signing and NOTIFY) carries a burst of changes. */
#define SIB_BATCH_MS 1000
/* Between the end of one UPDATE of a zone and the next. */
#define SIB_UPD_GAP_MS 1000
/* Retry intervals after a failure (chase, transfer, UPDATE): doubling. */
#define SIB_BACKOFF_MIN_S 5
#define SIB_BACKOFF_MAX_S 300
#define SIB_XFR_TIMEOUT_MS 60000
#define SIB_UPD_TIMEOUT_MS 10000
/* The SOA refresh fallback is clamped to this range. */
#define SIB_REFRESH_MIN_S 30
#define SIB_REFRESH_MAX_S 3600
/* A family whose chase is in flight (track.next_ms). */
#define SIB_CHASING UINT64_MAX
/* An own-zone target whose chase a worker holds: look again after this. */
#define SIB_PENDING_MS 200

struct px_gen;
struct px_server;
struct sib_zone;

/* The UPDATE lanes of a zone: address changes (A, AAAA) and HTTPS
 * changes go out in separate messages, each lane with its own queue,
 * message in flight and backoff. An UPDATE is all or nothing (RFC 2136
 * 3.4), and a zone whose update-policy grants the key A and AAAA only
 * (what these docs asked before HTTPS siblings) refuses every message
 * that carries an HTTPS change: in one lane, that refusal would hold back
 * the addresses too, and a sibling that must not go stale. */
enum sib_lane_id {
	SIB_LANE_ADDRS = 0,
	SIB_LANE_HTTPS = 1,
	SIB_LANES = 2,
};

struct sib_lane {
	struct sib_zone *z;
	const char *what;          /* "addresses" or "HTTPS", for logs */
	struct flat_sib_change *q; /* queued, oldest first */
	size_t nq, capq;
	uint64_t batch_due_ms;
	bool busy;
	size_t taken; /* changes the UPDATE in flight carries */
	uint16_t id;
	uint64_t due_ms; /* not before: the gap, or the backoff */
	uint32_t backoff_s;
	char err[160]; /* last failure, logged once until it changes */
	struct codec_tsig_key key;
	struct codec_tsig_verify uv;
};

/* "A", "AAAA" or "HTTPS", for logs and explain. */
static inline const char *sib_fam_name(enum flat_sib_fam fam)
{
	return fam == FLAT_SIB_A ? "A" : fam == FLAT_SIB_AAAA ? "AAAA" : "HTTPS";
}

/* The lane of a family's changes. */
static inline enum sib_lane_id sib_lane_of(enum flat_sib_fam fam)
{
	return fam == FLAT_SIB_HTTPS ? SIB_LANE_HTTPS : SIB_LANE_ADDRS;
}

struct sib_zone {
	struct px_sib *sib;
	struct sib_zone *next;
	unsigned refs; /* the list's, and each chase, transfer and UPDATE in flight */
	bool dead;     /* out of the configuration: ends when refs does */
	uint8_t apex[CODEC_MAX_NAME];
	size_t apex_len;
	char text[CODEC_MAX_NAME * 4 + 1];
	uint16_t types[CFG_MAX_ANAME_TYPES];
	unsigned n_types;
	struct flat_sibzone *tab;

	/* transfers (sib_xfr.c) */
	bool loaded;    /* a transfer was committed */
	bool xfr_busy;  /* a transfer is in flight */
	bool xfr_ixfr;  /* ... and it is an IXFR */
	bool want_xfr;  /* NOTIFY or the refresh: IXFR */
	bool want_axfr; /* a full transfer is needed */
	bool capped;    /* the last owner scan stopped at SIB_CHASES_MAX */
	uint64_t xfr_due_ms;
	uint64_t soa_due_ms;
	uint64_t xfr_ok_ms; /* last transfer that ended well */
	uint32_t xfr_backoff_s;
	char xfr_err[160]; /* last failure, logged once until it changes */
	struct flat_sibxfr *x;
	struct codec_tsig_key xkey; /* the transfer's key (tv borrows it) */
	struct codec_tsig_verify tv;

	/* changes and UPDATEs (sib_upd.c) */
	struct sib_lane lane[SIB_LANES];

	char last_error[320]; /* for explain: the last thing that went wrong */
	uint64_t last_error_ms;
};

struct px_sib {
	struct px_server *srv;
	uv_loop_t *loop;
	uv_timer_t tick;
	uv_timer_t kick; /* a scan soon after a chase ended while scans were capped */
	uv_async_t wake;
	uv_mutex_t mu; /* guards posted[], n_posted, stopping for other threads */
	struct {
		uint8_t name[CODEC_MAX_NAME];
		uint8_t len;
	} posted[16];
	unsigned n_posted;
	bool posted_all; /* posted[] overflowed: every zone */
	bool stopping;
	unsigned handles_open;
	struct px_own_queries own;
	struct px_up_home home;
	struct sib_zone *zones;
	unsigned chases;
	uint64_t budget; /* refreshes that may still start this tick */
	struct px_sib_stats *st;
};

/* siblings.c */
void sib_zone_unref(struct sib_zone *z);
/* The current configuration; NULL once stopping. */
struct px_gen *sib_gen(struct px_sib *sib);
/* The key of the current configuration, as codec/tsig wants it; false
 * when there is none (logged by the caller). */
bool sib_key(const struct cfg *cfg, struct codec_tsig_key *key);
/* Records full as the zone's last error (explain) and logs it when why
 * differs from *last: a lasting refusal is one line, not one per retry. */
void sib_note_error(struct sib_zone *z, char *last, size_t lastlen, const char *why,
                    const char *full);
uint64_t sib_now(const struct px_sib *sib);
/* A retry interval that doubles from SIB_BACKOFF_MIN_S to _MAX_S. */
uint32_t sib_backoff_next(uint32_t cur);

/* A capped zone's owners are scanned again from the loop, soon (never
 * from inside a chase's callback: a chase may end before it starts). */
void sib_kick(struct px_sib *sib);

/* Signs msg[0..len) (cap bytes of room) with key, readies tv for the
 * answer and sends it to cfg's backend over TCP, holding the zone until
 * cb(arg, ...) ends. 0, or a negative errno (nothing in flight, tv ended). */
int sib_send_signed(struct sib_zone *z, const struct cfg *cfg, const struct codec_tsig_key *key,
                    struct codec_tsig_verify *tv, uint8_t *msg, size_t len, size_t cap,
                    uint64_t timeout_ms, px_up_cb *cb, void *arg);

/* sib_xfr.c */
void sib_xfr_start(struct sib_zone *z);

/* sib_upd.c */
/* Readies the zone's lanes (a new zone). */
void sib_upd_init(struct sib_zone *z);
void sib_owners_step(struct sib_zone *z, uint64_t now);
void sib_upd_step(struct sib_zone *z, uint64_t now);
/* Drops the queues (the zone ends). */
void sib_upd_clear(struct sib_zone *z);

#define STAT_ADD(sib, field, n)                                                                    \
	atomic_fetch_add_explicit(&(sib)->st->field, (n), memory_order_relaxed)
