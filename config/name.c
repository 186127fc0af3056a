/* config/name.c - domain names from the INI file into wire form.
 *
 * config/ may not use codec/ or ldns (see DESIGN.md, dependency
 * direction), so this is a small presentation-format parser of its own.
 * Names are compared case-insensitively in DNS (RFC 4343); we lowercase
 * both forms once here so that every later comparison is a memcmp.
 */
#include <stdio.h>
#include <string.h>

#include "config/internal.h"

/* RFC 1035 §2.3.4: a label holds at most 63 octets, a name at most 255 in wire form. */
#define CFG_LABEL_MAX 63
#define CFG_NAME_MAX 255

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Writes the canonical text: the characters zone files treat specially are
 * escaped, so the text reads back as the same name. */
static const char *name_to_text(struct cfg_name *out)
{
	size_t t = 0, w = 0;

	if (out->wire[0] == 0) {
		strcpy(out->text, ".");
		return NULL;
	}
	while (out->wire[w] != 0) {
		uint8_t ll = out->wire[w++];
		for (uint8_t i = 0; i < ll; i++, w++) {
			uint8_t c = out->wire[w];
			char esc[5];
			if (c <= ' ' || c >= 0x7f)
				snprintf(esc, sizeof(esc), "\\%03u", c);
			else if (strchr(".\\;\"()@$", c) != NULL)
				snprintf(esc, sizeof(esc), "\\%c", c);
			else
				snprintf(esc, sizeof(esc), "%c", c);
			size_t el = strlen(esc);
			if (t + el + 1 >= sizeof(out->text))
				return "longer than 255 characters when printed";
			memcpy(out->text + t, esc, el);
			t += el;
		}
		if (t + 2 > sizeof(out->text))
			return "longer than 255 characters when printed";
		out->text[t++] = '.';
	}
	out->text[t] = '\0';
	return NULL;
}

const char *cfg__name_parse(const char *s, size_t len, struct cfg_name *out)
{
	/* One spare byte so the root label after a full name is caught by the
	 * length check below rather than by the bounds. */
	uint8_t wire[CFG_NAME_MAX + 1];
	size_t w = 1, lenpos = 0, ll = 0;

	memset(out, 0, sizeof(*out));
	if (len == 0)
		return "empty name";
	if (len == 1 && s[0] == '.') {
		out->wire[0] = 0;
		out->wire_len = 1;
		return name_to_text(out);
	}
	for (size_t i = 0; i < len;) {
		uint8_t c = (uint8_t)s[i];

		if (c == '.') {
			if (ll == 0)
				return "empty label";
			wire[lenpos] = (uint8_t)ll;
			if (w >= sizeof(wire))
				return "longer than 255 bytes";
			lenpos = w++;
			ll = 0;
			i++;
			continue;
		}
		if (c == '\\') {
			if (i + 1 >= len)
				return "backslash at the end";
			if (is_digit(s[i + 1])) {
				/* \DDD is always three digits, RFC 1035 §5.1. */
				if (i + 3 >= len || !is_digit(s[i + 2]) || !is_digit(s[i + 3]))
					return "\\DDD escape needs three digits";
				unsigned v = (unsigned)(s[i + 1] - '0') * 100 +
				             (unsigned)(s[i + 2] - '0') * 10 +
				             (unsigned)(s[i + 3] - '0');
				if (v > 255)
					return "\\DDD escape above 255";
				c = (uint8_t)v;
				i += 4;
			} else {
				c = (uint8_t)s[i + 1];
				i += 2;
			}
		} else if (c <= ' ' || c == 0x7f) {
			return "contains a blank or control character";
		} else {
			i++;
		}
		if (ll == CFG_LABEL_MAX)
			return "label longer than 63 bytes";
		if (w >= sizeof(wire))
			return "longer than 255 bytes";
		wire[w++] = lower(c);
		ll++;
	}
	if (ll > 0) {
		wire[lenpos] = (uint8_t)ll;
		if (w >= sizeof(wire))
			return "longer than 255 bytes";
		wire[w++] = 0;
	} else {
		/* A trailing dot: the slot reserved for the next label's length
		 * becomes the root label. */
		wire[lenpos] = 0;
	}
	if (w > CFG_NAME_MAX)
		return "longer than 255 bytes";
	memcpy(out->wire, wire, w);
	out->wire_len = (uint8_t)w;
	return name_to_text(out);
}

bool cfg__name_equal(const struct cfg_name *a, const struct cfg_name *b)
{
	return a->wire_len == b->wire_len && memcmp(a->wire, b->wire, a->wire_len) == 0;
}

bool cfg__name_in_zone(const struct cfg_name *name, const struct cfg_name *zone)
{
	/* Walk label boundaries of name; a suffix match elsewhere ("xexample.com"
	 * against "example.com") is not containment. */
	size_t p = 0;

	for (;;) {
		if ((size_t)name->wire_len - p == zone->wire_len &&
		    memcmp(name->wire + p, zone->wire, zone->wire_len) == 0)
			return true;
		if (p >= name->wire_len || name->wire[p] == 0)
			return false;
		p += (size_t)name->wire[p] + 1;
	}
}
