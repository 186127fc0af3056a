/* proxy/flat/state.h - flattening's part of a txn. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct px_flat;

/* How an answer came to be, for the query log's flat= field. */
enum px_flat_how {
	PX_FLAT_NO = 0, /* BIND's answer relayed, or apexd's own error */
	PX_FLAT_CNAME,  /* a CNAME chain chased and flattened */
	PX_FLAT_ANAME,  /* an ANAME record's target chased */
	PX_FLAT_ALIAS,  /* an [alias] entry's target chased */
	PX_FLAT_LOCAL,  /* BIND's own in-zone chain rewritten */
	PX_FLAT_HOW_MASK = 0x0f,
	PX_FLAT_STALE = 0x10,   /* flag: a stale value served (EDE 3) */
	PX_FLAT_SIBLING = 0x20, /* flag: chase failed, BIND's sibling addresses relayed */
	PX_FLAT_FAILED = 0x40,  /* flag: chase failed, SERVFAIL */
};

struct px_txn_flat {
	bool eligible; /* A/AAAA/ANY/ANAME query inside a configured zone */
	bool is_apex;
	uint16_t zone_idx;
	uint8_t how; /* enum px_flat_how, for the query log */
	/* ANAME types known absent at the owner (a fresh presence entry or
	 * a probe's verdict), and the shortest TTL those verdicts have left. */
	uint8_t n_absent;
	uint32_t absent_ttl;
	/* Flattening decided it does not apply (presence known absent for
	 * every ANAME type, BIND's answer relayed by the rules): only then
	 * may the answer cache keep BIND's answer, for absent_ttl at most. */
	bool cacheable;
	uint64_t start_ms;
	struct px_flat *fl; /* allocated only when flattening engages */
	/* An answer from the caches alone (flat/direct.c): its target,
	 * borrowed while the answer is written, for the query log. */
	const uint8_t *direct_target;
	uint8_t direct_target_len;
	uint8_t direct_hops;
};
