#ifndef STREAMGATE_CLINUX_H
#define STREAMGATE_CLINUX_H

// Linux and glibc calls the Glibc module does not export (they need _GNU_SOURCE or malloc.h).
// Thin wrappers, named after the call they make; errno is left as the call set it.

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// vmsplice(2) of one region into the pipe `pipe_write`, without SPLICE_F_GIFT: the pipe holds
/// references to the region's pages, not a copy of them. Non-blocking.
ssize_t clinux_vmsplice(int pipe_write, const void *base, size_t length);

/// splice(2) of up to `length` bytes from the pipe `pipe_read` to `out` (a socket or a file).
/// Non-blocking; with `more`, SPLICE_F_MORE (more data follows).
ssize_t clinux_splice(int pipe_read, int out, size_t length, int more);

/// pipe2(O_NONBLOCK | O_CLOEXEC): `ends[0]` reads, `ends[1]` writes.
int clinux_pipe(int ends[2]);

/// pipe2(O_CLOEXEC): a blocking pipe no child inherits unless given it.
int clinux_pipe_cloexec(int ends[2]);

/// fcntl(F_SETPIPE_SZ): the pipe's capacity becomes at least `bytes`; returns it, or -1.
int clinux_set_pipe_size(int fd, int bytes);

/// ioctl(FIONREAD) of a pipe: the bytes in it, or -1.
int clinux_pipe_bytes(int fd);

/// accept4 of a listening socket: the connection's descriptor, non-blocking and close-on-exec; -1
/// with errno set otherwise.
int clinux_accept(int fd);

/// mallopt(M_MMAP_THRESHOLD): allocations of at least `bytes` are served by mmap.
int clinux_set_mmap_threshold(int bytes);

#include "CLinuxSpawn.h"

#endif
