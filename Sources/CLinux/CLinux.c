#define _GNU_SOURCE
#include "CLinux.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

ssize_t clinux_vmsplice(int pipe_write, const void *base, size_t length) {
    struct iovec region = { .iov_base = (void *)base, .iov_len = length };
    return vmsplice(pipe_write, &region, 1, SPLICE_F_NONBLOCK);
}

ssize_t clinux_splice(int pipe_read, int out, size_t length, int more) {
    unsigned int flags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0);
    return splice(pipe_read, NULL, out, NULL, length, flags);
}

int clinux_pipe(int ends[2]) {
    return pipe2(ends, O_NONBLOCK | O_CLOEXEC);
}

int clinux_pipe_cloexec(int ends[2]) {
    return pipe2(ends, O_CLOEXEC);
}

int clinux_set_pipe_size(int fd, int bytes) {
    return fcntl(fd, F_SETPIPE_SZ, bytes);
}

int clinux_pipe_bytes(int fd) {
    int bytes = 0;
    return ioctl(fd, FIONREAD, &bytes) == 0 ? bytes : -1;
}

int clinux_accept(int fd) {
    return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int clinux_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}
