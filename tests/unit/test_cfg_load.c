/* tests/unit/test_cfg_load.c - config/: the INI file into struct cfg.
 *
 * Through config/config.h only: values and defaults, every value type's
 * good and bad forms (tables), the exact text of representative errors
 * with their line numbers, the cross-key rules, and domain-name edge
 * cases. Runs under ASAN/LSan, so every path also checks cfg_free().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

/* The smallest file that loads: what every other test adds to. */
#define BASE "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"

static int load(const char *text, struct cfg **cfg, struct cfg_error *err)
{
	return cfg_load_mem("t.ini", text, strlen(text), cfg, err);
}

/* Loads text that must load, and fails the test with the report if not. */
static struct cfg *load_ok(const char *text)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;
	int rc = load(text, &cfg, &err);

	if (rc != 0)
		fail_msg("load failed (%d):\n%s", rc, err.msg);
	assert_non_null(cfg);
	assert_int_equal(err.count, 0);
	assert_string_equal(err.msg, "");
	return cfg;
}

/* Loads text that must fail, and checks the whole report. */
static void load_fails(const char *text, const char *msg)
{
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;

	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_null(cfg);
	assert_string_equal(err.msg, msg);
}

/* The CONFIG.md example without the keys and sections of later features,
 * and without dot, doh and [tls], whose files must exist (tested below). */
static const char full_example[] =
        "[server]\n"
        "threads = 3                  ; worker threads; 0 = one per core\n"
        "log-level = debug            ; error | warning | info | debug\n"
        "user = root                  ; drop to this user (and its group) after binding\n"
        "\n"
        "[listen]\n"
        "udp = 127.0.0.1:53, [::1]:53 ; any of udp/tcp/dot/doh may be absent\n"
        "tcp = 127.0.0.1:53\n"
        "tcp-idle-timeout = 10s       ; RFC 7766/7828\n"
        "max-connections = 10000      ; TCP + DoT + DoH together, per process\n"
        "\n"
        "[backend]\n"
        "address = 127.0.0.1:5300     ; the authoritative server (BIND); required\n"
        "timeout = 1s                 ; then SERVFAIL + EDE to the client\n"
        "\n"
        "[resolver]\n"
        "addresses = 127.0.0.1:5301   ; recursive resolvers used to chase targets\n"
        "timeout = 1500ms\n"
        "\n"
        "[flatten]\n"
        "cname = apex                 ; apex | all | none - default for every zone\n"
        "aname-types = 65401          ; RFC 3597 type codes read as ANAME\n"
        "max-chain = 8\n"
        "min-ttl = 5s\n"
        "max-ttl = 1d\n"
        "deadline = 1500ms            ; a client always has an answer by then\n"
        "serve-stale = 1d             ; 0 disables (RFC 8767)\n"
        "failure-ttl = 5s             ; how long a failed chase is remembered\n"
        "cache-size = 64M\n"
        "show-aname = no\n"
        "\n"
        "[limits]\n"
        "responses-per-second = 0     ; per client /24 and /56; 0 = off (like BIND's RRL)\n"
        "slip = 2                     ; every Nth limited answer goes out with TC=1\n"
        "\n"
        "[zone example.com]           ; one section per zone apexd may flatten in\n"
        "cname = all                  ; overrides [flatten] cname for this zone\n"
        "\n"
        "[alias]\n"
        "example.com = cdn.provider.net   ; owner = target, no zone edit needed\n";

static void assert_addr4(const struct cfg_addr *a, const char *ip, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->sa;
	struct in_addr want;

	assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(a->salen, sizeof(struct sockaddr_in));
	assert_int_equal(ntohs(sin->sin_port), port);
	assert_memory_equal(&sin->sin_addr, &want, sizeof(want));
}

static void test_load_full_example_sets_every_field(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(full_example);

	assert_string_equal(cfg->path, "t.ini");
	assert_int_equal(cfg->server.threads, 3);
	assert_int_equal(cfg->server.log_level, CFG_LOG_DEBUG);
	assert_string_equal(cfg->server.user, "root");
	assert_int_equal(cfg->server.user_line, 4);
	assert_int_equal(cfg->limits.responses_per_second, 0);
	assert_int_equal(cfg->limits.slip, 2);

	assert_int_equal(cfg->listen.udp.n, 2);
	assert_addr4(&cfg->listen.udp.v[0], "127.0.0.1", 53);
	assert_string_equal(cfg->listen.udp.v[0].text, "127.0.0.1:53");
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cfg->listen.udp.v[1].sa;
	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 53);
	assert_int_equal(cfg->listen.udp.v[1].salen, sizeof(struct sockaddr_in6));
	assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	assert_string_equal(cfg->listen.udp.v[1].text, "[::1]:53");
	assert_int_equal(cfg->listen.tcp.n, 1);
	assert_addr4(&cfg->listen.tcp.v[0], "127.0.0.1", 53);
	assert_int_equal(cfg->listen.tcp_idle_timeout_ms, 10000);
	assert_int_equal(cfg->listen.max_connections, 10000);

	assert_addr4(&cfg->backend.address, "127.0.0.1", 5300);
	assert_string_equal(cfg->backend.address.text, "127.0.0.1:5300");
	assert_int_equal(cfg->backend.timeout_ms, 1000);

	assert_int_equal(cfg->resolver.addresses.n, 1);
	assert_addr4(&cfg->resolver.addresses.v[0], "127.0.0.1", 5301);
	assert_int_equal(cfg->resolver.timeout_ms, 1500);

	assert_int_equal(cfg->flatten.cname, CFG_CNAME_APEX);
	assert_int_equal(cfg->flatten.n_aname_types, 1);
	assert_int_equal(cfg->flatten.aname_types[0], 65401);
	assert_int_equal(cfg->flatten.max_chain, 8);
	assert_int_equal(cfg->flatten.min_ttl_s, 5);
	assert_int_equal(cfg->flatten.max_ttl_s, 86400);
	assert_int_equal(cfg->flatten.deadline_ms, 1500);
	assert_int_equal(cfg->flatten.serve_stale_s, 86400);
	assert_int_equal(cfg->flatten.failure_ttl_s, 5);
	assert_int_equal(cfg->flatten.cache_size, 64ull << 20);
	assert_false(cfg->flatten.show_aname);

	assert_int_equal(cfg->n_zones, 1);
	assert_string_equal(cfg->zones[0].name.text, "example.com.");
	assert_int_equal(cfg->zones[0].name.wire_len, 13);
	assert_memory_equal(cfg->zones[0].name.wire, "\7example\3com\0", 13);
	assert_int_equal(cfg->zones[0].cname, CFG_CNAME_ALL);
	assert_int_equal(cfg->zones[0].line, 36);

	assert_int_equal(cfg->n_aliases, 1);
	assert_string_equal(cfg->aliases[0].owner.text, "example.com.");
	assert_string_equal(cfg->aliases[0].targets[0].text, "cdn.provider.net.");
	assert_int_equal(cfg->aliases[0].line, 40);
	cfg_free(cfg);
}

static void test_load_file_reads_from_disk(void **state)
{
	(void)state;
	char path[] = "/tmp/test_cfg_load_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_example, sizeof(full_example) - 1),
	                 (ssize_t)sizeof(full_example) - 1);
	close(fd);

	struct cfg *cfg = NULL;
	struct cfg_error err;
	assert_int_equal(cfg_load(path, &cfg, &err), 0);
	assert_string_equal(cfg->path, path);
	assert_int_equal(cfg->n_zones, 1);
	cfg_free(cfg);
	unlink(path);
}

static void test_load_missing_file_reports_errno(void **state)
{
	(void)state;
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;

	assert_int_equal(cfg_load("/nonexistent/apexd.ini", &cfg, &err), -ENOENT);
	assert_null(cfg);
	assert_string_equal(err.msg,
	                    "/nonexistent/apexd.ini: cannot read: No such file or directory\n");
	assert_int_equal(err.count, 1);
}

static void test_load_directory_reports_errno(void **state)
{
	(void)state;
	struct cfg *cfg = NULL;
	struct cfg_error err;

	assert_int_equal(cfg_load("/", &cfg, &err), -EISDIR);
	assert_string_equal(err.msg, "/: cannot read: Is a directory\n");
}

static void test_load_absent_keys_take_defaults(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE);

	assert_true(cfg->server.threads >= 1);
	assert_int_equal(cfg->server.log_level, CFG_LOG_INFO);
	assert_int_equal(cfg->listen.tcp.n, 0);
	assert_null(cfg->listen.tcp.v);
	assert_int_equal(cfg->listen.tcp_idle_timeout_ms, 10000);
	assert_int_equal(cfg->listen.max_connections, 10000);
	assert_int_equal(cfg->listen.dot.n, 0);
	assert_null(cfg->listen.dot.v);
	assert_int_equal(cfg->listen.doh.n, 0);
	assert_null(cfg->listen.doh.v);
	assert_string_equal(cfg->listen.doh_path, "/dns-query");
	assert_false(cfg->tls.present);
	assert_string_equal(cfg->tls.certificate, "");
	assert_string_equal(cfg->tls.private_key, "");
	assert_int_equal(cfg->tls.min_version, 12);
	assert_int_equal(cfg->backend.timeout_ms, 1000);
	assert_int_equal(cfg->resolver.addresses.n, 0);
	assert_int_equal(cfg->resolver.timeout_ms, 1500);
	assert_int_equal(cfg->flatten.cname, CFG_CNAME_APEX);
	assert_int_equal(cfg->flatten.n_aname_types, 1);
	assert_int_equal(cfg->flatten.aname_types[0], 65401);
	assert_int_equal(cfg->flatten.max_chain, 8);
	assert_int_equal(cfg->flatten.min_ttl_s, 5);
	assert_int_equal(cfg->flatten.max_ttl_s, 86400);
	assert_int_equal(cfg->flatten.deadline_ms, 1500);
	assert_int_equal(cfg->flatten.serve_stale_s, 86400);
	assert_int_equal(cfg->flatten.failure_ttl_s, 5);
	assert_int_equal(cfg->flatten.cache_size, 64ull << 20);
	assert_false(cfg->flatten.show_aname);
	assert_int_equal(cfg->n_zones, 0);
	assert_null(cfg->zones);
	assert_int_equal(cfg->n_aliases, 0);
	cfg_free(cfg);
}

