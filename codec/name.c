/* codec/name.c - domain names in wire form: bounded decompression. */
#include "codec/name.h"

#include <errno.h>
#include <string.h>

#include "codec/wire.h"

/* Label type bits in the first octet of a label (RFC 1035 4.1.4, RFC 6891
 * 5): 00 is a normal label, 11 a compression pointer; 01 (extended labels)
 * and 10 are reserved and never valid on the wire today. */
#define NAME_LABEL_MASK 0xc0
#define NAME_LABEL_NORMAL 0x00
#define NAME_LABEL_POINTER 0xc0

/*
 * The one walker every public function uses, so all of them accept and
 * reject exactly the same names.
 *
 * A pointer must land strictly before the start of the label run that
 * contains it (the name's start, or the previous pointer's target), and not
 * inside the header. The run starts therefore decrease strictly, so a loop
 * is impossible by construction; the hop bound only caps the work a long
 * pointer-to-pointer chain can cost.
 *
 * When out is not NULL the decompressed name is copied there (at least
 * CODEC_MAX_NAME bytes). end may be NULL.
 */
static int name_walk(const uint8_t *msg, size_t len, size_t off, size_t *end, uint8_t *out)
{
	size_t pos = off;
	size_t run = off;
	size_t total = 0;
	unsigned hops = 0;
	bool jumped = false;

	if (len > CODEC_MAX_MSG)
		return -EBADMSG;
	for (;;) {
		if (pos >= len)
			return -EBADMSG;
		uint8_t c = msg[pos];

		switch (c & NAME_LABEL_MASK) {
		case NAME_LABEL_NORMAL:
			if (c == 0) {
				if (out != NULL)
					out[total] = 0;
				total++;
				if (!jumped && end != NULL)
					*end = pos + 1;
				return (int)total;
			}
			/* c <= CODEC_MAX_LABEL holds here by the label type. */
			if (len - pos - 1 < c)
				return -EBADMSG;
			/* Leave room for the root label that must follow. */
			if (total + 1 + c + 1 > CODEC_MAX_NAME)
				return -EBADMSG;
			if (out != NULL)
				memcpy(out + total, msg + pos, (size_t)c + 1);
			total += (size_t)c + 1;
			pos += (size_t)c + 1;
			break;
		case NAME_LABEL_POINTER: {
			if (len - pos < 2)
				return -EBADMSG;
			size_t target = (size_t)(c & ~NAME_LABEL_MASK) << 8 | msg[pos + 1];

			if (target < CODEC_HDR_LEN || target >= run)
				return -EBADMSG;
			if (++hops > CODEC_MAX_PTR_HOPS)
				return -EBADMSG;
			if (!jumped && end != NULL)
				*end = pos + 2;
			jumped = true;
			pos = target;
			run = target;
			break;
		}
		default:
			return -EBADMSG;
		}
	}
}

int codec_name_skip(const uint8_t *msg, size_t len, size_t off, size_t *end)
{
	size_t dummy;

	return name_walk(msg, len, off, end != NULL ? end : &dummy, NULL);
}

int codec_name_unpack(const uint8_t *msg, size_t len, size_t off, uint8_t *out)
{
	return name_walk(msg, len, off, NULL, out);
}

bool codec_name_valid(const uint8_t *name, size_t len)
{
	size_t pos = 0;

	if (name == NULL || len == 0 || len > CODEC_MAX_NAME)
		return false;
	while (pos < len) {
		uint8_t l = name[pos];
		if (l > CODEC_MAX_LABEL)
			return false;
		if (l == 0)
			return pos + 1 == len;
		pos += 1 + (size_t)l;
	}
	return false;
}

/* The one name comparison: the name at msg[off], decompressed, against
 * name[0..name_len). Length octets are <= 63, below 'A', so folding them
 * is harmless and a plain octet loop compares label boundaries too.
 * @return 1 equal, 0 different, -EBADMSG if the name in msg is malformed. */
