/* config/tsigkey.c - TSIG key files in BIND's syntax (issue 13).
 *
 * [backend] update-key names a file as tsig-keygen, ddns-confgen and
 * rndc-confgen write it:
 *
 *     key "NAME" { algorithm hmac-sha256; secret "BASE64"; };
 *
 * BIND reads such a file as a piece of named.conf, so operators lay it
 * out as they like and comment it with #, // and C comments. A small
 * tokenizer of that syntax is all it takes; config/ may use neither
 * codec/ nor ldns, and BIND's own parser is no library.
 *
 * Exactly one key statement is accepted. A file with two keys or with
 * other statements (the whole of ddns-confgen's output, say) is most
 * likely not the file meant, and picking one key would turn a wrong path
 * into UPDATEs that BIND refuses much later.
 *
 * The secret must never reach a message, not even a piece of it from a
 * garbled file: errors name lines and kinds of tokens, and quote a word
 * of the file only when it cannot be base64 (see safe_word()). Buffers
 * that held the secret are wiped before they are freed or go out of
 * scope.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/internal.h"

/* What the errors offer instead. */
#define KEY_ALLOWED                                                                                \
	"one key statement as tsig-keygen writes it: key \"NAME\" { algorithm hmac-sha256; "       \
	"secret \"BASE64\"; };"
#define ALG_ALLOWED "hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512"
#define SECRET_ALLOWED "base64 of 1..256 bytes, as tsig-keygen writes it"
#define NAME_ALLOWED                                                                               \
	"a name like upd or ddns-key.example.com, quoted or not (labels of 1..63 bytes, 255 "      \
	"bytes in all)"
#define CLAUSE_ALLOWED "algorithm and secret, each once"
#define TEXT_ALLOWED "printable text, tabs and line ends"

/* The algorithms, as BIND's key files name them (RFC 8945 6). */
static const char *const alg_names[] = {
        "hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512",
};

/* ---- tokens ------------------------------------------------------------ */

enum tok_kind { TOK_EOF, TOK_WORD, TOK_STRING, TOK_LBRACE, TOK_RBRACE, TOK_SEMI };

struct tok {
	enum tok_kind kind;
	const char *text; /* WORD and STRING: the bytes, a STRING without its quotes */
	size_t len;
	unsigned line; /* where the token starts */
};

struct lex {
	const char *s;
	size_t len, pos;
	unsigned line;
	char *why;
	size_t whylen;
};

/* Records the error "line N: WHAT; allowed: ALLOWED" and returns -EINVAL.
 * Parsing stops at the first error, so there is only ever one. */
__attribute__((format(printf, 4, 5))) static int fail(struct lex *lx, unsigned line,
                                                      const char *allowed, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(lx->why, lx->whylen, "line %u: %s; allowed: %s", line, what, allowed);
	return -EINVAL;
}