static void test_load_threads_zero_resolves_to_cpu_count(void **state)
{
	(void)state;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct cfg *cfg = load_ok(BASE "[server]\nthreads = 0\n");

	assert_true(cfg->server.threads >= 1);
	assert_true(cfg->server.threads <= 256);
	if (cpus >= 1 && cpus <= 256)
		assert_int_equal(cfg->server.threads, cpus);
	cfg_free(cfg);
}

/* ---- value types, table-driven ------------------------------------------ */

static uint64_t get_threads(const struct cfg *c)
{
	return c->server.threads;
}
static uint64_t get_log_level(const struct cfg *c)
{
	return c->server.log_level;
}
static uint64_t get_idle(const struct cfg *c)
{
	return c->listen.tcp_idle_timeout_ms;
}
static uint64_t get_max_conn(const struct cfg *c)
{
	return c->listen.max_connections;
}
static uint64_t get_backend_timeout(const struct cfg *c)
{
	return c->backend.timeout_ms;
}
static uint64_t get_resolver_timeout(const struct cfg *c)
{
	return c->resolver.timeout_ms;
}
static uint64_t get_cname(const struct cfg *c)
{
	return c->flatten.cname;
}
static uint64_t get_max_chain(const struct cfg *c)
{
	return c->flatten.max_chain;
}
static uint64_t get_min_ttl(const struct cfg *c)
{
	return c->flatten.min_ttl_s;
}
static uint64_t get_max_ttl(const struct cfg *c)
{
	return c->flatten.max_ttl_s;
}
static uint64_t get_deadline(const struct cfg *c)
{
	return c->flatten.deadline_ms;
}
static uint64_t get_serve_stale(const struct cfg *c)
{
	return c->flatten.serve_stale_s;
}
static uint64_t get_failure_ttl(const struct cfg *c)
{
	return c->flatten.failure_ttl_s;
}
static uint64_t get_cache_size(const struct cfg *c)
{
	return c->flatten.cache_size;
}
static uint64_t get_show_aname(const struct cfg *c)
{
	return c->flatten.show_aname;
}

struct value_case {
	const char *section;
	const char *key;
	const char *value;
	uint64_t (*get)(const struct cfg *c);
	bool ok;
	uint64_t want;   /* when ok */
	const char *why; /* when not ok: the part after the quoted value */
};

#define GOOD(sec, key, val, get, want)                                                             \
	{                                                                                          \
		sec, key, val, get, true, want, NULL                                               \
	}
#define BAD(sec, key, val, get, why)                                                               \
	{                                                                                          \
		sec, key, val, get, false, 0, why                                                  \
	}

static const struct value_case value_cases[] = {
        /* durations */
        GOOD("listen", "tcp-idle-timeout", "1s", get_idle, 1000),
        GOOD("listen", "tcp-idle-timeout", "30", get_idle, 30000),
        GOOD("listen", "tcp-idle-timeout", "2500ms", get_idle, 2500),
        GOOD("listen", "tcp-idle-timeout", "10m", get_idle, 600000),
        GOOD("listen", "tcp-idle-timeout", "1h", get_idle, 3600000),
        GOOD("listen", "tcp-idle-timeout", "0001s", get_idle, 1000),
        BAD("listen", "tcp-idle-timeout", "999ms", get_idle, "is out of range"),
        BAD("listen", "tcp-idle-timeout", "3601s", get_idle, "is out of range"),
        BAD("listen", "tcp-idle-timeout", "1d", get_idle, "is out of range"),
        BAD("listen", "tcp-idle-timeout", "5x", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "-1", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "5 s", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "5S", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "s", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "1.5s", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "0x10", get_idle, "is not a duration"),
        BAD("listen", "tcp-idle-timeout", "99999999999999999999s", get_idle, "is out of range"),
        BAD("listen", "tcp-idle-timeout", "18446744073709551615d", get_idle, "is out of range"),
        GOOD("backend", "timeout", "50ms", get_backend_timeout, 50),
        GOOD("backend", "timeout", "30s", get_backend_timeout, 30000),
        BAD("backend", "timeout", "49ms", get_backend_timeout, "is out of range"),
        BAD("backend", "timeout", "31s", get_backend_timeout, "is out of range"),
        GOOD("resolver", "timeout", "2s", get_resolver_timeout, 2000),
        BAD("resolver", "timeout", "0", get_resolver_timeout, "is out of range"),
        GOOD("flatten", "deadline", "100ms", get_deadline, 100),
        BAD("flatten", "deadline", "99ms", get_deadline, "is out of range"),
        /* durations stored in seconds */
        GOOD("flatten", "min-ttl", "0", get_min_ttl, 0),
        GOOD("flatten", "min-ttl", "2000ms", get_min_ttl, 2),
        GOOD("flatten", "min-ttl", "1d", get_min_ttl, 86400),
        BAD("flatten", "min-ttl", "1500ms", get_min_ttl, "is not a whole number of seconds"),
        BAD("flatten", "min-ttl", "86401", get_min_ttl, "is out of range"),
        GOOD("flatten", "max-ttl", "7d", get_max_ttl, 604800),
        BAD("flatten", "max-ttl", "0", get_max_ttl, "is out of range"),
        BAD("flatten", "max-ttl", "8d", get_max_ttl, "is out of range"),
        GOOD("flatten", "serve-stale", "0", get_serve_stale, 0),
        GOOD("flatten", "serve-stale", "7d", get_serve_stale, 604800),
        BAD("flatten", "serve-stale", "169h", get_serve_stale, "is out of range"),
        GOOD("flatten", "failure-ttl", "1h", get_failure_ttl, 3600),
        GOOD("flatten", "failure-ttl", "0s", get_failure_ttl, 0),
        BAD("flatten", "failure-ttl", "61m", get_failure_ttl, "is out of range"),
        /* sizes */
        GOOD("flatten", "cache-size", "1M", get_cache_size, 1ull << 20),
        GOOD("flatten", "cache-size", "1048576", get_cache_size, 1ull << 20),
        GOOD("flatten", "cache-size", "1024K", get_cache_size, 1ull << 20),
        GOOD("flatten", "cache-size", "64g", get_cache_size, 64ull << 30),
        GOOD("flatten", "cache-size", "1G", get_cache_size, 1ull << 30),
        BAD("flatten", "cache-size", "512", get_cache_size, "is out of range"),
        BAD("flatten", "cache-size", "65G", get_cache_size, "is out of range"),
        BAD("flatten", "cache-size", "64MB", get_cache_size, "is not a size"),
        BAD("flatten", "cache-size", "64T", get_cache_size, "is not a size"),
        BAD("flatten", "cache-size", "M", get_cache_size, "is not a size"),
        BAD("flatten", "cache-size", "-1M", get_cache_size, "is not a size"),
        BAD("flatten", "cache-size", "99999999999999999999G", get_cache_size, "is out of range"),
        BAD("flatten", "cache-size", "17179869184G", get_cache_size, "is out of range"),
        /* unsigned integers */
        GOOD("server", "threads", "256", get_threads, 256),
        GOOD("server", "threads", "1", get_threads, 1),
        BAD("server", "threads", "257", get_threads, "is out of range"),
        BAD("server", "threads", "-1", get_threads, "is not a number"),
        BAD("server", "threads", "+4", get_threads, "is not a number"),
        BAD("server", "threads", "4s", get_threads, "is not a number"),
        BAD("server", "threads", "4294967297", get_threads, "is out of range"),
        GOOD("listen", "max-connections", "1000000", get_max_conn, 1000000),
        BAD("listen", "max-connections", "0", get_max_conn, "is out of range"),
        BAD("listen", "max-connections", "1000001", get_max_conn, "is out of range"),
        GOOD("flatten", "max-chain", "32", get_max_chain, 32),
        BAD("flatten", "max-chain", "0", get_max_chain, "is out of range"),
        BAD("flatten", "max-chain", "33", get_max_chain, "is out of range"),
        /* booleans */
        GOOD("flatten", "show-aname", "yes", get_show_aname, 1),
        BAD("flatten", "show-aname", "y", get_show_aname, "is not a boolean"),
        /* words */
        GOOD("server", "log-level", "error", get_log_level, CFG_LOG_ERROR),
        GOOD("server", "log-level", "warning", get_log_level, CFG_LOG_WARNING),
        GOOD("server", "log-level", "Info", get_log_level, CFG_LOG_INFO),
        GOOD("server", "log-level", "debug", get_log_level, CFG_LOG_DEBUG),
        BAD("server", "log-level", "warn", get_log_level, "is not a log level"),
        GOOD("flatten", "cname", "all", get_cname, CFG_CNAME_ALL),
        GOOD("flatten", "cname", "none", get_cname, CFG_CNAME_NONE),
        GOOD("flatten", "cname", "APEX", get_cname, CFG_CNAME_APEX),
        BAD("flatten", "cname", "some", get_cname, "is not a cname mode"),
};

static void test_load_value_types_good_and_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		char text[512], prefix[256];
		struct cfg *cfg = NULL;
		struct cfg_error err;

		snprintf(text, sizeof(text), BASE "[%s]\n%s = %s\n", c->section, c->key, c->value);
		int rc = load(text, &cfg, &err);
		if (c->ok) {
			if (rc != 0)
				fail_msg("%s = %s: %s", c->key, c->value, err.msg);
			if (c->get(cfg) != c->want)
				fail_msg("%s = %s: got %llu, want %llu", c->key, c->value,
				         (unsigned long long)c->get(cfg),
				         (unsigned long long)c->want);
			cfg_free(cfg);
			continue;
		}
		if (rc != -EINVAL || cfg != NULL)
			fail_msg("%s = %s: loaded", c->key, c->value);
		snprintf(prefix, sizeof(prefix),
		         "t.ini:6: [%s] %s: \"%s\" %s; allowed: ", c->section, c->key, c->value,
		         c->why);
		if (strncmp(err.msg, prefix, strlen(prefix)) != 0 || err.count != 1)
			fail_msg("%s = %s:\n got  %s want %s...", c->key, c->value, err.msg,
			         prefix);
	}
}

