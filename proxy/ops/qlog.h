/* proxy/ops/qlog.h - the query log ([server] query-log): one line per query.
 *
 * Off, it costs a test of a worker-local bool per answer. On, each worker
 * formats lines into its own buffer (PX_QLOG_BUF bytes) and writes the
 * whole buffer with one write(2) at the end of its loop turn, or sooner
 * when the buffer is full. The file is opened O_APPEND by the main
 * thread and shared: a write of complete lines to a regular file opened
 * O_APPEND lands as one piece, so lines from workers never interleave.
 * SIGUSR1 (logrotate's postrotate) makes main open the path again and
 * post the new file to every worker, which switches after writing what
 * it holds to the old one.
 *
 * Line format (docs/operations.md, "Query log"), space-separated:
 *   TIME TRANSPORT CLIENT NAME TYPE RCODE flat=HOW chain=CHAIN LATENCY
 *   2026-11-27T14:05:01.123Z udp 127.0.0.1#53311 example.test. A NOERROR
 *   flat=aname chain=example.test.>edge.cdn.test. 1.2ms
 *
 * Threads: open/post/ref/unref from any thread; the rest on the worker.
 */
#pragma once
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "codec/scan.h"

struct px_worker;
struct px_server;
struct px_txn;
struct px_udp_listener;
struct px_conn;

/* Per-worker line buffer: ~400 lines of a typical query, small enough
 * that one write of it is quick, big enough that a busy loop turn makes
 * one system call for its answers. */
#define PX_QLOG_BUF 65536
/* Room a line may need: the name and chain with every byte escaped
 * (4 bytes of text per name byte) plus the short fields. */
#define PX_QLOG_LINE_MAX 8192

/** An open query log (refcounted: main and each worker hold one). */
struct px_qlog_file {
	atomic_uint refs;
	int fd;
};

/** Opens path for appending (created 0640 if absent).
 *  @return 0 or a negative errno. */
int px_qlog_open(const char *path, struct px_qlog_file **out);
void px_qlog_file_unref(struct px_qlog_file *f); /* NULL is fine */

/** Hands f (NULL: logging off) to every worker; main thread. */
void px_qlog_post(struct px_server *srv, struct px_qlog_file *f);
/** Worker: takes a posted file, after writing its buffer to the old one. */
void px_qlog_adopt(struct px_worker *w);
/** Worker: writes the buffered lines (end of a loop turn). */
void px_qlog_flush(struct px_worker *w);
/** Worker: flushes and lets go of the file and buffer (at exit). */
void px_qlog_worker_deinit(struct px_worker *w);

/** Worker: the line for txn t answered with ans[0..len). */
void px_qlog_txn(struct px_worker *w, struct px_txn *t, const uint8_t *ans, size_t len);
/** Worker: a line for a query apexd answered without a txn (answer
 *  cache, FORMERR, overload, NOTIFY); qv NULL when it did not scan;
 *  client as px_txn_client_addr() would give it (NULL prints "-"). */
void px_qlog_direct(struct px_worker *w, bool udp, const struct sockaddr *client,
                    struct px_conn *conn, const uint8_t *q, size_t qlen,
                    const struct codec_view *qv, const uint8_t *ans, size_t len);
