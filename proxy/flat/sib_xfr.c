/* proxy/flat/sib_xfr.c - transfers of a siblings zone from the backend.
 *
 * AXFR at first, IXFR afterwards (on NOTIFY and at the SOA refresh),
 * each request signed with the update key and every answer message
 * verified (RFC 8945 5.3.1: unsigned messages in between are allowed,
 * the last must be signed). What the transfer shows is applied to the
 * owner table only when it is complete (flatten/sibzone.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "codec/text.h"
#include "codec/wire.h"
#include "proxy/daemon/gen.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/sib_int.h"
#include "proxy/ops/log.h"

/* A transfer request: header, question, the SOA of an IXFR (two names
 * and 20 bytes), and the TSIG RR. */
#define SIB_XFR_Q_MAX (CODEC_HDR_LEN + 3 * CODEC_MAX_NAME + 64 + CODEC_TSIG_RR_MAX)

static void xfr_end(struct sib_zone *z)
{
	flat_sibxfr_free(z->x);
	z->x = NULL;
	codec_tsig_verify_end(&z->tv);
	z->xfr_busy = false;
}

static void xfr_fail(struct sib_zone *z, const char *why)
{
	char err[320];
	enum px_sib_xfr_kind kind = z->xfr_ixfr ? PX_SIB_IXFR : PX_SIB_AXFR;

	STAT_ADD(z->sib, transfers[kind][PX_SIB_XFR_FAILED], 1);
	z->xfr_backoff_s = sib_backoff_next(z->xfr_backoff_s);
	z->xfr_due_ms = sib_now(z->sib) + (uint64_t)z->xfr_backoff_s * 1000;
	/* An IXFR that failed is retried as AXFR: the failure may be ours
	 * (a diff we could not follow). */
	if (z->xfr_ixfr)
		z->want_axfr = true;
	snprintf(err, sizeof(err), "%s failed: %s; retry in %u s", z->xfr_ixfr ? "IXFR" : "AXFR",
	         why, z->xfr_backoff_s);
	xfr_end(z);
	sib_note_error(z, z->xfr_err, sizeof(z->xfr_err), why, err);
}

static uint32_t clamp_refresh(uint32_t s)
{
	if (s < SIB_REFRESH_MIN_S)
		return SIB_REFRESH_MIN_S;
	return s > SIB_REFRESH_MAX_S ? SIB_REFRESH_MAX_S : s;
}

static void xfr_committed(struct sib_zone *z, bool ixfr)
{
	uint64_t now = sib_now(z->sib);
	size_t n = flat_sibzone_count(z->tab), fresh = 0;

	for (size_t i = 0; i < n; i++) {
		struct flat_sib_owner *o = flat_sibzone_at(z->tab, i);
		if (!o->fresh)
			continue;
		o->fresh = false;
		fresh++;
		for (int f = 0; f < FLAT_SIB_FAMS; f++)
			if (o->track[f].next_ms != SIB_CHASING && !o->track[f].queued)
				o->track[f].next_ms = 0;
	}
	const struct flat_sib_soa *soa = flat_sibzone_soa(z->tab);
	if (!z->loaded || fresh > 0 || px_log_enabled(CFG_LOG_DEBUG))
		px_log(CFG_LOG_INFO, XFR, "siblings: zone %s: %s serial %u, %zu owner(s), %zu new",
		       z->text, ixfr ? "IXFR to" : "AXFR at", soa->serial, n, fresh);
	z->loaded = true;
	z->xfr_ok_ms = now;
	z->xfr_backoff_s = 0;
	z->xfr_err[0] = '\0';
	z->soa_due_ms = now + (uint64_t)clamp_refresh(soa->refresh) * 1000;
}

