/* config/set.c - key lines into values in struct cfg.
 *
 * cfg__on_key() is the handler libinih calls for each key line the
 * reader split off: it finds the key in the schema (keys.c), turns away
 * unknown, not yet built and duplicate keys, and hands the value to the
 * setter for the key's type. [alias] lines, whose keys are names, are
 * handled here too. A bad value is reported with what the key allows
 * and leaves the default in place (the load fails anyway).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/internal.h"

#define LOGFILE_ALLOWED                                                                            \
	"an absolute path of a regular file apexd may append to (created if absent), like "        \
	"/var/log/apexd/queries.log; empty for no query log"
#define URLPATH_ALLOWED                                                                            \
	"a URL path like /dns-query: '/' then printable ASCII without blanks, '?' or '#', at "     \
	"most 128 characters"
#define USER_ALLOWED "the name of an existing user, like nobody or apexd"
#define SOCKPATH_ALLOWED                                                                           \
	"an absolute path of at most 107 bytes in an existing directory, like /run/apexd.sock"
#define DNSTAP_ALLOWED                                                                             \
	"unix: and an absolute socket path of at most 107 bytes, like "                            \
	"unix:/run/apexd/dnstap.sock, or file: and an absolute path of a file apexd may write, "   \
	"like file:/var/log/apexd/apexd.dnstap; empty for no dnstap"
#define PREFIXES_ALLOWED                                                                           \
	"at most 64 addresses or prefixes like 10.0.0.0/8, 192.0.2.1, 2001:db8::/32; empty for "   \
	"none"
#define CHECK_ALLOWED                                                                              \
	"none, tcp:PORT, tls:PORT or http:PORT/PATH (PORT 1..65535), like tls:443 or "             \
	"http:80/health"
#define ANAME_TYPES_ALLOWED                                                                        \
	"at most 16 type codes, 1..65535 except 1, 2, 5, 6, 28, 39, 41, 46, 47, 50, 128..255 "     \
	"and 65535, like 65401"

static const char *const log_level_names[] = {
        [CFG_LOG_ERROR] = "error",
        [CFG_LOG_WARNING] = "warning",
        [CFG_LOG_INFO] = "info",
        [CFG_LOG_DEBUG] = "debug",
};

static const char *const cname_mode_names[] = {
        [CFG_CNAME_APEX] = "apex",
        [CFG_CNAME_ALL] = "all",
        [CFG_CNAME_NONE] = "none",
};

static const char *const siblings_names[] = {
        [CFG_SIBLINGS_OFF] = "off",
        [CFG_SIBLINGS_UPDATE] = "update",
};

static const char *const pool_names[] = {
        [CFG_POOL_UNION] = "union",
        [CFG_POOL_FAILOVER] = "failover",
};

/* ---- errors ------------------------------------------------------------ */

/* An error about the key on the current line: "FILE:LINE: [sec] key: ...". */
__attribute__((format(printf, 2, 3))) static void key_err(struct cfg__ld *ld, const char *fmt, ...)
{
	char body[768], key[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	cfg__fmt_text(key, sizeof(key), ld->key, ld->key_len, 100);
	cfg__err(ld, ld->line, "[%s] %s: %s", ld->sec_disp, key, body);
}

/* "FILE:LINE: [sec] key: "VALUE" why; allowed: ..." */
static void bad_value(struct cfg__ld *ld, const char *v, size_t vlen, const char *why,
                      const char *allowed)
{
	char text[128];

	cfg__fmt_text(text, sizeof(text), v, vlen, 100);
	key_err(ld, "\"%s\" %s; allowed: %s", text, why, allowed);
}

/* ---- values ------------------------------------------------------------ */

/*
 * A setter parses the current value (ld->val, not empty) as key k and
 * stores it at field, which is k->off into struct cfg or struct
 * cfg_zone. A bad value is reported with allowed (what key_allowed()
 * says k takes) and leaves the default in place: the load fails anyway.
 */
typedef void set_fn(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed);

/* Finds word (case-insensitively, as for booleans) in names; -1 if absent. */
static int word_index(const char *const *names, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		if (strlen(names[i]) == len && strncasecmp(names[i], s, len) == 0)
			return (int)i;
	}
	return -1;
}

/* Calls fn for each comma-separated element of s, blanks around it
 * removed; an empty element is reported once for the whole value. */
static bool split_list(struct cfg__ld *ld, const char *allowed,
                       void (*fn)(struct cfg__ld *ld, const char *e, size_t len, void *arg),
                       void *arg)
{
	const char *s = ld->val, *end = ld->val + ld->val_len;

	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		const char *e_end = comma ? comma : end;
		const char *e = s;
		while (e < e_end && cfg__is_blank(*e))
			e++;
		while (e_end > e && cfg__is_blank(e_end[-1]))
			e_end--;
		if (e == e_end) {
			bad_value(ld, ld->val, ld->val_len, "has an empty list element", allowed);
			return false;
		}
		fn(ld, e, (size_t)(e_end - e), arg);
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return true;
}

struct addrs_acc {
	struct cfg_addr *v;
	size_t n, cap;
	bool bad;
	const char *allowed;
};

