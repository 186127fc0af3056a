/* proxy/io/sock.h - listening sockets, bound by main before the workers run. */
#pragma once
#include <uv.h>

#include "config/config.h"

/* sock.c: sockets bound by main with SO_REUSEPORT, one per worker. */
int px_sock_bind(const struct cfg_addr *a, int type, uv_os_sock_t *out);
/* Binds and closes a socket without SO_REUSEPORT: fails with -EADDRINUSE
 * when anyone, another apexd included, already holds the address, which
 * SO_REUSEPORT alone would silently share. */
int px_sock_probe(const struct cfg_addr *a, int type);
