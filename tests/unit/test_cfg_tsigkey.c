/* tests/unit/test_cfg_tsigkey.c - config/: TSIG key files, [backend]
 * update-key and the siblings rule that needs it (issue 13).
 *
 * cfg_tsig_key_parse() on what tsig-keygen and ddns-confgen write and on
 * every way a file can be wrong, with the exact message; then the key
 * through cfg_load_mem(): read at load, errors with FILE:LINE, the cross-
 * key rule, and a reload that reads the file anew. No message may hold
 * the secret, in base64 or any piece of it: every failing case checks.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/helpers.h"
#include "config/config.h"

/* What `tsig-keygen -a hmac-sha256 upd` wrote (a throw-away key). */
#define UPD_SECRET "/bvvBfn2aMVHh3cU5t16j58kkyR0FkSvd+jeKOAKoTM="
static const char tsig_keygen_upd[] = "key \"upd\" {\n"
                                      "\talgorithm hmac-sha256;\n"
                                      "\tsecret \"" UPD_SECRET "\";\n"
                                      "};\n";
static const uint8_t upd_secret[32] = {
        0xfd, 0xbb, 0xef, 0x05, 0xf9, 0xf6, 0x68, 0xc5, 0x47, 0x87, 0x77,
        0x14, 0xe6, 0xdd, 0x7a, 0x8f, 0x9f, 0x24, 0x93, 0x24, 0x74, 0x16,
        0x44, 0xaf, 0x77, 0xe8, 0xde, 0x28, 0xe0, 0x0a, 0xa1, 0x33,
};

/* `tsig-keygen -a hmac-sha512`, laid out as a person might edit a
 * ddns-confgen -q file: all three comment kinds, the name unquoted and in
 * capitals, the algorithm quoted with a trailing dot, the secret first and
 * split over lines. */
#define SHA512_SECRET_A "7yly2onwg4F/+Y+g7yCx38nYoP2My9u0WSPnLs/9Wuwt4GGp"
#define SHA512_SECRET_B "Pt8dU49d7FLJI9PwtGCc3XGoSW3NgNci3XO93w=="
static const char edited_sha512[] = "# ddns-confgen -q -a hmac-sha512 -k DDNS-Key.Example.COM\n"
                                    "// for apexd\n"
                                    "/* rotated\n   2026-12-01 */\n"
                                    "key DDNS-Key.Example.COM. {\n"
                                    "    secret \"" SHA512_SECRET_A "\n"
                                    "            " SHA512_SECRET_B "\"; # split\n"
                                    "    algorithm \"HMAC-SHA512.\";\n"
                                    "} ; /* end */\n";
static const uint8_t sha512_secret[64] = {
        0xef, 0x29, 0x72, 0xda, 0x89, 0xf0, 0x83, 0x81, 0x7f, 0xf9, 0x8f, 0xa0, 0xef,
        0x20, 0xb1, 0xdf, 0xc9, 0xd8, 0xa0, 0xfd, 0x8c, 0xcb, 0xdb, 0xb4, 0x59, 0x23,
        0xe7, 0x2e, 0xcf, 0xfd, 0x5a, 0xec, 0x2d, 0xe0, 0x61, 0xa9, 0x3e, 0xdf, 0x1d,
        0x53, 0x8f, 0x5d, 0xec, 0x52, 0xc9, 0x23, 0xd3, 0xf0, 0xb4, 0x60, 0x9c, 0xdd,
        0x71, 0xa8, 0x49, 0x6d, 0xcd, 0x80, 0xd7, 0x22, 0xdd, 0x73, 0xbd, 0xdf,
};

#define KEY_ALLOWED                                                                                \
	"one key statement as tsig-keygen writes it: key \"NAME\" { algorithm hmac-sha256; "       \
	"secret \"BASE64\"; };"
#define ALG_ALLOWED "hmac-md5, hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512"
#define SECRET_ALLOWED "base64 of 1..256 bytes, as tsig-keygen writes it"
#define FILE_ALLOWED                                                                               \
	"a readable TSIG key file as tsig-keygen writes it, like /etc/apexd/update.key; empty "    \
	"for none"
#define NEEDS_KEY                                                                                  \
	"siblings: update needs [backend] update-key (a TSIG key file, as tsig-keygen writes); "   \
	"allowed: off, or update once [backend] update-key is set\n"