static void add_addr(struct cfg__ld *ld, const char *e, size_t len, void *arg)
{
	struct addrs_acc *acc = arg;
	struct cfg_addr a;
	const char *why = cfg__parse_addr(e, len, &a);
	char msg[96];

	if (why != NULL) {
		snprintf(msg, sizeof(msg), "is not an address (%s)", why);
		bad_value(ld, e, len, msg, acc->allowed);
		acc->bad = true;
		return;
	}
	for (size_t i = 0; i < acc->n; i++) {
		if (strcmp(acc->v[i].text, a.text) == 0) {
			bad_value(ld, e, len, "is listed twice", "each address once");
			acc->bad = true;
			return;
		}
	}
	if (acc->n == acc->cap) {
		/* The element count is bounded by the commas, so this never
		 * grows; the check only guards the contract. */
		acc->bad = true;
		return;
	}
	acc->v[acc->n++] = a;
}

static void set_addrs(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                      const char *allowed)
{
	struct cfg_addr_list *list = (struct cfg_addr_list *)field;
	struct addrs_acc acc = {.cap = 1, .allowed = allowed};

	(void)k;
	for (size_t i = 0; i < ld->val_len; i++)
		acc.cap += ld->val[i] == ',';
	acc.v = calloc(acc.cap, sizeof(*acc.v));
	if (acc.v == NULL) {
		ld->oom = true;
		return;
	}
	if (!split_list(ld, allowed, add_addr, &acc) || acc.bad || acc.n == 0) {
		free(acc.v);
		return;
	}
	list->v = acc.v;
	list->n = acc.n;
}

struct prefixes_acc {
	struct cfg_prefix *v;
	size_t n, cap, max;
	bool bad, too_many;
};

static void add_prefix(struct cfg__ld *ld, const char *e, size_t len, void *arg)
{
	struct prefixes_acc *acc = arg;
	struct cfg_prefix p;
	char buf[128];
	const char *why = cfg__parse_prefix(e, len, &p, buf, sizeof(buf));

	if (why != NULL) {
		bad_value(ld, e, len, why, PREFIXES_ALLOWED);
		acc->bad = true;
		return;
	}
	for (size_t i = 0; i < acc->n; i++) {
		if (strcmp(acc->v[i].text, p.text) == 0) {
			bad_value(ld, e, len, "is listed twice", "each prefix once");
			acc->bad = true;
			return;
		}
	}
	if (acc->n == acc->max) {
		if (!acc->too_many)
			key_err(ld, "more than %zu entries; allowed: %s", acc->max,
			        PREFIXES_ALLOWED);
		acc->too_many = acc->bad = true;
		return;
	}
	if (acc->n < acc->cap) /* bounded by the commas, as for addresses */
		acc->v[acc->n++] = p;
}

/* [listen] proxy-protocol-from: the sources believed to be load
 * balancers. An empty value is handled by set_key() (the list stays
 * empty: off). */
static void set_prefixes(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                         const char *allowed)
{
	struct cfg_prefix_list *list = (struct cfg_prefix_list *)field;
	struct prefixes_acc acc = {.cap = 1, .max = (size_t)k->max};

	(void)allowed;
	for (size_t i = 0; i < ld->val_len; i++)
		acc.cap += ld->val[i] == ',';
	acc.v = calloc(acc.cap, sizeof(*acc.v));
	if (acc.v == NULL) {
		ld->oom = true;
		return;
	}
	if (!split_list(ld, PREFIXES_ALLOWED, add_prefix, &acc) || acc.bad || acc.n == 0) {
		free(acc.v);
		return;
	}
	list->v = acc.v;
	list->n = acc.n;
}

/* Why a type code cannot be an ANAME type, or NULL if it can. apexd asks
 * BIND for the ANAME type at the query name and reads A, AAAA, CNAME,
 * DNAME, SOA, NS and the DNSSEC types itself, so none of those can double
 * as an ANAME; meta and query types are not data at all (RFC 6895 §3.1). */
static const char *aname_type_forbidden(uint64_t t)
{
	switch (t) {
	case 0:
		return "reserved";
	case 1:
		return "A, which apexd reads itself";
	case 2:
		return "NS, which apexd reads itself";
	case 5:
		return "CNAME, which apexd reads itself";
	case 6:
		return "SOA, which apexd reads itself";
	case 28:
		return "AAAA, which apexd reads itself";
	case 39:
		return "DNAME, which apexd reads itself";
	case 41:
		return "OPT, a pseudo-type";
	case 46:
	case 47:
	case 50:
		return "a DNSSEC type";
	case 65535:
		return "reserved";
	}
	if (t >= 128 && t <= 255)
		return "a query or meta type";
	return NULL;
}

struct types_acc {
	uint16_t v[CFG_MAX_ANAME_TYPES];
	size_t n;
	bool bad, too_many;
};