/* Bytes no text file holds; a tab and the line ends are fine. */
static bool is_control(unsigned char c)
{
	return (c < ' ' && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Skips blanks, line ends and the three kinds of named.conf comments.
 * Comments start only where a token could: "a//b" is one word. */
static int skip_space(struct lex *lx)
{
	while (lx->pos < lx->len) {
		char c = lx->s[lx->pos];
		char n = lx->pos + 1 < lx->len ? lx->s[lx->pos + 1] : '\0';

		if (is_space(c)) {
			lx->line += c == '\n';
			lx->pos++;
		} else if (c == '#' || (c == '/' && n == '/')) {
			while (lx->pos < lx->len && lx->s[lx->pos] != '\n')
				lx->pos++;
		} else if (c == '/' && n == '*') {
			unsigned start = lx->line;
			lx->pos += 2;
			for (;;) {
				if (lx->pos + 1 >= lx->len)
					return fail(lx, start, "comments closed with */",
					            "a comment /* is not closed");
				if (lx->s[lx->pos] == '*' && lx->s[lx->pos + 1] == '/')
					break;
				lx->line += lx->s[lx->pos] == '\n';
				lx->pos++;
			}
			lx->pos += 2;
		} else {
			break;
		}
	}
	return 0;
}

/* A quoted string; lx->pos is at the opening quote. A backslash keeps the
 * next byte in the string (and the backslash too, which a name's \. and
 * \DDD escapes need). Line ends are allowed inside: BIND takes a secret
 * split over lines. */
static int lex_string(struct lex *lx, struct tok *t)
{
	size_t start = ++lx->pos;

	for (;;) {
		if (lx->pos >= lx->len)
			return fail(lx, t->line, "strings closed with \"",
			            "a quoted string is not closed");
		unsigned char c = (unsigned char)lx->s[lx->pos];
		if (c == '"')
			break;
		if (is_control(c))
			return fail(lx, lx->line, TEXT_ALLOWED,
			            "control character 0x%02x in a string", c);
		if (c == '\\' && lx->pos + 1 < lx->len) {
			lx->pos++;
			c = (unsigned char)lx->s[lx->pos];
		}
		lx->line += c == '\n';
		lx->pos++;
	}
	t->kind = TOK_STRING;
	t->text = lx->s + start;
	t->len = lx->pos - start;
	lx->pos++;
	return 0;
}

/* The next token into t. */
static int next(struct lex *lx, struct tok *t)
{
	if (skip_space(lx) != 0)
		return -EINVAL;
	*t = (struct tok){.kind = TOK_EOF, .text = lx->s + lx->pos, .line = lx->line};
	if (lx->pos >= lx->len) {
		/* The end of the file is on its last line, not after it. */
		if (lx->pos > 0 && lx->s[lx->pos - 1] == '\n' && t->line > 1)
			t->line--;
		return 0;
	}

	unsigned char c = (unsigned char)lx->s[lx->pos];
	if (c == '{' || c == '}' || c == ';') {
		t->kind = c == '{' ? TOK_LBRACE : c == '}' ? TOK_RBRACE : TOK_SEMI;
		t->len = 1;
		lx->pos++;
		return 0;
	}
	if (c == '"')
		return lex_string(lx, t);
	if (is_control(c))
		return fail(lx, lx->line, TEXT_ALLOWED, "control character 0x%02x", c);
	size_t start = lx->pos;
	while (lx->pos < lx->len) {
		c = (unsigned char)lx->s[lx->pos];
		if (is_space((char)c) || is_control(c) || c == '{' || c == '}' || c == ';' ||
		    c == '"')
			break;
		lx->pos++;
	}
	t->kind = TOK_WORD;
	t->len = lx->pos - start;
	return 0;
}

static bool is_word(const struct tok *t, const char *w)
{
	return t->kind == TOK_WORD && strlen(w) == t->len && strncasecmp(t->text, w, t->len) == 0;
}

/*
 * Whether a word may be quoted in a message. Standard base64, which TSIG
 * secrets are written in, has no '-' and no '.', so a word with one of
 * them is no secret; every algorithm name has one, and so do many
 * named.conf keywords ("update-policy"). Anything else is described, not
 * shown: a file that holds nothing but a bare secret must not have it
 * printed.
 */
static bool safe_word(const char *s, size_t len)
{
	bool marked = false;

	if (len == 0 || len > 40)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '-' || c == '.')
			marked = true;
		else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9')))
			return false;
	}
	return marked;
}

/* The token as a message shows it: "'{'", "a quoted string", ... */
static const char *describe(const struct tok *t, char *buf, size_t size)
{
	switch (t->kind) {
	case TOK_EOF:
		return "the end of the file";
	case TOK_LBRACE:
		return "'{'";
	case TOK_RBRACE:
		return "'}'";
	case TOK_SEMI:
		return "';'";
	case TOK_STRING:
		return "a quoted string";
	case TOK_WORD:
		break;
	}
	if (is_word(t, "key") || is_word(t, "algorithm") || is_word(t, "secret") ||
	    safe_word(t->text, t->len)) {
		snprintf(buf, size, "\"%.*s\"", (int)t->len, t->text);
		return buf;
	}
	return "a word";
}

