/* codec/text.h - DNS mnemonics for logs, statistics and explain output. */
#pragma once
#include <stddef.h>

/**
 * The IANA mnemonic of an RCODE (RFC 1035, 2136, 6891, 8490), e.g.
 * "NXDOMAIN"; NULL for a code without one here. Callers print unknown
 * codes in their own form ("RCODE17", "rcode17", …).
 */
const char *codec_rcode_name(unsigned rcode);

/** The mnemonic, or "RCODE<n>" written into buf for a code without one. */
const char *codec_rcode_text(unsigned rcode, char *buf, size_t size);