static void add_type(struct cfg__ld *ld, const char *e, size_t len, void *arg)
{
	struct types_acc *acc = arg;
	uint64_t t;
	int rc = cfg__parse_uint(e, len, &t);
	char why[96];

	if (rc == -EINVAL) {
		bad_value(ld, e, len, "is not a number", ANAME_TYPES_ALLOWED);
		acc->bad = true;
		return;
	}
	if (rc < 0 || t > 65535) {
		bad_value(ld, e, len, "is out of range", ANAME_TYPES_ALLOWED);
		acc->bad = true;
		return;
	}
	const char *no = aname_type_forbidden(t);
	if (no != NULL) {
		snprintf(why, sizeof(why), "cannot be an ANAME type (%s)", no);
		bad_value(ld, e, len, why, ANAME_TYPES_ALLOWED);
		acc->bad = true;
		return;
	}
	for (size_t i = 0; i < acc->n; i++) {
		if (acc->v[i] == t) {
			bad_value(ld, e, len, "is listed twice", "each type once");
			acc->bad = true;
			return;
		}
	}
	if (acc->n == CFG_MAX_ANAME_TYPES) {
		if (!acc->too_many)
			key_err(ld, "more than %d types; allowed: %s", CFG_MAX_ANAME_TYPES,
			        ANAME_TYPES_ALLOWED);
		acc->too_many = acc->bad = true;
		return;
	}
	acc->v[acc->n++] = (uint16_t)t;
}

/* The list goes to cfg.flatten whatever k->off says: its count is a
 * field of its own. */
static void set_types(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                      const char *allowed)
{
	struct types_acc acc = {.n = 0};

	(void)k;
	(void)field;
	(void)allowed;

	if (!split_list(ld, ANAME_TYPES_ALLOWED, add_type, &acc) || acc.bad)
		return;
	memcpy(ld->cfg->flatten.aname_types, acc.v, sizeof(acc.v));
	ld->cfg->flatten.n_aname_types = (unsigned)acc.n;
}

/*
 * A file the proxy opens later (with OpenSSL, which has its own errors
 * for what is inside). Checked now so that a wrong path stops
 * --check-config and a reload instead of a running listener: it must be
 * a regular file (a directory passes access(R_OK), and OpenSSL's message
 * for it is obscure) that this process can read.
 */
static void set_file(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	struct stat st;
	char text[512], why[160];

	cfg__fmt_text(text, sizeof(text), v, vlen, 400);
	if (vlen >= k->max) {
		key_err(ld, "\"%s\" is longer than %zu bytes; allowed: %s", text,
		        (size_t)k->max - 1, allowed);
		return;
	}
	if (memchr(v, '\0', vlen) != NULL) {
		/* The lexer turns NUL away first; this only guards the copy. */
		key_err(ld, "\"%s\" contains a NUL byte; allowed: %s", text, allowed);
		return;
	}
	memcpy(field, v, vlen);
	field[vlen] = '\0';
	if (stat(field, &st) != 0)
		snprintf(why, sizeof(why), "cannot be read (%s)", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		snprintf(why, sizeof(why), "is a directory");
	else if (!S_ISREG(st.st_mode))
		snprintf(why, sizeof(why), "is not a regular file");
	else if (access(field, R_OK) != 0)
		snprintf(why, sizeof(why), "cannot be read (%s)", strerror(errno));
	else
		return;
	field[0] = '\0';
	key_err(ld, "\"%s\" %s; allowed: %s", text, why, allowed);
}

/* The control socket: apexd creates it at startup (replacing a stale
 * one), so only its directory must exist now. sun_path bounds the length. */
static void set_sockpath(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                         const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	struct stat st;
	char text[512], dir[CFG_CONTROL_PATH_MAX + 1];

	cfg__fmt_text(text, sizeof(text), v, vlen, 400);
	if (vlen >= k->max) {
		key_err(ld, "\"%s\" is longer than %zu bytes; allowed: %s", text,
		        (size_t)k->max - 1, allowed);
		return;
	}
	if (vlen == 0 || v[0] != '/') {
		key_err(ld, "\"%s\" is not an absolute path; allowed: %s", text, allowed);
		return;
	}
	if (v[vlen - 1] == '/' || memchr(v, '\0', vlen) != NULL) {
		key_err(ld, "\"%s\" does not name a file; allowed: %s", text, allowed);
		return;
	}
	size_t dl = vlen;
	while (dl > 0 && v[dl - 1] != '/')
		dl--;
	if (dl > 1)
		dl--; /* drop the slash, but keep "/" for a socket at the root */
	memcpy(dir, v, dl);
	dir[dl] = '\0';
	if (stat(dir, &st) != 0) {
		key_err(ld, "\"%s\": directory %s: %s; allowed: %s", text, dir, strerror(errno),
		        allowed);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		key_err(ld, "\"%s\": %s is not a directory; allowed: %s", text, dir, allowed);
		return;
	}
	memcpy(field, v, vlen);
	field[vlen] = '\0';
}

/*
 * [server] user: the account apexd drops to once its sockets are bound
 * (proxy/main.c). Looked up now so that a typo stops --check-config and
 * startup with the line, not a running server; the proxy looks it up
 * again when it drops. Only names: a number would be taken for a name
 * by getpwnam() anyway, and BIND's -u takes names too.
 */
static void set_user(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	/* getpwnam_r's room for the entry's strings; 16K is what glibc's
	 * _SC_GETPW_R_SIZE_MAX suggests at most for ordinary accounts. */
	char buf[16384];
	struct passwd pw, *res = NULL;

	if (vlen >= k->max) {
		bad_value(ld, v, vlen, "is too long for a user name", allowed);
		return;
	}
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c <= ' ' || c > 0x7e || c == ':' || c == '/') {
			bad_value(ld, v, vlen, "is not a user name (blank, ':', '/' or non-ASCII)",
			          allowed);
			return;
		}
	}
	memcpy(field, v, vlen);
	field[vlen] = '\0';
	int rc = getpwnam_r(field, &pw, buf, sizeof(buf), &res);
	if (rc != 0 || res == NULL) {
		char why[160];
		if (rc != 0)
			snprintf(why, sizeof(why), "cannot be looked up (%s)", strerror(rc));
		else
			snprintf(why, sizeof(why), "is not a user on this system");
		field[0] = '\0';
		bad_value(ld, v, vlen, why, allowed);
		return;
	}
	ld->cfg->server.user_line = ld->line;
}

