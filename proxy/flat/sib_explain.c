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

/* put_ago() of a time the track keeps in seconds. */
static void put_ago_s(struct px_sbuf *b, const char *what, uint32_t then_s, uint64_t now)
{
	uint64_t now_s = now / 1000;

	if (then_s == 0)
		px_sbuf_put(b, "%s never", what);
	else
		px_sbuf_put(b, "%s %llu s ago", what,
		            (unsigned long long)(now_s > then_s ? now_s - then_s : 0));
}

/* One HTTPS RR as dig shows it: priority, target, then the SvcParams as
 * "key<N>=<hex>" (RFC 9460 2.1's generic form; no need to know the keys). */
static void put_https_rr(struct px_sbuf *b, const uint8_t *rd, size_t len)
{
	char name[CODEC_MAX_NAME * 4 + 1];
	size_t off = 2;

	px_sbuf_put(b, " [%u", (unsigned)(rd[0] << 8 | rd[1]));
	while (off < len && rd[off] != 0 && off + 1 + rd[off] <= len)
		off += 1 + rd[off];
	if (off >= len || rd[off] != 0 ||
	    codec_name_to_text(rd + 2, off + 1 - 2, name, sizeof(name)) < 0) {
		px_sbuf_put(b, " (malformed)]");
		return;
	}
	px_sbuf_put(b, " %s", name);
	for (off++; off + 4 <= len;) {
		unsigned key = (unsigned)(rd[off] << 8 | rd[off + 1]);
		size_t vl = (size_t)(rd[off + 2] << 8 | rd[off + 3]);

		off += 4;
		if (vl > len - off)
			break;
		px_sbuf_put(b, " key%u=", key);
		for (size_t i = 0; i < vl; i++)
			px_sbuf_put(b, "%02x", rd[off + i]);
		off += vl;
	}
	px_sbuf_put(b, "]");
}

static void put_rd_set(struct px_sbuf *b, const struct flat_sib_rrset *rs)
{
	const uint8_t *s = flat_sib_rrset_rd(rs);
	size_t off = 0;

	while (off + 2 <= rs->rd_len) {
		size_t l = (size_t)(s[off] << 8 | s[off + 1]);

		if (l > rs->rd_len - off - 2)
			break;
		put_https_rr(b, s + off + 2, l);
		off += 2 + l;
	}
	if (rs->cut)
		px_sbuf_put(b, " (and more apexd does not keep)");
}

static void put_set(struct px_sbuf *b, enum flat_sib_fam fam, const struct flat_sib_rrset *rs)
{
	char text[INET6_ADDRSTRLEN];

	if (rs == NULL || (rs->n == 0 && !rs->cut)) {
		px_sbuf_put(b, " none");
		return;
	}
	if (flat_sib_fam_is_rdata(fam)) {
		put_rd_set(b, rs);
		px_sbuf_put(b, " (TTL %u)", rs->ttl);
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

	px_sbuf_put(b, "  %s in BIND:", sib_fam_name(fam));
	put_set(b, fam, o->held[fam]);
	px_sbuf_put(b, "; ");
	put_ago_s(b, "written", tr->written_s, now);
	px_sbuf_put(b, "; ");
	put_ago_s(b, "checked", tr->checked_s, now);
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
		px_sbuf_put(
		        b,
		        "siblings: zone %s keeps A/AAAA/HTTPS here by UPDATE (siblings = update)\n",
		        z->text);
		px_sbuf_put(
		        b, "  owner of %s %s%s%s\n", o->is_alias ? "[alias] target" : "an ANAME to",
		        tname, o->gone ? " (gone: its siblings are being removed)" : "",
		        o->several ? " and the rest of its pool (their merged answer is written)"
		                   : "");
		if (soa->known)
			px_sbuf_put(b, "  zone serial %u; ", soa->serial);
		else
			px_sbuf_put(b, "  zone not transferred yet; ");
		put_ago(b, "last transfer", z->xfr_ok_ms, now);
		px_sbuf_put(b, "\n");
		for (int fam = 0; fam < FLAT_SIB_FAMS; fam++)
			put_family(b, o, (enum flat_sib_fam)fam, now);
		for (int i = 0; i < SIB_LANES; i++)
			if (z->lane[i].err[0] != '\0')
				px_sbuf_put(b, "  UPDATE of %s failing: %s (retried every %u s)\n",
				            z->lane[i].what, z->lane[i].err, z->lane[i].backoff_s);
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