struct addr_case {
	const char *value;
	const char *text; /* normalised text of the first address, or NULL */
	const char *why;  /* error after the quoted bad element */
};

static const struct addr_case addr_cases[] = {
        {"127.0.0.1:5353", "127.0.0.1:5353", NULL},
        {"0.0.0.0:53", "0.0.0.0:53", NULL},
        {"[::1]:5353", "[::1]:5353", NULL},
        {"[0:0::1]:53", "[::1]:53", NULL},
        {"[2001:DB8::1]:65535", "[2001:db8::1]:65535", NULL},
        {"127.0.0.1", NULL, "\"127.0.0.1\" is not an address (missing port)"},
        {"127.0.0.1:", NULL, "\"127.0.0.1:\" is not an address (missing port)"},
        {"[::1]", NULL, "\"[::1]\" is not an address (missing port)"},
        {"[::1]53", NULL, "\"[::1]53\" is not an address (missing port)"},
        {"[::1:53", NULL, "\"[::1:53\" is not an address (no closing bracket)"},
        {"::1:53", NULL,
         "\"::1:53\" is not an address (an IPv6 address needs brackets, like [::1]:53)"},
        {"127.0.0.1:0", NULL, "\"127.0.0.1:0\" is not an address (port must be 1..65535)"},
        {"127.0.0.1:65536", NULL, "\"127.0.0.1:65536\" is not an address (port must be 1..65535)"},
        {"127.0.0.1:5x", NULL, "\"127.0.0.1:5x\" is not an address (port must be 1..65535)"},
        {"localhost:53", NULL,
         "\"localhost:53\" is not an address (not an IPv4 address (names are not resolved))"},
        {"256.0.0.1:53", NULL,
         "\"256.0.0.1:53\" is not an address (not an IPv4 address (names are not resolved))"},
        {"[1.2.3.4]:53", NULL, "\"[1.2.3.4]:53\" is not an address (not an IPv6 address)"},
        {"[fe80::1%eth0]:53", NULL,
         "\"[fe80::1%eth0]:53\" is not an address (not an IPv6 address)"},
};

static void test_load_address_forms(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
		const struct addr_case *c = &addr_cases[i];
		char text[512], want[512];
		struct cfg *cfg = NULL;
		struct cfg_error err;

		snprintf(text, sizeof(text), BASE "[resolver]\naddresses = %s\n", c->value);
		int rc = load(text, &cfg, &err);
		if (c->text != NULL) {
			if (rc != 0)
				fail_msg("%s: %s", c->value, err.msg);
			assert_int_equal(cfg->resolver.addresses.n, 1);
			assert_string_equal(cfg->resolver.addresses.v[0].text, c->text);
			cfg_free(cfg);
			continue;
		}
		assert_int_equal(rc, -EINVAL);
		snprintf(want, sizeof(want),
		         "t.ini:6: [resolver] addresses: %s; allowed: addresses like "
		         "127.0.0.1:53, [::1]:53\n",
		         c->why);
		assert_string_equal(err.msg, want);
	}
}

static void test_load_address_list_spacing_and_errors(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok("[listen]\nudp = 127.0.0.1:53,[::1]:53 ,\t10.0.0.1:53\n"
	                          "[backend]\naddress = [::1]:5300\n");

	assert_int_equal(cfg->listen.udp.n, 3);
	assert_string_equal(cfg->listen.udp.v[2].text, "10.0.0.1:53");
	assert_string_equal(cfg->backend.address.text, "[::1]:5300");
	cfg_free(cfg);

	load_fails(BASE "[listen]\ntcp = 127.0.0.1:53,\n",
	           "t.ini:6: [listen] tcp: \"127.0.0.1:53,\" has an empty list element; "
	           "allowed: addresses like 127.0.0.1:53, [::1]:53\n");
	load_fails(BASE "[listen]\ntcp = 127.0.0.1:53, 127.0.0.1:053\n",
	           "t.ini:6: [listen] tcp: \"127.0.0.1:053\" is listed twice; "
	           "allowed: each address once\n");
	/* Every bad element is named, not just the first. */
	load_fails(BASE "[listen]\ntcp = 1.2.3.4, 5.6.7.8:99999\n",
	           "t.ini:6: [listen] tcp: \"1.2.3.4\" is not an address (missing port); "
	           "allowed: addresses like 127.0.0.1:53, [::1]:53\n"
	           "t.ini:6: [listen] tcp: \"5.6.7.8:99999\" is not an address (port must be "
	           "1..65535); allowed: addresses like 127.0.0.1:53, [::1]:53\n");
	load_fails("[listen]\nudp = 127.0.0.1:53\n[backend]\naddress = 127.0.0.1:1, 127.0.0.1:2\n",
	           "t.ini:4: [backend] address: \"127.0.0.1:1, 127.0.0.1:2\" is more than one "
	           "address; allowed: an address like 127.0.0.1:5300\n");
}

static void test_load_empty_value_is_an_error(void **state)
{
	(void)state;
	load_fails(BASE "[listen]\ntcp =\n",
	           "t.ini:6: [listen] tcp: missing value; allowed: addresses like 127.0.0.1:53, "
	           "[::1]:53\n");
	load_fails(BASE "[server]\nthreads =   ; nothing\n",
	           "t.ini:6: [server] threads: missing value; allowed: 0..256\n");
}

/* ---- comments, lines, lexing ------------------------------------------- */

static void test_load_comments_and_blank_lines_keep_line_numbers(void **state)
{
	(void)state;
	load_fails("; a comment\n"
	           "# another\n"
	           "\n"
	           "[zone empty.example]\n"
	           "\n"
	           "[zone other.example]\n"
	           "   ; indented comment\n" BASE "[flatten]\n"
	           "max-chain = 9 # inline hash comment\n"
	           "deadline = 5x ; inline semicolon comment\n",
	           "t.ini:14: [flatten] deadline: \"5x\" is not a duration; allowed: 100ms..30s, "
	           "like 250ms, 5s, 10m, 1h or 1d\n");
}

static void test_load_bad_duration_reports_line(void **state)
{
	(void)state;
	load_fails(BASE "\n\n[listen]\n\ntcp-idle-timeout = 5x\n",
	           "t.ini:9: [listen] tcp-idle-timeout: \"5x\" is not a duration; allowed: 1s..1h, "
	           "like 250ms, 5s, 10m, 1h or 1d\n");
}

static void test_load_hash_inside_value_is_not_a_comment(void **state)
{
	(void)state;
	/* "a#b" has no blank before '#': it stays part of the value. */
	load_fails(BASE "[server]\nlog-level = info#x\n",
	           "t.ini:6: [server] log-level: \"info#x\" is not a log level; allowed: error, "
	           "warning, info, debug\n");
}

static void test_load_crlf_bom_and_indent_are_accepted(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok("\xEF\xBB\xBF[listen]\r\n"
	                          "  udp = 127.0.0.1:53\r\n"
	                          "\ttcp = 127.0.0.1:53\r\n"
	                          "[backend]\r\n"
	                          "address=127.0.0.1:5300");

	/* An indented line is a key of its own, not a continuation. */
	assert_int_equal(cfg->listen.udp.n, 1);
	assert_int_equal(cfg->listen.tcp.n, 1);
	assert_string_equal(cfg->backend.address.text, "127.0.0.1:5300");
	cfg_free(cfg);
}

static void test_load_malformed_lines_are_reported(void **state)
{
	(void)state;
	load_fails(BASE "[server]\nthreads 4\n= 4\n[server\nthreads = 4\n",
	           "t.ini:6: [server]: \"threads 4\" is not a key = value line; allowed: key = "
	           "value\n"
	           "t.ini:7: [server]: \"= 4\" has no key before '='; allowed: key = value\n"
	           "t.ini:8: \"[server\" is not a section header; allowed: [section] alone on a "
	           "line\n");
}

static void test_load_control_character_is_rejected(void **state)
{
	(void)state;
	static const char text[] = BASE "[server]\nthreads = 4\0\n";
	struct cfg *cfg = NULL;
	struct cfg_error err;

	assert_int_equal(cfg_load_mem("t.ini", text, sizeof(text) - 1, &cfg, &err), -EINVAL);
	assert_string_equal(err.msg, "t.ini:6: control character 0x00 in the line; allowed: "
	                             "printable text and tabs\n");
}

static void test_load_key_outside_section_is_rejected(void **state)
{
	(void)state;
	load_fails("threads = 4\n" BASE,
	           "t.ini:1: threads: outside any section; allowed: a [section] header first\n");
}

/* ---- sections and keys -------------------------------------------------- */

static void test_load_control_and_metrics_parsed(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[server]\ncontrol = /tmp/apexd-test.sock\n"
	                               "[listen]\nmetrics = 127.0.0.1:9153\n");
	assert_string_equal(cfg->server.control, "/tmp/apexd-test.sock");
	assert_int_not_equal(cfg->listen.metrics.salen, 0);
	assert_string_equal(cfg->listen.metrics.text, "127.0.0.1:9153");
	cfg_free(cfg);
	cfg = load_ok(BASE);
	assert_string_equal(cfg->server.control, "");
	assert_int_equal(cfg->listen.metrics.salen, 0);
	cfg_free(cfg);
}