/* The query log: written by apexd, so it need not exist, but the place
 * must take a file now (a typo in the directory fails here, not at the
 * first query). */
static void set_logfile(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                        const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	struct stat st;
	char text[512], why[200];

	cfg__fmt_text(text, sizeof(text), v, vlen, 400);
	if (vlen >= k->max) {
		key_err(ld, "\"%s\" is longer than %zu bytes; allowed: %s", text,
		        (size_t)k->max - 1, allowed);
		return;
	}
	if (memchr(v, '\0', vlen) != NULL || v[0] != '/' || v[vlen - 1] == '/') {
		key_err(ld, "\"%s\" is not an absolute path of a file; allowed: %s", text, allowed);
		return;
	}
	memcpy(field, v, vlen);
	field[vlen] = '\0';
	why[0] = '\0';
	if (stat(field, &st) == 0) {
		if (S_ISDIR(st.st_mode))
			snprintf(why, sizeof(why), "is a directory");
		else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
			snprintf(why, sizeof(why), "is not a regular file");
		else if (access(field, W_OK) != 0)
			snprintf(why, sizeof(why), "cannot be written (%s)", strerror(errno));
	} else if (errno != ENOENT) {
		snprintf(why, sizeof(why), "cannot be used (%s)", strerror(errno));
	} else {
		/* Absent: its directory must exist and take new files. */
		char dir[sizeof(((struct cfg *)0)->server.query_log)];
		memcpy(dir, field, vlen + 1);
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (stat(dir, &st) != 0)
			snprintf(why, sizeof(why), "cannot be created: directory %.100s: %s", dir,
			         strerror(errno));
		else if (!S_ISDIR(st.st_mode))
			snprintf(why, sizeof(why), "cannot be created: %.100s is not a directory",
			         dir);
		else if (access(dir, W_OK | X_OK) != 0)
			snprintf(why, sizeof(why), "cannot be created in %.100s (%s)", dir,
			         strerror(errno));
	}
	if (why[0] == '\0')
		return;
	field[0] = '\0';
	key_err(ld, "\"%s\" %s; allowed: %s", text, why, allowed);
}

/* The dnstap destination. A socket is the collector's: it may be absent
 * now (apexd connects when it appears), so only its form is checked. A
 * file is apexd's, checked as the query log is. */
static void set_dnstap(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                       const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	char text[512];

	cfg__fmt_text(text, sizeof(text), v, vlen, 400);
	bool is_unix = vlen > 5 && memcmp(v, "unix:", 5) == 0;
	if (!is_unix && !(vlen > 5 && memcmp(v, "file:", 5) == 0)) {
		key_err(ld, "\"%s\" is not unix:PATH or file:PATH; allowed: %s", text, allowed);
		return;
	}
	const char *p = v + 5;
	size_t plen = vlen - 5;
	if (is_unix) {
		if (plen > 107)
			key_err(ld, "\"%s\": the socket path is longer than 107 bytes; allowed: %s",
			        text, allowed);
		else if (p[0] != '/' || p[plen - 1] == '/' || memchr(p, '\0', plen) != NULL)
			key_err(ld, "\"%s\" is not an absolute path of a socket; allowed: %s", text,
			        allowed);
		else
			snprintf(field, k->max, "%.*s", (int)vlen, v);
		return;
	}
	/* The path alone goes through the query log's checks. */
	struct cfg__key fk = *k;
	fk.max = k->max - 5;
	ld->val = p;
	ld->val_len = plen;
	set_logfile(ld, &fk, field + 5, allowed);
	ld->val = v;
	ld->val_len = vlen;
	if (field[5] != '\0')
		memcpy(field, "file:", 5);
}

/* Why s is not a URL path for DoH (RFC 8484 §3: the client builds its
 * URI from a template, so a query string or fragment here is wrong), or
 * NULL if it is one. */
static const char *urlpath_bad(const char *s, size_t len, size_t max, char *buf, size_t size)
{
	if (s[0] != '/')
		return "does not start with '/'";
	if (len > max)
		return "is longer than 128 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t')
			return "contains a blank";
		if (c == '?' || c == '#') {
			snprintf(buf, size, "contains '%c'", c);
			return buf;
		}
		if (c < 0x21 || c > 0x7e) {
			snprintf(buf, size, "contains the byte 0x%02x", c);
			return buf;
		}
	}
	return NULL;
}

