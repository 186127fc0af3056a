/* bench/floor.c - the machine's floor for a UDP answer.
 *
 * The least a UDP DNS responder can do on this kernel: read datagrams in
 * batches (recvmmsg), set QR in each, write them back (sendmmsg), one
 * thread, blocking. No parsing, no lookup, no second hop. Its CPU per
 * answer under the same dnsperf load as the other targets is what the
 * kernel charges for one datagram in and one out; bench/run.sh reports
 * every UDP figure also as a multiple of it. A relay (apexd, dnsdist)
 * moves four datagrams per answer (client in, BIND out, BIND in, client
 * out), so about 2 x the floor is the least it can cost.
 *
 * Built and started by bench/run.sh (target "floor"):
 *   cc -O2 bench/floor.c -o .run/bench/floor
 * Usage: floor PORT   (binds 127.0.0.1:PORT, runs until SIGTERM)
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define MAXLEN 1232

int main(int argc, char **argv)
{
	static unsigned char buf[BATCH][MAXLEN];
	static struct mmsghdr msgs[BATCH];
	static struct iovec iov[BATCH];
	static struct sockaddr_in peer[BATCH];
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd;

	if (argc != 2) {
		fprintf(stderr, "usage: floor PORT\n");
		return 2;
	}
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("floor: socket/bind");
		return 1;
	}
	for (;;) {
		int i, n;

		for (i = 0; i < BATCH; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = MAXLEN;
			memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &peer[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(peer[i]);
		}
		/* Block for the first datagram, then take what is queued. */
		n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (msgs[i].msg_len >= 12)
				buf[i][2] |= 0x80; /* QR */
			iov[i].iov_len = msgs[i].msg_len;
		}
		/* Loopback does not block a send; a short count drops the rest,
		 * which dnsperf counts as lost. */
		sendmmsg(fd, msgs, (unsigned int)n, 0);
	}
}
