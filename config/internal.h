/* config/internal.h - declarations shared by the files of config/ only.
 *
 * name.c parses domain names, value.c parses and prints the scalar value
 * types, keys.c holds the schema (sections, keys, types, ranges,
 * defaults), load.c drives libinih and owns the load state (struct
 * cfg__ld) and the error list, reader.c lexes the lines libinih pulls,
 * set.c turns key lines into values in struct cfg, tsigkey.c reads TSIG
 * key files, validate.c runs the checks that need the whole file.
 * Nothing here is part of the API: proxy/ uses config/config.h alone.
 * Threads: whatever thread runs cfg_load(); no global state.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* ---- name.c ---------------------------------------------------------- */

/**
 * Parses a domain name in presentation format (RFC 1035 §5.1: "\." and
 * "\DDD" escapes, trailing dot optional) into out, lowercased.
 * @return NULL on success, else a short reason for the error message
 *         ("empty label", "label longer than 63 bytes", ...).
 */
const char *cfg__name_parse(const char *s, size_t len, struct cfg_name *out);

/** True if a and b are the same name (both come from cfg__name_parse). */
bool cfg__name_equal(const struct cfg_name *a, const struct cfg_name *b);

/** True if name is zone itself or lies below it (label-wise suffix). */
bool cfg__name_in_zone(const struct cfg_name *name, const struct cfg_name *zone);

/* ---- value.c --------------------------------------------------------- */

/*
 * Scalar parsers. Each takes the value without surrounding blanks and
 * returns 0, -EINVAL for text that is not of the type at all, or -ERANGE
 * when it is but does not fit in 64 bits. Range checks against a key's
 * limits are the caller's.
 */
int cfg__parse_uint(const char *s, size_t len, uint64_t *out);
int cfg__parse_duration_ms(const char *s, size_t len, uint64_t *out);
int cfg__parse_size(const char *s, size_t len, uint64_t *out);
int cfg__parse_bool(const char *s, size_t len, bool *out);

/**
 * Parses "1.2.3.4:53" or "[::1]:53" into out (sockaddr with the port,
 * salen, normalised text).
 * @return NULL on success, else a short reason ("missing port", ...).
 */
const char *cfg__parse_addr(const char *s, size_t len, struct cfg_addr *out);

/**
 * Parses "10.0.0.0/8", "2001:db8::/32" or a bare address (a /32 or /128)
 * into out, text normalised.
 * @return NULL on success, else a short reason ("prefix length must be
 *         0..32", "has bits set past /8; the prefix is 10.0.0.0/8", ...).
 *         The reason may point into why[0..whylen).
 */
const char *cfg__parse_prefix(const char *s, size_t len, struct cfg_prefix *out, char *why,
                              size_t whylen);

/** Prints a duration the way the file would spell it: "0", "250ms", "5s", "1h", "1d". */
void cfg__fmt_duration_ms(char *buf, size_t size, uint64_t ms);

/** Prints a byte count the way the file would spell it: "512", "64K", "1M", "64G". */
void cfg__fmt_size(char *buf, size_t size, uint64_t bytes);

/**
 * Copies len bytes of s into buf for an error message: printable ASCII as
 * is, anything else as \xNN, cut with "..." when longer than max_chars, so
 * a hostile file cannot make messages unreadable or huge.
 */
void cfg__fmt_text(char *buf, size_t size, const char *s, size_t len, size_t max_chars);

/**
 * Parses a [health] check value: "none", "tcp:PORT", "tls:PORT",
 * "http:PORT" or "http:PORT/PATH" (PORT 1..65535, PATH "/" then printable
 * ASCII without blanks or '#', at most CFG_CHECK_PATH_MAX bytes; no PATH
 * is "/"). The kind is matched case-insensitively.
 * @return NULL on success, else a short reason for the error message.
 */
const char *cfg__parse_check(const char *s, size_t len, struct cfg_check *out);

/* ---- keys.c ---------------------------------------------------------- */

/** The number of elements of an array (not of a pointer). */
#define CFG__ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/** The sections, in the order docs/configuration.md lists them. */
enum cfg__sec {
	CFG__SEC_SERVER,
	CFG__SEC_LISTEN,
	CFG__SEC_TLS,
	CFG__SEC_BACKEND,
	CFG__SEC_RESOLVER,
	CFG__SEC_FLATTEN,
	CFG__SEC_HEALTH,
	CFG__SEC_CACHE,
	CFG__SEC_LIMITS,
	CFG__SEC_ZONE,
	CFG__SEC_ALIAS,
	CFG__SEC_COUNT,
};

/** Most keys any one section has, implemented or not. */
#define CFG__MAX_KEYS 16