static void set_uint(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	uint64_t x;
	int rc = cfg__parse_uint(ld->val, ld->val_len, &x);

	if (rc == -EINVAL)
		bad_value(ld, ld->val, ld->val_len, "is not a number", allowed);
	else if (rc < 0 || x < k->min || x > k->max)
		bad_value(ld, ld->val, ld->val_len, "is out of range", allowed);
	else
		*(unsigned *)field = (unsigned)x;
}

/* CFG__T_MS and CFG__T_SEC: both are written as any duration, but a
 * seconds key takes only whole seconds and keeps its range in seconds. */
static void set_duration(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                         const char *allowed)
{
	uint64_t x, unit = k->type == CFG__T_SEC ? 1000 : 1;
	int rc = cfg__parse_duration_ms(ld->val, ld->val_len, &x);

	if (rc == -EINVAL)
		bad_value(ld, ld->val, ld->val_len, "is not a duration", allowed);
	else if (rc == 0 && x % unit != 0)
		bad_value(ld, ld->val, ld->val_len, "is not a whole number of seconds", allowed);
	else if (rc < 0 || x < k->min * unit || x > k->max * unit)
		bad_value(ld, ld->val, ld->val_len, "is out of range", allowed);
	else
		*(uint64_t *)field = x / unit;
}

static void set_size(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	uint64_t x;
	int rc = cfg__parse_size(ld->val, ld->val_len, &x);

	if (rc == -EINVAL)
		bad_value(ld, ld->val, ld->val_len, "is not a size", allowed);
	else if (rc < 0 || x < k->min || x > k->max)
		bad_value(ld, ld->val, ld->val_len, "is out of range", allowed);
	else
		*(uint64_t *)field = x;
}

static void set_bool(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	(void)k;
	if (cfg__parse_bool(ld->val, ld->val_len, (bool *)field) != 0)
		bad_value(ld, ld->val, ld->val_len, "is not a boolean", allowed);
}

/* A key whose value is one word of names, stored as that word's index
 * in an enum field (every enum here starts at 0 and counts up). */
static void set_word(struct cfg__ld *ld, const char *const *names, size_t n, const char *what,
                     char *field, const char *allowed)
{
	int i = word_index(names, n, ld->val, ld->val_len);

	if (i < 0)
		bad_value(ld, ld->val, ld->val_len, what, allowed);
	else
		*(int *)field = i;
}

static void set_loglevel(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                         const char *allowed)
{
	_Static_assert(sizeof(enum cfg_log_level) == sizeof(int), "stored as int");
	(void)k;
	set_word(ld, log_level_names, CFG__ARRAY_LEN(log_level_names), "is not a log level", field,
	         allowed);
}

static void set_cname(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                      const char *allowed)
{
	_Static_assert(sizeof(enum cfg_cname_mode) == sizeof(int), "stored as int");
	(void)k;
	set_word(ld, cname_mode_names, CFG__ARRAY_LEN(cname_mode_names), "is not a cname mode",
	         field, allowed);
}

static void set_siblings(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                         const char *allowed)
{
	_Static_assert(sizeof(enum cfg_siblings) == sizeof(int), "stored as int");
	(void)k;
	set_word(ld, siblings_names, CFG__ARRAY_LEN(siblings_names), "is not a siblings mode",
	         field, allowed);
}

static void set_pool(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	_Static_assert(sizeof(enum cfg_pool_mode) == sizeof(int), "stored as int");
	(void)k;
	set_word(ld, pool_names, CFG__ARRAY_LEN(pool_names), "is not a pool mode", field, allowed);
}

/* [health] check, [zone] check: how addresses in flattened answers are checked. */
static void set_check(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                      const char *allowed)
{
	struct cfg_check c;
	const char *why = cfg__parse_check(ld->val, ld->val_len, &c);

	(void)k;
	if (why != NULL)
		bad_value(ld, ld->val, ld->val_len, why, allowed);
	else
		*(struct cfg_check *)field = c;
}

/*
 * [backend] update-key: the TSIG key file is read and parsed now, at
 * every load, so that startup, --check-config and each reload (which
 * loads the file anew) see the key as it is on disk, and a bad key stops
 * them with the line instead of failing UPDATEs later. The path is kept
 * even when the file is bad, so validate.c knows the key was not simply
 * left out. Relative paths are taken as [tls] takes them: from the
 * working directory.
 */
static void set_tsigkey(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                        const char *allowed)
{
	struct cfg_tsig_key *key = (struct cfg_tsig_key *)field;
	const char *v = ld->val;
	size_t vlen = ld->val_len;
	char text[512], why[CFG__TSIG_WHY_MAX];

	(void)k;
	cfg__fmt_text(text, sizeof(text), v, vlen, 400);
	if (vlen >= sizeof(key->path)) {
		key_err(ld, "\"%s\" is longer than %zu bytes; allowed: %s", text,
		        sizeof(key->path) - 1, allowed);
		return;
	}
	if (memchr(v, '\0', vlen) != NULL) {
		/* The lexer turns NUL away first; this only guards the copy. */
		key_err(ld, "\"%s\" contains a NUL byte; allowed: %s", text, allowed);
		return;
	}
	memcpy(key->path, v, vlen);
	key->path[vlen] = '\0';
	key->line = ld->line;
	if (cfg__tsig_key_read(key->path, key, why, sizeof(why)) != 0)
		key_err(ld, "%s", why);
}

