/* config/config.h - the apexd INI file as one validated, immutable struct.
 *
 * cfg_load() reads the file described in docs/configuration.md (and
 * ../shared/CONFIG.md), checks every key and every cross-key rule, and
 * returns a struct cfg that nobody modifies afterwards: reload builds a new
 * one and swaps pointers. Every error names FILE:LINE, section, key, what
 * is wrong and what is allowed.
 * Owns: everything reachable from struct cfg (freed by cfg_free).
 * Threads: cfg_load/cfg_free from one thread at a time; a loaded cfg may
 * be read from any number of threads.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** A socket address from the file ("127.0.0.1:53", "[::1]:53"). */
struct cfg_addr {
	struct sockaddr_storage sa; /**< sockaddr_in or sockaddr_in6, port set */
	socklen_t salen;
	char text[64]; /**< as normalised for logs: "127.0.0.1:53", "[::1]:53" */
};

struct cfg_addr_list {
	struct cfg_addr *v;
	size_t n;
};

/** An address prefix from the file: "10.0.0.0/8", "2001:db8::/32", or one
 *  address ("192.0.2.1" is 192.0.2.1/32, "2001:db8::1" a /128). */
struct cfg_prefix {
	int family;       /**< AF_INET or AF_INET6 */
	uint8_t addr[16]; /**< network order (4 bytes for AF_INET); no bit set past len */
	unsigned len;     /**< 0..32 or 0..128 */
	char text[52];    /**< as normalised for logs: "10.0.0.0/8", "2001:db8::/32" */
};

/** Most entries of a prefix list: each datagram from a source is compared
 *  with them in turn, and a handful of load balancers, or the prefix they
 *  live in, is what the list is for. */
#define CFG_PREFIXES_MAX 64

struct cfg_prefix_list {
	struct cfg_prefix *v;
	size_t n; /**< 0..CFG_PREFIXES_MAX; 0 = empty */
};

/**
 * Is sa (AF_INET or AF_INET6, port ignored) inside a prefix of l? An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is compared as the IPv4
 * address it carries. False for an empty list and other families.
 * Threads: any.
 */
bool cfg_prefix_list_match(const struct cfg_prefix_list *l, const struct sockaddr *sa);

enum cfg_log_level {
	CFG_LOG_ERROR = 0,
	CFG_LOG_WARNING = 1,
	CFG_LOG_INFO = 2,
	CFG_LOG_DEBUG = 3,
};

enum cfg_cname_mode {
	CFG_CNAME_APEX = 0, /**< flatten a CNAME only at the zone apex */
	CFG_CNAME_ALL = 1,  /**< flatten every CNAME answer in the zone */
	CFG_CNAME_NONE = 2, /**< never flatten CNAMEs (ANAME and [alias] still apply) */
};

/** A domain name as the file spelled it, plus its lowercase wire form. */
struct cfg_name {
	char text[256];    /**< presentation form, lowercase, with the trailing dot */
	uint8_t wire[255]; /**< uncompressed wire form, lowercase */
	uint8_t wire_len;  /**< 1..255 */
};

/** [flatten] siblings / [zone] siblings (issue 13). */
enum cfg_siblings {
	CFG_SIBLINGS_OFF = 0,    /**< no sibling records are written */
	CFG_SIBLINGS_UPDATE = 1, /**< A/AAAA at ANAME and [alias] owners kept in BIND by UPDATE */
};

/** [health] check / [zone] check (issue 17): how the addresses flattened
 *  answers carry are checked. */
enum cfg_check_kind {
	CFG_CHECK_NONE = 0, /**< no checks: every address is served */
	CFG_CHECK_TCP = 1,  /**< a TCP connect to PORT */
	CFG_CHECK_TLS =
	        2, /**< a TLS handshake on PORT, SNI = owner, the certificate verified for it */
	CFG_CHECK_HTTP = 3, /**< plain HTTP/1.1 GET PATH on PORT, Host: owner; 2xx/3xx is up */
};

/** Longest [health] check http: path. */
#define CFG_CHECK_PATH_MAX 128