/* One message of the answer stream: verified, then fed to the table. */
static int xfr_message(struct sib_zone *z, const uint8_t *msg, size_t len)
{
	char why[128], buf[16];
	size_t body;
	int rc = codec_tsig_verify_next(&z->tv, msg, len, (uint64_t)time(NULL), &body);
	enum px_sib_xfr_kind kind = z->xfr_ixfr ? PX_SIB_IXFR : PX_SIB_AXFR;

	if (rc < 0) {
		unsigned rcode = len >= CODEC_HDR_LEN ? (msg[3] & 0x0f) : 0;
		if (rc == CODEC_TSIG_E_SERVER)
			snprintf(why, sizeof(why), "the backend rejected the key: %s, RCODE %s",
			         codec_tsig_error_name(z->tv.server_error),
			         codec_rcode_text(rcode, buf, sizeof(buf)));
		else
			snprintf(why, sizeof(why), "answer fails TSIG: %s (RCODE %s)",
			         codec_tsig_status_text(rc),
			         codec_rcode_text(rcode, buf, sizeof(buf)));
		xfr_fail(z, why);
		return PX_UP_DONE;
	}
	rc = flat_sibxfr_feed(z->x, msg, len);
	switch (rc) {
	case FLAT_XFR_MORE:
		return PX_UP_WAIT;
	case FLAT_XFR_DONE:
		if (!codec_tsig_verify_end(&z->tv)) {
			xfr_fail(z, "its last message was not signed");
			return PX_UP_DONE;
		}
		if (flat_sibxfr_commit(z->x) != 0) {
			xfr_fail(z, "out of memory");
			return PX_UP_DONE;
		}
		STAT_ADD(z->sib, transfers[kind][PX_SIB_XFR_OK], 1);
		if (!z->xfr_ixfr)
			z->want_axfr = false;
		xfr_committed(z, z->xfr_ixfr);
		xfr_end(z);
		return PX_UP_DONE;
	case FLAT_XFR_UPTODATE:
		STAT_ADD(z->sib, transfers[kind][PX_SIB_XFR_UPTODATE], 1);
		z->soa_due_ms = sib_now(z->sib) +
		                (uint64_t)clamp_refresh(flat_sibzone_soa(z->tab)->refresh) * 1000;
		z->xfr_backoff_s = 0;
		xfr_end(z);
		return PX_UP_DONE;
	case FLAT_XFR_NEED_AXFR:
		z->want_axfr = true;
		z->xfr_due_ms = 0;
		STAT_ADD(z->sib, transfers[kind][PX_SIB_XFR_OK], 1);
		xfr_end(z);
		return PX_UP_DONE;
	case FLAT_XFR_E_RCODE:
		snprintf(
		        why, sizeof(why), "the backend answered %s%s",
		        codec_rcode_text(flat_sibxfr_rcode(z->x), buf, sizeof(buf)),
		        flat_sibxfr_rcode(z->x) == CODEC_RCODE_REFUSED
		                ? " (does the zone allow-transfer { key ...; } for the update key?)"
		                : "");
		break;
	case FLAT_XFR_E_SERIAL:
		snprintf(why, sizeof(why), "the IXFR does not follow from serial %u",
		         flat_sibzone_soa(z->tab)->serial);
		break;
	case FLAT_XFR_E_NOMEM:
		snprintf(why, sizeof(why), "out of memory");
		break;
	default:
		snprintf(why, sizeof(why), "malformed answer after %zu records (%d)",
		         flat_sibxfr_records(z->x), rc);
		break;
	}
	xfr_fail(z, why);
	return PX_UP_DONE;
}

static int xfr_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct sib_zone *z = arg;
	int rc = PX_UP_DONE;

	if (z->dead || status == UV_ECANCELED) {
		xfr_end(z);
	} else if (status < 0) {
		xfr_fail(z, status == UV_ETIMEDOUT ? "the backend did not answer in time"
		                                   : uv_strerror(status));
	} else {
		rc = xfr_message(z, msg, len);
	}
	if (rc == PX_UP_DONE)
		sib_zone_unref(z);
	return rc;
}

void sib_xfr_start(struct sib_zone *z)
{
	struct px_gen *g = sib_gen(z->sib);
	uint8_t q[SIB_XFR_Q_MAX];

	if (g == NULL)
		return;
	if (!sib_key(g->cfg, &z->xkey)) {
		sib_note_error(z, z->xfr_err, sizeof(z->xfr_err), "no key",
		               "no usable [backend] update-key");
		z->xfr_due_ms = sib_now(z->sib) + SIB_BACKOFF_MAX_S * 1000ull;
		return;
	}
	bool ixfr = z->loaded && !z->want_axfr;
	if (flat_sibxfr_begin(&z->x, z->tab, ixfr) != 0)
		return;
	z->xfr_ixfr = flat_sibxfr_is_ixfr(z->x);
	ssize_t n = flat_sibxfr_query(z->x, px_up_random_id(), q, sizeof(q) - CODEC_TSIG_RR_MAX);
	if (n <= 0) {
		flat_sibxfr_free(z->x);
		z->x = NULL;
		return;
	}
	z->xfr_busy = true;
	z->want_xfr = false;
	int rc = sib_send_signed(z, g->cfg, &z->xkey, &z->tv, q, (size_t)n, sizeof(q),
	                         SIB_XFR_TIMEOUT_MS, xfr_cb, z);
	if (rc < 0)
		xfr_fail(z, rc == -EBUSY ? "too many own queries in flight" : "cannot send");
}
