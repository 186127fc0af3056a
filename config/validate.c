/* config/validate.c - what can only be decided once the whole file is read.
 *
 * A [zone NAME] takes [flatten] cname and siblings even when [flatten]
 * comes later, siblings = update needs [backend] update-key wherever that
 * is, an [alias] may name a zone declared further down, and required keys
 * are only missing at the end. Errors carry the line of the key involved, or
 * of the section header, or 0 when the section is absent altogether.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/internal.h"

/* Upper bound of [server] threads, as in the schema in keys.c. */
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

/* An IPv4 or IPv6 wildcard address; the proxy sets IPV6_V6ONLY, so [::]
 * covers IPv6 only. */
static bool is_wildcard(const struct cfg_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_addr.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->sa)->sin6_addr);
}

static uint16_t port_of(const struct cfg_addr *a)
{
	if (a->sa.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->sa)->sin_port;
	return ((const struct sockaddr_in6 *)&a->sa)->sin6_port;
}

/* tcp, dot and doh are all TCP sockets, bound with SO_REUSEPORT: two of
 * them on one address would both bind and split the connections between
 * plain DNS, DoT and DoH. A wildcard on the same port binds as well, and
 * the kernel gives the connections to a covered address to the more
 * specific socket, so one protocol silently never sees them. The error
 * goes to the key set later in the file and names the other one. */
static void check_tcp_overlap(struct cfg__ld *ld)
{
	static const char *const names[] = {"tcp", "dot", "doh"};
	const struct cfg_addr_list *lists[] = {&ld->cfg->listen.tcp, &ld->cfg->listen.dot,
	                                       &ld->cfg->listen.doh};
	const unsigned *seen = ld->seen[CFG__SEC_LISTEN];
	const unsigned lines[] = {seen[CFG__KEY_LISTEN_TCP], seen[CFG__KEY_LISTEN_DOT],
	                          seen[CFG__KEY_LISTEN_DOH]};

	for (int x = 0; x < 3; x++) {
		for (int y = x + 1; y < 3; y++) {
			/* a is the key set later: the one the error is about. */
			int ia = lines[x] > lines[y] ? x : y, ib = ia == x ? y : x;
			const struct cfg_addr_list *a = lists[ia], *b = lists[ib];
			for (size_t i = 0; i < a->n; i++) {
				for (size_t j = 0; j < b->n; j++) {
					const struct cfg_addr *p = &a->v[i], *q = &b->v[j];
					if (strcmp(p->text, q->text) == 0) {
						cfg__err(ld, lines[ia],
						         "[listen] %s: \"%s\" is also a %s address "
						         "(line %u); allowed: an address in only "
						         "one of tcp, dot and doh",
						         names[ia], p->text, names[ib], lines[ib]);
					} else if (p->sa.ss_family == q->sa.ss_family &&
					           port_of(p) == port_of(q) &&
					           (is_wildcard(p) || is_wildcard(q))) {
						cfg__err(ld, lines[ia],
						         "[listen] %s: \"%s\" %s %s \"%s\" (line "
						         "%u); allowed: an address in only one of "
						         "tcp, dot and doh",
						         names[ia], p->text,
						         is_wildcard(p)
						                 ? "is a wildcard covering"
						                 : "is covered by the wildcard",
						         names[ib], q->text, lines[ib]);
					}
				}
			}
		}
	}
}

/* certificate and private-key when a DoT or DoH listener needs them; a
 * [tls] section without such a listener is kept as written (staged). */