static void set_addr(struct cfg__ld *ld, const struct cfg__key *k, char *field, const char *allowed)
{
	struct cfg_addr a;
	const char *why;
	char msg[96];

	(void)k;
	if (memchr(ld->val, ',', ld->val_len) != NULL) {
		bad_value(ld, ld->val, ld->val_len, "is more than one address", allowed);
		return;
	}
	why = cfg__parse_addr(ld->val, ld->val_len, &a);
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "is not an address (%s)", why);
		bad_value(ld, ld->val, ld->val_len, msg, allowed);
		return;
	}
	*(struct cfg_addr *)field = a;
}

static void set_urlpath(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                        const char *allowed)
{
	char buf[48];
	const char *why = urlpath_bad(ld->val, ld->val_len, k->max - 1, buf, sizeof(buf));

	if (why != NULL) {
		bad_value(ld, ld->val, ld->val_len, why, allowed);
		return;
	}
	memcpy(field, ld->val, ld->val_len);
	field[ld->val_len] = '\0';
}

static void set_tlsver(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                       const char *allowed)
{
	const char *v = ld->val;
	size_t vlen = ld->val_len;

	(void)k;
	if (vlen == 3 && memcmp(v, "1.2", 3) == 0)
		*(unsigned *)field = 12;
	else if (vlen == 3 && memcmp(v, "1.3", 3) == 0)
		*(unsigned *)field = 13;
	else
		bad_value(ld, v, vlen, "is not a TLS version apexd accepts", allowed);
}

/* "V4, V6": the two prefix lengths of [resolver] ecs-prefix, both given,
 * so a file never leaves one family at a default it did not see. */
static void set_ecsprefix(struct cfg__ld *ld, const struct cfg__key *k, char *field,
                          const char *allowed)
{
	static const unsigned width[2] = {32, 128};
	unsigned out[2], n = 0;
	const char *p = ld->val, *end = ld->val + ld->val_len;

	(void)k;
	while (p <= end && n < 3) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *e = comma != NULL ? comma : end;
		const char *s = p;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		unsigned long v = 0;
		const char *d = s;
		while (d < e && *d >= '0' && *d <= '9' && v <= 1000)
			v = v * 10 + (unsigned long)(*d++ - '0');
		if (d == s || d != e) {
			bad_value(ld, ld->val, ld->val_len, "is not two prefix lengths", allowed);
			return;
		}
		if (n < 2 && v > width[n]) {
			bad_value(ld, ld->val, ld->val_len,
			          n == 0 ? "has an IPv4 prefix length above 32"
			                 : "has an IPv6 prefix length above 128",
			          allowed);
			return;
		}
		if (n < 2)
			out[n] = (unsigned)v;
		n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	if (n != 2) {
		bad_value(ld, ld->val, ld->val_len, "is not two prefix lengths", allowed);
		return;
	}
	memcpy(field, out, sizeof(out));
}

/* ---- types ------------------------------------------------------------- */

/* Per type: its setter, and what it allows when that does not depend on
 * the key (NULL: key_allowed() builds the text from the key's range). */
static const struct {
	set_fn *set;
	const char *allowed;
} types[] = {
        [CFG__T_UINT] = {set_uint, NULL},
        [CFG__T_MS] = {set_duration, NULL},
        [CFG__T_SEC] = {set_duration, NULL},
        [CFG__T_SIZE] = {set_size, NULL},
        [CFG__T_BOOL] = {set_bool, "yes, no, true, false, on, off"},
        [CFG__T_LOGLEVEL] = {set_loglevel, "error, warning, info, debug"},
        [CFG__T_CNAME] = {set_cname, "apex, all, none"},
        [CFG__T_ADDR] = {set_addr, "an address like 127.0.0.1:5300"},
        [CFG__T_ADDRS] = {set_addrs, "addresses like 127.0.0.1:53, [::1]:53"},
        [CFG__T_TYPES] = {set_types, ANAME_TYPES_ALLOWED},
        [CFG__T_FILE] = {set_file, NULL},
        [CFG__T_LOGFILE] = {set_logfile, LOGFILE_ALLOWED},
        [CFG__T_URLPATH] = {set_urlpath, URLPATH_ALLOWED},
        [CFG__T_TLSVER] = {set_tlsver, "1.2, 1.3"},
        [CFG__T_USER] = {set_user, USER_ALLOWED},
        [CFG__T_SOCKPATH] = {set_sockpath, SOCKPATH_ALLOWED},
        [CFG__T_TSIGKEY] = {set_tsigkey, CFG__TSIGKEY_ALLOWED},
        [CFG__T_SIBLINGS] = {set_siblings, "off, update"},
        [CFG__T_POOL] = {set_pool, "union, failover"},
        [CFG__T_DNSTAP] = {set_dnstap, DNSTAP_ALLOWED},
        [CFG__T_PREFIXES] = {set_prefixes, PREFIXES_ALLOWED},
        [CFG__T_ECSPREFIX] = {set_ecsprefix,
                              "IPv4 and IPv6 prefix lengths, like 24, 56 (0..32, 0..128)"},
        [CFG__T_CHECK] = {set_check, CHECK_ALLOWED},
        /* Never set: cfg__on_key() turns such keys away first. */
        [CFG__T_LATER] = {NULL, ""},
};

