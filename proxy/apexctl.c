/* proxy/apexctl.c - apexctl: talks to apexd's control socket.
 *
 * Sends one request line, prints the reply's body on stdout and exits
 * 0 when it ended in ".ok", 1 on ".error" (the text goes to stderr), on
 * any failure to connect, on a reply cut short and on a timeout, and 2
 * on a usage error. The protocol is in ctlreq.h; requests are checked
 * here with the daemon's own parser, so a typo is a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proxy/ops/ctlreq.h"

#define APEXCTL_DEFAULT_SOCKET "/run/apexd.sock"
/* Long enough for explain, which waits for BIND up to [backend] timeout
 * (1 s by default), short enough that a hung daemon is noticed. */
#define APEXCTL_DEFAULT_TIMEOUT_S 10
#define APEXCTL_MAX_TIMEOUT_S 3600
/* A reply is a few KiB (stats is the longest); this bounds a runaway. */
#define APEXCTL_REPLY_MAX (4u << 20)
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: apexctl [-s SOCKET] [-t SECONDS] COMMAND [ARGS]\n"
	        "\n"
	        "Talks to a running apexd over its control socket ([server] control).\n"
	        "\n"
	        "commands:\n"
	        "  stats                   every counter, summed over the workers\n"
	        "  reload                  what SIGHUP does: re-read and apply the INI file\n"
	        "  flush [NAME]            empty the target cache and the answer caches,\n"
	        "                          or drop only NAME from them\n"
	        "  explain NAME [A|AAAA|HTTPS|SVCB] [SUBNET]\n"
	        "                          how a query for NAME is answered now: source\n"
	        "                          (ANAME, CNAME policy, [alias]), each hop with its\n"
	        "                          TTL, the cached records, and the answer; with\n"
	        "                          SUBNET (like 192.0.2.0/24), for a client there\n"
	        "                          ([resolver] ecs: which scope entry answers it)\n"
	        "  workers [N|auto]        how many workers take UDP queries and new\n"
	        "                          connections; N pins that many (open connections\n"
	        "                          move), auto hands the choice back to the rule\n"
	        "\n"
	        "options:\n"
	        "  -s, --socket PATH       control socket (default " APEXCTL_DEFAULT_SOCKET ")\n"
	        "  -t, --timeout SECONDS   give up when apexd has not answered (default %d)\n"
	        "  -h, --help              this text\n"
	        "  -V, --version           apexctl's version\n"
	        "\n"
	        "exit status: 0 ok, 1 error (apexd's reply, connection, timeout), 2 usage\n",
	        APEXCTL_DEFAULT_TIMEOUT_S);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events until deadline; 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int rc = poll(&p, 1, (int)(deadline - now));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* Prints the body (dot-stuffing undone) and returns the exit status. */
static int print_reply(char *buf, size_t len)
{
	char *p = buf, *end = buf + len;

	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break; /* a last line without '\n': cut short */
		*nl = '\0';
		if (p[0] == '.' && p[1] != '.') {
			if (strcmp(p, PX_CTL_END_OK) == 0 && nl + 1 == end)
				return 0;
			if (strncmp(p, PX_CTL_END_ERROR " ", sizeof(PX_CTL_END_ERROR)) == 0 &&
			    nl + 1 == end) {
				fprintf(stderr, "apexctl: %s\n", p + sizeof(PX_CTL_END_ERROR));
				return 1;
			}
			fprintf(stderr, "apexctl: malformed reply line \"%.80s\"\n", p);
			return 1;
		}
		if (fputs(p[0] == '.' ? p + 1 : p, stdout) == EOF || fputc('\n', stdout) == EOF) {
			fprintf(stderr, "apexctl: cannot write the reply: %s\n", strerror(errno));
			return 1;
		}
		p = nl + 1;
	}
	fprintf(stderr, "apexctl: the reply ended before its status line (apexd stopped?)\n");
	return 1;
}

/* What the command line asks for. */
struct args {
	const char *path;
	long timeout_s;
	char line[PX_CTL_LINE_MAX + 2]; /* the request, '\n'-terminated */
	size_t len;
};

/* The options; -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
	        {"socket", required_argument, NULL, 's'},
	        {"timeout", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "+s:t:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			a->path = optarg;
			break;
		case 't': {
			char *e;
			errno = 0;
			a->timeout_s = strtol(optarg, &e, 10);
			if (errno != 0 || *e != '\0' || e == optarg || a->timeout_s < 1 ||
			    a->timeout_s > APEXCTL_MAX_TIMEOUT_S) {
				fprintf(stderr, "apexctl: -t %s: allowed: whole seconds, 1..%d\n",
				        optarg, APEXCTL_MAX_TIMEOUT_S);
				return 2;
			}
			break;
		}
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("apexctl %s\n", APEX_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

/* The words after the options, joined into one request line and checked
 * with the daemon's parser; -1 to go on, else the exit status. */
