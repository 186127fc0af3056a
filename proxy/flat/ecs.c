/* proxy/flat/ecs.c - the client subnet a chase carries ([resolver] ecs).
 *
 * RFC 7871 from a forwarder's side: the subnet sent to the resolver is
 * the client's own option cut to ecs-prefix, or, when it sent none, the
 * client's address (after PROXY v2) cut likewise; a client that sent
 * source prefix 0 asked that nothing be sent (7.1.2). The answer echoes
 * the client's option only to a client that sent one (7.2.1). BIND never
 * sees any of this: the client's query goes to it unchanged, and chases
 * to names in our own zones carry no option (flatten/chase.c).
 */
#include <stdlib.h>
#include <string.h>

#include "codec/ecs.h"
#include "proxy/flat/flat_int.h"

int px_flat_ecs_of(const struct px_txn *t, struct px_flat_ecs *out)
{
	const struct cfg *cfg = t->g->cfg;
	const unsigned *pfx = cfg->resolver.ecs_prefix;

	memset(out, 0, sizeof(*out));
	if (!cfg->resolver.ecs)
		return 0;
	out->on = true;
	if (t->qv.has_opt) {
		int rc = codec_ecs_find(t->q, &t->qv, true, &out->client);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			out->echo = true;
			out->send = out->client;
			if (out->send.source == 0) {
				/* Opt-out: the client's privacy wins over geography. */
				memset(&out->send, 0, sizeof(out->send));
				return 0;
			}
			codec_ecs_cut(&out->send,
			              pfx[out->send.family == CODEC_ECS_FAMILY_IP4 ? 0 : 1]);
			if (out->send.source == 0)
				memset(&out->send, 0, sizeof(out->send));
			return 0;
		}
	}
	const struct sockaddr *sa = px_txn_client_addr(&t->cl);
	if (sa == NULL || codec_ecs_from_sockaddr(sa, pfx[0], pfx[1], &out->send) != 0 ||
	    out->send.source == 0)
		memset(&out->send, 0, sizeof(out->send));
	return 0;
}

int px_flat_get(struct px_worker *w, struct flat_cache *c, struct flat_cache_key *key,
                const struct px_flat_ecs *e, struct flat_cache_hit *hit, struct flat_copy_ref *ref)
{
	const struct codec_ecs *client = NULL;

	if (e != NULL && e->on) {
		if (e->send.family == 0)
			flat_cache_key_scope(key, FLAT_CACHE_ECS_NONE, 0, NULL);
		else
			client = &e->send;
	}
	return flat_copy_get(px_flat_copy(w), c, key, client, px_now(w), hit, ref);
}

const struct codec_ecs *px_flat_ecs_echo(const struct px_flat_ecs *e, uint8_t scope,
                                         struct codec_ecs *buf)
{
	if (e == NULL || !e->echo)
		return NULL;
	*buf = e->client;
	/* A scope is never more specific than what the client revealed; an
	 * opt-out client (source 0) gets scope 0 (7.2.1). */
	buf->scope = scope < buf->source ? scope : buf->source;
	return buf;
}
