/* proxy/health/report.c - what the checker knows, for apexctl explain and
 * the metrics. Reads the checker's entries under info_mu (the checker
 * holds it only while it changes an entry or an owner).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "proxy/health/internal.h"
#include "proxy/ops/statsfmt.h"

static const char *state_name(unsigned s)
{
	return s == PX_HS_UP ? "up" : s == PX_HS_DOWN ? "down" : "unknown";
}

static void put_age(struct px_sbuf *b, const char *what, uint64_t then, uint64_t now)
{
	uint64_t ms = now > then ? now - then : 0;

	px_sbuf_put(b, "%s %llu.%01llu s ago", what, (unsigned long long)(ms / 1000),
	            (unsigned long long)(ms % 1000 / 100));
}

static void explain_one(struct px_health *h, uint64_t key, uint16_t qtype, const uint8_t *addr,
                        uint64_t now, struct px_sbuf *b, unsigned *down)
{
	char text[64];
	uint64_t a[2];

	inet_ntop(qtype == 28 ? AF_INET6 : AF_INET, addr, text, sizeof(text));
	px_health_addr_words(addr, qtype, a);
	int idx = px_health_find(h, key, a);
	px_sbuf_put(b, "    %s: ", text);
	if (idx < 0) {
		px_sbuf_put(b, "unknown, not checked yet (served; the next answer that carries it "
		               "starts its checks)\n");
		return;
	}
	const struct px_health_ent *e = &h->ents[idx];
	px_sbuf_put(b, "%s", state_name(e->sm.state));
	if (e->sm.state == PX_HS_DOWN) {
		(*down)++;
		px_sbuf_put(b, " (%s; %u checks failed), ", e->why, e->sm.fails);
		put_age(b, "down since", e->down_since, now);
		px_sbuf_put(b, ", ");
	} else if (e->last_at != 0 && e->last != PX_HR_OK) {
		px_sbuf_put(b, " (last check failed: %s; %u of fall in a row), ", e->why,
		            e->sm.fails);
	} else {
		px_sbuf_put(b, ", ");
	}
	if (e->last_at == 0)
		px_sbuf_put(b, "no check finished yet\n");
	else {
		put_age(b, "last check", e->last_at, now);
		px_sbuf_put(b, " (%s)\n", px_health_result_name((enum px_health_result)e->last));
	}
}

void px_health_explain(struct px_health *h, const struct cfg_check *check, const uint8_t *owner,
                       size_t owner_len, uint16_t qtype, const uint8_t (*addrs)[16], unsigned n,
                       struct px_sbuf *b)
{
	char ck[160];

	if (check->kind == CFG_CHECK_NONE || (qtype != 1 && qtype != 28) || n == 0)
		return;
	cfg_check_text(check, ck, sizeof(ck));
	if (h == NULL || !atomic_load(&h->running)) {
		px_sbuf_put(b,
		            "  health (%s): the checker is not running; every address is served\n",
		            ck);
		return;
	}
	px_sbuf_put(b, "  health (%s every %llu ms, timeout %llu ms, fall %u, rise %u):\n", ck,
	            (unsigned long long)h->interval_ms, (unsigned long long)h->timeout_ms, h->fall,
	            h->rise);
	uint64_t key = px_health_key(h, check, owner, owner_len, qtype);
	uint64_t now = uv_hrtime() / 1000000;
	unsigned down = 0;
	uv_mutex_lock(&h->info_mu);
	for (unsigned i = 0; i < n; i++)
		explain_one(h, key, qtype, addrs[i], now, b, &down);
	uv_mutex_unlock(&h->info_mu);
	if (down == n)
		px_sbuf_put(b, "    every address is down: all are served (fail open)\n");
	else if (down > 0)
		px_sbuf_put(b, "    answers carry the %u address%s not down\n", n - down,
		            n - down == 1 ? "" : "es");
}

/* ---- metrics ------------------------------------------------------------ */

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(char *out, size_t size, const char *in)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < size; in++) {
		if (*in == '\\' || *in == '"')
			out[o++] = '\\';
		out[o++] = *in == '\n' ? 'n' : *in;
	}
	out[o] = '\0';
}