/* The smallest file that loads, as in test_cfg_load.c. */
#define BASE "[listen]\nudp = 127.0.0.1:5353\n[backend]\naddress = 127.0.0.1:5300\n"

/* Fails the test if msg holds the secret or a piece of it: any run of
 * 8 of its base64 characters (blanks in the file do not count). */
static void assert_no_secret(const char *msg, const char *secret)
{
	char clean[512];
	size_t n = 0;

	for (const char *s = secret; *s != '\0' && n + 1 < sizeof(clean); s++) {
		if (*s != ' ' && *s != '\n' && *s != '\t')
			clean[n++] = *s;
	}
	for (size_t i = 0; i + 8 <= n; i++) {
		for (const char *m = msg; *m != '\0'; m++) {
			if (strncmp(m, clean + i, 8) == 0)
				fail_msg("the message shows the secret:\n%s", msg);
		}
	}
}

/* ---- cfg_tsig_key_parse ------------------------------------------------- */

static int parse(const char *text, struct cfg_tsig_key *k, char *why, size_t whylen)
{
	return cfg_tsig_key_parse(text, strlen(text), k, why, whylen);
}

static void test_tsigkey_tsig_keygen_output_parses(void **state)
{
	struct cfg_tsig_key k;
	char why[256];

	(void)state;
	memset(&k, 0x55, sizeof(k));
	strcpy(k.path, "/etc/apexd/update.key");
	k.line = 9;
	assert_int_equal(parse(tsig_keygen_upd, &k, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_true(k.present);
	assert_string_equal(k.name.text, "upd.");
	assert_int_equal(k.name.wire_len, 5);
	assert_memory_equal(k.name.wire, "\3upd\0", 5);
	assert_string_equal(k.algorithm, "hmac-sha256");
	assert_int_equal(k.secret_len, 32);
	assert_memory_equal(k.secret, upd_secret, 32);
	/* path and line are the loader's. */
	assert_string_equal(k.path, "/etc/apexd/update.key");
	assert_int_equal(k.line, 9);
}

static void test_tsigkey_comments_layout_and_case_are_bind_syntax(void **state)
{
	struct cfg_tsig_key k;
	char why[256];

	(void)state;
	assert_int_equal(parse(edited_sha512, &k, why, sizeof(why)), 0);
	assert_string_equal(k.name.text, "ddns-key.example.com.");
	assert_memory_equal(k.name.wire, "\10ddns-key\7example\3com\0", 22);
	assert_string_equal(k.algorithm, "hmac-sha512");
	assert_int_equal(k.secret_len, 64);
	assert_memory_equal(k.secret, sha512_secret, 64);

	/* All on one line, unquoted secret, no blanks where none are needed. */
	assert_int_equal(parse("key\"x\"{algorithm hmac-sha1;secret QUJD;};", &k, why, sizeof(why)),
	                 0);
	assert_string_equal(k.name.text, "x.");
	assert_int_equal(k.secret_len, 3);
	assert_memory_equal(k.secret, "ABC", 3);
	/* "a//b" is a word: comments start only where a token would. */
	assert_int_equal(
	        parse("key a//b { algorithm hmac-sha1; secret \"QUI=\"; };", &k, why, sizeof(why)),
	        0);
	assert_string_equal(k.name.text, "a//b.");
	assert_int_equal(k.secret_len, 2);
	/* CRLF line ends, and no newline at the end. */
	assert_int_equal(parse("key \"a\" {\r\n algorithm hmac-sha1;\r\n secret \"QQ==\";\r\n};",
	                       &k, why, sizeof(why)),
	                 0);
	assert_int_equal(k.secret_len, 1);
}

static void test_tsigkey_every_algorithm_and_its_spellings(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
	        {"hmac-md5", "hmac-md5"},
	        {"hmac-md5.", "hmac-md5"},
	        {"hmac-md5.sig-alg.reg.int", "hmac-md5"},
	        {"HMAC-MD5.SIG-ALG.REG.INT.", "hmac-md5"},
	        {"hmac-sha1", "hmac-sha1"},
	        {"hmac-sha224", "hmac-sha224"},
	        {"hmac-sha256.", "hmac-sha256"},
	        {"\"hmac-sha384\"", "hmac-sha384"},
	        {"Hmac-Sha512", "hmac-sha512"},
	};
	struct cfg_tsig_key k;
	char text[256], why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "key k { algorithm %s; secret \"QUJD\"; };",
		         cases[i].text);
		if (parse(text, &k, why, sizeof(why)) != 0)
			fail_msg("%s: %s", cases[i].text, why);
		assert_string_equal(k.algorithm, cases[i].want);
	}
}