/* ---- values ------------------------------------------------------------ */

/* The algorithm's index in alg_names, or -1. Case does not matter, a
 * trailing dot neither (the wire name has one), and MD5 also goes by its
 * old name (RFC 8945 6). */
static int alg_index(const char *s, size_t len)
{
	static const char md5_long[] = "hmac-md5.sig-alg.reg.int";

	if (len > 0 && s[len - 1] == '.')
		len--;
	if (len == sizeof(md5_long) - 1 && strncasecmp(s, md5_long, len) == 0)
		return 0;
	for (size_t i = 0; i < CFG__ARRAY_LEN(alg_names); i++) {
		if (strlen(alg_names[i]) == len && strncasecmp(s, alg_names[i], len) == 0)
			return (int)i;
	}
	return -1;
}

_Static_assert(CFG_TSIG_SECRET_MAX == 256, "b64_decode()'s messages say 256 bytes");

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes the base64 (RFC 4648 4) in s[0..len) into out, blanks and line
 * ends anywhere. Strict about the rest, as a cut or mangled secret must
 * not pass for a shorter key: whole groups of four, '=' only at the end.
 * @return NULL, or why not (which shows no byte of s).
 */
static const char *b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
	uint32_t acc = 0;
	unsigned n = 0, pad = 0;
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (is_space(s[i]))
			continue;
		if (s[i] == '=') {
			if (n < 2 || n + pad >= 4)
				return "misplaced '=' padding";
			pad++;
			continue;
		}
		int v = b64_value(s[i]);
		if (v < 0)
			return "a character outside the base64 alphabet";
		if (pad > 0)
			return "characters after the '=' padding";
		acc = acc << 6 | (uint32_t)v;
		if (++n < 4)
			continue;
		if (cap - o < 3)
			return "longer than 256 bytes";
		out[o++] = (uint8_t)(acc >> 16);
		out[o++] = (uint8_t)(acc >> 8);
		out[o++] = (uint8_t)acc;
		acc = 0;
		n = 0;
	}
	if (n == 0 && o == 0)
		return "empty";
	if (n + pad != 4 && n != 0)
		return "cut short: its length is not a multiple of 4";
	if (n > 0) {
		/* "xx==" carries one byte, "xxx=" two. */
		acc <<= 6 * pad;
		if (cap - o < n - 1u)
			return "longer than 256 bytes";
		out[o++] = (uint8_t)(acc >> 16);
		if (n == 3)
			out[o++] = (uint8_t)(acc >> 8);
	}
	acc = 0;
	*out_len = o;
	return NULL;
}

/* ---- the key statement ------------------------------------------------- */

struct parse {
	struct lex lx;
	struct cfg_tsig_key *key; /* being filled */
	unsigned alg_line, secret_line;
	char buf[48]; /* for describe() */
};

/* "algorithm VALUE ;" or "secret VALUE ;", the keyword in t. */
static int parse_clause(struct parse *p, const struct tok *t)
{
	bool alg = is_word(t, "algorithm");
	const char *what = alg ? "algorithm" : "secret";
	unsigned *seen = alg ? &p->alg_line : &p->secret_line;
	struct tok v, semi;

	if (*seen != 0)
		return fail(&p->lx, t->line, CLAUSE_ALLOWED, "%s given twice (first at line %u)",
		            what, *seen);
	*seen = t->line;
	if (next(&p->lx, &v) != 0)
		return -EINVAL;
	if (v.kind != TOK_WORD && v.kind != TOK_STRING)
		return fail(&p->lx, v.line, alg ? ALG_ALLOWED : SECRET_ALLOWED,
		            "expected the %s after %s, found %s",
		            alg ? "algorithm's name" : "secret", what,
		            describe(&v, p->buf, sizeof(p->buf)));
	if (alg) {
		int i = alg_index(v.text, v.len);
		if (i < 0 && safe_word(v.text, v.len))
			return fail(&p->lx, v.line, ALG_ALLOWED, "unknown algorithm \"%.*s\"",
			            (int)v.len, v.text);
		if (i < 0)
			return fail(&p->lx, v.line, ALG_ALLOWED, "unknown algorithm");
		snprintf(p->key->algorithm, sizeof(p->key->algorithm), "%s", alg_names[i]);
	} else {
		size_t n = 0;
		const char *why =
		        b64_decode(v.text, v.len, p->key->secret, sizeof(p->key->secret), &n);
		if (why != NULL)
			return fail(&p->lx, v.line, SECRET_ALLOWED, "the secret is not valid (%s)",
			            why);
		p->key->secret_len = (uint16_t)n;
	}
	if (next(&p->lx, &semi) != 0)
		return -EINVAL;
	if (semi.kind != TOK_SEMI)
		return fail(&p->lx, semi.line, KEY_ALLOWED, "expected ';' after the %s, found %s",
		            what, describe(&semi, p->buf, sizeof(p->buf)));
	return 0;
}

