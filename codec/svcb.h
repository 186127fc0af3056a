/* codec/svcb.h - SVCB and HTTPS RDATA (RFC 9460).
 *
 * A strict reader of the RDATA apexd re-owns at a flattened name: it is
 * checked before it is cached or served (RFC 9460 2.4.3: a client that
 * finds one malformed RR rejects the whole RRset, so passing one on would
 * cost the owner every record), and printed in presentation format for
 * apexctl explain.
 *
 * RDATA (RFC 9460 2.2): SvcPriority (2 octets, 0 = AliasMode), TargetName
 * (an uncompressed domain name, RFC 9460 2.2 and RFC 3597 4), then
 * SvcParams: SvcParamKey (2), SvcParamValue length (2), value; keys in
 * strictly ascending order.
 *
 * Owns nothing; pure functions on caller buffers.
 * Threads: any.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RR types (IANA); codec/wire.h names only the types the codec reads. */
#define CODEC_SVCB_TYPE_SVCB 64
#define CODEC_SVCB_TYPE_HTTPS 65

/* SvcParamKeys this reader knows the value format of (RFC 9460 14.3.2). */
enum codec_svcb_key {
	CODEC_SVCB_KEY_MANDATORY = 0,
	CODEC_SVCB_KEY_ALPN = 1,
	CODEC_SVCB_KEY_NO_DEFAULT_ALPN = 2,
	CODEC_SVCB_KEY_PORT = 3,
	CODEC_SVCB_KEY_IPV4HINT = 4,
	CODEC_SVCB_KEY_ECH = 5,
	CODEC_SVCB_KEY_IPV6HINT = 6,
	CODEC_SVCB_KEY_INVALID = 65535, /**< reserved, "Invalid key" */
};

/** One RDATA, parsed; offsets into the RDATA that was parsed. */
struct codec_svcb {
	uint16_t priority;   /**< SvcPriority: 0 AliasMode, else ServiceMode */
	uint16_t target_off; /**< TargetName at rd[target_off], uncompressed */
	uint16_t target_len; /**< its wire length, 1 ("." ) .. 255 */
	uint16_t params_off; /**< the first SvcParam (== the RDATA length if none) */
	uint16_t n_params;   /**< how many SvcParams */
	const char *why;     /**< on -EBADMSG: what is wrong, static text */
};

/** One SvcParam, pointing into the RDATA. */
struct codec_svcb_param {
	uint16_t key;
	uint16_t len;
	const uint8_t *val;
};

/**
 * Parses and checks one RDATA: the TargetName is one uncompressed name
 * within the RDATA; every SvcParam lies within it; keys strictly ascend
 * (RFC 9460 2.2); key 65535 is absent; the known keys' values are well
 * formed: mandatory a non-empty ascending list of keys without
 * "mandatory" itself, each present in the RDATA (RFC 9460 8); alpn one
 * or more non-empty alpn-ids filling the value (7.1); no-default-alpn
 * empty; port 2 octets; ipv4hint/ipv6hint one or more 4/16-octet
 * addresses (7.3); ech an ECHConfigList (a 2-octet length that fills the
 * value, then ECHConfigs, each version (2), length (2), contents). Values
 * of other keys are opaque. AliasMode RDATA may carry SvcParams (a
 * client ignores them, RFC 9460 2.4.2); they are checked the same way.
 * @return 0 (out filled), -EBADMSG with out->why set.
 */
int codec_svcb_parse(const uint8_t *rd, size_t len, struct codec_svcb *out);

/**
 * The SvcParam at rd[*pos] of an RDATA codec_svcb_parse() accepted
 * (start with *pos = sv->params_off); *pos moves past it.
 * @return 1 (p filled), 0 at the end, -EBADMSG if it runs out of rd.
 */
int codec_svcb_param_next(const uint8_t *rd, size_t len, size_t *pos, struct codec_svcb_param *p);

/**
 * Checks an RRset as flat_result carries it: a stream of (2-octet
 * big-endian length, RDATA), every RDATA accepted by codec_svcb_parse().
 * @param count  set to the number of RDATA (may be NULL)
 * @param why    set to what is wrong on -EBADMSG (may be NULL)
 * @return 0, or -EBADMSG (a length running out of the stream, or a
 *         malformed RDATA).
 */
int codec_svcb_check_set(const uint8_t *stream, size_t len, unsigned *count, const char **why);

/**
 * The presentation name of a key ("alpn", "ech", …; "key<N>" written into
 * buf for others, RFC 9460 2.1).
 */
const char *codec_svcb_key_name(uint16_t key, char *buf, size_t size);

/**
 * Writes an RDATA that codec_svcb_parse() accepts in presentation format
 * (RFC 9460 2.1, appendix A): "1 . alpn=h3,h2 port=443
 * ipv4hint=192.0.2.1 ech=BASE64 ipv6hint=2001:db8::1"; unknown keys as
 * key<N>="<char-string>"; octets outside printable ASCII as \DDD.
 * Always NUL-terminates when outlen > 0; a cut never splits an item.
 * @return the text length, -EMSGSIZE (output cut), -EBADMSG (malformed).
 */
int codec_svcb_to_text(const uint8_t *rd, size_t len, char *out, size_t outlen);