_Static_assert(CFG__ARRAY_LEN(types) == CFG__T_LATER + 1, "a type without a setter");

/* What key k accepts, for the "allowed:" part of its errors. */
static void key_allowed(const struct cfg__key *k, char *buf, size_t size)
{
	char lo[32], hi[32];

	switch (k->type) {
	case CFG__T_UINT:
		snprintf(buf, size, "%llu..%llu", (unsigned long long)k->min,
		         (unsigned long long)k->max);
		break;
	case CFG__T_MS:
		cfg__fmt_duration_ms(lo, sizeof(lo), k->min);
		cfg__fmt_duration_ms(hi, sizeof(hi), k->max);
		snprintf(buf, size, "%s..%s, like 250ms, 5s, 10m, 1h or 1d", lo, hi);
		break;
	case CFG__T_SEC:
		cfg__fmt_duration_ms(lo, sizeof(lo), k->min * 1000);
		cfg__fmt_duration_ms(hi, sizeof(hi), k->max * 1000);
		snprintf(buf, size, "%s..%s in whole seconds, like 30s, 10m, 1h or 1d", lo, hi);
		break;
	case CFG__T_SIZE:
		cfg__fmt_size(lo, sizeof(lo), k->min);
		cfg__fmt_size(hi, sizeof(hi), k->max);
		snprintf(buf, size, "%s..%s, like 512, 64K, 64M or 1G", lo, hi);
		break;
	case CFG__T_FILE:
		snprintf(buf, size, "%s",
		         k->off == offsetof(struct cfg, tls.private_key)     ? CFG__PKEY_ALLOWED
		         : k->off == offsetof(struct cfg, tls.ocsp_response) ? CFG__OCSP_ALLOWED
		                                                             : CFG__CERT_ALLOWED);
		break;
	default:
		snprintf(buf, size, "%s", types[k->type].allowed);
		break;
	}
}

/* Parses the current value as key k and stores it at base + k->off. */
static void set_key(struct cfg__ld *ld, const struct cfg__key *k, void *base)
{
	char allowed[256];

	key_allowed(k, allowed, sizeof(allowed));
	if (ld->val_len == 0 && (k->type == CFG__T_LOGFILE || k->type == CFG__T_DNSTAP)) {
		((char *)base + k->off)[0] = '\0'; /* "query-log =": explicitly off */
		return;
	}
	if (ld->val_len == 0 && k->type == CFG__T_TSIGKEY) {
		/* "update-key =": explicitly none, as CONFIG.md writes the default. */
		memset((char *)base + k->off, 0, sizeof(struct cfg_tsig_key));
		return;
	}
	if (ld->val_len == 0 && k->type == CFG__T_PREFIXES)
		return; /* "proxy-protocol-from =": explicitly none */
	if (ld->val_len == 0) {
		key_err(ld, "missing value; allowed: %s", allowed);
		return;
	}
	if (types[k->type].set != NULL)
		types[k->type].set(ld, k, (char *)base + k->off, allowed);
}

/* ---- key lines --------------------------------------------------------- */

static void keys_allowed(const struct cfg__section *sd, char *buf, size_t size)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sd->n_keys; i++) {
		if (sd->keys[i].type == CFG__T_LATER)
			continue;
		int n = snprintf(buf + o, size - o, "%s%s", o ? ", " : "", sd->keys[i].name);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
}

#define ALIAS_TARGET_ALLOWED "a target name like cdn.example.net"

/* One target of an [alias] line (text v, blanks trimmed) into a. */
static bool alias_target(struct cfg__ld *ld, struct cfg_alias *a, const char *v, size_t len)
{
	struct cfg_name *t = &a->targets[a->n_targets];
	const char *why;
	char msg[96];

	if (len == 0) {
		bad_value(ld, ld->val, ld->val_len, "has an empty list element",
		          "target names separated by commas, like a.cdn.net, b.cdn.net");
		return false;
	}
	if (a->n_targets == CFG_POOL_MAX) {
		key_err(ld, "more than %d targets; allowed: at most %d targets per owner",
		        CFG_POOL_MAX, CFG_POOL_MAX);
		return false;
	}
	why = cfg__name_parse(v, len, t);
	if (why == NULL && t->wire_len == 1)
		why = "the root name";
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "is not a domain name (%s)", why);
		bad_value(ld, v, len, msg, ALIAS_TARGET_ALLOWED);
		return false;
	}
	if (cfg__name_equal(&a->owner, t)) {
		key_err(ld, "target is the owner itself; allowed: another name");
		return false;
	}
	for (unsigned i = 0; i < a->n_targets; i++) {
		if (cfg__name_equal(&a->targets[i], t)) {
			bad_value(ld, v, len, "is listed twice", "each target once");
			return false;
		}
	}
	if (a->pool_wire_len + t->wire_len > CFG_POOL_WIRE_MAX) {
		key_err(ld,
		        "the targets are too long together; allowed: at most %d octets of "
		        "names in wire form per owner",
		        CFG_POOL_WIRE_MAX);
		return false;
	}
	memcpy(a->pool_wire + a->pool_wire_len, t->wire, t->wire_len);
	a->pool_wire_len = (uint16_t)(a->pool_wire_len + t->wire_len);
	a->n_targets++;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* "owner = target" or "owner = t1, t2, ..." (a pool, in listed order). */
