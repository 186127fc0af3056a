/* codec/text.h - DNS mnemonics for logs, statistics and explain output. */
#pragma once

/**
 * The IANA mnemonic of an RCODE (RFC 1035, 2136, 6891, 8490), e.g.
 * "NXDOMAIN"; NULL for a code without one here. Callers print unknown
 * codes in their own form ("RCODE17", "rcode17", …).
 */
const char *codec_rcode_name(unsigned rcode);