static void test_load_control_bad_path_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[server]\ncontrol = run/apexd.sock\n",
	           "t.ini:6: [server] control: \"run/apexd.sock\" is not an absolute path; "
	           "allowed: an absolute path of at most 107 bytes in an existing directory, like "
	           "/run/apexd.sock\n");
	load_fails(
	        BASE "[server]\ncontrol = /nonexistent-apexd-dir/apexd.sock\n",
	        "t.ini:6: [server] control: \"/nonexistent-apexd-dir/apexd.sock\": directory "
	        "/nonexistent-apexd-dir: No such file or directory; allowed: an absolute path of "
	        "at most 107 bytes in an existing directory, like /run/apexd.sock\n");
	load_fails(BASE "[server]\ncontrol = /tmp/\n",
	           "t.ini:6: [server] control: \"/tmp/\" does not name a file; allowed: an "
	           "absolute path of at most 107 bytes in an existing directory, like "
	           "/run/apexd.sock\n");
	char text[512], msg[1024], path[120];
	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[108] = '\0'; /* 108 bytes: one too many for sun_path */
	snprintf(text, sizeof(text), BASE "[server]\ncontrol = %s\n", path);
	snprintf(msg, sizeof(msg),
	         "t.ini:6: [server] control: \"%s\" is longer than 107 bytes; allowed: an "
	         "absolute path of at most 107 bytes in an existing directory, like "
	         "/run/apexd.sock\n",
	         path);
	load_fails(text, msg);
}

static void test_load_metrics_overlap_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[listen]\nmetrics = 127.0.0.1:5300\n",
	           "t.ini:6: [listen] metrics: \"127.0.0.1:5300\" is the backend address (line "
	           "4); allowed: an address other than [backend] address\n");
	load_fails(BASE "[listen]\ntcp = 0.0.0.0:5353\nmetrics = 127.0.0.1:5353\n",
	           "t.ini:7: [listen] metrics: \"127.0.0.1:5353\" overlaps the tcp address "
	           "\"0.0.0.0:5353\" (line 6); allowed: an address and port no DNS listener "
	           "uses\n");
	load_fails(BASE "[listen]\nmetrics = 127.0.0.1:9153, 127.0.0.1:9154\n",
	           "t.ini:6: [listen] metrics: \"127.0.0.1:9153, 127.0.0.1:9154\" is more than "
	           "one address; allowed: an address like 127.0.0.1:5300\n");
	/* Same port as a UDP listener is fine: another protocol. */
	struct cfg *cfg = load_ok(BASE "[listen]\nmetrics = 127.0.0.1:5353\n");
	cfg_free(cfg);
}

/* ---- [server] user ------------------------------------------------------ */

static void test_load_user_must_exist(void **state)
{
	(void)state;
	/* root exists on every system the tests run on. */
	struct cfg *cfg = load_ok(BASE "[server]\nthreads = 1\nuser = root\n");
	assert_string_equal(cfg->server.user, "root");
	assert_int_equal(cfg->server.user_line, 7);
	cfg_free(cfg);
	cfg = load_ok(BASE);
	assert_string_equal(cfg->server.user, "");
	assert_int_equal(cfg->server.user_line, 0);
	cfg_free(cfg);

	load_fails(BASE "[server]\nuser = no-such-user-apexd\n",
	           "t.ini:6: [server] user: \"no-such-user-apexd\" is not a user on this system; "
	           "allowed: the name of an existing user, like nobody or apexd\n");
	load_fails(BASE "[server]\nuser = a b\n",
	           "t.ini:6: [server] user: \"a b\" is not a user name (blank, ':', '/' or "
	           "non-ASCII); allowed: the name of an existing user, like nobody or apexd\n");
	load_fails(BASE "[server]\nuser = root:root\n",
	           "t.ini:6: [server] user: \"root:root\" is not a user name (blank, ':', '/' or "
	           "non-ASCII); allowed: the name of an existing user, like nobody or apexd\n");
	load_fails(BASE "[server]\nuser =\n",
	           "t.ini:6: [server] user: missing value; allowed: the name of an existing user, "
	           "like nobody or apexd\n");
	char text[512];
	snprintf(text, sizeof(text), BASE "[server]\nuser = %064d\n", 0);
	load_fails(text, "t.ini:6: [server] user: "
	                 "\"0000000000000000000000000000000000000000000000000000000000000000\" is "
	                 "too long for a user name; allowed: the name of an existing user, like "
	                 "nobody or apexd\n");
}

/* ---- [limits] ----------------------------------------------------------- */

static void test_load_limits_defaults_and_ranges(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE);
	assert_int_equal(cfg->limits.responses_per_second, 0);
	assert_int_equal(cfg->limits.slip, 2);
	cfg_free(cfg);
	cfg = load_ok(BASE "[limits]\nresponses-per-second = 5\nslip = 0\n");
	assert_int_equal(cfg->limits.responses_per_second, 5);
	assert_int_equal(cfg->limits.slip, 0);
	cfg_free(cfg);
	cfg = load_ok(BASE "[limits]\nresponses-per-second = 1000000\nslip = 10\n");
	assert_int_equal(cfg->limits.responses_per_second, 1000000);
	assert_int_equal(cfg->limits.slip, 10);
	cfg_free(cfg);

	load_fails(BASE "[limits]\nresponses-per-second = 1000001\nslip = 11\n",
	           "t.ini:6: [limits] responses-per-second: \"1000001\" is out of range; allowed: "
	           "0..1000000\n"
	           "t.ini:7: [limits] slip: \"11\" is out of range; allowed: 0..10\n");
	load_fails(BASE "[limits]\nresponses-per-second = -1\nslip = two\nburst = 3\n",
	           "t.ini:6: [limits] responses-per-second: \"-1\" is not a number; allowed: "
	           "0..1000000\n"
	           "t.ini:7: [limits] slip: \"two\" is not a number; allowed: 0..10\n"
	           "t.ini:8: [limits] burst: unknown key; allowed: responses-per-second, slip\n");
}

static void test_load_cache_keys_parsed_with_defaults(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[cache]\nanswers = yes\nsize = 8M\n");
	assert_true(cfg->cache.answers);
	assert_int_equal(cfg->cache.size, 8u * 1024 * 1024);
	cfg_free(cfg);
	cfg = load_ok(BASE);
	assert_false(cfg->cache.answers);
	assert_int_equal(cfg->cache.size, 32u * 1024 * 1024);
	cfg_free(cfg);
	load_fails(BASE "[cache]\nsize = 10K\n", "t.ini:6: [cache] size: \"10K\" is out of range; "
	                                         "allowed: 1M..64G, like 512, 64K, 64M "
	                                         "or 1G\n");
}

static void test_load_unknown_key_and_section_list_what_is_allowed(void **state)
{
	(void)state;
	load_fails(BASE
	           "[backend]\nport = 53\n[Server]\nthreads = 1\n[zone example.com]\nttl = 5\n",
	           "t.ini:6: [backend] port: unknown key; allowed: address, timeout, update-key\n"
	           "t.ini:7: [Server]: unknown section; allowed: [server], [listen], [tls], "
	           "[backend], [resolver], [flatten], [health], [cache], [limits], [zone "
	           "NAME], [alias]\n"
	           "t.ini:10: [zone example.com] ttl: unknown key; allowed: cname, siblings, "
	           "check\n");
}

/* [resolver] ecs and ecs-prefix: off by default, /24 and /56 (RFC 7871
 * 11.1's privacy advice), both lengths always given. */
static void test_load_resolver_ecs(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE);
	assert_false(cfg->resolver.ecs);
	assert_int_equal(cfg->resolver.ecs_prefix[0], 24);
	assert_int_equal(cfg->resolver.ecs_prefix[1], 56);
	cfg_free(cfg);
	cfg = load_ok(BASE "[resolver]\necs = yes\necs-prefix = 20 , 48\n");
	assert_true(cfg->resolver.ecs);
	assert_int_equal(cfg->resolver.ecs_prefix[0], 20);
	assert_int_equal(cfg->resolver.ecs_prefix[1], 48);
	cfg_free(cfg);
	cfg = load_ok(BASE "[resolver]\necs-prefix = 32,128\n");
	assert_int_equal(cfg->resolver.ecs_prefix[1], 128);
	cfg_free(cfg);
	load_fails(BASE "[resolver]\necs-prefix = 33, 56\n",
	           "t.ini:6: [resolver] ecs-prefix: \"33, 56\" has an IPv4 prefix length above 32; "
	           "allowed: IPv4 and IPv6 prefix lengths, like 24, 56 (0..32, 0..128)\n");
	load_fails(BASE "[resolver]\necs-prefix = 24, 129\n",
	           "t.ini:6: [resolver] ecs-prefix: \"24, 129\" has an IPv6 prefix length above "
	           "128; allowed: IPv4 and IPv6 prefix lengths, like 24, 56 (0..32, 0..128)\n");
	load_fails(BASE "[resolver]\necs-prefix = 24\n",
	           "t.ini:6: [resolver] ecs-prefix: \"24\" is not two prefix lengths; allowed: "
	           "IPv4 and IPv6 prefix lengths, like 24, 56 (0..32, 0..128)\n");
	load_fails(BASE "[resolver]\necs-prefix = 24,\n",
	           "t.ini:6: [resolver] ecs-prefix: \"24,\" is not two prefix lengths; allowed: "
	           "IPv4 and IPv6 prefix lengths, like 24, 56 (0..32, 0..128)\n");
	load_fails(BASE "[resolver]\necs = maybe\n",
	           "t.ini:6: [resolver] ecs: \"maybe\" is not a boolean; allowed: yes, no, true, "
	           "false, on, off\n");
}

static void test_load_duplicate_key_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[server]\nthreads = 2\nlog-level = info\nthreads = 2\n",
	           "t.ini:8: [server] threads: duplicate key (first set at line 6); allowed: one "
	           "value per key\n");
	/* A repeated section merges, but a key still may be set only once. */
	load_fails(BASE "[listen]\nudp = 127.0.0.1:54\n",
	           "t.ini:6: [listen] udp: duplicate key (first set at line 2); allowed: one value "
	           "per key\n");
	load_fails(BASE "[zone a.example]\ncname = all\ncname = none\n",
	           "t.ini:7: [zone a.example] cname: duplicate key (first set at line 6); allowed: "
	           "one value per key\n");
}

