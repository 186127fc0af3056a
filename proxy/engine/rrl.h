/* proxy/engine/rrl.h - response rate limiting over UDP ([limits]), like BIND's RRL.
 *
 * A spoofed UDP query makes apexd send its answer to the victim whose
 * address was forged; rate limiting per client prefix bounds what any one
 * network can be sent. Each client prefix (IPv4 /24, IPv6 /56: what one
 * site is usually given) has a token bucket of responses-per-second
 * tokens, refilled continuously; an answer takes one token. Without a
 * token the answer is dropped, except every slip-th one, which goes out
 * as an empty TC=1 reply: a real client behind the prefix retries over
 * TCP, which a spoofer cannot do, and the victim receives nothing bigger
 * than the query.
 *
 * Only UDP is limited (TCP, DoT and DoH need a handshake, so their
 * source is not forged), as in BIND.
 *
 * The table is fixed-size and per worker: no lock, no allocation after
 * px_rrl_new(), constant memory whatever the number of clients. It is
 * 4-way set associative on a keyed hash of the prefix (the key is random
 * per table, so nobody can aim many prefixes at one set). When a set is
 * full, the entry with the most tokens goes: a full bucket says nothing,
 * while an emptied one is exactly the state a flood of new prefixes
 * would like to flush.
 *
 * Threads: one table per worker, used only by its loop.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "codec/scan.h"

/* Entries per table (power of two): 65536 prefixes per worker, 24 bytes
 * each, 1.5 MiB. A prefix that is not in the table has a full bucket,
 * so a table too small for the clients only makes limiting laxer. */
#define PX_RRL_ENTRIES 65536
/* Entries per set: a new prefix evicts one of these four. */
#define PX_RRL_WAYS 4
/* Tokens are counted in thousandths, so that refilling rate tokens per
 * second is exact per millisecond (rate thousandths per ms). */
#define PX_RRL_TOKEN 1000u
/* Largest responses-per-second; config/load.c enforces the same bound
 * and rate * PX_RRL_TOKEN fits 32 bits. */
#define PX_RRL_RATE_MAX 1000000u

enum px_rrl_verdict {
	PX_RRL_PASS = 0, /**< answer as usual */
	PX_RRL_DROP,     /**< send nothing */
	PX_RRL_SLIP,     /**< send an empty TC=1 reply (px_rrl_slip_reply) */
};

struct px_rrl;

/**
 * A table for rate answers per second per prefix (1..PX_RRL_RATE_MAX) and
 * slip (0 = never slip, 1 = every limited answer slips, N = every Nth).
 * seed keys the hash; pass random bytes (px_rrl_new_random() does).
 * @return 0, -EINVAL for a rate out of range, -ENOMEM.
 */
int px_rrl_new(struct px_rrl **out, unsigned rate, unsigned slip, uint64_t seed);
/** Same, seeded from getrandom(). */
int px_rrl_new_random(struct px_rrl **out, unsigned rate, unsigned slip);
void px_rrl_free(struct px_rrl *r); /* NULL is fine */

/**
 * The prefix key of a client address: IPv4 /24 or IPv6 /56, tagged with
 * the family so the two never meet. 0 for any other family (never
 * limited).
 */
uint64_t px_rrl_key(const struct sockaddr *sa);

/**
 * Accounts one answer to peer at now_ms (a monotonic millisecond clock)
 * and says what to do with it.
 */
enum px_rrl_verdict px_rrl_check(struct px_rrl *r, const struct sockaddr *peer, uint64_t now_ms);

/**
 * The slip reply to query[0..qlen): same ID, opcode, RD and CD, QR=1,
 * TC=1, RCODE NOERROR, the question echoed (when v is given and has one),
 * an empty OPT when the query had one (RFC 6891), nothing else. v may be
 * NULL when the query did not scan: then a bare header.
 * @return its length, or a negative errno from codec_build_error().
 */
ssize_t px_rrl_slip_reply(const uint8_t *query, size_t qlen, const struct codec_view *v,
                          uint8_t *out, size_t outlen);
