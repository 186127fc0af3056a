/* proxy/io/steer.h - which worker's socket of a SO_REUSEPORT group the
 * kernel hands a datagram to. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* The most workers a group is steered over: a program's modulus (threads
 * is at most 256, config/keys.c). */
#define PX_STEER_MAX 256

/**
 * Attaches to fd's reuseport group (every socket bound to the same
 * address and port, in the order they were bound: worker 0's first) a
 * classic BPF program that picks one of the first n sockets: all to the
 * first for n = 1, else uniformly at random among the first n. The
 * program belongs to the group, so calling this on one member replaces
 * it for all. An index past the group's end makes the kernel fall back
 * to its own 4-tuple hash, so a group smaller than n still works.
 * @return 0, or -errno from setsockopt (the group keeps its old program).
 */
int px_steer_attach(int fd, unsigned n);

/** What a UDP socket holds: queued bytes, the most it may queue, and
 *  the datagrams the kernel dropped for it since it was made. */
struct px_sock_queue {
	uint32_t queued, limit, drops;
};

/**
 * Reads fd's queue (SO_MEMINFO, Linux 4.6: one getsockopt).
 * @return 0, or -errno.
 */
int px_steer_queue(int fd, struct px_sock_queue *q);
