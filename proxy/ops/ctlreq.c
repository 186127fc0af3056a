/* proxy/ops/ctlreq.c - parsing control requests (see ctlreq.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "codec/name.h"
#include "codec/svcb.h"
#include "proxy/ops/ctlreq.h"

#define PX_CTL_MAX_WORDS 4

int px_ctl_name_parse(const char *s, size_t len, uint8_t *out, const char **why)
{
	size_t o = 0, label = 0, i = 0;

	if (len == 1 && s[0] == '.') {
		out[0] = 0;
		return 1;
	}
	if (len == 0) {
		*why = "empty name";
		return -EINVAL;
	}
	while (i < len) {
		/* out[label] is the length byte of the label being read. */
		label = o++;
		size_t n = 0;
		if (o > CODEC_MAX_NAME - 1) {
			*why = "name longer than 255 octets";
			return -EINVAL;
		}
		while (i < len && s[i] != '.') {
			unsigned c = (unsigned char)s[i++];
			if (c == '\\') {
				if (i >= len) {
					*why = "name ends in a lone backslash";
					return -EINVAL;
				}
				if (s[i] >= '0' && s[i] <= '9') {
					if (len - i < 3 || s[i + 1] < '0' || s[i + 1] > '9' ||
					    s[i + 2] < '0' || s[i + 2] > '9') {
						*why = "\\DDD escape needs three digits";
						return -EINVAL;
					}
					c = (unsigned)(s[i] - '0') * 100 +
					    (unsigned)(s[i + 1] - '0') * 10 +
					    (unsigned)(s[i + 2] - '0');
					if (c > 255) {
						*why = "\\DDD escape above 255";
						return -EINVAL;
					}
					i += 3;
				} else {
					c = (unsigned char)s[i++];
				}
			} else if (c <= ' ' || c >= 0x7f) {
				*why = "blank or non-ASCII character in the name (escape it as "
				       "\\DDD)";
				return -EINVAL;
			}
			if (++n > 63) {
				*why = "label longer than 63 octets";
				return -EINVAL;
			}
			if (o >= CODEC_MAX_NAME - 1) {
				*why = "name longer than 255 octets";
				return -EINVAL;
			}
			out[o++] = (uint8_t)c;
		}
		if (n == 0) {
			*why = "empty label";
			return -EINVAL;
		}
		out[label] = (uint8_t)n;
		if (i < len)
			i++; /* the dot; a trailing one ends the loop */
	}
	out[o++] = 0;
	codec_name_lower(out, o);
	return (int)o;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

#define USAGE                                                                                      \
	"stats, reload, flush [NAME], explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET], workers [N|auto]"

/* workers N|auto: a number of workers to pin, or back to the rule. */
static int parse_workers(const char *w, size_t wl, struct px_ctl_req *req, char *err, size_t errlen)
{
	unsigned v = 0;

	req->has_workers = true;
	if (wl == 4 && strncasecmp(w, "auto", 4) == 0)
		return 0;
	for (size_t j = 0; j < wl; j++) {
		if (w[j] < '0' || w[j] > '9' ||
		    (v = v * 10 + (unsigned)(w[j] - '0')) > PX_CTL_WORKERS_MAX)
			break;
		if (j + 1 == wl && v >= 1) {
			req->workers = v;
			return 0;
		}
	}
	return fail(err, errlen, "bad workers argument; allowed: a number from 1 to %d, or auto",
	            PX_CTL_WORKERS_MAX);
}