static void check_tls(struct cfg__ld *ld)
{
	const unsigned *listen = ld->seen[CFG__SEC_LISTEN];
	const unsigned *tls = ld->seen[CFG__SEC_TLS];
	unsigned dot = listen[CFG__KEY_LISTEN_DOT], doh = listen[CFG__KEY_LISTEN_DOH];
	char by[96];

	ld->cfg->tls.present = ld->sec_line[CFG__SEC_TLS] != 0;
	if (dot == 0 && doh == 0)
		return;
	if (dot != 0 && doh != 0)
		snprintf(by, sizeof(by), "[listen] dot (line %u) and doh (line %u)", dot, doh);
	else if (dot != 0)
		snprintf(by, sizeof(by), "[listen] dot (line %u)", dot);
	else
		snprintf(by, sizeof(by), "[listen] doh (line %u)", doh);
	if (tls[CFG__KEY_TLS_CERTIFICATE] == 0)
		cfg__err(ld, ld->sec_line[CFG__SEC_TLS],
		         "[tls] certificate: missing, needed by %s; allowed: %s", by,
		         CFG__CERT_ALLOWED);
	if (tls[CFG__KEY_TLS_PRIVATE_KEY] == 0)
		cfg__err(ld, ld->sec_line[CFG__SEC_TLS],
		         "[tls] private-key: missing, needed by %s; allowed: %s", by,
		         CFG__PKEY_ALLOWED);
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

/* The metrics endpoint is a TCP socket of its own (no SO_REUSEPORT): on
 * the backend's address or on a DNS TCP listener's it would either fail to
 * bind or take that listener's connections. */
static void check_metrics(struct cfg__ld *ld)
{
	static const char *const names[] = {"tcp", "dot", "doh"};
	const struct cfg *cfg = ld->cfg;
	const struct cfg_addr *m = &cfg->listen.metrics;
	const struct cfg_addr_list *lists[] = {&cfg->listen.tcp, &cfg->listen.dot,
	                                       &cfg->listen.doh};
	const unsigned *seen = ld->seen[CFG__SEC_LISTEN];
	const unsigned lines[] = {seen[CFG__KEY_LISTEN_TCP], seen[CFG__KEY_LISTEN_DOT],
	                          seen[CFG__KEY_LISTEN_DOH]};
	unsigned line = seen[CFG__KEY_LISTEN_METRICS];

	if (m->salen == 0)
		return;
	if (cfg->backend.address.salen != 0 && strcmp(m->text, cfg->backend.address.text) == 0)
		cfg__err(ld, line,
		         "[listen] metrics: \"%s\" is the backend address (line %u); allowed: an "
		         "address other than [backend] address",
		         m->text, ld->seen[CFG__SEC_BACKEND][CFG__KEY_BACKEND_ADDRESS]);
	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			const struct cfg_addr *a = &lists[k]->v[i];
			if (a->sa.ss_family != m->sa.ss_family || port_of(a) != port_of(m))
				continue;
			if (strcmp(a->text, m->text) == 0 || is_wildcard(a) || is_wildcard(m))
				cfg__err(ld, line,
				         "[listen] metrics: \"%s\" overlaps the %s address \"%s\" "
				         "(line %u); allowed: an address and port no DNS listener "
				         "uses",
				         m->text, names[k], a->text, lines[k]);
		}
	}
}

/* Each zone takes [flatten] cname and siblings unless its section sets
 * its own; siblings_line says where the value in force was written. */
static void resolve_zones(struct cfg__ld *ld)
{
	struct cfg *cfg = ld->cfg;
	unsigned fl_siblings = ld->seen[CFG__SEC_FLATTEN][CFG__KEY_FLATTEN_SIBLINGS];

	for (size_t i = 0; i < cfg->n_zones; i++) {
		const unsigned *seen = ld->zone_seen[i];
		struct cfg_zone *z = &cfg->zones[i];
		if (seen[CFG__KEY_ZONE_CNAME] == 0)
			z->cname = cfg->flatten.cname;
		if (seen[CFG__KEY_ZONE_SIBLINGS] == 0) {
			z->siblings = cfg->flatten.siblings;
			z->siblings_line = fl_siblings;
		} else {
			z->siblings_line = seen[CFG__KEY_ZONE_SIBLINGS];
		}
		if (seen[CFG__KEY_ZONE_CHECK] == 0)
			z->check = cfg->health.check;
	}
}

/* A check that outlasts the interval would overlap the next one of the
 * same address. */
static void check_health(struct cfg__ld *ld)
{
	const struct cfg *cfg = ld->cfg;
	const unsigned *seen = ld->seen[CFG__SEC_HEALTH];
	char t[32], iv[32];

	if (cfg->health.timeout_ms <= cfg->health.interval_ms)
		return;
	cfg__fmt_duration_ms(t, sizeof(t), cfg->health.timeout_ms);
	cfg__fmt_duration_ms(iv, sizeof(iv), cfg->health.interval_ms);
	cfg__err(ld,
	         seen[CFG__KEY_HEALTH_TIMEOUT] ? seen[CFG__KEY_HEALTH_TIMEOUT]
	                                       : seen[CFG__KEY_HEALTH_INTERVAL],
	         "[health] timeout: %s is longer than interval %s; allowed: a timeout of at "
	         "most the interval",
	         t, iv);
}