struct cfg_check {
	enum cfg_check_kind kind;
	uint16_t port;                     /**< 1..65535 unless kind is NONE */
	char path[CFG_CHECK_PATH_MAX + 1]; /**< HTTP: "/" then printable ASCII; else "" */
};

/** Two checks are the same probe: kind, port and path. */
bool cfg_check_equal(const struct cfg_check *a, const struct cfg_check *b);

/** Prints c as the file spells it ("none", "tls:443", "http:80/health"). */
void cfg_check_text(const struct cfg_check *c, char *buf, size_t size);

/** Longest TSIG secret kept (decoded): 2048 bits; tsig-keygen writes 32
 *  bytes for hmac-sha256 and 64 for hmac-sha512. */
#define CFG_TSIG_SECRET_MAX 256

/** A TSIG key read from a file in BIND's syntax, as tsig-keygen and
 *  ddns-confgen write it: key "NAME" { algorithm ALG; secret "BASE64"; };
 *  The secret never goes into a message. */
struct cfg_tsig_key {
	bool present;         /**< the key is set (update-key not empty) */
	char path[4096];      /**< the file, as configured */
	unsigned line;        /**< where update-key was set */
	struct cfg_name name; /**< the key's name */
	char algorithm[32];   /**< lowercase, no trailing dot: "hmac-sha256";
	                           "hmac-md5" also for hmac-md5.sig-alg.reg.int */
	uint8_t secret[CFG_TSIG_SECRET_MAX];
	uint16_t secret_len; /**< 1..CFG_TSIG_SECRET_MAX */
};

/**
 * Reads one key statement from text[0..len) (a key file's contents:
 * comments in #, // and C style, as named.conf allows). Exactly one key
 * must be there, with an algorithm apexd knows (hmac-md5, hmac-sha1,
 * hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512) and a valid
 * base64 secret. Sets every field but path and line.
 * @return 0, or -EINVAL with why (NUL-terminated, no secret in it) saying
 *         what is wrong and where ("line 3: expected ';' after the secret").
 */
int cfg_tsig_key_parse(const char *text, size_t len, struct cfg_tsig_key *out, char *why,
                       size_t whylen);

/** A [zone NAME] section. */
struct cfg_zone {
	struct cfg_name name;
	enum cfg_cname_mode cname;  /**< the zone's key, or [flatten] cname if absent */
	enum cfg_siblings siblings; /**< the zone's key, or [flatten] siblings if absent */
	unsigned siblings_line;     /**< where the effective siblings was set (0: default) */
	struct cfg_check check;     /**< the zone's key, or [health] check if absent */
	unsigned line;              /**< where the section header is, for later messages */
};

/** [flatten] pool (issue 17): how several targets at one owner answer. */
enum cfg_pool_mode {
	CFG_POOL_UNION = 0,    /**< every target's addresses, deduplicated */
	CFG_POOL_FAILOVER = 1, /**< the first target in order that has addresses */
};

/** Targets in one [alias] pool (flatten/pool.h FLAT_POOL_MAX). */
#define CFG_POOL_MAX 8
/** Octets of a pool's targets in wire form together (FLAT_POOL_NAMES_MAX). */
#define CFG_POOL_WIRE_MAX 1024

/** An [alias] entry: owner = target, or owner = t1, t2, ... (a pool). */
struct cfg_alias {
	struct cfg_name owner;
	struct cfg_name targets[CFG_POOL_MAX]; /**< in listed order, no two alike */
	unsigned n_targets;                    /**< 1..CFG_POOL_MAX */
	/** The targets' wire forms back to back, in listed order. */
	uint8_t pool_wire[CFG_POOL_WIRE_MAX];
	uint16_t pool_wire_len;
	unsigned line;
};

/** Longest control socket path: sockaddr_un's sun_path is 108 bytes on
 *  Linux, NUL included. */
#define CFG_CONTROL_PATH_MAX 107

/** Room for [server] user: POSIX login names are far shorter (Linux
 * useradd allows 32 bytes), so a longer value is a mistake. */
#define CFG_USER_MAX 64

/** Upper bound of aname-types entries. */
#define CFG_MAX_ANAME_TYPES 16