static void test_load_repeated_section_merges(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok("[server]\nthreads = 2\n" BASE "[server]\nlog-level = error\n");

	assert_int_equal(cfg->server.threads, 2);
	assert_int_equal(cfg->server.log_level, CFG_LOG_ERROR);
	cfg_free(cfg);
}

static void test_load_duplicate_zone_is_rejected(void **state)
{
	(void)state;
	/* Names compare case-insensitively and with or without the final dot. */
	load_fails(BASE "[zone Example.COM]\n\n[zone example.com.]\ncname = all\n",
	           "t.ini:7: [zone example.com.]: duplicate zone (first at line 5); allowed: one "
	           "section per zone\n");
}

static void test_load_zone_header_errors(void **state)
{
	(void)state;
	load_fails(BASE "[zone]\n[zone a..b]\n[zone .]\n[zone a b]\n",
	           "t.ini:5: [zone]: missing zone name; allowed: [zone NAME], like [zone "
	           "example.com]\n"
	           "t.ini:6: [zone a..b]: \"a..b\" is not a domain name (empty label); allowed: a "
	           "name like example.com (labels of 1..63 bytes, 255 bytes in all)\n"
	           "t.ini:7: [zone .]: the root zone cannot be flattened; allowed: a name like "
	           "example.com (labels of 1..63 bytes, 255 bytes in all)\n"
	           "t.ini:8: [zone a b]: \"a b\" is not a domain name (contains a blank or control "
	           "character); allowed: a name like example.com (labels of 1..63 bytes, 255 bytes "
	           "in all)\n");
}

static void test_load_zone_cname_defaults_to_flatten_cname_even_later(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[zone a.example]\n"
	                               "[zone b.example]\ncname = apex\n"
	                               "[zone c.example]\ncname = none\n"
	                               "[flatten]\ncname = all\n");

	assert_int_equal(cfg->n_zones, 3);
	assert_string_equal(cfg->zones[0].name.text, "a.example.");
	assert_int_equal(cfg->zones[0].line, 5);
	assert_int_equal(cfg->zones[0].cname, CFG_CNAME_ALL);
	assert_int_equal(cfg->zones[1].cname, CFG_CNAME_APEX);
	assert_int_equal(cfg->zones[2].cname, CFG_CNAME_NONE);
	cfg_free(cfg);
}

/* siblings works like cname: [flatten] gives the default wherever it is
 * in the file, a [zone] overrides it, and siblings_line says where the
 * value in force was written. update needs a key (test_cfg_tsigkey.c);
 * off does not. */
static void test_load_zone_siblings_defaults_and_overrides(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[zone a.example]\n"
	                               "[zone b.example]\nsiblings = off\ncname = all\n");

	assert_int_equal(cfg->flatten.siblings, CFG_SIBLINGS_OFF);
	assert_false(cfg->backend.update_key.present);
	assert_int_equal(cfg->zones[0].siblings, CFG_SIBLINGS_OFF);
	assert_int_equal(cfg->zones[0].siblings_line, 0);
	assert_int_equal(cfg->zones[1].siblings, CFG_SIBLINGS_OFF);
	assert_int_equal(cfg->zones[1].siblings_line, 7);
	assert_int_equal(cfg->zones[1].cname, CFG_CNAME_ALL);
	cfg_free(cfg);

	/* Case does not matter, as for cname; an explicit off in [flatten]
	 * is where the zones' value comes from. */
	cfg = load_ok(BASE "[zone a.example]\n[flatten]\nsiblings = OFF\n");
	assert_int_equal(cfg->zones[0].siblings, CFG_SIBLINGS_OFF);
	assert_int_equal(cfg->zones[0].siblings_line, 7);
	cfg_free(cfg);
}

static void test_load_siblings_bad_and_duplicate(void **state)
{
	(void)state;
	load_fails(BASE "[flatten]\nsiblings = yes\n[zone a.example]\nsiblings = axfr\n"
	                "siblings = off\n",
	           "t.ini:6: [flatten] siblings: \"yes\" is not a siblings mode; allowed: off, "
	           "update\n"
	           "t.ini:8: [zone a.example] siblings: \"axfr\" is not a siblings mode; allowed: "
	           "off, update\n"
	           "t.ini:9: [zone a.example] siblings: duplicate key (first set at line 8); "
	           "allowed: one value per key\n");
	load_fails(BASE "[zone a.example]\nsiblings =\n",
	           "t.ini:6: [zone a.example] siblings: missing value; allowed: off, update\n");
}

/* ---- cross-key rules ---------------------------------------------------- */

static void test_load_missing_backend_names_end_of_file(void **state)
{
	(void)state;
	load_fails("[listen]\nudp = 127.0.0.1:53\n",
	           "t.ini:0: [backend] address: missing; allowed: an address like "
	           "127.0.0.1:5300\n");
	/* With the section present, the error points at its header. */
	load_fails("[listen]\nudp = 127.0.0.1:53\n\n[backend]\ntimeout = 2s\n",
	           "t.ini:4: [backend] address: missing; allowed: an address like "
	           "127.0.0.1:5300\n");
}

static void test_load_no_listener_is_rejected(void **state)
{
	(void)state;
	load_fails("", "t.ini:0: [listen]: no udp, tcp, dot or doh address; allowed: at least "
	               "one of udp, tcp, dot, doh = ADDRESS[, ADDRESS...]\n"
	               "t.ini:0: [backend] address: missing; allowed: an address like "
	               "127.0.0.1:5300\n");
	load_fails("[backend]\naddress = 127.0.0.1:5300\n[listen]\nmax-connections = 5\n",
	           "t.ini:3: [listen]: no udp, tcp, dot or doh address; allowed: at least one of "
	           "udp, tcp, dot, doh = ADDRESS[, ADDRESS...]\n");
	struct cfg *cfg = load_ok("[listen]\ntcp = 127.0.0.1:53\n[backend]\n"
	                          "address = 127.0.0.1:5300\n");
	assert_int_equal(cfg->listen.udp.n, 0);
	cfg_free(cfg);
}

static void test_load_listen_on_backend_address_is_rejected(void **state)
{
	(void)state;
	load_fails("[listen]\nudp = 127.0.0.1:53\ntcp = 127.0.0.1:53, 127.0.0.1:5300\n"
	           "[backend]\naddress = 127.0.0.1:5300\n",
	           "t.ini:3: [listen] tcp: \"127.0.0.1:5300\" is the backend address (line 5); "
	           "allowed: an address other than [backend] address\n");
}

static void test_load_min_ttl_above_max_ttl_is_rejected(void **state)
{
	(void)state;
	load_fails(BASE "[flatten]\nmin-ttl = 2h\nmax-ttl = 1h\n",
	           "t.ini:7: [flatten] max-ttl: 1h is below min-ttl 2h (line 6); allowed: "
	           "min-ttl <= max-ttl\n");
	struct cfg *cfg = load_ok(BASE "[flatten]\nmin-ttl = 1h\nmax-ttl = 3600\n");
	assert_int_equal(cfg->flatten.min_ttl_s, cfg->flatten.max_ttl_s);
	cfg_free(cfg);
}

static void test_load_alias_owner_must_be_in_a_zone(void **state)
{
	(void)state;
	/* The zone may come after the alias; apex and names below count. */
	struct cfg *cfg = load_ok(BASE "[alias]\nEXAMPLE.com = cdn.example.net\n"
	                               "www.example.com. = Www.Cdn.Example.NET.\n"
	                               "[zone example.com]\n");
	assert_int_equal(cfg->n_aliases, 2);
	assert_string_equal(cfg->aliases[0].owner.text, "example.com.");
	assert_string_equal(cfg->aliases[1].targets[0].text, "www.cdn.example.net.");
	assert_int_equal(cfg->aliases[1].line, 7);
	cfg_free(cfg);

	load_fails(BASE "[zone example.com]\n[alias]\nxexample.com = a.net\nexample.org = b.net\n",
	           "t.ini:7: [alias] xexample.com: owner is not inside any [zone]; allowed: a name "
	           "at or below the name of a [zone NAME] section\n"
	           "t.ini:8: [alias] example.org: owner is not inside any [zone]; allowed: a name "
	           "at or below the name of a [zone NAME] section\n");
}

static void test_load_alias_errors(void **state)
{
	(void)state;
	load_fails(
	        BASE "[zone example.com]\n[alias]\n"
	             "example.com = a.net\n"
	             "Example.Com. = b.net\n"
	             "www.example.com =\n"
	             "a..example.com = c.net\n"
	             "ftp.example.com = c..net\n"
	             "mail.example.com = mail.example.com\n",
	        "t.ini:8: [alias] Example.Com.: duplicate owner (first at line 7); allowed: one "
	        "line per owner (several targets: owner = t1, t2)\n"
	        "t.ini:9: [alias] www.example.com: missing value; allowed: a target name like "
	        "cdn.example.net\n"
	        "t.ini:10: [alias] a..example.com: \"a..example.com\" is not a domain name (empty "
	        "label); allowed: a name like example.com (labels of 1..63 bytes, 255 bytes in "
	        "all)\n"
	        "t.ini:11: [alias] ftp.example.com: \"c..net\" is not a domain name (empty "
	        "label); allowed: a target name like cdn.example.net\n"
	        "t.ini:12: [alias] mail.example.com: target is the owner itself; allowed: "
	        "another name\n");
}