static int name_cmp(const uint8_t *msg, size_t len, size_t off, const uint8_t *name,
                    size_t name_len)
{
	uint8_t buf[CODEC_MAX_NAME];
	int n = name_walk(msg, len, off, NULL, buf);

	if (n < 0)
		return -EBADMSG;
	if ((size_t)n != name_len)
		return 0;
	for (size_t i = 0; i < name_len; i++) {
		if (codec_ascii_lower(buf[i]) != codec_ascii_lower(name[i]))
			return 0;
	}
	return 1;
}

int codec_name_equal(const uint8_t *a, size_t alen, size_t aoff, const uint8_t *b, size_t blen,
                     size_t boff)
{
	uint8_t nb[CODEC_MAX_NAME];
	int lb = name_walk(b, blen, boff, NULL, nb);

	if (lb < 0)
		return -EBADMSG;
	return name_cmp(a, alen, aoff, nb, (size_t)lb);
}

/* On the hot path (every owner name of every answer apexd inspects), so it
 * compares in place and stops at the first differing label, with the
 * walker's pointer rules; a name that is malformed past the difference is
 * "not this name" either way. Length octets must match exactly: they are
 * <= 63 and never letters. */
bool codec_name_is(const uint8_t *msg, size_t len, size_t off, const uint8_t *name, size_t name_len)
{
	size_t pos = off, run = off, i = 0;
	unsigned hops = 0;

	if (len > CODEC_MAX_MSG)
		return false;
	for (;;) {
		if (pos >= len || i >= name_len)
			return false;
		uint8_t c = msg[pos];

		if ((c & NAME_LABEL_MASK) == NAME_LABEL_POINTER) {
			if (len - pos < 2)
				return false;
			size_t target = (size_t)(c & ~NAME_LABEL_MASK) << 8 | msg[pos + 1];
			if (target < CODEC_HDR_LEN || target >= run || ++hops > CODEC_MAX_PTR_HOPS)
				return false;
			pos = run = target;
			continue;
		}
		if ((c & NAME_LABEL_MASK) != NAME_LABEL_NORMAL || name[i] != c)
			return false;
		if (c == 0)
			return i + 1 == name_len;
		if (len - pos - 1 < c || name_len - i - 1 < c)
			return false;
		/* Names mostly come back in the case they were asked in: the
		 * octet compare settles those, the folding loop the rest. */
		if (memcmp(msg + pos + 1, name + i + 1, c) != 0) {
			for (size_t k = 1; k <= c; k++)
				if (codec_ascii_lower(msg[pos + k]) !=
				    codec_ascii_lower(name[i + k]))
					return false;
		}
		pos += (size_t)c + 1;
		i += (size_t)c + 1;
	}
}

void codec_name_lower(uint8_t *name, size_t len)
{
	/* Length octets of an uncompressed name are <= 63, never 'A'..'Z',
	 * so folding every octet only touches label text. */
	for (size_t i = 0; i < len; i++)
		name[i] = codec_ascii_lower(name[i]);
}

/* Every octet to itself but A-Z, folded; written out by a macro rather
 * than filled at startup, so the table is constant and shared. */
#define LOWER_ROW(r)                                                                               \
	LOWER_AT(r + 0), LOWER_AT(r + 1), LOWER_AT(r + 2), LOWER_AT(r + 3), LOWER_AT(r + 4),       \
	        LOWER_AT(r + 5), LOWER_AT(r + 6), LOWER_AT(r + 7), LOWER_AT(r + 8),                \
	        LOWER_AT(r + 9), LOWER_AT(r + 10), LOWER_AT(r + 11), LOWER_AT(r + 12),             \
	        LOWER_AT(r + 13), LOWER_AT(r + 14), LOWER_AT(r + 15)
