/* config/reader.c - the lines of the INI file, as libinih pulls them.
 *
 * libinih, as Debian 12 builds it, calls the handler without a line
 * number and not at all for a section without keys, copies section names
 * into a 50-byte buffer (a 253-character [zone NAME] would be cut),
 * reads lines into a 200-byte buffer (longer lines come back as two),
 * treats only ';' as an inline comment, and takes an indented line as the
 * continuation of the previous value. None of that fits CONFIG.md, and
 * the options that would change it are process-wide globals.
 *
 * So the reader callback that ini_parse_stream() pulls lines from does the
 * lexing: it counts lines, strips comments, opens sections (empty ones
 * included), and splits "key = value" at the first '='. It then hands inih
 * a short stand-in line of the same kind ("k=v", "[s]" or an empty line),
 * and the handler that inih calls for "k=v" reads the real key and value
 * from the load state. inih thus stays the driver that CONFIG.md names,
 * while every limit and every line number is ours.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

#define SECTIONS_ALLOWED                                                                           \
	"[server], [listen], [tls], [backend], [resolver], [flatten], [health], [cache], "         \
	"[limits], "                                                                               \
	"[zone NAME], [alias]"

static void open_zone(struct cfg__ld *ld, const char *s, size_t len)
{
	struct cfg *cfg = ld->cfg;
	struct cfg_name name;
	const char *why = cfg__name_parse(s, len, &name);
	char text[128];

	if (why != NULL) {
		cfg__fmt_text(text, sizeof(text), s, len, 100);
		cfg__err(ld, ld->line, "[%s]: \"%s\" is not a domain name (%s); allowed: %s",
		         ld->sec_disp, text, why, CFG__NAME_ALLOWED);
		return;
	}
	if (name.wire_len == 1) {
		cfg__err(ld, ld->line, "[%s]: the root zone cannot be flattened; allowed: %s",
		         ld->sec_disp, CFG__NAME_ALLOWED);
		return;
	}
	for (size_t i = 0; i < cfg->n_zones; i++) {
		if (cfg__name_equal(&cfg->zones[i].name, &name)) {
			cfg__err(ld, ld->line,
			         "[%s]: duplicate zone (first at line %u); allowed: one section "
			         "per zone",
			         ld->sec_disp, cfg->zones[i].line);
			return;
		}
	}
	size_t cap = ld->zones_cap;
	if (!cfg__grow(ld, (void **)&cfg->zones, &ld->zones_cap, cfg->n_zones, sizeof(*cfg->zones)))
		return;
	if (cap != ld->zones_cap) {
		/* Keep the per-zone line table as long as the zone array. */
		void *l = realloc(ld->zone_seen, ld->zones_cap * sizeof(*ld->zone_seen));
		if (l == NULL) {
			ld->oom = true;
			return;
		}
		ld->zone_seen = l;
	}
	ld->zone = cfg->n_zones++;
	/* cname and siblings get [flatten]'s values (check [health]'s) in
	 * validate.c unless the section sets its own. */
	cfg->zones[ld->zone] = (struct cfg_zone){.name = name,
	                                         .cname = CFG_CNAME_APEX,
	                                         .siblings = CFG_SIBLINGS_OFF,
	                                         .line = ld->line};
	memset(ld->zone_seen[ld->zone], 0, sizeof(ld->zone_seen[ld->zone]));
	ld->sec = CFG__SEC_ZONE;
	ld->sec_skip = false;
}

/* s is what is between '[' and ']', blanks removed. */
static void open_section(struct cfg__ld *ld, const char *s, size_t len)
{
	size_t w = 0;

	/* Until the header proves good, its keys are not looked at: one
	 * error for a wrong header, not one more per key under it. */
	ld->sec = CFG__SEC_COUNT;
	ld->sec_skip = true;
	cfg__fmt_text(ld->sec_disp, sizeof(ld->sec_disp), s, len, 120);

	while (w < len && !cfg__is_blank(s[w]))
		w++;
	const char *rest = s + w;
	size_t rlen = len - w;
	while (rlen > 0 && cfg__is_blank(*rest)) {
		rest++;
		rlen--;
	}

	if (w == 4 && memcmp(s, "zone", 4) == 0) {
		if (rlen == 0) {
			cfg__err(ld, ld->line,
			         "[zone]: missing zone name; allowed: [zone NAME], like [zone "
			         "example.com]");
			return;
		}
		open_zone(ld, rest, rlen);
		return;
	}
	for (size_t i = 0; i < CFG__SEC_COUNT; i++) {
		if (rlen != 0 || i == CFG__SEC_ZONE || strlen(cfg__sections[i].name) != w ||
		    memcmp(cfg__sections[i].name, s, w) != 0)
			continue;
		if (cfg__sections[i].later) {
			cfg__err(ld, ld->line,
			         "[%s]: not supported by this version of apexd yet; allowed: %s",
			         ld->sec_disp, SECTIONS_ALLOWED);
			return;
		}
		ld->sec = (int)i;
		ld->sec_skip = false;
		if (ld->sec_line[i] == 0)
			ld->sec_line[i] = ld->line;
		return;
	}
	cfg__err(ld, ld->line, "[%s]: unknown section; allowed: %s", ld->sec_disp,
	         SECTIONS_ALLOWED);
}

