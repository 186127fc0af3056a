/* proxy/listen/internal.h - what tcp.c (accept), conn.c (the connection)
 * and tls.c (its TLS glue) share; nothing outside listen/ includes it.
 *
 * Threads: the worker that owns the connection.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct px_conn;
struct px_worker;

/* conn.c */
/* A connection not yet accepted: handles initialised, on the worker's
 * list and counted in tcp_conns; px_conn_close() undoes it all. */
struct px_conn *px_conn_new(struct px_worker *w);
/* The accepted connection, kind (and TLS) set, is counted and read. */
void px_conn_start(struct px_conn *c);
/* Peels complete frames off the buffer and submits them. */
void px_conn_process(struct px_conn *c);
void px_conn_idle_restart(struct px_conn *c);
/* Writes bufs to the socket: at once where the kernel takes them, the
 * rest copied into one queued write. Returns 0 or a negative errno. */
int px_conn_raw_write(struct px_conn *c, const uv_buf_t *b, unsigned nb);

/* Pauses reading, or reads again (and peels what is buffered) if the
 * connection may: not closing, not paused for back-pressure or a move. */
void px_conn_stop_reading(struct px_conn *c);
void px_conn_resume(struct px_conn *c);
/* Puts c on w's list of connections (and makes w its worker), or takes
 * it off its worker's list. */
void px_conn_link(struct px_conn *c, struct px_worker *w);
void px_conn_unlink(struct px_conn *c);
/* Counts c in (+1) or out of (-1) its worker's open_* gauge. */
void px_conn_gauge(struct px_conn *c, int d);

/* move.c */
/* Where the k-th connection of one kind on worker idx goes when the
 * active workers went from before to active: a worker below active, or
 * -1 to stay. A worker that is left hands all of them round the active
 * ones; when workers joined, each old one hands them the share they
 * would have had, (active - before) of every active. Pure. */
int px_move_target(unsigned idx, unsigned active, unsigned before, unsigned k);
/* Is c waiting for its queries to end before it moves (reads nothing)? */
bool px_conn_move_paused(const struct px_conn *c);
/* Moves c to its worker if it is quiet; else pauses its reading until
 * the last query ends. From the check phase (px_conn_flush_all). */
void px_conn_try_move(struct px_conn *c);
/* A connection just accepted on a worker that steering has left. */
void px_conn_move_new(struct px_conn *c);

/* tls.c */
/* Gives a DoT or DoH connection its TLS stream and handshake deadline.
 * < 0: no TLS context or no memory; the caller closes c. */
int px_conn_tls_start(struct px_conn *c);
/* Feeds the ciphertext just read to the stream; < 0: c is closing. */
int px_conn_tls_feed(struct px_conn *c);