#define LOWER_AT(c) ((c) >= 'A' && (c) <= 'Z' ? (c) + ('a' - 'A') : (c))
const uint8_t codec_ascii_lower_tab[256] = {
        LOWER_ROW(0),   LOWER_ROW(16),  LOWER_ROW(32),  LOWER_ROW(48),
        LOWER_ROW(64),  LOWER_ROW(80),  LOWER_ROW(96),  LOWER_ROW(112),
        LOWER_ROW(128), LOWER_ROW(144), LOWER_ROW(160), LOWER_ROW(176),
        LOWER_ROW(192), LOWER_ROW(208), LOWER_ROW(224), LOWER_ROW(240),
};
#undef LOWER_AT
#undef LOWER_ROW

static uint64_t hash_word(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 29);
}

uint64_t codec_name_lower_hash(const uint8_t *name, size_t len, uint8_t *out, uint64_t seed)
{
	uint64_t h = seed ^ ((uint64_t)len << 56), w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, name + i, 8);
		w = codec_ascii_lower8(w);
		memcpy(out + i, &w, 8);
		h = hash_word(h, w);
	}
	if (i < len && len >= 8) {
		/* The last 8 octets, overlapping what was hashed already:
		 * one load instead of a byte loop; the octets already hashed
		 * are shifted out (written again, alike, into out). */
		unsigned old = (unsigned)(8 - (len - i)) * 8;

		memcpy(&w, name + len - 8, 8);
		w = codec_ascii_lower8(w);
		memcpy(out + len - 8, &w, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		h = hash_word(h, w >> old);
#else
		h = hash_word(h, w << old);
#endif
	} else if (i < len) {
		w = 0;
		for (; i < len; i++) {
			out[i] = codec_ascii_lower(name[i]);
			w = w << 8 | out[i];
		}
		h = hash_word(h, w);
	}
	/* The finaliser of MurmurHash3: every input bit reaches every
	 * output bit, so the low bits that pick buckets are as good as
	 * the high ones. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Output cursor for codec_name_to_text(). Once a piece does not fit,
 * nothing more is written: a reader of the log must never see half an
 * escape, or a later short piece that hides the cut. */
struct text_out {
	char *buf;
	size_t len;
	size_t pos;
	bool cut;
};

static void text_put(struct text_out *t, const char *s, size_t n)
{
	if (t->cut || t->len == 0 || n > t->len - 1 - t->pos) {
		t->cut = true;
		return;
	}
	memcpy(t->buf + t->pos, s, n);
	t->pos += n;
	t->buf[t->pos] = '\0';
}

int codec_name_to_text(const uint8_t *name, size_t len, char *out, size_t outlen)
{
	struct text_out t = {.buf = out, .len = outlen, .pos = 0, .cut = false};
	size_t i = 0;

	if (outlen > 0)
		out[0] = '\0';
	if (len > CODEC_MAX_NAME)
		len = CODEC_MAX_NAME;
	for (;;) {
		if (i >= len)
			return -EBADMSG;
		uint8_t c = name[i++];

		if (c == 0)
			break;
		if (c > CODEC_MAX_LABEL || len - i < c)
			return -EBADMSG;
		for (uint8_t k = 0; k < c; k++) {
			uint8_t o = name[i++];
			char esc[4];
			size_t n;

			if (o == '.' || o == '\\') {
				esc[0] = '\\';
				esc[1] = (char)o;
				n = 2;
			} else if (o <= ' ' || o >= 0x7f) {
				/* \DDD, RFC 1035 5.1: three decimal digits. */
				esc[0] = '\\';
				esc[1] = (char)('0' + o / 100);
				esc[2] = (char)('0' + o / 10 % 10);
				esc[3] = (char)('0' + o % 10);
				n = 4;
			} else {
				esc[0] = (char)o;
				n = 1;
			}
			text_put(&t, esc, n);
		}
		text_put(&t, ".", 1);
	}
	/* The root alone is written as "."; other names already end in one. */
	if (i == 1)
		text_put(&t, ".", 1);
	return t.cut ? -EMSGSIZE : (int)t.pos;
}