/** Most keys a [zone NAME] section has. */
#define CFG__MAX_ZONE_KEYS 4

/** Key indexes that validate.c asks about; keys.c places the keys at them. */
enum {
	CFG__KEY_SERVER_DNSTAP = 5,
	CFG__KEY_SERVER_DNSTAP_CHASES = 6,
	CFG__KEY_LISTEN_UDP = 0,
	CFG__KEY_LISTEN_TCP = 1,
	CFG__KEY_LISTEN_DOT = 2,
	CFG__KEY_LISTEN_DOH = 3,
	CFG__KEY_LISTEN_METRICS = 7,
	CFG__KEY_TLS_CERTIFICATE = 0,
	CFG__KEY_TLS_PRIVATE_KEY = 1,
	CFG__KEY_BACKEND_ADDRESS = 0,
	CFG__KEY_BACKEND_UPDATE_KEY = 2,
	CFG__KEY_FLATTEN_CNAME = 0,
	CFG__KEY_FLATTEN_MIN_TTL = 3,
	CFG__KEY_FLATTEN_MAX_TTL = 4,
	CFG__KEY_FLATTEN_SIBLINGS = 10,
	CFG__KEY_ZONE_CNAME = 0,
	CFG__KEY_ZONE_SIBLINGS = 1,
	CFG__KEY_ZONE_CHECK = 2,
	CFG__KEY_HEALTH_CHECK = 0,
	CFG__KEY_HEALTH_INTERVAL = 1,
	CFG__KEY_HEALTH_TIMEOUT = 2,
};

/** How a key's value is written, and what set.c stores for it. */
enum cfg__type {
	CFG__T_UINT,      /* unsigned, range min..max */
	CFG__T_MS,        /* uint64_t milliseconds, range min..max ms */
	CFG__T_SEC,       /* uint64_t seconds, range min..max s; written as any duration */
	CFG__T_SIZE,      /* uint64_t bytes, range min..max */
	CFG__T_BOOL,      /* bool */
	CFG__T_LOGLEVEL,  /* enum cfg_log_level */
	CFG__T_CNAME,     /* enum cfg_cname_mode */
	CFG__T_ADDR,      /* struct cfg_addr, exactly one */
	CFG__T_ADDRS,     /* struct cfg_addr_list */
	CFG__T_TYPES,     /* cfg.flatten.aname_types */
	CFG__T_FILE,      /* char[max]: path of a regular file we can read now */
	CFG__T_LOGFILE,   /* char[max]: absolute path of a file we may append to; "" = off */
	CFG__T_URLPATH,   /* char[max]: "/..." URL path of at most max - 1 characters */
	CFG__T_TLSVER,    /* unsigned: 12 or 13, written 1.2 or 1.3 */
	CFG__T_USER,      /* char[max]: the name of a user that exists on this system */
	CFG__T_SOCKPATH,  /* char[max]: absolute path of a unix socket apexd creates */
	CFG__T_TSIGKEY,   /* struct cfg_tsig_key: a key file, read now; "" = unset */
	CFG__T_SIBLINGS,  /* enum cfg_siblings */
	CFG__T_DNSTAP,    /* char[max]: "unix:/socket" or "file:/path"; "" = off */
	CFG__T_PREFIXES,  /* struct cfg_prefix_list, at most max entries; "" = empty */
	CFG__T_ECSPREFIX, /* two unsigned: IPv4 <= 32, IPv6 <= 128 prefix lengths */
	CFG__T_POOL,      /* enum cfg_pool_mode */
	CFG__T_CHECK,     /* struct cfg_check: none, tcp:PORT, tls:PORT, http:PORT/PATH */
	CFG__T_LATER,     /* in CONFIG.md, but its feature is not built yet */
};

/** One key of a section. */
struct cfg__key {
	const char *name;
	enum cfg__type type;
	size_t off;        /* into struct cfg, or struct cfg_zone for [zone NAME] */
	uint64_t min, max; /* range; for the char[] types, max is the array's size */
};

/** One section: its name as in "[name]" and its keys in documentation order. */
struct cfg__section {
	const char *name;
	const struct cfg__key *keys;
	size_t n_keys;
	bool later; /* the whole section belongs to a later feature */
};

/** The schema, indexed by enum cfg__sec: the one list of what the file may say. */
extern const struct cfg__section cfg__sections[CFG__SEC_COUNT];

/** Fills cfg with the value of every key the file leaves out. */
void cfg__set_defaults(struct cfg *cfg);

/* What [tls] certificate and private-key accept, for set.c and validate.c. */
#define CFG__CERT_ALLOWED                                                                          \
	"a readable file with the PEM certificate chain, leaf first, like "                        \
	"/etc/apexd/fullchain.pem"
