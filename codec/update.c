/* codec/update.c - the RFC 2136 UPDATE writer. */
#include "codec/update.h"

#include <errno.h>

#include "codec/name.h"

/* RFC 2136 2.3: the header's four counts are renamed ZOCOUNT, PRCOUNT,
 * UPCOUNT, ADCOUNT; these are their offsets. */
#define UPD_OFF_PRCOUNT 6
#define UPD_OFF_UPCOUNT 8
/* RFC 2136 1.3 / RFC 1035 3.2.4: CLASS NONE and ANY. */
#define UPD_CLASS_NONE 254
#define UPD_CLASS_ANY 255

/* Counts go into the header after every RR, so that the buffer holds a
 * whole message whenever the last call succeeded. */
static void upd_counts(struct codec_upd *u)
{
	codec_put_u16(u->wr.base + UPD_OFF_PRCOUNT, u->prcount);
	codec_put_u16(u->wr.base + UPD_OFF_UPCOUNT, u->upcount);
}

static void upd_fail(struct codec_upd *u, int err)
{
	if (u->err == 0)
		u->err = err;
}

void codec_upd_begin(struct codec_upd *u, uint8_t *buf, size_t cap, uint16_t id,
                     const uint8_t *zone, size_t zone_len)
{
	u->prcount = 0;
	u->upcount = 0;
	u->err = 0;
	codec_wr_init(&u->wr, buf, cap);
	codec_wr_u16(&u->wr, id);
	codec_wr_u16(&u->wr, (uint16_t)(CODEC_OPCODE_UPDATE << CODEC_OPCODE_SHIFT));
	codec_wr_u16(&u->wr, 1); /* ZOCOUNT */
	codec_wr_u16(&u->wr, 0);
	codec_wr_u16(&u->wr, 0);
	codec_wr_u16(&u->wr, 0);
	if (!codec_name_valid(zone, zone_len)) {
		upd_fail(u, -EINVAL);
		return;
	}
	codec_wr_bytes(&u->wr, zone, zone_len);
	codec_wr_u16(&u->wr, CODEC_TYPE_SOA);
	codec_wr_u16(&u->wr, CODEC_CLASS_IN);
}

/* Appends one RR; nothing is written unless all of it fits, so a failed
 * call leaves the message as the last good call left it. */
static void upd_rr(struct codec_upd *u, bool prereq, const uint8_t *name, size_t len, uint16_t type,
                   uint16_t cls, uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	if (u->err != 0 || u->wr.err != 0)
		return;
	if (!codec_name_valid(name, len) || (rdlen > 0 && rdata == NULL)) {
		upd_fail(u, -EINVAL);
		return;
	}
	/* RFC 2136 2: prerequisites come before updates in the message. */
	if (prereq && u->upcount > 0) {
		upd_fail(u, -EINVAL);
		return;
	}
	uint16_t *count = prereq ? &u->prcount : &u->upcount;

	if (*count == UINT16_MAX) {
		u->wr.err = -EMSGSIZE;
		return;
	}
	if (!codec_wr_need(&u->wr, len + 10 + (size_t)rdlen))
		return;
	codec_wr_bytes(&u->wr, name, len);
	codec_wr_u16(&u->wr, type);
	codec_wr_u16(&u->wr, cls);
	codec_wr_u32(&u->wr, ttl);
	codec_wr_u16(&u->wr, rdlen);
	codec_wr_bytes(&u->wr, rdata, rdlen);
	(*count)++;
	upd_counts(u);
}

void codec_upd_prereq_exists(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type)
{
	upd_rr(u, true, name, len, type, UPD_CLASS_ANY, 0, NULL, 0);
}

void codec_upd_prereq_absent(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type)
{
	upd_rr(u, true, name, len, type, UPD_CLASS_NONE, 0, NULL, 0);
}

void codec_upd_delete_rrset(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type)
{
	upd_rr(u, false, name, len, type, UPD_CLASS_ANY, 0, NULL, 0);
}

void codec_upd_delete_rr(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type,
                         const uint8_t *rdata, uint16_t rdlen)
{
	upd_rr(u, false, name, len, type, UPD_CLASS_NONE, 0, rdata, rdlen);
}

void codec_upd_add_rr(struct codec_upd *u, const uint8_t *name, size_t len, uint16_t type,
                      uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	upd_rr(u, false, name, len, type, CODEC_CLASS_IN, ttl, rdata, rdlen);
}

ssize_t codec_upd_end(struct codec_upd *u)
{
	if (u->wr.err != 0)
		return u->wr.err;
	if (u->err != 0)
		return u->err;
	return (ssize_t)u->wr.pos;
}
