/* tests/fuzz/fuzz_cfg_load.c - cfg_load_mem() on arbitrary bytes.
 *
 * Whatever the input, the load must return 0 with a cfg or a negative
 * errno with a report, never crash, leak or read out of bounds. Both
 * outcomes are checked for their invariants, so a fuzzer finding a
 * config that loads but breaks the struct's promises also stops.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct cfg *cfg)
{
	/* The promises struct cfg makes to the proxy. */
	if (cfg->server.threads == 0 || cfg->server.threads > 256)
		abort();
	if (cfg->listen.udp.n + cfg->listen.tcp.n + cfg->listen.dot.n + cfg->listen.doh.n == 0 ||
	    cfg->backend.address.salen == 0)
		abort();
	if (cfg->flatten.min_ttl_s > cfg->flatten.max_ttl_s)
		abort();
	if (cfg->flatten.n_aname_types == 0 || cfg->flatten.n_aname_types > CFG_MAX_ANAME_TYPES)
		abort();
	/* siblings = update anywhere needs a key that was read whole. */
	const struct cfg_tsig_key *key = &cfg->backend.update_key;
	if (key->present && (key->secret_len < 1 || key->secret_len > CFG_TSIG_SECRET_MAX))
		abort();
	if (cfg->flatten.siblings == CFG_SIBLINGS_UPDATE && !key->present)
		abort();
	for (size_t i = 0; i < cfg->n_zones; i++) {
		const struct cfg_name *n = &cfg->zones[i].name;
		if (n->wire_len < 2 || n->wire[n->wire_len - 1] != 0 || strlen(n->text) > 255)
			abort();
		if (cfg->zones[i].siblings == CFG_SIBLINGS_UPDATE && !key->present)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;
	int rc = cfg_load_mem("fuzz.ini", (const char *)data, size, &cfg, &err);

	if (rc == 0) {
		if (cfg == NULL || err.count != 0)
			abort();
		check(cfg);
	} else if (cfg != NULL || err.count == 0 ||
	           memchr(err.msg, '\0', sizeof(err.msg)) == NULL) {
		abort();
	}
	cfg_free(cfg);
	return 0;
}