int px_ctl_parse(const char *line, size_t len, struct px_ctl_req *req, char *err, size_t errlen)
{
	const char *w[PX_CTL_MAX_WORDS];
	size_t wl[PX_CTL_MAX_WORDS], n = 0, i = 0;
	char word[PX_CTL_NAME_TEXT_MAX + 1];

	memset(req, 0, sizeof(*req));
	req->qtype = CODEC_TYPE_A;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > PX_CTL_LINE_MAX)
		return fail(err, errlen, "request longer than %d bytes", PX_CTL_LINE_MAX);
	if (memchr(line, '\0', len) != NULL)
		return fail(err, errlen, "NUL byte in the request; allowed: %s", USAGE);
	while (i < len) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		if (n == PX_CTL_MAX_WORDS)
			return fail(err, errlen, "too many words; allowed: %s", USAGE);
		w[n] = line + i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		wl[n] = (size_t)(line + i - w[n]);
		n++;
	}
	if (n == 0)
		return fail(err, errlen, "empty request; allowed: %s", USAGE);
	/* Every word is shown back in errors: cut it to a safe length. */
	snprintf(word, sizeof(word), "%.*s", (int)(wl[0] < 40 ? wl[0] : 40), w[0]);
	for (char *p = word; *p; p++)
		if ((unsigned char)*p < ' ' || (unsigned char)*p >= 0x7f)
			*p = '?';

	bool want_name = false, name_optional = false, type_ok = false;
	if (wl[0] == 5 && strncasecmp(w[0], "stats", 5) == 0) {
		req->cmd = PX_CTL_STATS;
	} else if (wl[0] == 6 && strncasecmp(w[0], "reload", 6) == 0) {
		req->cmd = PX_CTL_RELOAD;
	} else if (wl[0] == 5 && strncasecmp(w[0], "flush", 5) == 0) {
		req->cmd = PX_CTL_FLUSH;
		want_name = name_optional = true;
	} else if (wl[0] == 7 && strncasecmp(w[0], "explain", 7) == 0) {
		req->cmd = PX_CTL_EXPLAIN;
		want_name = type_ok = true;
	} else if (wl[0] == 7 && strncasecmp(w[0], "workers", 7) == 0) {
		req->cmd = PX_CTL_WORKERS;
		if (n > 2)
			return fail(err, errlen, "too many arguments for workers; allowed: " USAGE);
		return n == 2 ? parse_workers(w[1], wl[1], req, err, errlen) : 0;
	} else {
		return fail(err, errlen, "unknown command \"%s\"; allowed: " USAGE, word);
	}
	size_t max_words = 1 + (want_name ? 1 : 0) + (type_ok ? 2 : 0);
	if (n > max_words)
		return fail(err, errlen, "too many arguments for %s; allowed: " USAGE, word);
	if (want_name && n < 2 && !name_optional)
		return fail(err, errlen, "%s needs a NAME; allowed: " USAGE, word);
	if (n >= 2) {
		const char *why = NULL;
		int nl = px_ctl_name_parse(w[1], wl[1], req->name, &why);
		if (nl < 0) {
			snprintf(err, errlen,
			         "bad NAME: %s; allowed: a domain name like www.example.com", why);
			return -EINVAL;
		}
		req->name_len = (size_t)nl;
		req->has_name = true;
	}
	for (size_t k = 2; k < n; k++) {
		/* A subnet has digits or a colon; a type is letters. */
		bool subnet = false;
		for (size_t j = 0; j < wl[k]; j++)
			subnet |= (w[k][j] >= '0' && w[k][j] <= '9') || w[k][j] == ':';
		if (subnet) {
			if (req->has_subnet)
				return fail(err, errlen, "two SUBNETs; allowed: " USAGE);
			snprintf(word, sizeof(word), "%.*s", (int)(wl[k] < 60 ? wl[k] : 60), w[k]);
			if (wl[k] >= 60 || codec_ecs_from_text(word, &req->subnet) != 0)
				return fail(err, errlen,
				            "bad SUBNET; allowed: an address with an optional "
				            "prefix length, like 192.0.2.0/24 or 2001:db8::/56");
			req->has_subnet = true;
		} else if (k == 2 && wl[k] == 1 && strncasecmp(w[k], "A", 1) == 0) {
			req->qtype = CODEC_TYPE_A;
		} else if (k == 2 && wl[k] == 4 && strncasecmp(w[k], "AAAA", 4) == 0) {
			req->qtype = CODEC_TYPE_AAAA;
		} else if (k == 2 && wl[k] == 5 && strncasecmp(w[k], "HTTPS", 5) == 0) {
			req->qtype = CODEC_SVCB_TYPE_HTTPS;
		} else if (k == 2 && wl[k] == 4 && strncasecmp(w[k], "SVCB", 4) == 0) {
			req->qtype = CODEC_SVCB_TYPE_SVCB;
		} else {
			return fail(err, errlen, "bad TYPE; allowed: %s",
			            "A, AAAA, HTTPS, SVCB (before SUBNET)");
		}
	}
	return 0;
}
