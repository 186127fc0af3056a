/* proxy/ops/qlog_part.h - the query log's parts of a txn and of a worker. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct px_qlog_file;

struct px_qlog_txn {
	bool logged;       /* its query-log line is written */
	uint64_t start_ns; /* uv_hrtime() at arrival, only with a query log */
};

/* On while file is set; lines wait in buf until the end of the loop
 * turn. next (NULL: off) is posted by main under the worker's post lock,
 * with a reference, and adopted in the async callback. */
struct px_qlog_worker {
	bool on;
	struct px_qlog_file *file;
	struct px_qlog_file *next;
	bool posted;
	char *buf;
	size_t len;
	uint64_t sec; /* the second stamp holds */
	char stamp[24];
};
