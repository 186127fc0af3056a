/* config/validate.c - what can only be decided once the whole file is read.
 *
 * A [zone NAME] takes [flatten] cname even when [flatten] comes later, an
 * [alias] may name a zone declared further down, and required keys are
 * only missing at the end. Errors carry the line of the key involved, or
 * of the section header, or 0 when the section is absent altogether.
 */
#include <string.h>
#include <unistd.h>

#include "config/internal.h"

/* Upper bound of [server] threads, as in the schema in load.c. */
#define CFG_THREADS_MAX 256

/* threads = 0 means one worker per online CPU, decided now so that
 * struct cfg never holds 0 and every reader sees the same count. */
static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	if (n > CFG_THREADS_MAX)
		return CFG_THREADS_MAX;
	return (unsigned)n;
}

/* A listener on the backend's own address would forward to itself. */
static void check_not_backend(struct cfg__ld *ld, const struct cfg_addr_list *l, const char *key,
                              unsigned line)
{
	const struct cfg_addr *b = &ld->cfg->backend.address;

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].text, b->text) == 0)
			cfg__err(
			        ld, line,
			        "[listen] %s: \"%s\" is the backend address (line %u); allowed: an "
			        "address other than [backend] address",
			        key, l->v[i].text,
			        ld->seen[CFG__SEC_BACKEND][CFG__KEY_BACKEND_ADDRESS]);
	}
}

static void check_ttls(struct cfg__ld *ld)
{
	const unsigned *seen = ld->seen[CFG__SEC_FLATTEN];
	uint64_t lo = ld->cfg->flatten.min_ttl_s, hi = ld->cfg->flatten.max_ttl_s;
	char a[32], b[32];

	if (lo <= hi)
		return;
	cfg__fmt_duration_ms(a, sizeof(a), lo * 1000);
	cfg__fmt_duration_ms(b, sizeof(b), hi * 1000);
	if (seen[CFG__KEY_FLATTEN_MAX_TTL] != 0)
		cfg__err(ld, seen[CFG__KEY_FLATTEN_MAX_TTL],
		         "[flatten] max-ttl: %s is below min-ttl %s (line %u); allowed: min-ttl <= "
		         "max-ttl",
		         b, a, seen[CFG__KEY_FLATTEN_MIN_TTL]);
	else
		cfg__err(ld, seen[CFG__KEY_FLATTEN_MIN_TTL],
		         "[flatten] min-ttl: %s is above max-ttl %s; allowed: min-ttl <= max-ttl",
		         a, b);
}

static void check_aliases(struct cfg__ld *ld)
{
	const struct cfg *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->n_aliases; i++) {
		const struct cfg_alias *a = &cfg->aliases[i];
		bool inside = false;
		for (size_t z = 0; z < cfg->n_zones && !inside; z++)
			inside = cfg__name_in_zone(&a->owner, &cfg->zones[z].name);
		if (inside)
			continue;
		/* The text without its final dot, as the file most likely
		 * spelled it. */
		size_t l = strlen(a->owner.text);
		cfg__err(
		        ld, a->line,
		        "[alias] %.*s: owner is not inside any [zone]; allowed: a name at or below "
		        "the name of a [zone NAME] section",
		        (int)(l > 1 ? l - 1 : l), a->owner.text);
	}
}

void cfg__validate(struct cfg__ld *ld)
{
	struct cfg *cfg = ld->cfg;
	const unsigned *listen = ld->seen[CFG__SEC_LISTEN];
	unsigned backend_line = ld->seen[CFG__SEC_BACKEND][CFG__KEY_BACKEND_ADDRESS];

	if (cfg->server.threads == 0)
		cfg->server.threads = online_cpus();

	for (size_t i = 0; i < cfg->n_zones; i++) {
		if (ld->zone_cname_line[i] == 0)
			cfg->zones[i].cname = cfg->flatten.cname;
	}

	/* A key that was present but wrong has its own error already; these
	 * checks are about keys that are absent. */
	if (listen[CFG__KEY_LISTEN_UDP] == 0 && listen[CFG__KEY_LISTEN_TCP] == 0)
		cfg__err(ld, ld->sec_line[CFG__SEC_LISTEN],
		         "[listen]: no udp or tcp address; allowed: udp = ADDRESS[, ADDRESS...] "
		         "and/or tcp = ADDRESS[, ADDRESS...]");
	if (backend_line == 0) {
		cfg__err(ld, ld->sec_line[CFG__SEC_BACKEND],
		         "[backend] address: missing; allowed: an address like 127.0.0.1:5300");
	} else if (cfg->backend.address.salen != 0) {
		check_not_backend(ld, &cfg->listen.udp, "udp", listen[CFG__KEY_LISTEN_UDP]);
		check_not_backend(ld, &cfg->listen.tcp, "tcp", listen[CFG__KEY_LISTEN_TCP]);
	}
	check_ttls(ld);
	check_aliases(ld);
}