/* The longest secret kept is 256 bytes; base64 written here by a small
 * encoder of the test's own. */
static void b64(const uint8_t *in, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		v |= i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0;
		v |= i + 2 < n ? in[i + 2] : 0;
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		out[o++] = i + 1 < n ? a[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? a[v & 63] : '=';
	}
	out[o] = '\0';
}

static void test_tsigkey_secret_bounds(void **state)
{
	uint8_t raw[257];
	char enc[400], text[600], why[256];
	struct cfg_tsig_key k;

	(void)state;
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 7 + 1);
	b64(raw, 256, enc);
	snprintf(text, sizeof(text), "key k { algorithm hmac-sha256; secret \"%s\"; };", enc);
	assert_int_equal(parse(text, &k, why, sizeof(why)), 0);
	assert_int_equal(k.secret_len, 256);
	assert_memory_equal(k.secret, raw, 256);

	b64(raw, 257, enc);
	snprintf(text, sizeof(text), "key k { algorithm hmac-sha256; secret \"%s\"; };", enc);
	assert_int_equal(parse(text, &k, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "line 1: the secret is not valid (longer than 256 bytes); "
	                         "allowed: " SECRET_ALLOWED);
	assert_no_secret(why, enc);
	assert_false(k.present);
	assert_int_equal(k.secret_len, 0);
}