struct cfg {
	char *path; /**< the file this came from */

	struct {
		unsigned threads;             /**< resolved: 0 in the file becomes the core count */
		enum cfg_log_level log_level; /**< default info */
		char user[CFG_USER_MAX];      /**< drop to this user after binding; "" = stay */
		unsigned user_line;           /**< where user was set, for later messages */
		/** Query log: absolute path of the file apexd appends one line
		 *  per query to (reopened on SIGUSR1); "" = off, the default. At
		 *  load time the file was writable, or could be created. */
		char query_log[4096];
		/** dnstap destination, as written: "unix:" or "file:" and an
		 *  absolute path (a socket path of at most 107 bytes; a file
		 *  that was writable, or could be created, at load time);
		 *  "" = off, the default. */
		char dnstap[4096 + 8];
		/** dnstap-chases: apexd's own queries to the resolvers are
		 *  logged too (FORWARDER_QUERY/RESPONSE); needs dnstap. */
		bool dnstap_chases;
		/** Control socket path for apexctl; "" = no control socket.
		 *  Absolute, at most CFG_CONTROL_PATH_MAX bytes (sun_path). */
		char control[CFG_CONTROL_PATH_MAX + 1];
	} server;

	struct {
		struct cfg_addr_list udp;
		struct cfg_addr_list tcp;
		uint64_t tcp_idle_timeout_ms; /**< default 10s, range 1s..1h */
		unsigned max_connections;     /**< default 10000, range 1..1000000; TCP+DoT+DoH */
		struct cfg_addr_list dot;     /**< DNS over TLS (RFC 7858); needs [tls] */
		struct cfg_addr_list doh;     /**< DNS over HTTPS (RFC 8484), HTTP/2; needs [tls] */
		char doh_path[129];           /**< default "/dns-query"; '/' + printable ASCII,
		                                   no blank, '?' or '#'; 1..128 chars */
		struct cfg_addr metrics;      /**< Prometheus GET /metrics; salen 0 = off */
		/** Sources that must put a PROXY protocol v2 header before what
		 *  they send (load balancers); from any other source a header is
		 *  never believed. Empty (the default) = off. */
		struct cfg_prefix_list proxy_from;
	} listen;

	struct {
		struct cfg_addr address; /**< required */
		uint64_t timeout_ms;     /**< default 1s, range 50ms..30s */
		/** TSIG key for UPDATE and zone transfers (issue 13); read at
		 *  load (startup and reload). Required by siblings = update. */
		struct cfg_tsig_key update_key;
	} backend;

	/*
	 * [tls]: optional, but certificate and private_key are set whenever
	 * listen.dot or listen.doh is not empty. A key that is set has been
	 * checked (the files were regular and readable at load time); the
	 * proxy loads them with OpenSSL and reports OpenSSL's errors itself.
	 */
	struct {
		bool present;           /**< the file has a [tls] section (maybe staged, unused) */
		char certificate[4096]; /**< PEM chain, leaf first (fullchain.pem); "" if unset */
		char private_key[4096]; /**< PEM key of the leaf; "" if unset */
		unsigned min_version;   /**< 12 or 13 (TLS 1.2 / 1.3, as tls/ctx.h); default 12 */
		char ocsp_response[4096]; /**< DER OCSP response to staple; "" if unset */
	} tls;

	struct {
		struct cfg_addr_list addresses; /**< may be empty until flattening needs it */
		uint64_t timeout_ms;            /**< default 1500ms, range 50ms..30s */
		/** ecs: chases carry the client's subnet (RFC 7871); default no */
		bool ecs;
		/** ecs-prefix: source prefix lengths sent, {IPv4 0..32, IPv6
		 *  0..128}; default {24, 56} */
		unsigned ecs_prefix[2];
	} resolver;