/* Issue 17: [alias] owner = t1, t2, ... is a pool; [flatten] pool. */
static void test_load_alias_pool(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[flatten]\npool = failover\n[zone example.com]\n[alias]\n"
	                               "shop.example.com = shop.cdn-a.net,Shop.CDN-b.net. , c.net\n"
	                               "example.com = one.net\n");
	assert_int_equal(cfg->flatten.pool, CFG_POOL_FAILOVER);
	assert_int_equal(cfg->n_aliases, 2);
	const struct cfg_alias *a = &cfg->aliases[0];
	assert_int_equal(a->n_targets, 3);
	assert_string_equal(a->targets[0].text, "shop.cdn-a.net.");
	assert_string_equal(a->targets[1].text, "shop.cdn-b.net.");
	assert_string_equal(a->targets[2].text, "c.net.");
	assert_int_equal(a->pool_wire_len, 16 + 16 + 7);
	assert_memory_equal(a->pool_wire, "\4shop\5cdn-a\3net\0\4shop\5cdn-b\3net\0\1c\3net\0", 39);
	char text[128];
	cfg_alias_targets_text(a, text, sizeof(text));
	assert_string_equal(text, "shop.cdn-a.net., shop.cdn-b.net., c.net.");
	assert_int_equal(cfg->aliases[1].n_targets, 1);
	assert_int_equal(cfg->aliases[1].pool_wire_len, 9);
	assert_string_equal(cfg_pool_mode_name(cfg->flatten.pool), "failover");
	cfg_free(cfg);

	cfg = load_ok(BASE "[zone example.com]\n");
	assert_int_equal(cfg->flatten.pool, CFG_POOL_UNION);
	cfg_free(cfg);
}

static void test_load_alias_pool_errors(void **state)
{
	(void)state;
	load_fails(BASE "[flatten]\npool = roundrobin\n[zone example.com]\n[alias]\n"
	                "a.example.com = x.net, , y.net\n"
	                "b.example.com = x.net, X.NET.\n"
	                "c.example.com = 1.n, 2.n, 3.n, 4.n, 5.n, 6.n, 7.n, 8.n, 9.n\n"
	                "d.example.com = x.net, d.example.com\n"
	                "e.example.com = x.net,\n",
	           "t.ini:6: [flatten] pool: \"roundrobin\" is not a pool mode; allowed: union, "
	           "failover\n"
	           "t.ini:9: [alias] a.example.com: \"x.net, , y.net\" has an empty list element; "
	           "allowed: target names separated by commas, like a.cdn.net, b.cdn.net\n"
	           "t.ini:10: [alias] b.example.com: \"X.NET.\" is listed twice; allowed: each "
	           "target once\n"
	           "t.ini:11: [alias] c.example.com: more than 8 targets; allowed: at most 8 "
	           "targets per owner\n"
	           "t.ini:12: [alias] d.example.com: target is the owner itself; allowed: another "
	           "name\n"
	           "t.ini:13: [alias] e.example.com: \"x.net,\" has an empty list element; "
	           "allowed: target names separated by commas, like a.cdn.net, b.cdn.net\n");
	/* 8 names of 130 octets each pass the count but not the 1024 octets. */
	char text[2048], label[64];
	memset(label, 'a', 62);
	label[62] = '\0';
	int o = snprintf(text, sizeof(text), "%s[zone example.com]\n[alias]\nexample.com = ", BASE);
	for (int i = 0; i < 8; i++)
		o += snprintf(text + o, sizeof(text) - (size_t)o, "%s%d%s.%s.net", i ? ", " : "", i,
		              label, label);
	snprintf(text + o, sizeof(text) - (size_t)o, "\n");
	struct cfg *cfg = NULL;
	struct cfg_error err;
	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "the targets are too long together; allowed: at most "
	                                "1024 octets"));
}

/* ---- DoT, DoH and [tls] ------------------------------------------------- */

/* A certificate and a key file that exist; the loader only checks that
 * they can be read, so any content does. */
struct tls_files {
	char cert[32];
	char key[32];
};

static void tls_files_make(struct tls_files *f)
{
	strcpy(f->cert, "/tmp/test_cfg_cert_XXXXXX");
	strcpy(f->key, "/tmp/test_cfg_key_XXXXXX");
	int fd = mkstemp(f->cert);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "cert\n", 5), 5);
	close(fd);
	fd = mkstemp(f->key);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "key\n", 4), 4);
	close(fd);
}

static void tls_files_remove(struct tls_files *f)
{
	unlink(f->cert);
	unlink(f->key);
}

static void test_load_tls_dot_doh_full(void **state)
{
	(void)state;
	struct tls_files f;
	char text[1024];

	tls_files_make(&f);
	snprintf(text, sizeof(text),
	         "[listen]\n"
	         "udp = 127.0.0.1:53\n"
	         "tcp = 127.0.0.1:53\n"
	         "dot = 127.0.0.1:853, [::1]:853\n"
	         "doh = 127.0.0.1:443\n"
	         "doh-path = /resolve/v1_dns-query.json\n"
	         "[tls]\n"
	         "certificate = %s\n"
	         "private-key = %s   ; comment\n"
	         "min-version = 1.3\n"
	         "[backend]\n"
	         "address = 127.0.0.1:5300\n",
	         f.cert, f.key);
	struct cfg *cfg = load_ok(text);

	assert_int_equal(cfg->listen.dot.n, 2);
	assert_addr4(&cfg->listen.dot.v[0], "127.0.0.1", 853);
	assert_string_equal(cfg->listen.dot.v[1].text, "[::1]:853");
	assert_int_equal(cfg->listen.doh.n, 1);
	assert_addr4(&cfg->listen.doh.v[0], "127.0.0.1", 443);
	assert_string_equal(cfg->listen.doh_path, "/resolve/v1_dns-query.json");
	assert_true(cfg->tls.present);
	assert_string_equal(cfg->tls.certificate, f.cert);
	assert_string_equal(cfg->tls.private_key, f.key);
	assert_int_equal(cfg->tls.min_version, 13);
	cfg_free(cfg);

	/* DoT alone is a listener; min-version defaults to 1.2. */
	snprintf(text, sizeof(text),
	         "[listen]\ndot = 127.0.0.1:853\n[tls]\ncertificate = %s\nprivate-key = %s\n"
	         "[backend]\naddress = 127.0.0.1:5300\n",
	         f.cert, f.key);
	cfg = load_ok(text);
	assert_int_equal(cfg->listen.udp.n, 0);
	assert_int_equal(cfg->listen.tcp.n, 0);
	assert_int_equal(cfg->listen.dot.n, 1);
	assert_int_equal(cfg->tls.min_version, 12);
	assert_string_equal(cfg->listen.doh_path, "/dns-query");
	cfg_free(cfg);
	tls_files_remove(&f);
}

static void test_load_tls_missing_certificate_file(void **state)
{
	(void)state;
	struct tls_files f;
	char text[1024], want[1024];

	tls_files_make(&f);
	snprintf(text, sizeof(text),
	         BASE "[listen]\ndot = 127.0.0.1:853\n[tls]\ncertificate = /nonexistent/cert.pem\n"
	              "private-key = %s\n",
	         f.key);
	load_fails(text, "t.ini:8: [tls] certificate: \"/nonexistent/cert.pem\" cannot be read "
	                 "(No such file or directory); allowed: a readable file with the PEM "
	                 "certificate chain, leaf first, like /etc/apexd/fullchain.pem\n");

	/* A directory passes access(R_OK) but is no certificate. */
	snprintf(text, sizeof(text),
	         BASE
	         "[listen]\ndot = 127.0.0.1:853\n[tls]\ncertificate = %s\nprivate-key = /tmp\n",
	         f.cert);
	load_fails(text, "t.ini:9: [tls] private-key: \"/tmp\" is a directory; allowed: a "
	                 "readable file with the leaf's PEM private key, like "
	                 "/etc/apexd/privkey.pem\n");

	/* Checked even while no listener uses them. */
	tls_files_remove(&f);
	snprintf(text, sizeof(text), BASE "[tls]\ncertificate = %s\n", f.cert);
	snprintf(want, sizeof(want),
	         "t.ini:6: [tls] certificate: \"%s\" cannot be read (No such file or "
	         "directory); allowed: a readable file with the PEM certificate chain, leaf "
	         "first, like /etc/apexd/fullchain.pem\n",
	         f.cert);
	load_fails(text, want);
}

static void test_load_tls_required_by_dot_and_doh(void **state)
{
	(void)state;
	struct tls_files f;
	char text[1024];

	load_fails(
	        BASE "[listen]\ndot = 127.0.0.1:853\n",
	        "t.ini:0: [tls] certificate: missing, needed by [listen] dot (line 6); allowed: "
	        "a readable file with the PEM certificate chain, leaf first, like "
	        "/etc/apexd/fullchain.pem\n"
	        "t.ini:0: [tls] private-key: missing, needed by [listen] dot (line 6); allowed: "
	        "a readable file with the leaf's PEM private key, like /etc/apexd/privkey.pem\n");

	/* With the section there, the error points at its header. */
	tls_files_make(&f);
	snprintf(text, sizeof(text),
	         BASE "[listen]\ndot = 127.0.0.1:853\ndoh = 127.0.0.1:443\n\n[tls]\n"
	              "certificate = %s\n",
	         f.cert);
	load_fails(text, "t.ini:9: [tls] private-key: missing, needed by [listen] dot (line 6) "
	                 "and doh (line 7); allowed: a readable file with the leaf's PEM private "
	                 "key, like /etc/apexd/privkey.pem\n");

	/* A [tls] section without DoT or DoH is staged, not an error. */
	struct cfg *cfg = load_ok(BASE "[tls]\nmin-version = 1.3\n");
	assert_true(cfg->tls.present);
	assert_string_equal(cfg->tls.certificate, "");
	assert_int_equal(cfg->tls.min_version, 13);
	cfg_free(cfg);
	snprintf(text, sizeof(text), BASE "[tls]\ncertificate = %s\nprivate-key = %s\n", f.cert,
	         f.key);
	cfg = load_ok(text);
	assert_true(cfg->tls.present);
	assert_string_equal(cfg->tls.private_key, f.key);
	cfg_free(cfg);
	tls_files_remove(&f);
}

static void test_load_tls_min_version(void **state)
{
	(void)state;
	static const char *const bad[] = {"1.1", "1.0", "1.4", "TLSv1.2", "12", "1.2.0", "1,2"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], want[256];
		snprintf(text, sizeof(text), BASE "[tls]\nmin-version = %s\n", bad[i]);
		snprintf(want, sizeof(want),
		         "t.ini:6: [tls] min-version: \"%s\" is not a TLS version apexd accepts; "
		         "allowed: 1.2, 1.3\n",
		         bad[i]);
		load_fails(text, want);
	}
	struct cfg *cfg = load_ok(BASE "[tls]\nmin-version = 1.2\n");
	assert_int_equal(cfg->tls.min_version, 12);
	cfg_free(cfg);
}