/* Every way a key file can be wrong, with the message it gets. */
static const struct {
	const char *text, *why;
} bad_files[] = {
        {"", "line 1: no key statement in the file; allowed: " KEY_ALLOWED},
        {"# only\n// comments\n/* here */\n",
         "line 3: no key statement in the file; allowed: " KEY_ALLOWED},
        {"key \"k\" {\n/* never\nclosed *\n",
         "line 2: a comment /* is not closed; allowed: comments closed with */"},
        {"key \"k {\n algorithm hmac-sha256;\n",
         "line 1: a quoted string is not closed; allowed: strings closed with \""},
        {"key k\001 {",
         "line 1: control character 0x01; allowed: printable text, tabs and line ends"},
        {"key \"k\x7f\" {",
         "line 1: control character 0x7f in a string; allowed: printable text, tabs and line ends"},
        {"options { directory \"/x\"; };",
         "line 1: expected a key statement, found a word; allowed: " KEY_ALLOWED},
        {"{ };", "line 1: expected a key statement, found '{'; allowed: " KEY_ALLOWED},
        {"key { algorithm hmac-sha256; };",
         "line 1: expected the key's name after key, found '{'; allowed: a name like upd or "
         "ddns-key.example.com, quoted or not (labels of 1..63 bytes, 255 bytes in all)"},
        {"key \"\" {", "line 1: the key's name is not a domain name (empty name); allowed: a "
                       "name like upd or ddns-key.example.com, quoted or not (labels of 1..63 "
                       "bytes, 255 bytes in all)"},
        {"key . {", "line 1: the key's name is not a domain name (the root name); allowed: a "
                    "name like upd or ddns-key.example.com, quoted or not (labels of 1..63 "
                    "bytes, 255 bytes in all)"},
        {"key a..b {", "line 1: the key's name is not a domain name (empty label); allowed: a "
                       "name like upd or ddns-key.example.com, quoted or not (labels of 1..63 "
                       "bytes, 255 bytes in all)"},
        {"key upd\nalgorithm hmac-sha256;",
         "line 2: expected '{' after the key's name, found \"algorithm\"; allowed: " KEY_ALLOWED},
        {"key upd {\n algorithm hmac-foo;\n secret \"QUJD\";\n};\n",
         "line 2: unknown algorithm \"hmac-foo\"; allowed: " ALG_ALLOWED},
        {"key upd {\n algorithm hmac-sha256.sig-alg.reg.int;\n};\n",
         "line 2: unknown algorithm \"hmac-sha256.sig-alg.reg.int\"; allowed: " ALG_ALLOWED},
        /* No '-' or '.': it might be base64, so it is not shown. */
        {"key upd {\n algorithm sha256;\n};\n", "line 2: unknown algorithm; allowed: " ALG_ALLOWED},
        {"key upd { algorithm ; };",
         "line 1: expected the algorithm's name after algorithm, found ';'; allowed: " ALG_ALLOWED},
        {"key upd { algorithm hmac-sha256 secret \"QUJD\"; };",
         "line 1: expected ';' after the algorithm, found \"secret\"; allowed: " KEY_ALLOWED},
        {"key upd {\n algorithm hmac-sha256;\n algorithm hmac-sha1;\n};",
         "line 3: algorithm given twice (first at line 2); allowed: algorithm and secret, each "
         "once"},
        {"key upd {\n secret \"QUJD\";\n secret \"QUJD\";\n};",
         "line 3: secret given twice (first at line 2); allowed: algorithm and secret, each once"},
        {"key upd { secret { }; };",
         "line 1: expected the secret after secret, found '{'; allowed: " SECRET_ALLOWED},
        {"key upd { secret \"QU!D\"; };",
         "line 1: the secret is not valid (a character outside the base64 alphabet); allowed: "
         "" SECRET_ALLOWED},
        {"key upd { secret \"QUJDRA\"; };",
         "line 1: the secret is not valid (cut short: its length is not a multiple of 4); "
         "allowed: " SECRET_ALLOWED},
        {"key upd { secret \"QUJDR===\"; };",
         "line 1: the secret is not valid (misplaced '=' padding); allowed: " SECRET_ALLOWED},
        {"key upd { secret \"QQ==QUJD\"; };",
         "line 1: the secret is not valid (characters after the '=' padding); allowed: "
         "" SECRET_ALLOWED},
        {"key upd { secret \"QUI=\nQUJD\"; };",
         "line 1: the secret is not valid (characters after the '=' padding); allowed: "
         "" SECRET_ALLOWED},
        {"key upd { secret \"  \n \"; };",
         "line 1: the secret is not valid (empty); allowed: " SECRET_ALLOWED},
        {"key upd { secret \\\"QUJD\"; };",
         "line 1: the secret is not valid (a character outside the base64 alphabet); allowed: "
         "" SECRET_ALLOWED},
        /* A secret pasted with a blank in it: the second half is not shown. */
        {"key upd { algorithm hmac-sha256; secret UzNjcmV0 c2VjcmV0; };",
         "line 1: expected ';' after the secret, found a word; allowed: " KEY_ALLOWED},
        {"key upd { algorithm hmac-sha256; secret \"QUJD\" };",
         "line 1: expected ';' after the secret, found '}'; allowed: " KEY_ALLOWED},
        {"key upd { algorithm hmac-sha256; secrets \"QUJD\"; };",
         "line 1: expected algorithm, secret or '}' in the key statement, found a word; allowed: "
         "algorithm and secret, each once"},
        {"key upd { algorithm hmac-sha256; tsig-secret \"QUJD\"; };",
         "line 1: expected algorithm, secret or '}' in the key statement, found "
         "\"tsig-secret\"; allowed: algorithm and secret, each once"},
        {"key upd {\n algorithm hmac-sha256;\n",
         "line 2: expected algorithm, secret or '}' in the key statement, found the end of the "
         "file; allowed: algorithm and secret, each once"},
        {"key upd {\n secret \"QUJD\";\n};\n",
         "line 3: the key has no algorithm; allowed: " KEY_ALLOWED},
        {"key upd {\n algorithm hmac-md5;\n};\n",
         "line 3: the key has no secret; allowed: " KEY_ALLOWED},
        {"key upd { algorithm hmac-md5; secret \"QUJD\"; }\n",
         "line 1: expected ';' after the key statement's '}', found the end of the file; "
         "allowed: " KEY_ALLOWED},
        {"key upd { algorithm hmac-md5; secret \"QUJD\"; }\nkey b { };",
         "line 2: expected ';' after the key statement's '}', found \"key\"; "
         "allowed: " KEY_ALLOWED},
        {"key a { algorithm hmac-md5; secret \"QUJD\"; };\n\nkey b { };",
         "line 3: a second key statement (the first is at line 1); allowed: exactly one key "
         "statement in the file"},
        /* ddns-confgen without -q: the key, then an update-policy example. */
        {"key \"ddns-key.example.com\" {\n\talgorithm hmac-sha256;\n\tsecret \"QUJD\";\n};\n"
         "update-policy {\n\tgrant ddns-key.example.com zonesub ANY;\n};\n",
         "line 5: \"update-policy\" after the key statement; allowed: nothing but comments after "
         "the key statement"},
        {"key a { algorithm hmac-md5; secret \"QUJD\"; };;",
         "line 1: ';' after the key statement; allowed: nothing but comments after the key "
         "statement"},
        /* A file with nothing but a secret in it. */
        {UPD_SECRET "\n", "line 1: expected a key statement, found a word; allowed: " KEY_ALLOWED},
};

