/* tests/fuzz/fuzz_px_ctlreq.c - libFuzzer target for the control socket's
 * request parser (px_ctl_parse, px_ctl_name_parse in proxy/ops/ctlreq.h).
 *
 * Input: the request line as a client would send it (without '\n'),
 * copied into an allocation of exact size so that reading past it is an
 * AddressSanitizer report.
 *
 * Checked: the result is 0 or -EINVAL; an error comes with a
 * NUL-terminated reason; a parsed request has a known command, a type of
 * A, AAAA, SVCB or HTTPS, and a name that is valid wire form, lowercase, and comes
 * back unchanged through codec_name_to_text() and the parser again. The
 * whole input is also parsed as a name alone, with the same checks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/name.h"
#include "proxy/ops/ctlreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

/* A wire name from the parser: valid, lowercase, and stable through text. */
static void check_name(const uint8_t *name, size_t len)
{
	char text[PX_CTL_NAME_TEXT_MAX];
	uint8_t again[CODEC_MAX_NAME];
	const char *why = NULL;

	check(codec_name_valid(name, len));
	for (size_t i = 0; i < len; i++)
		check(codec_ascii_lower(name[i]) == name[i] || name[i] < 'A' || name[i] > 'Z');
	check(codec_name_to_text(name, len, text, sizeof(text)) >= 0);
	int n = px_ctl_name_parse(text, strlen(text), again, &why);
	check(n == (int)len && memcmp(again, name, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size ? size : 1);
	char err[128];
	struct px_ctl_req req;
	uint8_t name[CODEC_MAX_NAME];
	const char *why = NULL;

	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	memset(err, 'x', sizeof(err));
	int rc = px_ctl_parse(line, size, &req, err, sizeof(err));
	check(rc == 0 || rc == -EINVAL);
	if (rc < 0) {
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
	} else {
		check(req.cmd == PX_CTL_STATS || req.cmd == PX_CTL_RELOAD ||
		      req.cmd == PX_CTL_FLUSH || req.cmd == PX_CTL_EXPLAIN);
		check(req.qtype == CODEC_TYPE_A || req.qtype == CODEC_TYPE_AAAA ||
		      req.qtype == 64 /* SVCB */ || req.qtype == 65 /* HTTPS */);
		check(req.has_name == (req.name_len > 0));
		check(req.cmd != PX_CTL_EXPLAIN || req.has_name);
		check(!(req.cmd == PX_CTL_STATS || req.cmd == PX_CTL_RELOAD) || !req.has_name);
		if (req.has_name)
			check_name(req.name, req.name_len);
	}
	int n = px_ctl_name_parse(line, size, name, &why);
	check(n == -EINVAL || (n >= 1 && n <= CODEC_MAX_NAME));
	if (n < 0)
		check(why != NULL);
	else
		check_name(name, (size_t)n);
	free(line);
	return 0;
}
