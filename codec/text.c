/* codec/text.c - DNS mnemonics for logs, statistics and explain output. */
#include <stddef.h>
#include <stdio.h>

#include "codec/text.h"

const char *codec_rcode_name(unsigned rcode)
{
	static const char *const names[] = {
	        "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
	        "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE", "DSOTYPENI",
	};

	if (rcode < sizeof(names) / sizeof(names[0]))
		return names[rcode];
	if (rcode == 16) /* BADVERS, only as an extended RCODE with an OPT */
		return "BADVERS";
	return NULL;
}

const char *codec_rcode_text(unsigned rcode, char *buf, size_t size)
{
	const char *name = codec_rcode_name(rcode);

	if (name != NULL)
		return name;
	snprintf(buf, size, "RCODE%u", rcode);
	return buf;
}
