/* proxy/listen/proxyv2.c - PROXY protocol v2 on the client listeners
 * (proxyv2.h), and the client address every consumer of a query reads
 * (px_txn_client_addr, origin.h).
 *
 * The header is parsed by codec/proxyv2.c from bytes already read: over
 * UDP from the front of the datagram, which is then handled without the
 * header and answered to the balancer; over TCP from the connection's
 * first bytes, before DNS framing and before TLS for DoT and DoH (the
 * balancer relays the client's TLS untouched, so apexd still terminates
 * it). A LOCAL header (a balancer's health check), or a PROXY header over
 * UNSPEC or AF_UNIX, names no IP client: the balancer itself is then the
 * client, and what follows is served like any query.
 *
 * A connection that owes its header waits for it under the timers it
 * already has (tcp-idle-timeout for TCP, the TLS handshake deadline for
 * DoT and DoH); the parser turns anything that is not a header away at
 * its first wrong byte, and a header cannot grow past CODEC_PP2_MAX_LEN.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "codec/proxyv2.h"
#include "proxy/engine/query.h"
#include "proxy/engine/worker.h"
#include "proxy/listen/conn.h"
#include "proxy/listen/listen.h"
#include "proxy/listen/origin.h"
#include "proxy/listen/proxyv2.h"
#include "proxy/ops/log.h"
#include "proxy/ops/stats.h"

/* "address#port" for a log line. */
static void addr_text(const struct sockaddr *sa, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, size, "%s#%u", ip, port);
}

/* Counts the header's kind; the client it names, or NULL for none. */
static const struct sockaddr *header_client(struct px_worker *w, const struct codec_pp2 *h)
{
	if (h->has_addr) {
		PX_STAT_INC(&w->stats, proxy_v2_accepted);
		return &h->src.sa;
	}
	PX_STAT_INC(&w->stats, proxy_v2_local);
	return NULL;
}

void px_pp2_udp(struct px_udp_listener *l, const uint8_t *p, size_t n, const struct sockaddr *from,
                const struct px_udp_local *local)
{
	struct px_worker *w = l->w;
	struct codec_pp2 h;
	/* A datagram holds the whole header or it has none: an incomplete
	 * one (0) is as invalid as a wrong one. */
	int rc = codec_pp2_parse(p, n, &h);

	if (rc <= 0) {
		char peer[INET6_ADDRSTRLEN + 8];
		PX_STAT_INC(&w->stats, proxy_v2_dropped);
		addr_text(from, peer, sizeof(peer));
		px_log_rl(CFG_LOG_WARNING, UDP,
		          "datagram from %s on %s dropped: %s, and [listen] proxy-protocol-from "
		          "requires one from this source",
		          peer, l->addr.text, codec_pp2_strerror(rc));
		return;
	}
	const struct sockaddr *client = header_client(w, &h);
	px_query_handle(w, p + rc, n - (size_t)rc, PX_ORIGIN_UDP, l, from,
	                client != NULL ? client : from, local, NULL);
}

void px_pp2_conn_accepted(struct px_conn *c)
{
	const struct cfg_prefix_list *from = &c->w->cfg->listen.proxy_from;

	if (from->n == 0)
		return;
	/* The peer is asked of the kernel here, once; the query log and
	 * NOTIFY's check read the same copy later. A connection whose peer
	 * the kernel no longer knows is gone already: nothing is believed. */
	const struct sockaddr *peer = px_conn_client(c);
	if (peer != NULL && cfg_prefix_list_match(from, peer))
		c->pp2_wait = true;
}

int px_pp2_conn_read(struct px_conn *c)
{
	struct px_rbuf *in = &c->in;
	struct codec_pp2 h;
	int rc = codec_pp2_parse(in->buf + in->start, in->end - in->start, &h);

	if (rc == 0)
		return 0;
	if (rc < 0) {
		char peer[INET6_ADDRSTRLEN + 8];
		addr_text(px_conn_client(c), peer, sizeof(peer));
		px_log_rl(CFG_LOG_WARNING, TCP,
		          "connection from %s closed: %s, and [listen] proxy-protocol-from "
		          "requires one from this source",
		          peer, codec_pp2_strerror(rc));
		px_conn_close(c); /* counts the drop */
		return rc;
	}
	c->pp2_wait = false;
	in->start += (size_t)rc;
	if (in->start == in->end)
		in->start = in->end = 0;
	const struct sockaddr *client = header_client(c->w, &h);
	if (client != NULL) {
		memcpy(&c->peer, client,
		       client->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                     : sizeof(struct sockaddr_in));
		c->peer_known = true;
	}
	return 1;
}

void px_pp2_conn_closing(struct px_conn *c)
{
	/* Closed with bytes that are no whole header: a wrong one, or part
	 * of one when the peer hung up or the idle timer or the TLS
	 * handshake deadline ran out. A connection that sent nothing at all
	 * asked nothing: that is what L4 health checks (haproxy's plain
	 * check, most cloud balancers') do, and counting them would bury
	 * the drops worth an alert. */
	if (c->pp2_wait && c->in.end > c->in.start)
		PX_STAT_INC(&c->w->stats, proxy_v2_dropped);
	c->pp2_wait = false;
}

/* The list as the file would spell it, "(none)" when empty. */
static void list_text(const struct cfg_prefix_list *l, char *out, size_t size)
{
	size_t len = 0;

	snprintf(out, size, "(none)");
	for (size_t i = 0; i < l->n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "", l->v[i].text);
}

static bool lists_equal(const struct cfg_prefix_list *a, const struct cfg_prefix_list *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i].text, b->v[i].text) != 0)
			return false;
	return true;
}

void px_pp2_log_config(const struct cfg *old, const struct cfg *nc)
{
	/* 64 entries of at most 53 characters each. */
	char now[CFG_PREFIXES_MAX * 56], was[CFG_PREFIXES_MAX * 56];

	if (old == NULL) {
		if (nc->listen.proxy_from.n == 0)
			return;
		list_text(&nc->listen.proxy_from, now, sizeof(now));
		px_log(CFG_LOG_INFO, MAIN, "PROXY v2 headers required from %s", now);
		return;
	}
	if (lists_equal(&old->listen.proxy_from, &nc->listen.proxy_from))
		return;
	list_text(&nc->listen.proxy_from, now, sizeof(now));
	list_text(&old->listen.proxy_from, was, sizeof(was));
	px_log(CFG_LOG_INFO, CFG, "reload: proxy-protocol-from %s -> %s", was, now);
}

const struct sockaddr *px_txn_client_addr(const struct px_txn_client *cl)
{
	if (cl->conn != NULL)
		return px_conn_client(cl->conn);
	return cl->proxied ? &cl->client.sa : (const struct sockaddr *)&cl->peer;
}
