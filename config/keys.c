/* config/keys.c - the schema of the INI file: every section and key, the
 * type of its value, where it goes in struct cfg, its range and default.
 *
 * This table is the one source of truth for key names and ranges: the
 * reader and the setters consult it rather than knowing keys themselves,
 * and cfg_keys_foreach() hands it out, so that tests/docs/ can hold
 * docs/configuration.md, apexd.ini(5) and the example file to it. A key
 * of CONFIG.md whose feature is not built yet can stay in the table as
 * LATER: the file then gets a clear "not supported yet", and the docs
 * still list the key.
 */
#include <stdio.h>

#include "config/internal.h"

#define OFF(field) offsetof(struct cfg, field)
#define SIZE(field) sizeof(((struct cfg *)0)->field)
/* One line: clang-format would spread this initializer over four. */
/* clang-format off */
#define LATER(name) {name, CFG__T_LATER, 0, 0, 0}
/* clang-format on */

/* Second, minute, hour and day in the unit of the field. */
#define S_MS 1000ull
#define H_MS 3600000ull
#define D_S 86400ull
#define SIZE_M (1ull << 20)
#define SIZE_G (1ull << 30)

/* Order matters twice: "allowed:" lists the keys in this order, and
 * internal.h names some indexes (CFG__KEY_*) for validate.c; those keys
 * are placed at their index so that the two cannot drift apart. */
static const struct cfg__key server_keys[] = {
        {"threads", CFG__T_UINT, OFF(server.threads), 0, 256},
        {"log-level", CFG__T_LOGLEVEL, OFF(server.log_level), 0, 0},
        {"user", CFG__T_USER, OFF(server.user), 0, SIZE(server.user)},
        {"control", CFG__T_SOCKPATH, OFF(server.control), 0, SIZE(server.control)},
        {"query-log", CFG__T_LOGFILE, OFF(server.query_log), 0, SIZE(server.query_log)},
        [CFG__KEY_SERVER_DNSTAP] = {"dnstap", CFG__T_DNSTAP, OFF(server.dnstap), 0,
                                    SIZE(server.dnstap)},
        [CFG__KEY_SERVER_DNSTAP_CHASES] = {"dnstap-chases", CFG__T_BOOL, OFF(server.dnstap_chases),
                                           0, 0},
};

/* For the char[] types, max is the size of the array. */
static const struct cfg__key listen_keys[] = {
        [CFG__KEY_LISTEN_UDP] = {"udp", CFG__T_ADDRS, OFF(listen.udp), 0, 0},
        [CFG__KEY_LISTEN_TCP] = {"tcp", CFG__T_ADDRS, OFF(listen.tcp), 0, 0},
        [CFG__KEY_LISTEN_DOT] = {"dot", CFG__T_ADDRS, OFF(listen.dot), 0, 0},
        [CFG__KEY_LISTEN_DOH] = {"doh", CFG__T_ADDRS, OFF(listen.doh), 0, 0},
        {"doh-path", CFG__T_URLPATH, OFF(listen.doh_path), 0, SIZE(listen.doh_path)},
        {"tcp-idle-timeout", CFG__T_MS, OFF(listen.tcp_idle_timeout_ms), 1 * S_MS, 1 * H_MS},
        {"max-connections", CFG__T_UINT, OFF(listen.max_connections), 1, 1000000},
        [CFG__KEY_LISTEN_METRICS] = {"metrics", CFG__T_ADDR, OFF(listen.metrics), 0, 0},
        {"proxy-protocol-from", CFG__T_PREFIXES, OFF(listen.proxy_from), 0, CFG_PREFIXES_MAX},
};

static const struct cfg__key tls_keys[] = {
        [CFG__KEY_TLS_CERTIFICATE] = {"certificate", CFG__T_FILE, OFF(tls.certificate), 0,
                                      SIZE(tls.certificate)},
        [CFG__KEY_TLS_PRIVATE_KEY] = {"private-key", CFG__T_FILE, OFF(tls.private_key), 0,
                                      SIZE(tls.private_key)},
        {"min-version", CFG__T_TLSVER, OFF(tls.min_version), 0, 0},
        {"ocsp-response", CFG__T_FILE, OFF(tls.ocsp_response), 0, SIZE(tls.ocsp_response)},
};

static const struct cfg__key backend_keys[] = {
        [CFG__KEY_BACKEND_ADDRESS] = {"address", CFG__T_ADDR, OFF(backend.address), 0, 0},
        {"timeout", CFG__T_MS, OFF(backend.timeout_ms), 50, 30 * S_MS},
        [CFG__KEY_BACKEND_UPDATE_KEY] = {"update-key", CFG__T_TSIGKEY, OFF(backend.update_key), 0,
                                         0},
};

