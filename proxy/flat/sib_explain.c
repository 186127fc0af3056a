/* proxy/flat/sib_explain.c - the "siblings:" block of apexctl explain. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "codec/name.h"
#include "proxy/daemon/server.h"
#include "proxy/flat/sib_int.h"
#include "proxy/ops/statsfmt.h"

static void put_ago(struct px_sbuf *b, const char *what, uint64_t then, uint64_t now)
{
	if (then == 0)
		px_sbuf_put(b, "%s never", what);
	else
		px_sbuf_put(b, "%s %llu s ago", what, (unsigned long long)((now - then) / 1000));
}

static void put_set(struct px_sbuf *b, enum flat_sib_fam fam, const struct flat_sib_rrset *rs)
{
	char text[INET6_ADDRSTRLEN];

	if (rs == NULL || rs->n == 0) {
		px_sbuf_put(b, " none");
		return;
	}
	for (unsigned i = 0; i < rs->n; i++) {
		inet_ntop(fam == FLAT_SIB_A ? AF_INET : AF_INET6, rs->addr[i], text, sizeof(text));
		px_sbuf_put(b, " %s", text);
	}
	px_sbuf_put(b, " (TTL %u)", rs->ttl);
}

static void put_family(struct px_sbuf *b, const struct flat_sib_owner *o, enum flat_sib_fam fam,
                       uint64_t now)
{
	const struct flat_sib_track *tr = &o->track[fam];

	px_sbuf_put(b, "  %s in BIND:", fam == FLAT_SIB_A ? "A" : "AAAA");
	put_set(b, fam, o->held[fam]);
	px_sbuf_put(b, "; ");
	put_ago(b, "written", tr->written_ms, now);
	px_sbuf_put(b, "; ");
	put_ago(b, "checked", tr->checked_ms, now);
	if (tr->queued)
		px_sbuf_put(b, "; a change waits for the next UPDATE");
	else if (tr->next_ms == SIB_CHASING)
		px_sbuf_put(b, "; being chased now");
	else if (tr->next_ms <= now)
		px_sbuf_put(b, "; next refresh now");
	else
		px_sbuf_put(b, "; next refresh in %llu s",
		            (unsigned long long)((tr->next_ms - now + 999) / 1000));
	if (tr->failures > 0)
		px_sbuf_put(b, "; %u failed chase(s) in a row", tr->failures);
	px_sbuf_put(b, "\n");
}

bool px_sib_explain(struct px_server *srv, const uint8_t *name, size_t len, struct px_sbuf *b)
{
	struct px_sib *sib = srv->sib;
	uint8_t lower[CODEC_MAX_NAME];
	char tname[CODEC_MAX_NAME * 4 + 1];

	if (sib == NULL || len == 0 || len > CODEC_MAX_NAME)
		return false;
	memcpy(lower, name, len);
	codec_name_lower(lower, len);
	for (struct sib_zone *z = sib->zones; z != NULL; z = z->next) {
		struct flat_sib_owner *o = flat_sibzone_find(z->tab, lower, len);
		if (o == NULL)
			continue;
		uint64_t now = sib_now(sib);
		const struct flat_sib_soa *soa = flat_sibzone_soa(z->tab);
		codec_name_to_text(o->target, o->target_len, tname, sizeof(tname));
		px_sbuf_put(b,
		            "siblings: zone %s keeps A/AAAA here by UPDATE (siblings = update)\n",
		            z->text);
		px_sbuf_put(b, "  owner of %s %s%s%s\n",
		            o->is_alias ? "[alias] target" : "an ANAME to", tname,
		            o->gone ? " (gone: its siblings are being removed)" : "",
		            o->several ? " (several targets: the first is used)" : "");
		if (soa->known)
			px_sbuf_put(b, "  zone serial %u; ", soa->serial);
		else
			px_sbuf_put(b, "  zone not transferred yet; ");
		put_ago(b, "last transfer", z->xfr_ok_ms, now);
		px_sbuf_put(b, "\n");
		for (int fam = 0; fam < FLAT_SIB_FAMS; fam++)
			put_family(b, o, (enum flat_sib_fam)fam, now);
		if (z->last_error[0] != '\0') {
			px_sbuf_put(b, "  last error (%llu s ago): %s\n",
			            (unsigned long long)((now - z->last_error_ms) / 1000),
			            z->last_error);
		} else {
			px_sbuf_put(b, "  last error: none\n");
		}
		return true;
	}
	return false;
}
