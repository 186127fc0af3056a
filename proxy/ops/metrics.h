/* proxy/ops/metrics.h - [listen] metrics, served by libmicrohttpd's own thread. */
#pragma once

struct px_server;

int px_metrics_start(struct px_server *srv);
void px_metrics_stop(struct px_server *srv);
