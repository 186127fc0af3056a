/* proxy/ops/ctlreq.h - the control socket protocol, shared by apexd and apexctl.
 *
 * A client connects to [server] control, writes one request line and
 * reads one reply; the daemon closes the connection after the reply.
 *
 *   request:  COMMAND [ARG...] '\n'      at most PX_CTL_LINE_MAX bytes
 *             stats | reload | flush [NAME] | explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET]
 *   reply:    body lines, each ending in '\n'; a body line that starts
 *             with '.' gets one more '.' in front (as SMTP does), so the
 *             last line is unambiguous:
 *             ".ok\n"           the command succeeded
 *             ".error TEXT\n"   it failed, TEXT says why
 *
 * A reply that ends without one of those lines was cut short (the daemon
 * died or timed out): apexctl reports that as an error.
 * Threads: pure functions, any thread. No allocation.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/ecs.h"
#include "codec/wire.h"

/* A request is a command and a domain name in presentation form (at
 * most 1004 characters with every octet escaped as \DDD) plus a type:
 * 1100 bytes leave room for that and reject anything longer early. */
#define PX_CTL_LINE_MAX 1100
/* Longest presentation form of a name: 255 octets as \DDD each. */
#define PX_CTL_NAME_TEXT_MAX (CODEC_MAX_NAME * 4 + 1)

#define PX_CTL_END_OK ".ok"
#define PX_CTL_END_ERROR ".error"

enum px_ctl_cmd {
	PX_CTL_STATS = 0,
	PX_CTL_RELOAD,
	PX_CTL_FLUSH,
	PX_CTL_EXPLAIN,
	PX_CTL_WORKERS,
};

/** A parsed request. */
struct px_ctl_req {
	enum px_ctl_cmd cmd;
	bool has_name;                /**< flush NAME, explain NAME */
	uint8_t name[CODEC_MAX_NAME]; /**< uncompressed wire form, lowercase */
	size_t name_len;
	uint16_t qtype;          /**< explain: A (default), AAAA, HTTPS or SVCB */
	bool has_subnet;         /**< explain NAME [TYPE] SUBNET */
	struct codec_ecs subnet; /**< the client subnet asked about, address masked */
	bool has_workers;        /**< workers N|auto */
	unsigned workers;        /**< workers N: 1..PX_CTL_WORKERS_MAX; 0 = auto */
};

/** The largest N of "workers N" (the cap on [server] threads). */
#define PX_CTL_WORKERS_MAX 256

/**
 * Parses one request line (without its '\n'; a trailing '\r' is
 * ignored). Words are separated by blanks; command and type are
 * case-insensitive.
 * @return 0, or -EINVAL with a reason in err (NUL-terminated, cut to
 *         errlen) that names what was wrong and what is allowed.
 */
int px_ctl_parse(const char *line, size_t len, struct px_ctl_req *req, char *err, size_t errlen);

/**
 * Parses a domain name in presentation form ("www.example.com", trailing
 * dot optional, "\." and "\DDD" escapes; "." is the root) into lowercase
 * wire form.
 * @return the wire length (1..255), or -EINVAL with a reason in *why.
 */
int px_ctl_name_parse(const char *s, size_t len, uint8_t *out, const char **why);
