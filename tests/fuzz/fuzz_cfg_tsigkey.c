/* tests/fuzz/fuzz_cfg_tsigkey.c - cfg_tsig_key_parse() on arbitrary bytes.
 *
 * The input is a key file's contents ([backend] update-key), not
 * NUL-terminated. Whatever it holds, the parse returns 0 with a whole key
 * or -EINVAL with a message and no key, reads nothing past the input and
 * leaks nothing. A key is checked against the promises struct
 * cfg_tsig_key makes; a message must be one printable line that starts
 * with the line it is about, and must not show the secret: when the
 * input also parses as a key, its secret's base64 must not be in any
 * message of a cut-short copy of the input.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const algorithms[] = {
        "hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512",
};

static void check_key(const struct cfg_tsig_key *k)
{
	bool known = false;

	if (!k->present || k->secret_len < 1 || k->secret_len > CFG_TSIG_SECRET_MAX)
		abort();
	for (size_t i = 0; i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
		known |= strcmp(k->algorithm, algorithms[i]) == 0;
	if (!known)
		abort();
	const struct cfg_name *n = &k->name;
	size_t tl = strnlen(n->text, sizeof(n->text));
	if (n->wire_len < 2 || n->wire[n->wire_len - 1] != 0 || tl < 2 || tl > 255 ||
	    n->text[tl - 1] != '.')
		abort();
}

static void check_why(const char *why, size_t whylen)
{
	size_t l = strnlen(why, whylen);

	if (l == 0 || l == whylen || strncmp(why, "line ", 5) != 0 ||
	    strstr(why, "; allowed: ") == NULL)
		abort();
	for (size_t i = 0; i < l; i++) {
		if ((unsigned char)why[i] < ' ' || (unsigned char)why[i] >= 0x7f)
			abort();
	}
}

static void check_failed(const struct cfg_tsig_key *k)
{
	if (k->present || k->secret_len != 0 || k->algorithm[0] != '\0')
		abort();
	for (size_t i = 0; i < sizeof(k->secret); i++) {
		if (k->secret[i] != 0)
			abort();
	}
}

/* A key that parsed: its secret must not show in the message of any
 * shorter prefix of the input (which cuts the file somewhere in or after
 * the secret). The secret is searched for whole, as the input wrote it,
 * when that is one run of at least 12 base64 characters: no fixed text
 * of a message has such a run, so a match is the secret. */
static void check_prefixes(const uint8_t *data, size_t size, const char *secret, size_t slen)
{
	char why[512];
	struct cfg_tsig_key k;

	if (slen < 12)
		return;
	/* A few cut points, not all: each is a whole parse. */
	for (size_t cut = size; cut > 0; cut = cut * 7 / 8) {
		if (cfg_tsig_key_parse((const char *)data, cut - 1, &k, why, sizeof(why)) == 0)
			continue;
		for (const char *m = why; *m != '\0'; m++) {
			if (strncmp(m, secret, slen) == 0)
				abort();
		}
	}
}

/* Where the secret's base64 starts in the input: after the word secret,
 * blanks and an optional quote. NULL if not found in this simple form. */
static const char *find_secret(const char *s, size_t size, size_t *len)
{
	static const char kw[] = "secret";

	for (size_t i = 0; i + sizeof(kw) - 1 < size; i++) {
		if (strncmp(s + i, kw, sizeof(kw) - 1) != 0)
			continue;
		size_t p = i + sizeof(kw) - 1;
		while (p < size && (s[p] == ' ' || s[p] == '\t' || s[p] == '"'))
			p++;
		size_t q = p;
		while (q < size && ((s[q] >= 'A' && s[q] <= 'Z') || (s[q] >= 'a' && s[q] <= 'z') ||
		                    (s[q] >= '0' && s[q] <= '9') || s[q] == '+' || s[q] == '/'))
			q++;
		*len = q - p;
		return s + p;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The reader in config/ stops at 64K; the parser is bounded by len
	 * alone, but a short input keeps the prefix checks fast. */
	if (size > 4096)
		return 0;
	struct cfg_tsig_key k;
	char why[512];
	int rc = cfg_tsig_key_parse((const char *)data, size, &k, why, sizeof(why));

	if (rc == 0) {
		check_key(&k);
		if (why[0] != '\0')
			abort();
		size_t slen = 0;
		const char *secret = find_secret((const char *)data, size, &slen);
		if (secret != NULL)
			check_prefixes(data, size, secret, slen);
	} else if (rc == -EINVAL) {
		check_why(why, sizeof(why));
		check_failed(&k);
	} else {
		abort();
	}
	return 0;
}
