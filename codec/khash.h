/* codec/khash.h - a keyed hash for tables whose keys come from outside.
 *
 * Names in a hash table are chosen by whoever sends the queries (or owns
 * the CNAME chains); with an unkeyed hash they can pick names that share
 * one bucket and make every lookup walk a long chain. Keyed with a random
 * key per table, the buckets cannot be aimed at without the key.
 *
 * SipHash-1-3 (Aumasson and Bernstein; one compression round per 8-byte
 * word, three to finish, as Rust's HashMap and Python 3.11+ use it): a PRF
 * built for exactly this, and at the key sizes here (a DNS name and a few
 * octets, 10 to 260 bytes) no slower than byte-at-a-time FNV-1a, whose
 * multiply chain costs a few cycles per byte.
 * Threads: any (pure functions; codec_hkey_random reads getrandom()).
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

/** A 128-bit hash key. */
struct codec_hkey {
	uint64_t k0, k1;
};

/** Fills k from getrandom(); without the entropy pool (early boot) from
 *  the clock, the PID and addresses, which a remote sender cannot see. */
void codec_hkey_random(struct codec_hkey *k);

/** SipHash-1-3 of data under k. */
uint64_t codec_khash(const struct codec_hkey *k, const void *data, size_t len);
