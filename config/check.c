/* config/check.c - [health] check and [zone] check values (issue 17).
 *
 * "none", "tcp:PORT", "tls:PORT", "http:PORT/PATH": what a health check
 * of the addresses in flattened answers does. The path is sent as is in
 * an HTTP request line, so it is held to what a request-target may carry
 * without escaping (no blanks, no control characters, no fragment).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

static const struct {
	const char *name;
	enum cfg_check_kind kind;
} kinds[] = {
        {"tcp", CFG_CHECK_TCP},
        {"tls", CFG_CHECK_TLS},
        {"http", CFG_CHECK_HTTP},
};

const char *cfg__parse_check(const char *s, size_t len, struct cfg_check *out)
{
	struct cfg_check c;
	size_t i = 0, k;

	memset(&c, 0, sizeof(c));
	if (len == 4 && strncasecmp(s, "none", 4) == 0) {
		*out = c;
		return NULL;
	}
	const char *colon = memchr(s, ':', len);
	if (colon == NULL)
		return "is not a check";
	size_t klen = (size_t)(colon - s);
	for (k = 0; k < CFG__ARRAY_LEN(kinds); k++)
		if (strlen(kinds[k].name) == klen && strncasecmp(s, kinds[k].name, klen) == 0)
			break;
	if (k == CFG__ARRAY_LEN(kinds))
		return "is not a check kind";
	c.kind = kinds[k].kind;
	i = klen + 1;
	uint64_t port;
	size_t d0 = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == d0)
		return "has no port";
	if (cfg__parse_uint(s + d0, i - d0, &port) != 0 || port == 0 || port > 65535)
		return "has a port outside 1..65535";
	c.port = (uint16_t)port;
	if (c.kind != CFG_CHECK_HTTP) {
		if (i != len)
			return "has something after the port";
		*out = c;
		return NULL;
	}
	if (i == len) {
		c.path[0] = '/';
		*out = c;
		return NULL;
	}
	if (s[i] != '/')
		return "has something after the port that is not a path";
	if (len - i > CFG_CHECK_PATH_MAX)
		return "has a path longer than 128 bytes";
	for (size_t j = i; j < len; j++)
		if (s[j] <= ' ' || s[j] > '~' || s[j] == '#')
			return "has a path with a blank, '#' or a byte that is not printable ASCII";
	memcpy(c.path, s + i, len - i);
	c.path[len - i] = '\0';
	*out = c;
	return NULL;
}

bool cfg_check_equal(const struct cfg_check *a, const struct cfg_check *b)
{
	return a->kind == b->kind && a->port == b->port && strcmp(a->path, b->path) == 0;
}

void cfg_check_text(const struct cfg_check *c, char *buf, size_t size)
{
	switch (c->kind) {
	case CFG_CHECK_TCP:
		snprintf(buf, size, "tcp:%u", c->port);
		break;
	case CFG_CHECK_TLS:
		snprintf(buf, size, "tls:%u", c->port);
		break;
	case CFG_CHECK_HTTP:
		snprintf(buf, size, "http:%u%s", c->port, c->path);
		break;
	default:
		snprintf(buf, size, "none");
		break;
	}
}