#define SIBLINGS_NEED_KEY                                                                          \
	"update needs [backend] update-key (a TSIG key file, as tsig-keygen writes); allowed: "    \
	"off, or update once [backend] update-key is set"

/* siblings = update writes into BIND with UPDATEs signed by the key, so
 * without one it could only fail at run time. [flatten] siblings = update
 * needs the key even with no zone to apply it to, and its one error
 * covers every zone that inherits it; a zone that sets update itself gets
 * its own. An update-key that was set but could not be read has its own
 * error already. */
static void check_siblings(struct cfg__ld *ld)
{
	const struct cfg *cfg = ld->cfg;
	const struct cfg_tsig_key *key = &cfg->backend.update_key;

	if (key->present || key->path[0] != '\0')
		return;
	if (cfg->flatten.siblings == CFG_SIBLINGS_UPDATE)
		cfg__err(ld, ld->seen[CFG__SEC_FLATTEN][CFG__KEY_FLATTEN_SIBLINGS],
		         "[flatten] siblings: " SIBLINGS_NEED_KEY);
	for (size_t i = 0; i < cfg->n_zones; i++) {
		const struct cfg_zone *z = &cfg->zones[i];
		if (z->siblings != CFG_SIBLINGS_UPDATE ||
		    ld->zone_seen[i][CFG__KEY_ZONE_SIBLINGS] == 0)
			continue;
		/* The name without its final dot, as the header most likely
		 * spelled it. */
		size_t l = strlen(z->name.text);
		cfg__err(ld, z->siblings_line, "[zone %.*s] siblings: " SIBLINGS_NEED_KEY,
		         (int)(l > 1 ? l - 1 : l), z->name.text);
	}
}

/* dnstap-chases adds to a dnstap stream; without one it would be a key
 * that is read and does nothing. A dnstap that was set but wrong has its
 * own error already. */
static void check_dnstap(struct cfg__ld *ld)
{
	const unsigned *seen = ld->seen[CFG__SEC_SERVER];

	if (ld->cfg->server.dnstap_chases && seen[CFG__KEY_SERVER_DNSTAP] == 0)
		cfg__err(ld, seen[CFG__KEY_SERVER_DNSTAP_CHASES],
		         "[server] dnstap-chases: yes needs [server] dnstap (where the messages "
		         "go); allowed: no, or yes once dnstap = unix:PATH or file:PATH is set");
}

void cfg__validate(struct cfg__ld *ld)
{
	struct cfg *cfg = ld->cfg;
	const unsigned *listen = ld->seen[CFG__SEC_LISTEN];
	unsigned backend_line = ld->seen[CFG__SEC_BACKEND][CFG__KEY_BACKEND_ADDRESS];

	if (cfg->server.threads == 0)
		cfg->server.threads = online_cpus();

	resolve_zones(ld);

	/* A key that was present but wrong has its own error already; these
	 * checks are about keys that are absent. */
	if (listen[CFG__KEY_LISTEN_UDP] == 0 && listen[CFG__KEY_LISTEN_TCP] == 0 &&
	    listen[CFG__KEY_LISTEN_DOT] == 0 && listen[CFG__KEY_LISTEN_DOH] == 0)
		cfg__err(ld, ld->sec_line[CFG__SEC_LISTEN],
		         "[listen]: no udp, tcp, dot or doh address; allowed: at least one of "
		         "udp, tcp, dot, doh = ADDRESS[, ADDRESS...]");
	if (backend_line == 0) {
		cfg__err(ld, ld->sec_line[CFG__SEC_BACKEND],
		         "[backend] address: missing; allowed: an address like 127.0.0.1:5300");
	} else if (cfg->backend.address.salen != 0) {
		check_not_backend(ld, &cfg->listen.udp, "udp", listen[CFG__KEY_LISTEN_UDP]);
		check_not_backend(ld, &cfg->listen.tcp, "tcp", listen[CFG__KEY_LISTEN_TCP]);
		check_not_backend(ld, &cfg->listen.dot, "dot", listen[CFG__KEY_LISTEN_DOT]);
		check_not_backend(ld, &cfg->listen.doh, "doh", listen[CFG__KEY_LISTEN_DOH]);
	}
	check_tcp_overlap(ld);
	check_metrics(ld);
	check_tls(ld);
	check_ttls(ld);
	check_aliases(ld);
	check_siblings(ld);
	check_health(ld);
	check_dnstap(ld);
}