static void render_owners(struct px_health *h, struct px_sbuf *b, uint64_t *up, uint64_t *down,
                          bool prometheus)
{
	uint64_t other_up = 0, other_down = 0;
	unsigned shown = 0;
	char l[600];

	uv_mutex_lock(&h->info_mu);
	for (size_t i = 0; i < h->n_owners; i++) {
		const struct px_health_owner *o = &h->owners[i];
		if (!o->live)
			continue;
		*up += o->n - o->n_down;
		*down += o->n_down;
		if (shown >= PX_HEALTH_METRIC_OWNERS) {
			other_up += o->n - o->n_down;
			other_down += o->n_down;
			continue;
		}
		if (prometheus && shown == 0)
			px_sbuf_put(
			        b,
			        "# HELP apexd_health_addresses addresses checked, by owner, family "
			        "and state (up includes not yet decided; owners past %u summed "
			        "as _other)\n# TYPE apexd_health_addresses gauge\n",
			        PX_HEALTH_METRIC_OWNERS);
		shown++;
		if (!prometheus)
			continue;
		label(l, sizeof(l), o->host);
		const char *fam = o->qtype == 28 ? "ipv6" : "ipv4";
		px_sbuf_put(b,
		            "apexd_health_addresses{owner=\"%s\",family=\"%s\",state=\"up\"} %u\n",
		            l, fam, o->n - o->n_down);
		px_sbuf_put(
		        b, "apexd_health_addresses{owner=\"%s\",family=\"%s\",state=\"down\"} %u\n",
		        l, fam, o->n_down);
	}
	uv_mutex_unlock(&h->info_mu);
	if (prometheus && shown >= PX_HEALTH_METRIC_OWNERS)
		px_sbuf_put(b,
		            "apexd_health_addresses{owner=\"_other\",family=\"any\",state=\"up\"} "
		            "%llu\napexd_health_addresses{owner=\"_other\",family=\"any\",state="
		            "\"down\"} %llu\n",
		            (unsigned long long)other_up, (unsigned long long)other_down);
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

void px_health_render(struct px_health *h, bool prometheus, struct px_sbuf *b)
{
	uint64_t up = 0, down = 0;

	if (prometheus) {
		px_sbuf_put(b, "# HELP apexd_health_checks_total health checks done, by result\n"
		               "# TYPE apexd_health_checks_total counter\n");
		for (unsigned r = 0; r < PX_HR_COUNT; r++)
			px_sbuf_put(b, "apexd_health_checks_total{result=\"%s\"} %llu\n",
			            px_health_result_name((enum px_health_result)r),
			            h ? LOAD(h->checks[r]) : 0ull);
		px_sbuf_put(b,
		            "# HELP apexd_health_state_changes_total addresses that went down or "
		            "came back up\n# TYPE apexd_health_state_changes_total counter\n"
		            "apexd_health_state_changes_total %llu\n",
		            h ? LOAD(h->changes) : 0ull);
		px_sbuf_put(b,
		            "# HELP apexd_health_unchecked_total new addresses left unchecked: "
		            "table or queue full\n# TYPE apexd_health_unchecked_total counter\n"
		            "apexd_health_unchecked_total %llu\n",
		            h ? LOAD(h->dropped_misses) : 0ull);
	} else {
		for (unsigned r = 0; r < PX_HR_COUNT; r++)
			px_sbuf_put(b, "health_checks_%s=%llu\n",
			            px_health_result_name((enum px_health_result)r),
			            h ? LOAD(h->checks[r]) : 0ull);
		px_sbuf_put(b, "health_state_changes=%llu\nhealth_unchecked=%llu\n",
		            h ? LOAD(h->changes) : 0ull, h ? LOAD(h->dropped_misses) : 0ull);
	}
	if (h != NULL)
		render_owners(h, b, &up, &down, prometheus);
	if (!prometheus)
		px_sbuf_put(b, "health_addresses_up=%llu\nhealth_addresses_down=%llu\n",
		            (unsigned long long)up, (unsigned long long)down);
}
