#include "tests/unit/helpers.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

long th_hex(const char *hex, uint8_t *out, size_t outlen)
{
	size_t n = 0;
	int hi = -1;

	for (const char *p = hex; *p != '\0'; p++) {
		if (*p == '#') {
			while (*p != '\0' && *p != '\n')
				p++;
			if (*p == '\0')
				break;
			continue;
		}
		if (isspace((unsigned char)*p))
			continue;
		int v = hexval((unsigned char)*p);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == outlen)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? (long)n : -1;
}

static int th_pkt_line(ldns_pkt *pkt, char *line, unsigned long *id, unsigned long *flags)
{
	ldns_rr *rr = NULL;
	ldns_pkt_section sec;

	while (isspace((unsigned char)*line))
		line++;
	if (*line == '\0' || *line == ';')
		return 0;
	char *rest = line;
	while (*rest != '\0' && !isspace((unsigned char)*rest))
		rest++;
	if (*rest != '\0')
		*rest++ = '\0';
	while (isspace((unsigned char)*rest))
		rest++;

	if (strcmp(line, "hdr") == 0) {
		char *end;
		*id = strtoul(rest, &end, 0);
		*flags = strtoul(end, &end, 0);
		return *id > 0xffff || *flags > 0xffff ? -1 : 0;
	}
	if (strcmp(line, "edns") == 0) {
		char *end;
		unsigned long udp = strtoul(rest, &end, 0);
		while (isspace((unsigned char)*end))
			end++;
		ldns_pkt_set_edns_udp_size(pkt, (uint16_t)udp);
		if (strncmp(end, "do", 2) == 0) {
			ldns_pkt_set_edns_do(pkt, true);
			end += 2;
		}
		uint8_t opts[4096];
		long n = th_hex(end, opts, sizeof(opts));
		if (n < 0)
			return -1;
		if (n > 0)
			ldns_pkt_set_edns_data(
			        pkt, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, (size_t)n, opts));
		return 0;
	}
	if (strcmp(line, "qd") == 0) {
		if (ldns_rr_new_question_frm_str(&rr, rest, NULL, NULL) != LDNS_STATUS_OK)
			return -1;
		sec = LDNS_SECTION_QUESTION;
	} else {
		if (strcmp(line, "an") == 0)
			sec = LDNS_SECTION_ANSWER;
		else if (strcmp(line, "ns") == 0)
			sec = LDNS_SECTION_AUTHORITY;
		else if (strcmp(line, "ar") == 0)
			sec = LDNS_SECTION_ADDITIONAL;
		else
			return -1;
		if (ldns_rr_new_frm_str(&rr, rest, 0, NULL, NULL) != LDNS_STATUS_OK &&
		    ldns_rr_new_question_frm_str(&rr, rest, NULL, NULL) != LDNS_STATUS_OK)
			return -1;
	}
	ldns_pkt_push_rr(pkt, sec, rr);
	return 0;
}

long th_pkt(const char *text, uint8_t *out, size_t outlen)
{
	ldns_pkt *pkt = ldns_pkt_new();
	char *copy = strdup(text);
	unsigned long id = 0, flags = 0;
	uint8_t *wire = NULL;
	size_t len = 0;
	long rc = -1;

	if (pkt == NULL || copy == NULL)
		goto done;
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (th_pkt_line(pkt, line, &id, &flags) < 0)
			goto done;
	}
	if (ldns_pkt2wire(&wire, pkt, &len) != LDNS_STATUS_OK || len > outlen || len < 12)
		goto done;
	memcpy(out, wire, len);
	/* Patch the header afterwards: exact control over every flag bit,
	 * opcode and rcode without going through ldns' flag model. */
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = (uint8_t)(flags >> 8);
	out[3] = (uint8_t)flags;
	rc = (long)len;
done:
	free(wire);
	free(copy);
	ldns_pkt_free(pkt);
	return rc;
}

int th_reuseport_socket(int type, uint16_t port, uint16_t *got)
{
	int one = 1;
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	socklen_t alen = sizeof(a);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*got = ntohs(a.sin_port);
	return fd;
}
