/* config/value.c - the scalar value types of the INI file.
 *
 * Numbers are decimal digits only: no sign, no hex, no blanks inside, so
 * "-1", "0x10" and "5 s" are errors rather than surprises (strtoul would
 * take "-1" as ULONG_MAX). Overflow is detected, never wrapped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

/* Reads the leading digits of s into *out. *used says how many bytes were
 * digits. -ERANGE if they do not fit; the digits are still consumed so the
 * caller can look at what follows. */
static int parse_digits(const char *s, size_t len, uint64_t *out, size_t *used)
{
	uint64_t v = 0;
	size_t i = 0;
	int rc = 0;

	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			rc = -ERANGE;
		else
			v = v * 10 + d;
	}
	*used = i;
	*out = v;
	if (i == 0)
		return -EINVAL;
	return rc;
}

static int scale(uint64_t v, uint64_t mul, uint64_t *out)
{
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static bool suffix_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

int cfg__parse_uint(const char *s, size_t len, uint64_t *out)
{
	size_t used;
	int rc = parse_digits(s, len, out, &used);

	if (rc == -EINVAL || used != len)
		return -EINVAL;
	return rc;
}

int cfg__parse_duration_ms(const char *s, size_t len, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
	};
	uint64_t v;
	size_t used;
	int rc = parse_digits(s, len, &v, &used);

	if (rc == -EINVAL)
		return rc;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (suffix_is(s + used, len - used, units[i].unit))
			return rc < 0 ? rc : scale(v, units[i].ms, out);
	}
	return -EINVAL;
}

int cfg__parse_size(const char *s, size_t len, uint64_t *out)
{
	uint64_t v, mul;
	size_t used;
	int rc = parse_digits(s, len, &v, &used);

	if (rc == -EINVAL)
		return rc;
	if (used == len)
		mul = 1;
	else if (used + 1 != len)
		return -EINVAL;
	else if (s[used] == 'K' || s[used] == 'k')
		mul = 1024;
	else if (s[used] == 'M' || s[used] == 'm')
		mul = 1024 * 1024;
	else if (s[used] == 'G' || s[used] == 'g')
		mul = 1024 * 1024 * 1024;
	else
		return -EINVAL;
	return rc < 0 ? rc : scale(v, mul, out);
}

int cfg__parse_bool(const char *s, size_t len, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on"};
	static const char *const no[] = {"no", "false", "off"};

	for (size_t i = 0; i < 3; i++) {
		if (strlen(yes[i]) == len && strncasecmp(s, yes[i], len) == 0) {
			*out = true;
			return 0;
		}
		if (strlen(no[i]) == len && strncasecmp(s, no[i], len) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

const char *cfg__parse_addr(const char *s, size_t len, struct cfg_addr *out)
{
	/* Longest valid form: "[" + 45 characters of IPv6 + "]:65535". */
	char host[64];
	const char *port;
	size_t hlen, plen;
	bool v6;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return "empty";
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (rb == NULL)
			return "no closing bracket";
		hlen = (size_t)(rb - s) - 1;
		if (hlen >= sizeof(host))
			return "not an IPv6 address";
		memcpy(host, s + 1, hlen);
		port = rb + 1;
		plen = len - (size_t)(port - s);
		if (plen == 0 || port[0] != ':')
			return "missing port";
		port++;
		plen--;
		v6 = true;
	} else {
		const char *colon = NULL;
		for (size_t i = len; i-- > 0;) {
			if (s[i] == ':') {
				colon = s + i;
				break;
			}
		}
		if (colon == NULL)
			return "missing port";
		hlen = (size_t)(colon - s);
		if (memchr(s, ':', hlen) != NULL)
			return "an IPv6 address needs brackets, like [::1]:53";
		if (hlen >= sizeof(host))
			return "not an IPv4 address";
		memcpy(host, s, hlen);
		port = colon + 1;
		plen = len - hlen - 1;
		v6 = false;
	}
	host[hlen] = '\0';

	uint64_t p;
	if (plen == 0)
		return "missing port";
	if (cfg__parse_uint(port, plen, &p) != 0 || p == 0 || p > 65535)
		return "port must be 1..65535";

	char ntop[INET6_ADDRSTRLEN];
	if (v6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->sa;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return "not an IPv6 address";
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		out->salen = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, ntop, sizeof(ntop));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", ntop, (unsigned)p);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&out->sa;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return "not an IPv4 address (names are not resolved)";
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		out->salen = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, ntop, sizeof(ntop));
		snprintf(out->text, sizeof(out->text), "%s:%u", ntop, (unsigned)p);
	}
	return NULL;
}

void cfg__fmt_duration_ms(char *buf, size_t size, uint64_t ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};

	if (ms == 0) {
		snprintf(buf, size, "0");
		return;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].ms == 0) {
			snprintf(buf, size, "%llu%s", (unsigned long long)(ms / units[i].ms),
			         units[i].unit);
			return;
		}
	}
	snprintf(buf, size, "%llums", (unsigned long long)ms);
}

void cfg__fmt_size(char *buf, size_t size, uint64_t bytes)
{
	static const char units[] = "GMK";

	for (size_t i = 0; i < 3; i++) {
		uint64_t mul = (uint64_t)1 << (10 * (3 - i));
		if (bytes != 0 && bytes % mul == 0) {
			snprintf(buf, size, "%llu%c", (unsigned long long)(bytes / mul), units[i]);
			return;
		}
	}
	snprintf(buf, size, "%llu", (unsigned long long)bytes);
}

void cfg__fmt_text(char *buf, size_t size, const char *s, size_t len, size_t max_chars)
{
	size_t o = 0;

	if (size < 4) {
		if (size > 0)
			buf[0] = '\0';
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char tmp[5];
		if (c >= ' ' && c < 0x7f)
			snprintf(tmp, sizeof(tmp), "%c", c);
		else
			snprintf(tmp, sizeof(tmp), "\\x%02x", c);
		size_t tl = strlen(tmp);
		if (o + tl > max_chars || o + tl + 4 > size) {
			/* Room for "..." and the NUL is kept by the +4 above. */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		memcpy(buf + o, tmp, tl);
		o += tl;
	}
	buf[o] = '\0';
}