static void test_tsigkey_errors_say_line_what_and_allowed(void **state)
{
	struct cfg_tsig_key k;
	char why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
		/* A key from before must not survive a failed parse. */
		assert_int_equal(parse(tsig_keygen_upd, &k, why, sizeof(why)), 0);
		if (parse(bad_files[i].text, &k, why, sizeof(why)) != -EINVAL)
			fail_msg("case %zu parsed: %s", i, bad_files[i].text);
		if (strcmp(why, bad_files[i].why) != 0)
			fail_msg("case %zu:\n got: %s\nwant: %s", i, why, bad_files[i].why);
		assert_false(k.present);
		assert_int_equal(k.secret_len, 0);
		assert_string_equal(k.algorithm, "");
		for (size_t j = 0; j < sizeof(k.secret); j++)
			assert_int_equal(k.secret[j], 0);
	}
}

static void test_tsigkey_secret_never_in_a_message(void **state)
{
	static const char *const files[] = {
	        "key upd { algorithm hmac-sha256; secret \"" UPD_SECRET "\" };",
	        "key upd { algorithm hmac-sha256; secret \"" UPD_SECRET "\"; } key",
	        "key upd { algorithm hmac-sha256; secret " UPD_SECRET " };",
	        "key upd { algorithm hmac-sha256; secret " UPD_SECRET "; secret x; };",
	        "key upd { algorithm hmac-sha256; secret \"" UPD_SECRET "x\"; };",
	        "key upd { algorithm " UPD_SECRET "; };",
	        "key " UPD_SECRET " { };",
	        "key \"" UPD_SECRET "\" x",
	        "key upd { " UPD_SECRET "; };",
	        "key upd { secret \"" UPD_SECRET "\"; };",
	        UPD_SECRET,
	        "\"" UPD_SECRET "\"",
	        "key upd { algorithm hmac-sha256; secret \"" UPD_SECRET "\"; }; " UPD_SECRET,
	        "key upd { algorithm hmac-sha256; secret \"" UPD_SECRET "\"; };\n" UPD_SECRET ";",
	};
	struct cfg_tsig_key k;
	char why[512];

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		assert_int_equal(parse(files[i], &k, why, sizeof(why)), -EINVAL);
		assert_int_not_equal(why[0], '\0');
		assert_no_secret(why, UPD_SECRET);
	}
}

static void test_tsigkey_small_or_no_message_buffer(void **state)
{
	struct cfg_tsig_key k;
	char why[16];

	(void)state;
	assert_int_equal(cfg_tsig_key_parse("key", 3, &k, NULL, 0), -EINVAL);
	assert_int_equal(cfg_tsig_key_parse(NULL, 5, &k, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "line 1: no key ");
	/* Only len bytes are read: the rest of the text is not looked at. */
	assert_int_equal(cfg_tsig_key_parse(tsig_keygen_upd, sizeof(tsig_keygen_upd) - 4, &k, why,
	                                    sizeof(why)),
	                 -EINVAL);
}

/* ---- [backend] update-key through the loader ---------------------------- */

struct tmp {
	char dir[64];
	char key[128];
};

static void tmp_make(struct tmp *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/apexd-tsigkey-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->key, sizeof(t->key), "%s/update.key", t->dir);
}

