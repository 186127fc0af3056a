/* proxy/ops/control.h - the [server] control socket, on the main thread's loop. */
#pragma once
#include <uv.h>

struct px_server;

int px_control_start(struct px_server *srv, uv_loop_t *loop);
/* Stops accepting, ends the connections, removes the socket file. */
void px_control_stop(struct px_server *srv);