/* The name of a key statement and its name token. */
static int parse_name(struct parse *p)
{
	struct tok t;

	if (next(&p->lx, &t) != 0)
		return -EINVAL;
	if (t.kind != TOK_WORD && t.kind != TOK_STRING)
		return fail(&p->lx, t.line, NAME_ALLOWED,
		            "expected the key's name after key, found %s",
		            describe(&t, p->buf, sizeof(p->buf)));
	/* The reason names no byte of the name, which a garbled file could
	 * have taken from the secret. */
	const char *why = cfg__name_parse(t.text, t.len, &p->key->name);
	if (why == NULL && p->key->name.wire_len == 1)
		why = "the root name";
	if (why != NULL)
		return fail(&p->lx, t.line, NAME_ALLOWED,
		            "the key's name is not a domain name (%s)", why);
	return 0;
}

/* The rest of a key statement, after the word "key". */
static int parse_key(struct parse *p)
{
	struct tok t;

	if (parse_name(p) != 0 || next(&p->lx, &t) != 0)
		return -EINVAL;
	if (t.kind != TOK_LBRACE)
		return fail(&p->lx, t.line, KEY_ALLOWED,
		            "expected '{' after the key's name, found %s",
		            describe(&t, p->buf, sizeof(p->buf)));
	for (;;) {
		if (next(&p->lx, &t) != 0)
			return -EINVAL;
		if (t.kind == TOK_RBRACE)
			break;
		if (!is_word(&t, "algorithm") && !is_word(&t, "secret"))
			return fail(
			        &p->lx, t.line, CLAUSE_ALLOWED,
			        "expected algorithm, secret or '}' in the key statement, found %s",
			        describe(&t, p->buf, sizeof(p->buf)));
		if (parse_clause(p, &t) != 0)
			return -EINVAL;
	}
	if (p->alg_line == 0)
		return fail(&p->lx, t.line, KEY_ALLOWED, "the key has no algorithm");
	if (p->secret_line == 0)
		return fail(&p->lx, t.line, KEY_ALLOWED, "the key has no secret");
	if (next(&p->lx, &t) != 0)
		return -EINVAL;
	if (t.kind != TOK_SEMI)
		return fail(&p->lx, t.line, KEY_ALLOWED,
		            "expected ';' after the key statement's '}', found %s",
		            describe(&t, p->buf, sizeof(p->buf)));
	return 0;
}

/* The whole text: one key statement, comments around it. */
static int parse_file(struct parse *p)
{
	unsigned key_line = 0;
	struct tok t;

	for (;;) {
		if (next(&p->lx, &t) != 0)
			return -EINVAL;
		if (t.kind == TOK_EOF)
			break;
		if (is_word(&t, "key") && key_line != 0)
			return fail(&p->lx, t.line, "exactly one key statement in the file",
			            "a second key statement (the first is at line %u)", key_line);
		if (key_line != 0)
			return fail(&p->lx, t.line, "nothing but comments after the key statement",
			            "%s after the key statement",
			            describe(&t, p->buf, sizeof(p->buf)));
		if (!is_word(&t, "key"))
			return fail(&p->lx, t.line, KEY_ALLOWED,
			            "expected a key statement, found %s",
			            describe(&t, p->buf, sizeof(p->buf)));
		key_line = t.line;
		if (parse_key(p) != 0)
			return -EINVAL;
	}
	if (key_line == 0)
		return fail(&p->lx, t.line, KEY_ALLOWED, "no key statement in the file");
	return 0;
}