static void test_load_doh_path(void **state)
{
	(void)state;
	/* shown: as the report prints it (bytes outside printable ASCII as \xNN). */
	static const struct {
		const char *value, *shown, *why;
	} bad[] = {
	        {"dns-query", "dns-query", "does not start with '/'"},
	        {"https://x.example/dns-query", "https://x.example/dns-query",
	         "does not start with '/'"},
	        {"/dns-query?dns=", "/dns-query?dns=", "contains '?'"},
	        {"/dns#x", "/dns#x", "contains '#'"},
	        {"/dns query", "/dns query", "contains a blank"},
	        {"/dns\tquery", "/dns\\x09query", "contains a blank"},
	        {"/d\xc3\xa9", "/d\\xc3\\xa9", "contains the byte 0xc3"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256], want[512];
		snprintf(text, sizeof(text), BASE "[listen]\ndoh-path = %s\n", bad[i].value);
		snprintf(want, sizeof(want),
		         "t.ini:6: [listen] doh-path: \"%s\" %s; allowed: a URL path like "
		         "/dns-query: '/' then printable ASCII without blanks, '?' or '#', at most "
		         "128 characters\n",
		         bad[i].shown, bad[i].why);
		load_fails(text, want);
	}

	/* 128 characters is the most; the default stays without the key. */
	char path[130], text[512];
	path[0] = '/';
	memset(path + 1, 'p', 127);
	path[128] = '\0';
	snprintf(text, sizeof(text), BASE "[listen]\ndoh-path = %s\n", path);
	struct cfg *cfg = load_ok(text);
	assert_string_equal(cfg->listen.doh_path, path);
	cfg_free(cfg);
	strcat(path, "p");
	snprintf(text, sizeof(text), BASE "[listen]\ndoh-path = %s\n", path);
	struct cfg_error err;
	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is longer than 128 characters; allowed: a URL path"));

	cfg = load_ok(BASE "[listen]\ndoh-path = /\n");
	assert_string_equal(cfg->listen.doh_path, "/");
	cfg_free(cfg);
}

static void test_load_tcp_dot_doh_addresses_do_not_overlap(void **state)
{
	(void)state;
	struct tls_files f;
	char text[1024];

	tls_files_make(&f);
#define TLS_SEC "[tls]\ncertificate = %s\nprivate-key = %s\n"
	/* Lines 1-4: [listen], udp, [backend], address; 5-7: [tls]. */
	snprintf(text, sizeof(text),
	         BASE TLS_SEC "[listen]\ntcp = 127.0.0.1:53, 127.0.0.1:853\ndot = 127.0.0.1:853\n",
	         f.cert, f.key);
	load_fails(text,
	           "t.ini:10: [listen] dot: \"127.0.0.1:853\" is also a tcp address (line 9); "
	           "allowed: an address in only one of tcp, dot and doh\n");

	/* The later key gets the error; udp may share with any of them. */
	snprintf(text, sizeof(text),
	         BASE TLS_SEC "[listen]\ndoh = [::1]:443\ndot = [::1]:443\ntcp = 127.0.0.1:5353\n",
	         f.cert, f.key);
	load_fails(text, "t.ini:10: [listen] dot: \"[::1]:443\" is also a doh address (line 9); "
	                 "allowed: an address in only one of tcp, dot and doh\n");

	/* A wildcard covers the specific addresses of its family and port. */
	snprintf(text, sizeof(text),
	         BASE TLS_SEC "[listen]\ntcp = 0.0.0.0:853\ndot = 127.0.0.1:853, [::1]:853\n",
	         f.cert, f.key);
	load_fails(text, "t.ini:10: [listen] dot: \"127.0.0.1:853\" is covered by the wildcard tcp "
	                 "\"0.0.0.0:853\" (line 9); allowed: an address in only one of tcp, dot "
	                 "and doh\n");
	snprintf(text, sizeof(text), BASE TLS_SEC "[listen]\ndot = [::1]:853\ndoh = [::]:853\n",
	         f.cert, f.key);
	load_fails(text, "t.ini:10: [listen] doh: \"[::]:853\" is a wildcard covering dot "
	                 "\"[::1]:853\" (line 9); allowed: an address in only one of tcp, dot and "
	                 "doh\n");

	/* Nor may DoT or DoH listen on the backend. */
	snprintf(text, sizeof(text), BASE TLS_SEC "[listen]\ndoh = 127.0.0.1:5300\n", f.cert,
	         f.key);
	load_fails(text, "t.ini:9: [listen] doh: \"127.0.0.1:5300\" is the backend address (line "
	                 "4); allowed: an address other than [backend] address\n");

	/* Different ports, or another family's wildcard, are fine. */
	snprintf(text, sizeof(text),
	         BASE TLS_SEC "[listen]\ntcp = 0.0.0.0:53, [::]:853\ndot = 127.0.0.1:853\n"
	                      "doh = 127.0.0.1:443, 0.0.0.0:8443\n",
	         f.cert, f.key);
	struct cfg *cfg = load_ok(text);
	assert_int_equal(cfg->listen.tcp.n, 2);
	assert_int_equal(cfg->listen.doh.n, 2);
	cfg_free(cfg);
#undef TLS_SEC
	tls_files_remove(&f);
}

/* ---- aname-types -------------------------------------------------------- */

static void test_load_aname_types_list(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "[flatten]\naname-types = 65401, 65305,3\n");

	assert_int_equal(cfg->flatten.n_aname_types, 3);
	assert_int_equal(cfg->flatten.aname_types[0], 65401);
	assert_int_equal(cfg->flatten.aname_types[1], 65305);
	assert_int_equal(cfg->flatten.aname_types[2], 3);
	cfg_free(cfg);
}

static void test_load_aname_types_rejects_special_types(void **state)
{
	(void)state;
	static const struct {
		const char *value, *why;
	} cases[] = {
	        {"0", "cannot be an ANAME type (reserved)"},
	        {"1", "cannot be an ANAME type (A, which apexd reads itself)"},
	        {"5", "cannot be an ANAME type (CNAME, which apexd reads itself)"},
	        {"28", "cannot be an ANAME type (AAAA, which apexd reads itself)"},
	        {"41", "cannot be an ANAME type (OPT, a pseudo-type)"},
	        {"46", "cannot be an ANAME type (a DNSSEC type)"},
	        {"128", "cannot be an ANAME type (a query or meta type)"},
	        {"252", "cannot be an ANAME type (a query or meta type)"},
	        {"255", "cannot be an ANAME type (a query or meta type)"},
	        {"65535", "cannot be an ANAME type (reserved)"},
	        {"65536", "is out of range"},
	        {"TYPE65401", "is not a number"},
	        {"-5", "is not a number"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256], want[512];
		snprintf(text, sizeof(text), BASE "[flatten]\naname-types = 65401, %s\n",
		         cases[i].value);
		snprintf(want, sizeof(want),
		         "t.ini:6: [flatten] aname-types: \"%s\" %s; allowed: at most 16 type "
		         "codes, "
		         "1..65535 except 1, 2, 5, 6, 28, 39, 41, 46, 47, 50, 128..255 and 65535, "
		         "like 65401\n",
		         cases[i].value, cases[i].why);
		load_fails(text, want);
	}
	struct cfg *cfg = load_ok(BASE "[flatten]\naname-types = 127, 256, 65534\n");
	assert_int_equal(cfg->flatten.n_aname_types, 3);
	cfg_free(cfg);
}

static void test_load_aname_types_duplicates_and_count(void **state)
{
	(void)state;
	load_fails(BASE "[flatten]\naname-types = 65401, 65305, 65401\n",
	           "t.ini:6: [flatten] aname-types: \"65401\" is listed twice; allowed: each type "
	           "once\n");

	char text[512] = BASE "[flatten]\naname-types = 65000";
	for (int i = 1; i <= CFG_MAX_ANAME_TYPES; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ",%d", 65000 + i);
	strcat(text, "\n");
	load_fails(text, "t.ini:6: [flatten] aname-types: more than 16 types; allowed: at most 16 "
	                 "type codes, 1..65535 except 1, 2, 5, 6, 28, 39, 41, 46, 47, 50, 128..255 "
	                 "and 65535, like 65401\n");

	/* Exactly the maximum loads. */
	char *comma = strrchr(text, ',');
	comma[0] = '\n';
	comma[1] = '\0';
	struct cfg *cfg = load_ok(text);
	assert_int_equal(cfg->flatten.n_aname_types, CFG_MAX_ANAME_TYPES);
	cfg_free(cfg);
}

/* ---- domain names ------------------------------------------------------- */

static char *repeat(char *out, char c, size_t n)
{
	memset(out, c, n);
	out[n] = '\0';
	return out;
}

/* Loads BASE plus "[zone name]" and returns the cfg, or NULL with err set. */
static struct cfg *load_zone(const char *name, struct cfg_error *err)
{
	size_t size = strlen(BASE) + strlen(name) + 16;
	char *text = malloc(size);
	struct cfg *cfg = NULL;

	assert_non_null(text);
	snprintf(text, size, BASE "[zone %s]\n", name);
	load(text, &cfg, err);
	free(text);
	return cfg;
}

static void test_load_name_label_63_ok_64_rejected(void **state)
{
	(void)state;
	char l63[64], l64[65], name[128];
	struct cfg_error err;

	snprintf(name, sizeof(name), "%s.example", repeat(l63, 'a', 63));
	struct cfg *cfg = load_zone(name, &err);
	assert_non_null(cfg);
	assert_int_equal(cfg->zones[0].name.wire[0], 63);
	assert_int_equal(cfg->zones[0].name.wire_len, 1 + 63 + 1 + 7 + 1);
	cfg_free(cfg);

	snprintf(name, sizeof(name), "%s.example", repeat(l64, 'a', 64));
	assert_null(load_zone(name, &err));
	assert_non_null(strstr(err.msg, "(label longer than 63 bytes)"));
}

