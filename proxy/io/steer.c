/* proxy/io/steer.c - the kernel side of worker steering.
 *
 * SO_REUSEPORT spreads datagrams over the workers' sockets by a hash of
 * the 4-tuple. Under light load that wakes every worker for a few
 * datagrams each, and a wake-up (the sleep, the switch, cold caches)
 * costs more than answering: on a 2-core VM, cached answers cost 6.5 µs
 * each with two workers and 3.0 µs with one. The engine (engine/steer.c)
 * decides how many workers take UDP queries and new connections; this
 * file tells the kernel, with a classic BPF program on the group
 * (SO_ATTACH_REUSEPORT_CBPF, Linux 4.5, no privilege needed). The program
 * returns the index of the socket in the group: the order of binding for
 * UDP, of listen() for TCP (for a SYN it picks the listener).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include "proxy/io/steer.h"

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

int px_steer_attach(int fd, unsigned n)
{
	/* n = 1: "return 0". Otherwise a random number (the kernel's
	 * per-packet prandom, SKF_AD_RANDOM) modulo n: a uniform spread that,
	 * unlike the 4-tuple hash, cannot leave one worker a single busy
	 * client's whole load. */
	struct sock_filter one[] = {
	        BPF_STMT(BPF_RET | BPF_K, 0),
	};
	struct sock_filter spread[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (__u32)(SKF_AD_OFF + SKF_AD_RANDOM)),
	        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
	        BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (n == 0 || n > PX_STEER_MAX)
		return -EINVAL;
	if (n == 1) {
		prog.len = sizeof(one) / sizeof(one[0]);
		prog.filter = one;
	} else {
		prog.len = sizeof(spread) / sizeof(spread[0]);
		prog.filter = spread;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0)
		return -errno;
	return 0;
}

int px_steer_queue(int fd, struct px_sock_queue *q)
{
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mi);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0)
		return -errno;
	if (len < sizeof(mi))
		return -EPROTO; /* a kernel before the drops were counted */
	q->queued = mi[SK_MEMINFO_RMEM_ALLOC];
	q->limit = mi[SK_MEMINFO_RCVBUF];
	q->drops = mi[SK_MEMINFO_DROPS];
	return 0;
}