static void alias_key(struct cfg__ld *ld)
{
	struct cfg *cfg = ld->cfg;
	struct cfg_alias *a;
	const char *why;
	char msg[96];

	if (!cfg__grow(ld, (void **)&cfg->aliases, &ld->aliases_cap, cfg->n_aliases,
	               sizeof(*cfg->aliases)))
		return;
	a = &cfg->aliases[cfg->n_aliases];
	memset(a, 0, sizeof(*a));
	a->line = ld->line;
	why = cfg__name_parse(ld->key, ld->key_len, &a->owner);
	if (why != NULL) {
		snprintf(msg, sizeof(msg), "is not a domain name (%s)", why);
		bad_value(ld, ld->key, ld->key_len, msg, CFG__NAME_ALLOWED);
		return;
	}
	if (ld->val_len == 0) {
		key_err(ld, "missing value; allowed: a target name like cdn.example.net");
		return;
	}
	for (size_t p = 0; p <= ld->val_len;) {
		size_t e = p;
		while (e < ld->val_len && ld->val[e] != ',')
			e++;
		size_t s = p, t = e;
		while (s < t && is_blank(ld->val[s]))
			s++;
		while (t > s && is_blank(ld->val[t - 1]))
			t--;
		if (!alias_target(ld, a, ld->val + s, t - s))
			return;
		p = e + 1;
	}
	for (size_t i = 0; i < cfg->n_aliases; i++) {
		if (cfg__name_equal(&cfg->aliases[i].owner, &a->owner)) {
			key_err(ld,
			        "duplicate owner (first at line %u); allowed: one line per owner "
			        "(several targets: owner = t1, t2)",
			        cfg->aliases[i].line);
			return;
		}
	}
	cfg->n_aliases++;
}

/*
 * The inih handler, called for each stand-in "k=v" line the reader gave
 * out; the real key and value are in the load state (see reader.c).
 * Always returns 1: errors are collected in ld, and inih's "first error
 * line" return value would only duplicate them.
 */
int cfg__on_key(void *user, const char *section, const char *name, const char *value)
{
	struct cfg__ld *ld = user;
	char list[256];

	(void)section;
	(void)name;
	(void)value;
	if (ld->sec_skip)
		return 1;
	if (ld->sec < 0) {
		char key[128];
		cfg__fmt_text(key, sizeof(key), ld->key, ld->key_len, 100);
		cfg__err(ld, ld->line, "%s: outside any section; allowed: a [section] header first",
		         key);
		return 1;
	}
	if (ld->sec == CFG__SEC_ALIAS) {
		alias_key(ld);
		return 1;
	}

	const struct cfg__section *sd = &cfg__sections[ld->sec];
	size_t i;
	for (i = 0; i < sd->n_keys; i++) {
		if (strlen(sd->keys[i].name) == ld->key_len &&
		    memcmp(sd->keys[i].name, ld->key, ld->key_len) == 0)
			break;
	}
	keys_allowed(sd, list, sizeof(list));
	if (i == sd->n_keys) {
		key_err(ld, "unknown key; allowed: %s", list);
		return 1;
	}
	const struct cfg__key *k = &sd->keys[i];
	if (k->type == CFG__T_LATER) {
		key_err(ld, "not supported by this version of apexd yet; allowed: %s", list);
		return 1;
	}

	unsigned *seen =
	        ld->sec == CFG__SEC_ZONE ? &ld->zone_seen[ld->zone][i] : &ld->seen[ld->sec][i];
	if (*seen != 0) {
		key_err(ld, "duplicate key (first set at line %u); allowed: one value per key",
		        *seen);
		return 1;
	}
	*seen = ld->line;
	set_key(ld, k,
	        ld->sec == CFG__SEC_ZONE ? (void *)&ld->cfg->zones[ld->zone] : (void *)ld->cfg);
	return 1;
}

/* ---- API --------------------------------------------------------------- */

const char *cfg_log_level_name(enum cfg_log_level l)
{
	if ((unsigned)l < CFG__ARRAY_LEN(log_level_names))
		return log_level_names[l];
	return "unknown";
}

void cfg_alias_targets_text(const struct cfg_alias *a, char *buf, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (unsigned i = 0; i < a->n_targets; i++) {
		int n = snprintf(buf + o, size - o, "%s%s", i ? ", " : "", a->targets[i].text);
		if (n < 0 || (size_t)n >= size - o)
			break;
		o += (size_t)n;
	}
}

const char *cfg_pool_mode_name(enum cfg_pool_mode m)
{
	if ((unsigned)m < CFG__ARRAY_LEN(pool_names))
		return pool_names[m];
	return "unknown";
}
