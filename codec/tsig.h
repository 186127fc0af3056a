/* codec/tsig.h - TSIG (RFC 8945): signing apexd's own requests to the
 * backend (zone transfers, UPDATE) and verifying the answers.
 *
 * A request is signed by appending a TSIG RR to it; the MAC it carries
 * is kept by the caller, because the answer's MAC covers it. An answer
 * stream (one message for UPDATE or SOA, many for AXFR/IXFR) is verified
 * message by message with one struct codec_tsig_verify: RFC 8945 5.3.1
 * lets a server leave up to 99 messages unsigned between signed ones,
 * and the next signed message's MAC then covers all of them, so the
 * state keeps a running MAC context across messages.
 *
 * Owns: a verify state owns a MAC context (codec_tsig_verify_end()
 * frees it). Keys are plain data.
 * Threads: any; one verify state belongs to one thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec/wire.h"

/** RFC 8945 6: the algorithms apexd signs with. */
enum codec_tsig_alg {
	CODEC_TSIG_HMAC_MD5 = 0, /**< hmac-md5.sig-alg.reg.int. (legacy, RFC 8945 6) */
	CODEC_TSIG_HMAC_SHA1,    /**< hmac-sha1. */
	CODEC_TSIG_HMAC_SHA224,  /**< hmac-sha224. */
	CODEC_TSIG_HMAC_SHA256,  /**< hmac-sha256. (tsig-keygen's default) */
	CODEC_TSIG_HMAC_SHA384,  /**< hmac-sha384. */
	CODEC_TSIG_HMAC_SHA512,  /**< hmac-sha512. */
	CODEC_TSIG_ALG_COUNT,
};

/** Longest secret kept: 4 x 512 bits; tsig-keygen writes 32 (sha256)
 *  or 64 (sha512) bytes. */
#define CODEC_TSIG_SECRET_MAX 256
/** Longest MAC any algorithm above produces (SHA-512). */
#define CODEC_TSIG_MAC_MAX 64
/** RFC 8945 10: the fudge BIND and dnspython use. */
#define CODEC_TSIG_FUDGE 300
/** Room a TSIG RR needs at the end of a request: owner (the key name),
 *  fixed fields, algorithm name, MAC, other data (6 bytes, BADTIME). */
#define CODEC_TSIG_RR_MAX (CODEC_MAX_NAME + 10 + CODEC_MAX_NAME + 16 + CODEC_TSIG_MAC_MAX + 6)

/** A shared secret. Plain data; secret bytes never go to logs. */
struct codec_tsig_key {
	uint8_t name[CODEC_MAX_NAME]; /**< key name, lowercase wire form */
	uint8_t name_len;
	enum codec_tsig_alg alg;
	uint8_t secret[CODEC_TSIG_SECRET_MAX];
	uint16_t secret_len; /**< 1..CODEC_TSIG_SECRET_MAX */
};

/**
 * The algorithm named by text: "hmac-sha256", "hmac-sha256." or, for MD5,
 * "hmac-md5" / "hmac-md5.sig-alg.reg.int"; ASCII case-insensitive.
 * @return 0, or -EINVAL for an unknown name.
 */
int codec_tsig_alg_by_name(const char *text, enum codec_tsig_alg *out);

/** The algorithm's name as BIND's key files write it ("hmac-sha256"). */
const char *codec_tsig_alg_text(enum codec_tsig_alg alg);

/**
 * Signs a request: appends a TSIG RR (RFC 8945 4.2; time signed now_s,
 * fudge CODEC_TSIG_FUDGE, original ID = the message's ID, error 0, no
 * other data) to msg[0..len), which has room for cap bytes, and adds one
 * to ARCOUNT. The message must not hold a TSIG RR already.
 * @param mac      receives the MAC (CODEC_TSIG_MAC_MAX bytes of room),
 *                 which the answer's verification needs
 * @param mac_len  receives its length
 * @return the new length, -EMSGSIZE when cap is too small (msg unchanged),
 *         -EINVAL for a malformed message or key, -ENOMEM.
 */
ssize_t codec_tsig_sign(uint8_t *msg, size_t len, size_t cap, const struct codec_tsig_key *key,
                        uint64_t now_s, uint8_t *mac, size_t *mac_len);

/** What verifying one message of an answer stream found. */
enum codec_tsig_status {
	CODEC_TSIG_OK = 0,         /**< signed with the key, MAC and time good */
	CODEC_TSIG_UNSIGNED = 1,   /**< no TSIG RR, allowed here (an intermediate
	                                message of a stream, RFC 8945 5.3.1) */
	CODEC_TSIG_E_MISSING = -1, /**< no TSIG where one is required: the
	                                first message, or after 99 unsigned */
	CODEC_TSIG_E_FORMAT = -2,  /**< TSIG RR malformed or not the last RR */
	CODEC_TSIG_E_KEY = -3,     /**< another key name or algorithm */
	CODEC_TSIG_E_BADSIG = -4,  /**< the MAC does not verify */
	CODEC_TSIG_E_BADTIME = -5, /**< time signed outside the fudge */
	CODEC_TSIG_E_SERVER = -6,  /**< the server reports an error in its TSIG
	                                (BADKEY, BADSIG, BADTIME...): see
	                                server_error; its MAC is empty */
	CODEC_TSIG_E_STATE = -7,   /**< used after an error or after end */
};

/** State of one answer stream's verification. Opaque beyond these fields. */
struct codec_tsig_verify {
	/* Read-only for the caller. */
	uint16_t server_error; /**< E_SERVER: the TSIG error field (16 BADSIG,
	                            17 BADKEY, 18 BADTIME, 22 BADTRUNC) */
	unsigned messages;     /**< messages seen */
	/* Private. */
	const struct codec_tsig_key *key;
	uint8_t prior_mac[CODEC_TSIG_MAC_MAX];
	uint16_t prior_mac_len;
	unsigned unsigned_run; /* unsigned messages since the last signed one */
	bool failed;
	void *mac_ctx; /* running MAC over unsigned messages, NULL when none */
};

/**
 * Starts verifying the answers to a request signed with key, whose MAC
 * was req_mac[0..req_mac_len). key is borrowed and must outlive v.
 */
void codec_tsig_verify_begin(struct codec_tsig_verify *v, const struct codec_tsig_key *key,
                             const uint8_t *req_mac, size_t req_mac_len);

/**
 * Verifies the next message of the stream at time now_s. The first
 * message must be signed; later ones may be unsigned (at most 99 in a
 * row; RFC 8945 5.3.1). A message with a TSIG RR has it checked as the
 * last additional RR with the key's name and algorithm.
 * @param body_len receives the length of the message without its TSIG
 *                 RR (ARCOUNT is not changed in msg; the caller reads
 *                 sections by their counts, and the TSIG is the last RR)
 * @return an enum codec_tsig_status; after an error, further calls
 *         return CODEC_TSIG_E_STATE.
 */
int codec_tsig_verify_next(struct codec_tsig_verify *v, const uint8_t *msg, size_t len,
                           uint64_t now_s, size_t *body_len);

/**
 * Ends a stream. True when its last message was signed and verified (an
 * AXFR whose tail was unsigned is not to be trusted). Frees the state's
 * MAC context; v may be begun again.
 */
bool codec_tsig_verify_end(struct codec_tsig_verify *v);

/** Stable text of a status ("bad signature"), or of a server TSIG error
 *  code ("BADKEY") with codec_tsig_error_name(). */
const char *codec_tsig_status_text(int status);
const char *codec_tsig_error_name(uint16_t error);
