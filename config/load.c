/* config/load.c - the INI file into struct cfg, through libinih.
 *
 * cfg_load_mem() runs ini_parse_stream() with reader.c's reader, which
 * lexes the lines and opens the sections, and a handler for the key
 * lines it splits off (see reader.c for why inih gets stand-in lines).
 * This file owns the load state and the error list.
 *
 * Values are checked as they arrive, against the schema in keys.c; what
 * needs the whole file (defaults that come later in the file, required
 * keys, alias owners inside zones) is in validate.c. Errors are
 * collected, never fatal, so one run shows every problem in the file.
 */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

/* How many error lines are kept for the report. More are counted, but
 * they would not fit in struct cfg_error anyway, and a hostile file must
 * not make us hold a message per line of it. */
#define CFG_MSGS_KEPT 256

/* The largest file cfg_load() reads; a config is a few kilobytes, so
 * anything this big is a wrong path, not a config. */
#define CFG_FILE_MAX (16u << 20)

/* ---- errors ------------------------------------------------------------ */

void cfg__err(struct cfg__ld *ld, unsigned line, const char *fmt, ...)
{
	char body[1024];
	va_list ap;

	ld->n_errors++;
	if (ld->n_msgs >= CFG_MSGS_KEPT)
		return;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	if (ld->n_msgs == ld->msgs_cap) {
		size_t cap = ld->msgs_cap ? ld->msgs_cap * 2 : 16;
		struct cfg__msg *m = realloc(ld->msgs, cap * sizeof(*m));
		if (m == NULL) {
			ld->oom = true;
			return;
		}
		ld->msgs = m;
		ld->msgs_cap = cap;
	}
	int n = snprintf(NULL, 0, "%s:%u: %s", ld->file, line, body);
	char *text = n < 0 ? NULL : malloc((size_t)n + 1);
	if (text == NULL) {
		ld->oom = true;
		return;
	}
	snprintf(text, (size_t)n + 1, "%s:%u: %s", ld->file, line, body);
	ld->msgs[ld->n_msgs] = (struct cfg__msg){line, (unsigned)ld->n_msgs, text};
	ld->n_msgs++;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct cfg__msg *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Writes the collected errors, sorted by line, into err: as many whole
 * lines as fit, then a count of the rest. */
static void render_errors(struct cfg__ld *ld, struct cfg_error *err)
{
	/* Room kept for the "(N more errors not shown)" line. */
	const size_t tail = 48;
	size_t o = 0, shown = 0;

	err->count = ld->n_errors;
	err->msg[0] = '\0';
	qsort(ld->msgs, ld->n_msgs, sizeof(ld->msgs[0]), msg_cmp);
	for (size_t i = 0; i < ld->n_msgs; i++) {
		size_t l = strlen(ld->msgs[i].text);
		if (o + l + 1 + tail >= sizeof(err->msg))
			break;
		memcpy(err->msg + o, ld->msgs[i].text, l);
		o += l;
		err->msg[o++] = '\n';
		shown++;
	}
	err->msg[o] = '\0';
	if (shown < ld->n_errors)
		snprintf(err->msg + o, sizeof(err->msg) - o, "(%zu more errors not shown)\n",
		         (size_t)ld->n_errors - shown);
}

/* ---- load state ------------------------------------------------------- */

bool cfg__grow(struct cfg__ld *ld, void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(*arr, ncap * elem);
	if (p == NULL) {
		ld->oom = true;
		return false;
	}
	*arr = p;
	*cap = ncap;
	return true;
}

/* ---- API --------------------------------------------------------------- */

static void reset_error(struct cfg_error *err)
{
	if (err != NULL) {
		err->msg[0] = '\0';
		err->count = 0;
	}
}

static int fail_oom(const char *name, struct cfg_error *err)
{
	if (err != NULL) {
		snprintf(err->msg, sizeof(err->msg), "%s: out of memory\n", name);
		err->count = 1;
	}
	return -ENOMEM;
}

int cfg_load_mem(const char *name, const char *text, size_t len, struct cfg **out,
                 struct cfg_error *err)
{
	struct cfg__ld ld = {.file = name ? name : "(memory)", .text = text, .len = len, .sec = -1};
	int rc;

	*out = NULL;
	reset_error(err);
	if (text == NULL)
		ld.len = 0;
	ld.cfg = calloc(1, sizeof(*ld.cfg));
	if (ld.cfg == NULL)
		return fail_oom(ld.file, err);
	ld.cfg->path = strdup(ld.file);
	if (ld.cfg->path == NULL)
		ld.oom = true;
	cfg__set_defaults(ld.cfg);

	if (!ld.oom) {
		rc = ini_parse_stream(cfg__read_line, &ld, cfg__on_key, &ld);
		/* The stand-in lines are always well formed and cfg__on_key never
		 * fails, so inih has nothing to report unless that changes. */
		if (rc != 0 && !ld.oom && ld.n_errors == 0)
			cfg__err(&ld, rc > 0 ? (unsigned)rc : 0, "libinih rejected the file (%d)",
			         rc);
	}
	if (!ld.oom)
		cfg__validate(&ld);

	if (ld.oom) {
		rc = fail_oom(ld.file, err);
	} else if (ld.n_errors > 0) {
		if (err != NULL)
			render_errors(&ld, err);
		rc = -EINVAL;
	} else {
		*out = ld.cfg;
		ld.cfg = NULL;
		rc = 0;
	}
	cfg_free(ld.cfg);
	for (size_t i = 0; i < ld.n_msgs; i++)
		free(ld.msgs[i].text);
	free(ld.msgs);
	free(ld.buf);
	free(ld.zone_seen);
	return rc;
}

int cfg_load(const char *path, struct cfg **out, struct cfg_error *err)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	*out = NULL;
	reset_error(err);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		rc = -errno;
		goto fail;
	}
	for (;;) {
		if (len == cap) {
			if (cap > CFG_FILE_MAX) {
				rc = -EFBIG;
				break;
			}
			cap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, cap);
			if (nb == NULL) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
		}
		errno = 0;
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0) {
			if (ferror(f))
				rc = errno ? -errno : -EIO;
			break;
		}
	}
	fclose(f);
	if (rc != 0)
		goto fail;
	rc = cfg_load_mem(path, buf, len, out, err);
	free(buf);
	return rc;
fail:
	free(buf);
	if (err != NULL) {
		snprintf(err->msg, sizeof(err->msg), "%s: cannot read: %s\n", path, strerror(-rc));
		err->count = 1;
	}
	return rc;
}

void cfg_free(struct cfg *cfg)
{
	if (cfg == NULL)
		return;
	/* The key's secret does not outlive the cfg in freed memory. */
	explicit_bzero(&cfg->backend.update_key, sizeof(cfg->backend.update_key));
	free(cfg->path);
	free(cfg->listen.udp.v);
	free(cfg->listen.tcp.v);
	free(cfg->listen.dot.v);
	free(cfg->listen.doh.v);
	free(cfg->listen.proxy_from.v);
	free(cfg->resolver.addresses.v);
	free(cfg->zones);
	free(cfg->aliases);
	free(cfg);
}