static int build_request(int argc, char **argv, struct args *a)
{
	struct px_ctl_req req;
	char err[256];

	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	a->len = 0;
	for (int i = optind; i < argc; i++) {
		size_t n = strlen(argv[i]);
		if (a->len + n + 1 > PX_CTL_LINE_MAX) {
			fprintf(stderr, "apexctl: request longer than %d bytes\n", PX_CTL_LINE_MAX);
			return 2;
		}
		if (a->len > 0)
			a->line[a->len++] = ' ';
		memcpy(a->line + a->len, argv[i], n);
		a->len += n;
	}
	if (px_ctl_parse(a->line, a->len, &req, err, sizeof(err)) < 0) {
		fprintf(stderr, "apexctl: %s\n", err);
		usage(stderr);
		return 2;
	}
	a->line[a->len++] = '\n';
	return -1;
}

/* A connected socket, or -1 after saying why. */
static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		fprintf(stderr, "apexctl: socket: %s\n", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "apexctl: cannot connect to %s: %s%s\n", path, strerror(errno),
		        errno == ENOENT || errno == ECONNREFUSED
		                ? " (is apexd running with [server] control set to it?)"
		                : "");
		close(fd);
		return -1;
	}
	return fd;
}

static int send_request(int fd, const struct args *a, uint64_t deadline)
{
	for (size_t off = 0; off < a->len;) {
		if (wait_fd(fd, POLLOUT, deadline) < 0) {
			fprintf(stderr, "apexctl: timed out after %ld s sending the request\n",
			        a->timeout_s);
			return -1;
		}
		ssize_t n = send(fd, a->line + off, a->len - off, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			fprintf(stderr, "apexctl: cannot send the request: %s\n", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Makes room for more of the reply: 0, or -1 after saying why. */
static int reply_grow(char **buf, size_t *cap)
{
	if (*cap >= APEXCTL_REPLY_MAX) {
		fprintf(stderr, "apexctl: reply larger than %u bytes\n", APEXCTL_REPLY_MAX);
		return -1;
	}
	char *nb = realloc(*buf, *cap * 2);
	if (nb == NULL) {
		fprintf(stderr, "apexctl: out of memory\n");
		return -1;
	}
	*buf = nb;
	*cap *= 2;
	return 0;
}

/* Reads the reply until apexd closes; the buffer (malloc'd) or NULL
 * after saying why. */
static char *read_reply(int fd, const struct args *a, uint64_t deadline, size_t *got)
{
	size_t cap = 65536;
	char *buf = malloc(cap);

	*got = 0;
	if (buf == NULL) {
		fprintf(stderr, "apexctl: out of memory\n");
		return NULL;
	}
	for (;;) {
		if (wait_fd(fd, POLLIN, deadline) < 0) {
			fprintf(stderr, "apexctl: apexd did not answer within %ld s\n",
			        a->timeout_s);
			break;
		}
		if (*got == cap && reply_grow(&buf, &cap) < 0)
			break;
		ssize_t n = recv(fd, buf + *got, cap - *got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0) {
			fprintf(stderr, "apexctl: cannot read the reply: %s\n", strerror(errno));
			break;
		}
		if (n == 0)
			return buf;
		*got += (size_t)n;
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct args a = {.path = APEXCTL_DEFAULT_SOCKET, .timeout_s = APEXCTL_DEFAULT_TIMEOUT_S};
	int rc = parse_options(argc, argv, &a);

	if (rc < 0)
		rc = build_request(argc, argv, &a);
	if (rc >= 0)
		return rc;
	if (strlen(a.path) >= SUN_PATH_SIZE) {
		fprintf(stderr, "apexctl: socket path longer than %zu bytes: %s\n",
		        SUN_PATH_SIZE - 1, a.path);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	uint64_t deadline = now_ms() + (uint64_t)a.timeout_s * 1000;
	int fd = connect_to(a.path);
	if (fd < 0)
		return 1;
	size_t got;
	char *buf = send_request(fd, &a, deadline) < 0 ? NULL : read_reply(fd, &a, deadline, &got);
	close(fd);
	if (buf == NULL)
		return 1;
	rc = print_reply(buf, got);
	free(buf);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "apexctl: cannot write the reply: %s\n", strerror(errno));
		return 1;
	}
	return rc;
}