/* Leaves no key in k: what a failed parse or read leaves (path and line
 * are the caller's). */
static void clear_key(struct cfg_tsig_key *k)
{
	k->present = false;
	memset(&k->name, 0, sizeof(k->name));
	memset(k->algorithm, 0, sizeof(k->algorithm));
	explicit_bzero(k->secret, sizeof(k->secret));
	k->secret_len = 0;
}

int cfg_tsig_key_parse(const char *text, size_t len, struct cfg_tsig_key *out, char *why,
                       size_t whylen)
{
	char spare[1];
	/* Parsed aside, so that out gets a whole key or none. */
	struct cfg_tsig_key k = {.present = false};

	if (why == NULL || whylen == 0) {
		why = spare;
		whylen = sizeof(spare);
	}
	why[0] = '\0';
	clear_key(out);
	if (text == NULL) {
		text = "";
		len = 0;
	}
	struct parse p = {
	        .lx = {.s = text, .len = len, .line = 1, .why = why, .whylen = whylen},
	        .key = &k,
	};
	int rc = parse_file(&p);
	if (rc == 0) {
		out->present = true;
		out->name = k.name;
		memcpy(out->algorithm, k.algorithm, sizeof(out->algorithm));
		memcpy(out->secret, k.secret, k.secret_len);
		out->secret_len = k.secret_len;
	}
	explicit_bzero(&k, sizeof(k));
	return rc;
}

/* ---- the file ---------------------------------------------------------- */

/* Reads the open file fd (at most max bytes) into a new buffer. */
static int read_all(int fd, size_t max, char **out, size_t *out_len)
{
	/* One byte more than allowed, to tell "exactly max" from "more". */
	char *buf = malloc(max + 1);
	size_t len = 0;

	if (buf == NULL)
		return -ENOMEM;
	while (len <= max) {
		ssize_t n = read(fd, buf + len, max + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			explicit_bzero(buf, len);
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

int cfg__tsig_key_read(const char *path, struct cfg_tsig_key *out, char *why, size_t whylen)
{
	char shown[512], what[160], detail[CFG__TSIG_WHY_MAX];
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc, fd = -1;

	cfg__fmt_text(shown, sizeof(shown), path, strlen(path), 400);
	what[0] = '\0';
	/* stat() first: open() would wait forever on a FIFO. */
	if (stat(path, &st) != 0)
		snprintf(what, sizeof(what), "cannot read: %s", strerror(errno));
	else if (S_ISDIR(st.st_mode))
		snprintf(what, sizeof(what), "is a directory");
	else if (!S_ISREG(st.st_mode))
		snprintf(what, sizeof(what), "is not a regular file");
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		snprintf(what, sizeof(what), "cannot read: %s", strerror(errno));
	else if ((rc = read_all(fd, CFG__TSIG_FILE_MAX, &text, &len)) != 0)
		snprintf(what, sizeof(what), "cannot read: %s", strerror(-rc));
	else if (len > CFG__TSIG_FILE_MAX)
		snprintf(what, sizeof(what), "is larger than %uK, too large for a key file",
		         CFG__TSIG_FILE_MAX >> 10);
	if (fd >= 0)
		close(fd);
	if (what[0] != '\0') {
		clear_key(out);
		snprintf(why, whylen, "%s: %s; allowed: %s", shown, what, CFG__TSIGKEY_ALLOWED);
		if (text != NULL)
			explicit_bzero(text, len);
		free(text);
		return -EINVAL;
	}
	rc = cfg_tsig_key_parse(text, len, out, detail, sizeof(detail));
	explicit_bzero(text, len);
	free(text);
	if (rc != 0)
		snprintf(why, whylen, "%s %s", shown, detail);
	return rc;
}
