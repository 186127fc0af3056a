/* proxy/backend/xfr.c - zone transfers (AXFR, IXFR) relayed message by
 * message from the backend's TCP connection to the client, following the
 * SOA records to know where the transfer ends.
 */
#include <stdbool.h>
#include <stdint.h>

#include "codec/name.h"
#include "codec/rr.h"
#include "proxy/backend/backend.h"
#include "proxy/backend/internal.h"
#include "proxy/engine/txn.h"
#include "proxy/engine/worker.h"

/* Reads the serial of an SOA RR (RFC 1035 3.3.13: two names, then it). */
static bool soa_serial(const uint8_t *msg, size_t len, const struct codec_rr *rr, uint32_t *serial)
{
	size_t off = rr->rdata_off, end;

	if (codec_name_skip(msg, len, off, &end) < 0)
		return false;
	if (codec_name_skip(msg, len, end, &end) < 0)
		return false;
	if (end + 4 > (size_t)rr->rdata_off + rr->rdlen)
		return false;
	*serial = codec_get_u32(msg + end);
	return true;
}

/* Follows a zone transfer (RFC 5936 2.2, RFC 1995 4): it ends with the
 * SOA it started with. An IXFR answer of one SOA (client up to date) ends
 * at once. Returns true when msg is the last message. */
static bool xfr_step(struct px_txn *t, const uint8_t *msg, size_t len)
{
	struct codec_view v;
	struct codec_rr_iter it;
	struct codec_rr rr;
	bool last_is_final_soa = false;
	unsigned n = 0;

	t->be.xfr_msgs++;
	if (codec_hdr_rcode(msg) != CODEC_RCODE_NOERROR)
		return true;
	if (codec_scan(msg, len, &v) < 0)
		return true;
	codec_rr_iter_init(&it, msg, len, &v, CODEC_SEC_ANSWER);
	while (codec_rr_next(&it, &rr) == 1) {
		uint32_t serial;
		bool first = !t->be.xfr_soa_seen && n == 0;
		n++;
		last_is_final_soa = false;
		if (rr.type != CODEC_TYPE_SOA || !soa_serial(msg, len, &rr, &serial))
			continue;
		if (first) {
			t->be.xfr_soa_seen = true;
			t->be.xfr_soa_serial = serial;
		} else if (serial == t->be.xfr_soa_serial) {
			last_is_final_soa = true;
		}
	}
	if (t->be.xfr_msgs == 1 && n == 1 && t->be.xfr_soa_seen)
		return true;
	if (n == 0 && t->be.xfr_msgs == 1)
		return true; /* nothing to transfer: an empty answer ends it */
	return last_is_final_soa;
}

void px_xfr_relay(struct px_worker *w, struct px_txn *t, const uint8_t *msg, size_t len)
{
	bool done = xfr_step(t, msg, len);

	px_txn_reply(w, t, msg, len);
	if (done)
		px_txn_done(w, t);
	else
		px_txn_arm(w, t, w->cfg->backend.timeout_ms);
}

bool px_xfr_broken(struct px_worker *w, struct px_txn *t)
{
	if (!t->xfr || t->be.xfr_msgs == 0)
		return false;
	/* Part of the transfer went out: only a close tells the client that
	 * the rest will not come. */
	px_txn_cut(w, t);
	return true;
}
