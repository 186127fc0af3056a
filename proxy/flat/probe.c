/* proxy/flat/probe.c - ANAME presence probes.
 *
 * For a name whose presence the cache does not know, one query per ANAME
 * type goes to BIND in parallel with the client's query; the verdict
 * fills the presence cache and tells the waiting query its target.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/build.h"
#include "codec/name.h"
#include "codec/scan.h"
#include "proxy/flat/flat_int.h"
#include "proxy/flat/upstream.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* --- probes ----------------------------------------------------------- */

struct probe_req {
	struct px_worker *w;
	struct px_gen *g; /* held: the presence cache it fills */
	uint32_t token;
	uint16_t id;
	uint16_t type;
	uint8_t name[CODEC_MAX_NAME];
	size_t len;
};

static void probes_settled(struct px_worker *w, struct px_txn *t)
{
	struct px_flat *fl = t->flat.fl;

	if (fl->probes_pending > 0 || !fl->resp_waiting)
		return;
	fl->resp_waiting = false;
	if (!px_flat_decide(w, t, fl->resp, fl->resp_len) && t->busy)
		px_flat_relay(w, t);
}

static int probe_cb(void *arg, int status, const uint8_t *msg, size_t len)
{
	struct probe_req *r = arg;
	struct px_worker *w = r->w;
	struct flat_cache_key key;
	union flat_cache_value val;
	struct flat_aname an;

	if (status == 0 &&
	    !codec_answers_question(msg, len, r->id, r->name, r->len, r->type, CODEC_CLASS_IN))
		return PX_UP_WAIT;
	if (status == UV_ETIMEDOUT)
		PX_STAT_INC(&w->stats, backend_probe_timeouts);
	an.state = FLAT_ANAME_UNKNOWN;
	if (status == 0)
		px_flat_aname_verdict(msg, len, r->name, r->len, r->type, &an);
	memset(&val, 0, sizeof(val));
	px_flat_key_init(&key, r->name, r->len, r->type, FLAT_KEY_PRESENCE);
	if (an.state == FLAT_ANAME_PRESENT) {
		val.presence.present = true;
		memcpy(val.presence.target, an.target, an.target_len);
		val.presence.target_len = (uint8_t)an.target_len;
		val.presence.ttl = an.ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
		/* A name that owns an ANAME is never answered from the answer
		 * caches: drop what an earlier verdict let them keep. */
		px_flat_drop_answers(w, r->name, r->len);
	} else if (an.state == FLAT_ANAME_ABSENT && an.ttl > 0) {
		val.presence.ttl = an.ttl;
		flat_cache_put(r->g->cache, &key, &val, px_now(w));
	} else if (an.state == FLAT_ANAME_INVALID) {
		PX_STAT_INC(&w->stats, aname_invalid);
		char name[CODEC_MAX_NAME * 4 + 1];
		codec_name_to_text(r->name, r->len, name, sizeof(name));
		px_log_rl(CFG_LOG_WARNING, BACKEND,
		          "ignoring the TYPE%u record at %s: its RDATA must be exactly one "
		          "uncompressed domain name",
		          r->type, name);
	}

	struct px_txn *t = px_flat_token_txn(w, r->token);
	if (t != NULL && t->flat.fl->probes_pending > 0) {
		struct px_flat *fl = t->flat.fl;
		if (an.state == FLAT_ANAME_ABSENT)
			px_flat_note_absent(t, an.ttl);
		else if (an.state == FLAT_ANAME_INVALID)
			px_flat_note_absent(t, 0); /* treated as absent, never kept */
		if (an.state == FLAT_ANAME_PRESENT && !fl->have_target) {
			memcpy(fl->target, an.target, an.target_len);
			fl->target_len = an.target_len;
			fl->aname_ttl = an.ttl;
			fl->aname_type = r->type;
			fl->have_target = true;
		}
		fl->probes_pending--;
		probes_settled(w, t);
	}
	px_gen_release(w, r->g);
	free(r);
	return PX_UP_DONE;
}

void px_flat_probe_send(struct px_worker *w, struct px_txn *t, const uint8_t *name, size_t len,
                        uint16_t type)
{
	struct probe_req *r = malloc(sizeof(*r));
	uint8_t q[CODEC_QUERY_MAX];

	if (r == NULL) {
		PX_STAT_INC(&w->stats, aname_probe_unsent);
		return;
	}
	r->w = w;
	r->token = px_flat_token(t);
	r->id = px_up_random_id();
	r->type = type;
	r->g = px_gen_hold(w, t->g);
	memcpy(r->name, name, len);
	codec_name_lower(r->name, len);
	r->len = len;
	size_t qlen = codec_build_query(q, r->id, false, r->name, r->len, type);
	if (px_up_query(w, (const struct sockaddr *)&w->cfg->backend.address.sa, q, qlen, false,
	                w->cfg->backend.timeout_ms, probe_cb, r) < 0) {
		PX_STAT_INC(&w->stats, aname_probe_unsent);
		px_gen_release(w, r->g);
		free(r);
		return;
	}
	PX_STAT_INC(&w->stats, aname_probes); /* what went out, not what was meant to */
	t->flat.fl->probes_pending++;
}
