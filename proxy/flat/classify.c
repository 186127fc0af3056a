/* proxy/flat/classify.c - the rules that turn BIND's answer into a
 * decision, and the TTL arithmetic of a flattened answer.
 *
 * Shared by the query path (decide.c, direct.c, answer.c) and by
 * apexctl explain (ops/explain.c), so that what explain says is what the
 * next query does. Pure functions: no I/O, no cache, any thread.
 */
#include <string.h>

#include "flatten/rewrite.h"
#include "flatten/zones.h"
#include "proxy/flat/flat.h"

static enum flat_cname_mode cname_mode(enum cfg_cname_mode m)
{
	return m == CFG_CNAME_ALL    ? FLAT_CNAME_ALL
	       : m == CFG_CNAME_NONE ? FLAT_CNAME_NONE
	                             : FLAT_CNAME_APEX;
}

void px_flat_classify(struct flat_policy_in *in, const struct cfg_zone *z, bool is_apex,
                      const struct px_flat_owner *own, struct flat_policy_out *po)
{
	in->mode = cname_mode(z->cname);
	in->is_apex = is_apex;
	in->target = own->target;
	in->target_len = own->target != NULL ? own->target_len : 0;
	in->target_is_alias = own->target != NULL && own->is_alias;
	flat_policy_inspect(in, po);
}

const struct cfg_alias *px_flat_alias_of(const struct cfg *cfg,
                                         const struct flat_zones *alias_owners, const uint8_t *name,
                                         size_t len)
{
	size_t idx;

	if (alias_owners == NULL || flat_zones_get(alias_owners, name, len, &idx) != 0)
		return NULL;
	return &cfg->aliases[idx];
}

void px_flat_aname_verdict(const uint8_t *msg, size_t len, const uint8_t *name, size_t name_len,
                           uint16_t type, struct flat_aname *an)
{
	struct codec_view v;

	an->state = FLAT_ANAME_UNKNOWN;
	if (codec_scan(msg, len, &v) == 0)
		flat_aname_parse(msg, len, &v, name, name_len, type, an);
}

uint32_t px_flat_ttl_clamp(const struct cfg *cfg, uint32_t ttl)
{
	return flat_ttl_final(ttl, (uint32_t)cfg->flatten.min_ttl_s,
	                      (uint32_t)cfg->flatten.max_ttl_s);
}

uint32_t px_flat_chain_ttl(const struct flat_policy_out *po, const struct px_flat_owner *own)
{
	uint32_t ttl = po->chain_ttl;

	if (own->target != NULL && !own->is_alias && own->aname_ttl < ttl)
		ttl = own->aname_ttl;
	return ttl;
}

uint32_t px_flat_answer_ttl(const struct cfg *cfg, uint32_t target_ttl, uint32_t chain_ttl)
{
	return px_flat_ttl_clamp(cfg, target_ttl < chain_ttl ? target_ttl : chain_ttl);
}