#define CFG__PKEY_ALLOWED                                                                          \
	"a readable file with the leaf's PEM private key, like /etc/apexd/privkey.pem"
#define CFG__OCSP_ALLOWED                                                                          \
	"a readable file with a DER OCSP response for the certificate, like "                      \
	"/etc/apexd/ocsp.der (openssl ocsp -respout)"
/* What [backend] update-key accepts, for set.c and tsigkey.c. */
#define CFG__TSIGKEY_ALLOWED                                                                       \
	"a readable TSIG key file as tsig-keygen writes it, like /etc/apexd/update.key; empty "    \
	"for none"
/* What a [zone NAME] and an [alias] owner accept, for reader.c and set.c. */
#define CFG__NAME_ALLOWED "a name like example.com (labels of 1..63 bytes, 255 bytes in all)"

/* ---- load.c ---------------------------------------------------------- */

struct cfg__msg {
	unsigned line;
	unsigned seq; /* keeps messages of one line in the order they were found */
	char *text;   /* the whole line, "FILE:LINE: ..." without the newline */
};

/** Load state: lives for one cfg_load_mem() call. */
struct cfg__ld {
	const char *file;
	const char *text;
	size_t len, pos;
	unsigned line; /* of the line the reader handed to inih last */
	struct cfg *cfg;

	/* The section the current line belongs to, as the reader saw it. */
	int sec;       /* enum cfg__sec, or -1 before the first header */
	bool sec_skip; /* the header was wrong: its keys are not checked */
	size_t zone;   /* index into cfg->zones while sec is CFG__SEC_ZONE */
	char sec_disp[160];

	/* The current key line, split by the reader. */
	char *buf;
	size_t buf_cap;
	const char *key, *val;
	size_t key_len, val_len;

	unsigned seen[CFG__SEC_COUNT][CFG__MAX_KEYS]; /* line a key was set on, 0 = not set */
	unsigned sec_line[CFG__SEC_COUNT];            /* first header line, 0 = none */
	/* Per zone, like seen: zone_seen[zone][key index in the schema]. */
	unsigned (*zone_seen)[CFG__MAX_ZONE_KEYS];
	size_t zones_cap, aliases_cap;

	struct cfg__msg *msgs; /* at most CFG_MSGS_KEPT */
	size_t n_msgs, msgs_cap;
	unsigned n_errors; /* all of them, kept or not */
	bool oom;
};

/** Records "FILE:LINE: " + the formatted text as one error. */
void cfg__err(struct cfg__ld *ld, unsigned line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/**
 * Makes room for element n of *arr (elements of elem bytes), doubling.
 * @return false, with ld->oom set, when memory runs out.
 */
bool cfg__grow(struct cfg__ld *ld, void **arr, size_t *cap, size_t n, size_t elem);

/** A blank as the file format means it: space or tab, not a newline. */
static inline bool cfg__is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- reader.c -------------------------------------------------------- */

/**
 * The ini_reader for ini_parse_stream(), stream being the load state: it
 * takes the next line of ld->text, lexes it (opening sections and
 * splitting key lines into ld), and gives inih a stand-in line.
 * @return str, or NULL at the end of the text or when memory ran out.
 */
char *cfg__read_line(char *str, int num, void *stream);

/* ---- set.c ----------------------------------------------------------- */

/**
 * The ini_handler for ini_parse_stream(), user being the load state:
 * checks the key line the reader split off against the schema and stores
 * its value. Always returns 1 (errors are collected in ld).
 */
int cfg__on_key(void *user, const char *section, const char *name, const char *value);

/* ---- tsigkey.c ------------------------------------------------------- */

/** A key file larger than this is no key file (tsig-keygen writes about
 *  100 bytes); the bound keeps a wrong path from being read whole. */
#define CFG__TSIG_FILE_MAX (64u << 10)

/** Room for cfg__tsig_key_read()'s message. */
#define CFG__TSIG_WHY_MAX 640

/**
 * Reads the key file at path (a regular file of at most
 * CFG__TSIG_FILE_MAX bytes) with cfg_tsig_key_parse() into out; out's
 * path and line are left alone. Every buffer that held the file is wiped.
 * @return 0, or a negative errno with why set to "PATH: what is wrong;
 *         allowed: ..." or "PATH line N: what is wrong; allowed: ...",
 *         which never holds the secret; out then holds no key.
 */
int cfg__tsig_key_read(const char *path, struct cfg_tsig_key *out, char *why, size_t whylen);

/* ---- validate.c ------------------------------------------------------ */

/** Resolves what depends on the whole file and runs the cross-key checks. */
void cfg__validate(struct cfg__ld *ld);