static void test_load_name_255_ok_256_rejected(void **state)
{
	(void)state;
	char l63[64], l61[62], l62[63], name[300];
	struct cfg_error err;

	/* 3 x (1 + 63) + (1 + 61) + 1 = 255 bytes of wire, 254 characters of
	 * text: far longer than libinih's 200-byte line buffer. */
	repeat(l63, 'b', 63);
	snprintf(name, sizeof(name), "%s.%s.%s.%s.", l63, l63, l63, repeat(l61, 'c', 61));
	struct cfg *cfg = load_zone(name, &err);
	if (cfg == NULL)
		fail_msg("%s", err.msg);
	assert_int_equal(cfg->zones[0].name.wire_len, 255);
	assert_string_equal(cfg->zones[0].name.text, name);
	cfg_free(cfg);

	snprintf(name, sizeof(name), "%s.%s.%s.%s", l63, l63, l63, repeat(l62, 'c', 62));
	assert_null(load_zone(name, &err));
	assert_non_null(strstr(err.msg, "(longer than 255 bytes)"));
}

static void test_load_name_escapes_and_case(void **state)
{
	(void)state;
	static const struct {
		const char *in, *text, *wire;
		uint8_t wire_len;
	} ok[] = {
	        {"Example.COM", "example.com.", "\7example\3com", 13},
	        {"example.com.", "example.com.", "\7example\3com", 13},
	        {"a\\.b.example", "a\\.b.example.", "\3a.b\7example", 13},
	        {"\\065bc.example", "abc.example.", "\3abc\7example", 13},
	        {"a\\032b.example", "a\\032b.example.", "\3a b\7example", 13},
	        {"a\\\\b.example", "a\\\\b.example.", "\3a\\b\7example", 13},
	        {"x\\000.example", "x\\000.example.", "\2x\0\7example", 12},
	        {"\\X.example", "x.example.", "\1x\7example", 11},
	        {"*.example", "*.example.", "\1*\7example", 11},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct cfg_error err;
		struct cfg *cfg = load_zone(ok[i].in, &err);
		if (cfg == NULL)
			fail_msg("%s: %s", ok[i].in, err.msg);
		assert_string_equal(cfg->zones[0].name.text, ok[i].text);
		assert_int_equal(cfg->zones[0].name.wire_len, ok[i].wire_len);
		assert_memory_equal(cfg->zones[0].name.wire, ok[i].wire, ok[i].wire_len);
		cfg_free(cfg);
	}

	static const struct {
		const char *in, *why;
	} bad[] = {
	        {"a..b", "(empty label)"},
	        {".a", "(empty label)"},
	        {"a.b..", "(empty label)"},
	        {"a\\256.b", "(\\DDD escape above 255)"},
	        {"a\\1.b", "(\\DDD escape needs three digits)"},
	        {"a\\12", "(\\DDD escape needs three digits)"},
	        {"ab\\", "(backslash at the end)"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cfg_error err;
		assert_null(load_zone(bad[i].in, &err));
		if (strstr(err.msg, bad[i].why) == NULL)
			fail_msg("%s: %s", bad[i].in, err.msg);
	}
}

static void test_load_name_escaped_dot_is_not_a_label_break(void **state)
{
	(void)state;
	/* "a\.example.com" is one label "a.example" under com, so it is not
	 * inside example.com. */
	load_fails(BASE "[zone example.com]\n[alias]\na\\.example.com = x.net\n",
	           "t.ini:7: [alias] a\\.example.com: owner is not inside any [zone]; allowed: a "
	           "name at or below the name of a [zone NAME] section\n");
}

/* ---- the report ----------------------------------------------------------- */

static void test_load_collects_all_errors_sorted_by_line(void **state)
{
	(void)state;
	struct cfg *cfg = NULL;
	struct cfg_error err;

	assert_int_equal(load("[server]\nthreads = x\n[alias]\nwww.nowhere.net = a.net\n"
	                      "[server]\nlog-level = loud\n",
	                      &cfg, &err),
	                 -EINVAL);
	assert_int_equal(err.count, 5);
	/* Line 0 first (missing sections), then in file order. */
	const char *p = err.msg;
	static const char *const starts[] = {"t.ini:0: [listen]", "t.ini:0: [backend]",
	                                     "t.ini:2: [server] threads", "t.ini:4: [alias]",
	                                     "t.ini:6: [server] log-level"};
	for (size_t i = 0; i < 5; i++) {
		assert_true(strncmp(p, starts[i], strlen(starts[i])) == 0);
		p = strchr(p, '\n') + 1;
	}
	assert_string_equal(p, "");
}

static void test_load_many_errors_are_counted_and_cut(void **state)
{
	(void)state;
	size_t n = 1000, size = n * 16 + 256;
	char *text = malloc(size);
	struct cfg *cfg = NULL;
	struct cfg_error err;

	assert_non_null(text);
	strcpy(text, BASE "[server]\n");
	for (size_t i = 0; i < n; i++)
		strcat(text, "bogus = 1\n");
	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	free(text);
	assert_int_equal(err.count, n);
	assert_true(strlen(err.msg) < sizeof(err.msg));
	/* Whole lines only, then the count of the rest. */
	char *last = strstr(err.msg, "more errors not shown)\n");
	assert_non_null(last);
	assert_string_equal(last, "more errors not shown)\n");
	assert_true(last[-2] >= '0' && last[-2] <= '9');
}

static void test_load_log_level_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_log_level_name(CFG_LOG_ERROR), "error");
	assert_string_equal(cfg_log_level_name(CFG_LOG_WARNING), "warning");
	assert_string_equal(cfg_log_level_name(CFG_LOG_INFO), "info");
	assert_string_equal(cfg_log_level_name(CFG_LOG_DEBUG), "debug");
	assert_string_equal(cfg_log_level_name((enum cfg_log_level)7), "unknown");
	cfg_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_load_full_example_sets_every_field),
	        cmocka_unit_test(test_load_file_reads_from_disk),
	        cmocka_unit_test(test_load_missing_file_reports_errno),
	        cmocka_unit_test(test_load_directory_reports_errno),
	        cmocka_unit_test(test_load_absent_keys_take_defaults),
	        cmocka_unit_test(test_load_threads_zero_resolves_to_cpu_count),
	        cmocka_unit_test(test_load_value_types_good_and_bad),
	        cmocka_unit_test(test_load_address_forms),
	        cmocka_unit_test(test_load_address_list_spacing_and_errors),
	        cmocka_unit_test(test_load_empty_value_is_an_error),
	        cmocka_unit_test(test_load_comments_and_blank_lines_keep_line_numbers),
	        cmocka_unit_test(test_load_bad_duration_reports_line),
	        cmocka_unit_test(test_load_hash_inside_value_is_not_a_comment),
	        cmocka_unit_test(test_load_crlf_bom_and_indent_are_accepted),
	        cmocka_unit_test(test_load_malformed_lines_are_reported),
	        cmocka_unit_test(test_load_control_character_is_rejected),
	        cmocka_unit_test(test_load_control_and_metrics_parsed),
	        cmocka_unit_test(test_load_control_bad_path_is_rejected),
	        cmocka_unit_test(test_load_metrics_overlap_is_rejected),
	        cmocka_unit_test(test_load_key_outside_section_is_rejected),
	        cmocka_unit_test(test_load_user_must_exist),
	        cmocka_unit_test(test_load_limits_defaults_and_ranges),
	        cmocka_unit_test(test_load_cache_keys_parsed_with_defaults),
	        cmocka_unit_test(test_load_unknown_key_and_section_list_what_is_allowed),
	        cmocka_unit_test(test_load_resolver_ecs),
	        cmocka_unit_test(test_load_duplicate_key_is_rejected),
	        cmocka_unit_test(test_load_repeated_section_merges),
	        cmocka_unit_test(test_load_duplicate_zone_is_rejected),
	        cmocka_unit_test(test_load_zone_header_errors),
	        cmocka_unit_test(test_load_zone_cname_defaults_to_flatten_cname_even_later),
	        cmocka_unit_test(test_load_zone_siblings_defaults_and_overrides),
	        cmocka_unit_test(test_load_siblings_bad_and_duplicate),
	        cmocka_unit_test(test_load_missing_backend_names_end_of_file),
	        cmocka_unit_test(test_load_no_listener_is_rejected),
	        cmocka_unit_test(test_load_listen_on_backend_address_is_rejected),
	        cmocka_unit_test(test_load_min_ttl_above_max_ttl_is_rejected),
	        cmocka_unit_test(test_load_alias_owner_must_be_in_a_zone),
	        cmocka_unit_test(test_load_alias_errors),
	        cmocka_unit_test(test_load_alias_pool),
	        cmocka_unit_test(test_load_alias_pool_errors),
	        cmocka_unit_test(test_load_tls_dot_doh_full),
	        cmocka_unit_test(test_load_tls_missing_certificate_file),
	        cmocka_unit_test(test_load_tls_required_by_dot_and_doh),
	        cmocka_unit_test(test_load_tls_min_version),
	        cmocka_unit_test(test_load_doh_path),
	        cmocka_unit_test(test_load_tcp_dot_doh_addresses_do_not_overlap),
	        cmocka_unit_test(test_load_aname_types_list),
	        cmocka_unit_test(test_load_aname_types_rejects_special_types),
	        cmocka_unit_test(test_load_aname_types_duplicates_and_count),
	        cmocka_unit_test(test_load_name_label_63_ok_64_rejected),
	        cmocka_unit_test(test_load_name_255_ok_256_rejected),
	        cmocka_unit_test(test_load_name_escapes_and_case),
	        cmocka_unit_test(test_load_name_escaped_dot_is_not_a_label_break),
	        cmocka_unit_test(test_load_collects_all_errors_sorted_by_line),
	        cmocka_unit_test(test_load_many_errors_are_counted_and_cut),
	        cmocka_unit_test(test_load_log_level_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
