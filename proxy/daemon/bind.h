/* proxy/daemon/bind.h - the listening sockets, bound by the main thread at
 * startup and on reload (bind.c); workers start serving them.
 */
#pragma once
#include "config/config.h"

struct px_reload_post;
struct px_server;

/* Binds one socket per worker for every address nc lists and old does
 * not (old NULL: every address), after probing each address once. Fills
 * out with srv->n_workers posts holding the listeners (gen left NULL).
 * 0, or a negative errno with err naming the address; then nothing stays
 * bound. Main thread. */
int px_bind(struct px_server *srv, const struct cfg *old, const struct cfg *nc,
            struct px_reload_post ***out, char *err, size_t errlen);
/* Frees n posts of px_bind and the array (NULL is fine); listeners still
 * in them are closed. */
void px_bind_free(struct px_reload_post **posts, unsigned n);
/* Logs each listener nc adds to or removes from old ("reload: now
 * listening on udp 127.0.0.1:53"), and counts them. */
void px_bind_log_changes(const struct cfg *old, const struct cfg *nc, unsigned *added,
                         unsigned *removed);
/* " udp 127.0.0.1:53 tcp 127.0.0.1:53 ..." for the startup line;
 * truncated to len. */
void px_bind_describe(const struct cfg *cfg, char *buf, size_t len);
