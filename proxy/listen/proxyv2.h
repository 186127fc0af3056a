/* proxy/listen/proxyv2.h - PROXY protocol v2 on the client listeners
 * (listen/proxyv2.c): the header a load balancer in [listen]
 * proxy-protocol-from puts before a datagram or at the start of a
 * TCP, DoT or DoH connection, and the client it names.
 *
 * From those sources a valid header is required: a datagram without one
 * is dropped, a connection whose first bytes are not one is closed, both
 * counted in proxy_v2_dropped. From any other source nothing is looked for: the
 * bytes are DNS (or TLS), as they always were. The list is read from the
 * worker's current generation, so a reload changes it for datagrams at
 * once and for connections from their next accept.
 * Threads: the worker that owns the listener or the connection.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cfg;
struct px_conn;
struct px_udp_listener;

struct px_udp_local;

/* A datagram from a proxy-protocol-from source: the query after its
 * header is handled as the named client's (or the balancer's own, for
 * LOCAL), and the answer goes back to from, from local (the address the
 * balancer sent to on a wildcard listener; NULL: none). */
void px_pp2_udp(struct px_udp_listener *l, const uint8_t *p, size_t n, const struct sockaddr *from,
                const struct px_udp_local *local);

/* Right after accept: a connection from a proxy-protocol-from source owes
 * a header before anything else (c->pp2_wait). */
void px_pp2_conn_accepted(struct px_conn *c);

/* Reads the header from the bytes read so far (c->in) of a connection
 * that owes one. 1: read, c->in.start is past it and the client is known;
 * 0: more bytes needed; < 0: no valid header, c is closing. */
int px_pp2_conn_read(struct px_conn *c);

/* c closes: if it still owed its header and sent bytes that are none,
 * that is a drop (a connection that sent nothing is not counted). */
void px_pp2_conn_closing(struct px_conn *c);

/* Main thread: logs the sources headers are required from, at startup
 * (old NULL; nothing when the list is empty) and on a reload that
 * changes them. */
void px_pp2_log_config(const struct cfg *old, const struct cfg *nc);