static void tmp_write(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void tmp_remove(struct tmp *t)
{
	unlink(t->key);
	assert_int_equal(rmdir(t->dir), 0);
}

static int load(const char *text, struct cfg **cfg, struct cfg_error *err)
{
	return cfg_load_mem("apexd.ini", text, strlen(text), cfg, err);
}

static struct cfg *load_ok(const char *text)
{
	struct cfg *cfg = NULL;
	struct cfg_error err;

	if (load(text, &cfg, &err) != 0)
		fail_msg("load failed:\n%s", err.msg);
	return cfg;
}

/* Loads text that must fail with exactly msg, which must not show secret. */
static void load_fails(const char *text, const char *msg, const char *secret)
{
	struct cfg *cfg = (struct cfg *)1;
	struct cfg_error err;

	assert_int_equal(load(text, &cfg, &err), -EINVAL);
	assert_null(cfg);
	if (strcmp(err.msg, msg) != 0)
		fail_msg("\n got: %s\nwant: %s", err.msg, msg);
	if (secret != NULL)
		assert_no_secret(err.msg, secret);
}

static void test_update_key_read_at_load(void **state)
{
	struct tmp t;
	char text[512];

	(void)state;
	tmp_make(&t);
	tmp_write(t.key, tsig_keygen_upd, strlen(tsig_keygen_upd));
	snprintf(text, sizeof(text), BASE "timeout = 2s\nupdate-key = %s\n[zone example.com]\n",
	         t.key);
	struct cfg *cfg = load_ok(text);
	const struct cfg_tsig_key *k = &cfg->backend.update_key;
	assert_true(k->present);
	assert_string_equal(k->path, t.key);
	assert_int_equal(k->line, 6);
	assert_string_equal(k->name.text, "upd.");
	assert_string_equal(k->algorithm, "hmac-sha256");
	assert_int_equal(k->secret_len, 32);
	assert_memory_equal(k->secret, upd_secret, 32);
	/* A key alone turns nothing on. */
	assert_int_equal(cfg->flatten.siblings, CFG_SIBLINGS_OFF);
	assert_int_equal(cfg->zones[0].siblings, CFG_SIBLINGS_OFF);
	cfg_free(cfg);

	/* Relative paths are relative to the working directory, as [tls]'s. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(t.dir), 0);
	cfg = load_ok(BASE "update-key = update.key\n");
	assert_int_equal(chdir(cwd), 0);
	assert_true(cfg->backend.update_key.present);
	assert_string_equal(cfg->backend.update_key.path, "update.key");
	cfg_free(cfg);
	tmp_remove(&t);
}

static void test_update_key_empty_is_unset(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok(BASE "update-key =\n[flatten]\nsiblings = off\n");

	assert_false(cfg->backend.update_key.present);
	assert_string_equal(cfg->backend.update_key.path, "");
	assert_int_equal(cfg->backend.update_key.secret_len, 0);
	cfg_free(cfg);
}

static void test_update_key_file_errors(void **state)
{
	struct tmp t;
	char text[512], msg[1024];

	(void)state;
	load_fails(BASE "update-key = /nonexistent/update.key\n",
	           "apexd.ini:5: [backend] update-key: /nonexistent/update.key: cannot read: No "
	           "such file or directory; allowed: " FILE_ALLOWED "\n",
	           NULL);
	load_fails(BASE "update-key = /tmp\n",
	           "apexd.ini:5: [backend] update-key: /tmp: is a directory; allowed: " FILE_ALLOWED
	           "\n",
	           NULL);
	load_fails(BASE "update-key = /dev/null\n",
	           "apexd.ini:5: [backend] update-key: /dev/null: is not a regular file; allowed: "
	           "" FILE_ALLOWED "\n",
	           NULL);

	tmp_make(&t);
	/* The brief's example: the line in the key file and what it allows. */
	static const char bad_alg[] =
	        "key \"upd\" {\n\talgorithm hmac-foo;\n\tsecret \"" UPD_SECRET "\";\n};\n";
	tmp_write(t.key, bad_alg, strlen(bad_alg));
	snprintf(text, sizeof(text), BASE "update-key = %s\n", t.key);
	snprintf(msg, sizeof(msg),
	         "apexd.ini:5: [backend] update-key: %s line 2: unknown algorithm \"hmac-foo\"; "
	         "allowed: " ALG_ALLOWED "\n",
	         t.key);
	load_fails(text, msg, UPD_SECRET);

	static const char no_semi[] =
	        "key \"upd\" {\n\talgorithm hmac-sha256;\n\tsecret \"" UPD_SECRET "\"\n};\n";
	tmp_write(t.key, no_semi, strlen(no_semi));
	snprintf(msg, sizeof(msg),
	         "apexd.ini:5: [backend] update-key: %s line 4: expected ';' after the secret, "
	         "found '}'; allowed: " KEY_ALLOWED "\n",
	         t.key);
	load_fails(text, msg, UPD_SECRET);

	if (geteuid() != 0) {
		tmp_write(t.key, tsig_keygen_upd, strlen(tsig_keygen_upd));
		assert_int_equal(chmod(t.key, 0), 0);
		snprintf(msg, sizeof(msg),
		         "apexd.ini:5: [backend] update-key: %s: cannot read: Permission denied; "
		         "allowed: " FILE_ALLOWED "\n",
		         t.key);
		load_fails(text, msg, UPD_SECRET);
	} else {
		print_message("running as root: the permission case is not tried\n");
	}
	tmp_remove(&t);
}

/* 64K is plenty for a key and its comments; one byte more is no key file. */
static void test_update_key_size_bound(void **state)
{
	struct tmp t;
	char text[512], msg[1024];
	size_t max = 64 * 1024;
	char *big = malloc(max + 1);

	(void)state;
	assert_non_null(big);
	tmp_make(&t);
	size_t kl = strlen(tsig_keygen_upd);
	memcpy(big, tsig_keygen_upd, kl);
	memset(big + kl, '\n', max + 1 - kl);
	big[kl] = '#';
	tmp_write(t.key, big, max);
	snprintf(text, sizeof(text), BASE "update-key = %s\n", t.key);
	struct cfg *cfg = load_ok(text);
	assert_int_equal(cfg->backend.update_key.secret_len, 32);
	cfg_free(cfg);

	tmp_write(t.key, big, max + 1);
	snprintf(msg, sizeof(msg),
	         "apexd.ini:5: [backend] update-key: %s: is larger than 64K, too large for a key "
	         "file; allowed: " FILE_ALLOWED "\n",
	         t.key);
	load_fails(text, msg, UPD_SECRET);
	free(big);
	tmp_remove(&t);
}

static void test_siblings_update_needs_update_key(void **state)
{
	(void)state;
	/* Each zone that asks for update itself gets the error at its line. */
	load_fails(BASE "[zone example.com]\ncname = all\nsiblings = update\n[zone example.net]\n",
	           "apexd.ini:7: [zone example.com] " NEEDS_KEY, NULL);
	/* [flatten] needs the key even with no zone to apply it to; its one
	 * error covers the zones that inherit it. A zone's own off is fine. */
	load_fails(BASE "[flatten]\nsiblings = update\n", "apexd.ini:6: [flatten] " NEEDS_KEY,
	           NULL);
	load_fails(BASE "[zone a.example]\n[zone b.example]\nsiblings = off\n"
	                "[zone c.example]\nsiblings = Update\n[flatten]\nsiblings = update\n",
	           "apexd.ini:9: [zone c.example] " NEEDS_KEY "apexd.ini:11: [flatten] " NEEDS_KEY,
	           NULL);
	/* An empty update-key is no key. */
	load_fails(BASE "update-key =\n[zone example.com]\nsiblings = update\n",
	           "apexd.ini:7: [zone example.com] " NEEDS_KEY, NULL);
	/* A key that was set but is wrong has its own error, and only that. */
	load_fails(
	        BASE "update-key = /nonexistent/k\n[zone example.com]\nsiblings = update\n",
	        "apexd.ini:5: [backend] update-key: /nonexistent/k: cannot read: No such file or "
	        "directory; allowed: " FILE_ALLOWED "\n",
	        NULL);
}

static void test_siblings_update_with_key_any_order(void **state)
{
	struct tmp t;
	char text[512];

	(void)state;
	tmp_make(&t);
	tmp_write(t.key, edited_sha512, strlen(edited_sha512));
	/* The key after the zones and [flatten]: order does not matter. */
	snprintf(text, sizeof(text),
	         "[listen]\nudp = 127.0.0.1:5353\n"
	         "[zone a.example]\n"
	         "[zone b.example]\nsiblings = off\n"
	         "[flatten]\nsiblings = update\n"
	         "[zone c.example]\nsiblings = update\n"
	         "[backend]\naddress = 127.0.0.1:5300\nupdate-key = %s\n",
	         t.key);
	struct cfg *cfg = load_ok(text);
	assert_int_equal(cfg->flatten.siblings, CFG_SIBLINGS_UPDATE);
	assert_int_equal(cfg->zones[0].siblings, CFG_SIBLINGS_UPDATE);
	assert_int_equal(cfg->zones[0].siblings_line, 7);
	assert_int_equal(cfg->zones[1].siblings, CFG_SIBLINGS_OFF);
	assert_int_equal(cfg->zones[1].siblings_line, 5);
	assert_int_equal(cfg->zones[2].siblings, CFG_SIBLINGS_UPDATE);
	assert_int_equal(cfg->zones[2].siblings_line, 9);
	assert_string_equal(cfg->backend.update_key.name.text, "ddns-key.example.com.");
	assert_int_equal(cfg->backend.update_key.line, 12);
	cfg_free(cfg);

	/* [flatten] siblings = update and no zone at all: nothing to do, fine. */
	snprintf(text, sizeof(text), BASE "update-key = %s\n[flatten]\nsiblings = update\n", t.key);
	cfg = load_ok(text);
	assert_int_equal(cfg->n_zones, 0);
	cfg_free(cfg);
	tmp_remove(&t);
}

/* A reload loads the file anew (proxy/daemon/reload.c calls cfg_load), so
 * the key file is read again: a new key is taken, a broken one fails the
 * reload, and the cfg in service is untouched by either. */
static void test_update_key_reread_on_reload(void **state)
{
	struct tmp t;
	char ini[160], text[512];
	struct cfg *old = NULL, *nc = NULL;
	struct cfg_error err;

	(void)state;
	tmp_make(&t);
	snprintf(ini, sizeof(ini), "%s/apexd.ini", t.dir);
	snprintf(text, sizeof(text),
	         BASE "update-key = %s\n[zone example.com]\nsiblings = update\n", t.key);
	tmp_write(ini, text, strlen(text));
	tmp_write(t.key, tsig_keygen_upd, strlen(tsig_keygen_upd));
	assert_int_equal(cfg_load(ini, &old, &err), 0);
	assert_string_equal(old->backend.update_key.name.text, "upd.");

	tmp_write(t.key, edited_sha512, strlen(edited_sha512));
	assert_int_equal(cfg_load(ini, &nc, &err), 0);
	assert_string_equal(nc->backend.update_key.name.text, "ddns-key.example.com.");
	assert_int_equal(nc->backend.update_key.secret_len, 64);
	assert_string_equal(old->backend.update_key.name.text, "upd.");
	assert_memory_equal(old->backend.update_key.secret, upd_secret, 32);
	cfg_free(nc);
	nc = NULL;

	static const char broken[] =
	        "key \"upd\" { algorithm hmac-sha256; secret \"" UPD_SECRET "\" };\n";
	tmp_write(t.key, broken, strlen(broken));
	assert_int_equal(cfg_load(ini, &nc, &err), -EINVAL);
	assert_null(nc);
	assert_non_null(strstr(err.msg, "apexd.ini:5: [backend] update-key: "));
	assert_non_null(strstr(err.msg, "update.key line 1: "));
	assert_no_secret(err.msg, UPD_SECRET);
	assert_memory_equal(old->backend.update_key.secret, upd_secret, 32);
	cfg_free(old);
	unlink(ini);
	tmp_remove(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_tsigkey_tsig_keygen_output_parses),
	        cmocka_unit_test(test_tsigkey_comments_layout_and_case_are_bind_syntax),
	        cmocka_unit_test(test_tsigkey_every_algorithm_and_its_spellings),
	        cmocka_unit_test(test_tsigkey_secret_bounds),
	        cmocka_unit_test(test_tsigkey_errors_say_line_what_and_allowed),
	        cmocka_unit_test(test_tsigkey_secret_never_in_a_message),
	        cmocka_unit_test(test_tsigkey_small_or_no_message_buffer),
	        cmocka_unit_test(test_update_key_read_at_load),
	        cmocka_unit_test(test_update_key_empty_is_unset),
	        cmocka_unit_test(test_update_key_file_errors),
	        cmocka_unit_test(test_update_key_size_bound),
	        cmocka_unit_test(test_siblings_update_needs_update_key),
	        cmocka_unit_test(test_siblings_update_with_key_any_order),
	        cmocka_unit_test(test_update_key_reread_on_reload),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
