/* proxy/health/http.c - the status line of an http: check's response.
 *
 * RFC 9112 section 4: status-line = HTTP-version SP status-code SP
 * [ reason-phrase ] CRLF, HTTP-version = "HTTP/" DIGIT "." DIGIT. Read
 * strictly: the check asks one question of a server the operator named,
 * and a reply that is not HTTP/1.x is a failure, not something to guess
 * at. A missing SP before an empty reason is accepted (common, harmless).
 * Nothing but the status line (and, after 1xx, the blank line that ends
 * an interim response) is looked at.
 */
#include <string.h>

#include "proxy/health/internal.h"

static bool is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* HTAB, SP, VCHAR, obs-text: what a reason phrase may hold. */
static bool is_reason(uint8_t c)
{
	return c == '\t' || c == ' ' || (c > 0x20 && c != 0x7f);
}

int px_health_http_status(const uint8_t *p, size_t n, size_t *used)
{
	static const char prefix[] = "HTTP/1.";
	size_t i;

	/* Every byte we have must still fit the grammar: garbage fails at
	 * once instead of waiting for a CRLF that may never come. */
	for (i = 0; i < sizeof(prefix) - 1; i++) {
		if (i == n)
			return 0;
		if (p[i] != (uint8_t)prefix[i])
			return -1;
	}
	if (i == n)
		return 0;
	if (!is_digit(p[i++]))
		return -1;
	if (i == n)
		return 0;
	if (p[i++] != ' ')
		return -1;
	int code = 0;
	for (int k = 0; k < 3; k++, i++) {
		if (i == n)
			return 0;
		if (!is_digit(p[i]))
			return -1;
		code = code * 10 + (p[i] - '0');
	}
	if (code < 100 || code > 599)
		return -1;
	if (i == n)
		return 0;
	if (p[i] == ' ') {
		for (i++; i < n && p[i] != '\r'; i++)
			if (!is_reason(p[i]))
				return -1;
	} else if (p[i] != '\r') {
		return -1;
	}
	if (i == n || i + 1 == n)
		return 0;
	if (p[i + 1] != '\n')
		return -1;
	*used = i + 2;
	return code;
}

/* The end of a header block starting at p[0..n): the offset past its
 * blank line, 0 for more bytes, -1 for a bare LF or a NUL. */
static long head_end(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\0' || (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')))
			return -1;
		if (p[i] == '\n' && i >= 3 && p[i - 2] == '\n')
			return (long)(i + 1);
		if (p[i] == '\n' && i == 1)
			return 2; /* no header fields at all: CRLF right away */
	}
	return 0;
}

int px_health_http_final(const uint8_t *p, size_t n)
{
	size_t off = 0;

	for (;;) {
		size_t used = 0;
		int code = px_health_http_status(p + off, n - off, &used);
		if (code <= 0 || code >= 200)
			return code;
		/* 1xx: an interim response, its fields, a blank line; the
		 * final status line follows. */
		off += used;
		long end = head_end(p + off, n - off);
		if (end <= 0)
			return (int)end;
		off += (size_t)end;
	}
}