static const struct cfg__key resolver_keys[] = {
        {"addresses", CFG__T_ADDRS, OFF(resolver.addresses), 0, 0},
        {"timeout", CFG__T_MS, OFF(resolver.timeout_ms), 50, 30 * S_MS},
        {"ecs", CFG__T_BOOL, OFF(resolver.ecs), 0, 0},
        {"ecs-prefix", CFG__T_ECSPREFIX, OFF(resolver.ecs_prefix), 0, 0},
};

static const struct cfg__key flatten_keys[] = {
        [CFG__KEY_FLATTEN_CNAME] = {"cname", CFG__T_CNAME, OFF(flatten.cname), 0, 0},
        {"aname-types", CFG__T_TYPES, 0, 0, 0},
        {"max-chain", CFG__T_UINT, OFF(flatten.max_chain), 1, 32},
        [CFG__KEY_FLATTEN_MIN_TTL] = {"min-ttl", CFG__T_SEC, OFF(flatten.min_ttl_s), 0, 1 * D_S},
        [CFG__KEY_FLATTEN_MAX_TTL] = {"max-ttl", CFG__T_SEC, OFF(flatten.max_ttl_s), 1, 7 * D_S},
        {"deadline", CFG__T_MS, OFF(flatten.deadline_ms), 100, 30 * S_MS},
        {"serve-stale", CFG__T_SEC, OFF(flatten.serve_stale_s), 0, 7 * D_S},
        {"failure-ttl", CFG__T_SEC, OFF(flatten.failure_ttl_s), 0, 3600},
        {"cache-size", CFG__T_SIZE, OFF(flatten.cache_size), 1 * SIZE_M, 64 * SIZE_G},
        {"show-aname", CFG__T_BOOL, OFF(flatten.show_aname), 0, 0},
        [CFG__KEY_FLATTEN_SIBLINGS] = {"siblings", CFG__T_SIBLINGS, OFF(flatten.siblings), 0, 0},
        {"pool", CFG__T_POOL, OFF(flatten.pool), 0, 0},
};

/* [health] (issue 17): a check every interval per address in use. */
static const struct cfg__key health_keys[] = {
        [CFG__KEY_HEALTH_CHECK] = {"check", CFG__T_CHECK, OFF(health.check), 0, 0},
        [CFG__KEY_HEALTH_INTERVAL] = {"interval", CFG__T_MS, OFF(health.interval_ms), 100,
                                      1 * H_MS},
        [CFG__KEY_HEALTH_TIMEOUT] = {"timeout", CFG__T_MS, OFF(health.timeout_ms), 50, 60 * S_MS},
        {"fall", CFG__T_UINT, OFF(health.fall), 1, 100},
        {"rise", CFG__T_UINT, OFF(health.rise), 1, 100},
};

static const struct cfg__key cache_keys[] = {
        {"answers", CFG__T_BOOL, OFF(cache.answers), 0, 0},
        {"size", CFG__T_SIZE, OFF(cache.size), 1 * SIZE_M, 64 * SIZE_G},
};

/* BIND's RRL takes slip 0..10 as well; responses-per-second is bounded
 * so that a bucket's capacity in millitokens (proxy/engine/rrl.c) fits 32 bits. */
static const struct cfg__key limits_keys[] = {
        {"responses-per-second", CFG__T_UINT, OFF(limits.responses_per_second), 0, 1000000},
        {"slip", CFG__T_UINT, OFF(limits.slip), 0, 10},
};

static const struct cfg__key zone_keys[] = {
        [CFG__KEY_ZONE_CNAME] = {"cname", CFG__T_CNAME, offsetof(struct cfg_zone, cname), 0, 0},
        [CFG__KEY_ZONE_SIBLINGS] = {"siblings", CFG__T_SIBLINGS,
                                    offsetof(struct cfg_zone, siblings), 0, 0},
        [CFG__KEY_ZONE_CHECK] = {"check", CFG__T_CHECK, offsetof(struct cfg_zone, check), 0, 0},
};

