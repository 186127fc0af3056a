/* proxy/daemon/priv.h - privileges and descriptor limits. */
#pragma once
#include "config/config.h"

/* priv.c: becomes [server] user (root only; a no-op when unset or when
 * already that user). 0, or a negative errno after logging why. */
int px_priv_drop(const struct cfg *cfg);
/* priv.c: raises the soft open-files limit to the hard one, and warns
 * when that is below what the configuration may need. */
void px_fd_limit(const struct cfg *cfg);