	struct {
		enum cfg_cname_mode cname;                 /**< default apex */
		uint16_t aname_types[CFG_MAX_ANAME_TYPES]; /**< default {65401} */
		unsigned n_aname_types;
		unsigned max_chain;         /**< default 8, range 1..32 */
		uint64_t min_ttl_s;         /**< default 5s */
		uint64_t max_ttl_s;         /**< default 1d; min_ttl <= max_ttl */
		uint64_t deadline_ms;       /**< default 1500ms, range 100ms..30s */
		uint64_t serve_stale_s;     /**< default 1d, 0 disables */
		uint64_t failure_ttl_s;     /**< default 5s */
		uint64_t cache_size;        /**< bytes, default 64M, range 1M..64G */
		bool show_aname;            /**< default no */
		enum cfg_siblings siblings; /**< default off; each [zone] may override */
		enum cfg_pool_mode pool;    /**< default union */
	} flatten;

	/* [health]: checks of the addresses flattened answers carry (issue 17). */
	struct {
		struct cfg_check check; /**< default none; each [zone] may override */
		uint64_t interval_ms;   /**< default 10s, range 100ms..1h */
		uint64_t timeout_ms;    /**< default 2s, range 50ms..1m; at most interval */
		unsigned fall;          /**< default 3, range 1..100: failures before down */
		unsigned rise;          /**< default 2, range 1..100: successes before up */
	} health;

	/* [cache]: BIND's answers kept by TTL, so repeated questions never
	 * reach BIND. */
	struct {
		bool answers;  /**< default no */
		uint64_t size; /**< bytes for all workers together, default 32M, 1M..64G */
	} cache;

	/* [limits]: response rate limiting over UDP (like BIND's RRL). */
	struct {
		unsigned responses_per_second; /**< per client /24 or /56; 0 = off (default) */
		unsigned slip; /**< every slip-th limited answer goes out TC=1; 0 = never;
		                    default 2, range 0..10 */
	} limits;

	struct cfg_zone *zones; /**< in file order; names unique */
	size_t n_zones;
	struct cfg_alias *aliases; /**< in file order; owners unique, each inside a zone */
	size_t n_aliases;
};

/** Room for the error report: several lines of "FILE:LINE: [section] key: ...". */
#define CFG_ERR_MAX 4096

struct cfg_error {
	char msg[CFG_ERR_MAX]; /**< one error per line, newline-terminated; "" if none */
	unsigned count;        /**< how many errors were found (msg may hold fewer) */
};

/**
 * Loads and validates the INI file at path.
 * @return 0 and *out set (free with cfg_free), or a negative errno:
 *         -ENOENT/-EACCES/... when the file cannot be read, -EINVAL when it
 *         has errors; err->msg then says why, a line per error.
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_error *err);

/**
 * Same as cfg_load() on text held in memory; name stands for the file
 * name in error messages. Used by tests and the fuzz target.
 */
int cfg_load_mem(const char *name, const char *text, size_t len, struct cfg **out,
                 struct cfg_error *err);

/** Frees a cfg from cfg_load(); NULL is fine. */
void cfg_free(struct cfg *cfg);

/** An [alias] entry's targets as text, "a.cdn.net., b.cdn.net." (cut to size). */
void cfg_alias_targets_text(const struct cfg_alias *a, char *buf, size_t size);

/** "union", "failover". */
const char *cfg_pool_mode_name(enum cfg_pool_mode m);

/** "error", "warning", "info", "debug". */
const char *cfg_log_level_name(enum cfg_log_level l);

/** One key of the file, as the schema in config/keys.c has it. */
struct cfg_key_info {
	const char *section; /**< as the docs head it: "server", ..., "zone NAME" */
	const char *key;     /**< "threads", "log-level", ... */
	bool later;          /**< in CONFIG.md, not built yet: a file that sets it fails */
};

/** Called by cfg_keys_foreach() for each key; a nonzero return stops the walk. */
typedef int cfg_key_fn(const struct cfg_key_info *key, void *arg);

/**
 * Calls fn for every key the file may hold, section by section in the
 * order of docs/configuration.md and in the schema's order within one.
 * [alias] lines (owner = target) have no fixed keys and are not reported.
 * The strings are static. This is how tools and tests see the one list
 * of keys that the documentation is checked against (tests/docs/).
 * @return 0, or the first nonzero value fn returned.
 */
int cfg_keys_foreach(cfg_key_fn *fn, void *arg);