/* [alias] has no keys of its own: every line is "owner = target[, target...]". */
const struct cfg__section cfg__sections[CFG__SEC_COUNT] = {
        [CFG__SEC_SERVER] = {"server", server_keys, CFG__ARRAY_LEN(server_keys), false},
        [CFG__SEC_LISTEN] = {"listen", listen_keys, CFG__ARRAY_LEN(listen_keys), false},
        [CFG__SEC_TLS] = {"tls", tls_keys, CFG__ARRAY_LEN(tls_keys), false},
        [CFG__SEC_BACKEND] = {"backend", backend_keys, CFG__ARRAY_LEN(backend_keys), false},
        [CFG__SEC_RESOLVER] = {"resolver", resolver_keys, CFG__ARRAY_LEN(resolver_keys), false},
        [CFG__SEC_FLATTEN] = {"flatten", flatten_keys, CFG__ARRAY_LEN(flatten_keys), false},
        [CFG__SEC_HEALTH] = {"health", health_keys, CFG__ARRAY_LEN(health_keys), false},
        [CFG__SEC_CACHE] = {"cache", cache_keys, CFG__ARRAY_LEN(cache_keys), false},
        [CFG__SEC_LIMITS] = {"limits", limits_keys, CFG__ARRAY_LEN(limits_keys), false},
        [CFG__SEC_ZONE] = {"zone", zone_keys, CFG__ARRAY_LEN(zone_keys), false},
        [CFG__SEC_ALIAS] = {"alias", NULL, 0, false},
};

_Static_assert(CFG__ARRAY_LEN(listen_keys) <= CFG__MAX_KEYS, "raise CFG__MAX_KEYS");
_Static_assert(CFG__ARRAY_LEN(flatten_keys) <= CFG__MAX_KEYS, "raise CFG__MAX_KEYS");
_Static_assert(CFG__ARRAY_LEN(zone_keys) <= CFG__MAX_ZONE_KEYS, "raise CFG__MAX_ZONE_KEYS");

void cfg__set_defaults(struct cfg *cfg)
{
	cfg->server.threads = 0;
	cfg->server.log_level = CFG_LOG_INFO;
	cfg->listen.tcp_idle_timeout_ms = 10 * S_MS;
	cfg->listen.max_connections = 10000;
	snprintf(cfg->listen.doh_path, sizeof(cfg->listen.doh_path), "/dns-query");
	cfg->backend.timeout_ms = 1 * S_MS;
	cfg->tls.min_version = 12;
	cfg->resolver.timeout_ms = 1500;
	/* RFC 7871 11.1: at most /24 and /56 leave the client private enough. */
	cfg->resolver.ecs_prefix[0] = 24;
	cfg->resolver.ecs_prefix[1] = 56;
	cfg->flatten.cname = CFG_CNAME_APEX;
	/* PowerDNS writes ALIAS as TYPE65401 in zone transfers (DESIGN.md). */
	cfg->flatten.aname_types[0] = 65401;
	cfg->flatten.n_aname_types = 1;
	cfg->flatten.max_chain = 8;
	cfg->flatten.min_ttl_s = 5;
	cfg->flatten.max_ttl_s = D_S;
	cfg->flatten.deadline_ms = 1500;
	cfg->flatten.serve_stale_s = D_S;
	cfg->flatten.failure_ttl_s = 5;
	cfg->flatten.cache_size = 64 * SIZE_M;
	cfg->cache.size = 32 * SIZE_M;
	cfg->limits.responses_per_second = 0;
	/* BIND's RRL default: every other limited answer is a TC=1 slip. */
	cfg->limits.slip = 2;
	cfg->flatten.show_aname = false;
	/* Sibling upkeep writes into BIND, so it is asked for, never assumed. */
	cfg->flatten.siblings = CFG_SIBLINGS_OFF;
	cfg->flatten.pool = CFG_POOL_UNION;
	/* Checks connect to the CDNs' addresses, so they are asked for. */
	cfg->health.check.kind = CFG_CHECK_NONE;
	cfg->health.interval_ms = 10 * S_MS;
	cfg->health.timeout_ms = 2 * S_MS;
	cfg->health.fall = 3;
	cfg->health.rise = 2;
}

int cfg_keys_foreach(cfg_key_fn *fn, void *arg)
{
	for (size_t i = 0; i < CFG__SEC_COUNT; i++) {
		const struct cfg__section *sd = &cfg__sections[i];
		for (size_t j = 0; j < sd->n_keys; j++) {
			/* The docs head the zone sections with a placeholder for
			 * the name; the reader matches "zone" and parses the rest. */
			struct cfg_key_info k = {
			        .section = i == CFG__SEC_ZONE ? "zone NAME" : sd->name,
			        .key = sd->keys[j].name,
			        .later = sd->later || sd->keys[j].type == CFG__T_LATER,
			};
			int rc = fn(&k, arg);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}