/* Splits "key = value" into the load state; false if the line has no '='. */
static bool split_key_line(struct cfg__ld *ld, const char *s, size_t len)
{
	const char *eq = memchr(s, '=', len);

	if (eq == NULL)
		return false;
	if (len + 2 > ld->buf_cap) {
		char *b = realloc(ld->buf, len + 2);
		if (b == NULL) {
			ld->oom = true;
			return false;
		}
		ld->buf = b;
		ld->buf_cap = len + 2;
	}
	size_t kl = (size_t)(eq - s), vs = kl + 1, vl = len - vs;
	while (kl > 0 && cfg__is_blank(s[kl - 1]))
		kl--;
	while (vl > 0 && cfg__is_blank(s[vs])) {
		vs++;
		vl--;
	}
	/* Key and value each get a NUL so a debugger shows them sensibly;
	 * the parsers use the lengths. */
	memcpy(ld->buf, s, kl);
	ld->buf[kl] = '\0';
	memcpy(ld->buf + kl + 1, s + vs, vl);
	ld->buf[kl + 1 + vl] = '\0';
	ld->key = ld->buf;
	ld->key_len = kl;
	ld->val = ld->buf + kl + 1;
	ld->val_len = vl;
	return true;
}

/* A line that is neither a header nor "key = value"; named with its
 * section when there is one, since that is where the reader looks. */
static void line_err(struct cfg__ld *ld, const char *s, size_t len, const char *why)
{
	char text[128];

	cfg__fmt_text(text, sizeof(text), s, len, 100);
	if (ld->sec_disp[0] != '\0')
		cfg__err(ld, ld->line, "[%s]: \"%s\" %s; allowed: key = value", ld->sec_disp, text,
		         why);
	else
		cfg__err(ld, ld->line, "\"%s\" %s; allowed: key = value", text, why);
}

/* Looks at one physical line and returns the stand-in line for inih. */
static const char *lex_line(struct cfg__ld *ld, const char *s, size_t len)
{
	if (ld->line == 1 && len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		len -= 3;
	}
	if (len > 0 && s[len - 1] == '\r')
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < ' ' && c != '\t') || c == 0x7f) {
			cfg__err(ld, ld->line,
			         "control character 0x%02x in the line; allowed: printable text "
			         "and tabs",
			         c);
			return "\n";
		}
	}
	/* A comment starts with ';' or '#' at the start of the line or after
	 * a blank, as inih's inline comments do; "a#b" stays a value. */
	for (size_t i = 0; i < len; i++) {
		if ((s[i] == ';' || s[i] == '#') && (i == 0 || cfg__is_blank(s[i - 1]))) {
			len = i;
			break;
		}
	}
	while (len > 0 && cfg__is_blank(*s)) {
		s++;
		len--;
	}
	while (len > 0 && cfg__is_blank(s[len - 1]))
		len--;
	if (len == 0)
		return "\n";

	if (s[0] == '[') {
		if (s[len - 1] != ']') {
			char text[128];
			cfg__fmt_text(text, sizeof(text), s, len, 100);
			cfg__err(ld, ld->line,
			         "\"%s\" is not a section header; allowed: [section] alone on a "
			         "line",
			         text);
			/* Its keys would be checked against the previous section. */
			ld->sec = CFG__SEC_COUNT;
			ld->sec_skip = true;
			ld->sec_disp[0] = '\0';
			return "\n";
		}
		s++;
		len -= 2;
		while (len > 0 && cfg__is_blank(*s)) {
			s++;
			len--;
		}
		while (len > 0 && cfg__is_blank(s[len - 1]))
			len--;
		open_section(ld, s, len);
		return "[s]\n";
	}

	if (!split_key_line(ld, s, len)) {
		if (!ld->oom)
			line_err(ld, s, len, "is not a key = value line");
		return "\n";
	}
	if (ld->key_len == 0) {
		line_err(ld, s, len, "has no key before '='");
		return "\n";
	}
	return "k=v\n";
}

/* The ini_reader: one physical line of the text per call, like fgets. */
char *cfg__read_line(char *str, int num, void *stream)
{
	struct cfg__ld *ld = stream;

	if (ld->pos >= ld->len || ld->oom || num < 8)
		return NULL;
	const char *s = ld->text + ld->pos;
	size_t n = ld->len - ld->pos;
	const char *nl = memchr(s, '\n', n);
	size_t len = nl ? (size_t)(nl - s) : n;

	ld->pos += len + (nl != NULL);
	ld->line++;
	snprintf(str, (size_t)num, "%s", lex_line(ld, s, len));
	return str;
}
