#ifndef STREAMGATE_CLINUX_SPAWN_H
#define STREAMGATE_CLINUX_SPAWN_H

#include <sys/types.h>

/// What a sandboxed child may not do. Zero fields leave that limit as the parent has it.
struct clinux_sandbox {
    /// A network namespace of its own (no interface but a down loopback): with CAP_SYS_ADMIN
    /// directly, else inside a new user namespace; where neither is allowed, nothing.
    int isolate_network;
    /// seccomp: socket(2) of every family, io_uring, ptrace and cross-process memory access fail.
    int deny_sockets;
    /// Resource limits, soft and hard: RLIMIT_CPU (seconds), RLIMIT_FSIZE (bytes), RLIMIT_NOFILE.
    /// A sandboxed child never dumps core.
    long long cpu_seconds;
    long long file_size_bytes;
    long long open_files;
};

/// What took effect in the child, reported back before it runs the program.
enum {
    CLINUX_NETWORK_SHARED = 0,
    CLINUX_NETWORK_NAMESPACE = 1,
    CLINUX_NETWORK_USER_NAMESPACE = 2,
};

/// The most descriptors a child can be given: its three standard ones and up to 13 more.
#define CLINUX_SPAWN_MAX_DESCRIPTORS 16

/// Starts `path` with `argv` and `envp` (NULL-terminated) in a forked child whose descriptors
/// 0 … count-1 are `fds[0 … count-1]` (3 <= count <= CLINUX_SPAWN_MAX_DESCRIPTORS: the standard
/// ones, then any extra ones as 3, 4…), and which has no other descriptor open. With `new_group`,
/// it leads a process group of its own; with `death_signal`, it gets that signal when the calling
/// thread ends (call from a thread that lives as long as the process). `sandbox` may be NULL.
/// Returns the pid, or -errno (of fork, or of a step in the child, or of execve; -EINVAL for a
/// count out of range). `network` receives a CLINUX_NETWORK_* value.
pid_t clinux_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int count,
                   int new_group, int death_signal, const struct clinux_sandbox *sandbox, int *network);

/// open(2) of `path` for reading that refuses to pass through any symbolic link (openat2's
/// RESOLVE_NO_SYMLINKS; on kernels before 5.6, O_NOFOLLOW on the last component after checking
/// that realpath(3) leaves the path unchanged). Returns the descriptor or -1 with errno.
int clinux_open_no_symlinks(const char *path);

#endif
