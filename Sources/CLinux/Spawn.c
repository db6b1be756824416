#define _GNU_SOURCE
#include "CLinuxSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__x86_64__)
#define SG_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SG_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "the transcode sandbox knows x86_64 and aarch64"
#endif

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

// Everything between fork and execve runs in a copy of a multithreaded process: only
// async-signal-safe calls (raw system calls), no allocation, no locks.

static void report(int fd, int value) {
    ssize_t written;
    do { written = write(fd, &value, sizeof value); } while (written < 0 && errno == EINTR);
}

static _Noreturn void fail(int fd, int error) {
    report(fd, -error);
    _exit(127);
}

static int write_file(const char *path, const char *text, size_t length) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t written = write(fd, text, length);
    close(fd);
    return written == (ssize_t)length ? 0 : -1;
}

/// "<id> <id> 1\n" into `buffer`, without snprintf (not async-signal-safe).
static size_t identity_map(char *buffer, unsigned id) {
    char digits[16];
    size_t count = 0;
    do { digits[count++] = (char)('0' + id % 10); id /= 10; } while (id > 0);
    size_t length = 0;
    for (int copy = 0; copy < 2; copy++) {
        for (size_t i = 0; i < count; i++) buffer[length++] = digits[count - 1 - i];
        buffer[length++] = ' ';
    }
    buffer[length++] = '1';
    buffer[length++] = '\n';
    return length;
}

/// A network namespace of its own: directly (root, CAP_SYS_ADMIN), else inside a new user
/// namespace that maps only our own ids (so files keep their owner).
static int isolate_network(uid_t uid, gid_t gid) {
    if (unshare(CLONE_NEWNET) == 0) return CLINUX_NETWORK_NAMESPACE;
    if (unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0) return CLINUX_NETWORK_SHARED;
    char map[48];
    size_t length;
    if (write_file("/proc/self/setgroups", "deny", 4) != 0) return -1;
    length = identity_map(map, uid);
    if (write_file("/proc/self/uid_map", map, length) != 0) return -1;
    length = identity_map(map, gid);
    if (write_file("/proc/self/gid_map", map, length) != 0) return -1;
    return CLINUX_NETWORK_USER_NAMESPACE;
}

static int deny_sockets(void) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SG_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
#if defined(__x86_64__)
        // The x32 ABI numbers every call anew: refuse all of them rather than list them twice.
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
#endif
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        // io_uring can open sockets without socket(2); ptrace and process_vm_* reach other processes.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ptrace, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_writev, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog program = { .len = (unsigned short)(sizeof filter / sizeof filter[0]), .filter = filter };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
}

static int limit(int resource, long long value) {
    if (value <= 0) return 0;
    struct rlimit bound = { .rlim_cur = (rlim_t)value, .rlim_max = (rlim_t)value };
    return setrlimit(resource, &bound);
}

static void close_all_from(int first, int keep) {
    // close_range(2) (Linux 5.9) around `keep`; a loop over the descriptor table where it is missing.
    // `keep` is always at or above `first` (the caller moved it there).
    int closed = 1;
    if (keep > first) closed = syscall(SYS_close_range, (unsigned)first, (unsigned)keep - 1, 0) == 0;
    if (closed && syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0) == 0) return;
    struct rlimit table;
    long last = getrlimit(RLIMIT_NOFILE, &table) == 0 && table.rlim_cur < 1 << 20 ? (long)table.rlim_cur : 1 << 16;
    for (long fd = first; fd < last; fd++) {
        if (fd != keep) close((int)fd);
    }
}

static _Noreturn void child(const char *path, char *const argv[], char *const envp[], const int *fds, int count, int new_group,
                            int death_signal, pid_t parent, const struct clinux_sandbox *sandbox, uid_t uid, gid_t gid,
                            int status) {
    if (new_group && setpgid(0, 0) != 0) fail(status, errno);
    if (death_signal) {
        if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) fail(status, errno);
        // The parent may have died before the line above: then nobody would ever signal us.
        if (getppid() != parent) fail(status, ESRCH);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    for (int signal = 1; signal < NSIG; signal++) sigaction(signal, &fallback, NULL);

    // The status pipe may sit where a given descriptor goes (fd 3, 4… when there are extra ones):
    // moved above them all first, so no dup2 below closes it.
    if (status < count) {
        int above = fcntl(status, F_DUPFD_CLOEXEC, count);
        if (above < 0) fail(status, errno);
        status = above;
    }
    // Given descriptors first moved above the ones they replace, so no dup2 clobbers a source.
    int moved[CLINUX_SPAWN_MAX_DESCRIPTORS];
    for (int i = 0; i < count; i++) {
        moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, count);
        if (moved[i] < 0) fail(status, errno);
    }
    for (int i = 0; i < count; i++) {
        if (dup2(moved[i], i) < 0) fail(status, errno);
    }
    // Every other descriptor goes, but the status pipe (close-on-exec: execve closes it).
    close_all_from(count, status);

    int network = CLINUX_NETWORK_SHARED;
    if (sandbox) {
        // A core dump would put decoded pictures and key material on disk.
        struct rlimit no_core = { 0, 0 };
        if (setrlimit(RLIMIT_CORE, &no_core) != 0) fail(status, errno);
        if (limit(RLIMIT_CPU, sandbox->cpu_seconds) != 0) fail(status, errno);
        if (limit(RLIMIT_FSIZE, sandbox->file_size_bytes) != 0) fail(status, errno);
        if (limit(RLIMIT_NOFILE, sandbox->open_files) != 0) fail(status, errno);
        if (sandbox->isolate_network) {
            network = isolate_network(uid, gid);
            if (network < 0) fail(status, errno ? errno : EPERM);
        }
        if (sandbox->deny_sockets && deny_sockets() != 0) fail(status, errno);
    }
    report(status, network);
    execve(path, argv, envp);
    fail(status, errno);
}

pid_t clinux_spawn(const char *path, char *const argv[], char *const envp[], const int *fds, int count,
                   int new_group, int death_signal, const struct clinux_sandbox *sandbox, int *network) {
    if (count < 3 || count > CLINUX_SPAWN_MAX_DESCRIPTORS) return -EINVAL;
    int status[2];
    if (pipe2(status, O_CLOEXEC) != 0) return -errno;
    pid_t parent = getpid();
    uid_t uid = getuid();
    gid_t gid = getgid();
    pid_t pid = fork();
    if (pid < 0) {
        int error = errno;
        close(status[0]);
        close(status[1]);
        return -error;
    }
    if (pid == 0) {
        close(status[0]);
        child(path, argv, envp, fds, count, new_group, death_signal, parent, sandbox, uid, gid, status[1]);
    }
    close(status[1]);
    // The child writes what took effect (>= 0) just before execve, or -errno and exits; after a
    // successful execve the pipe just closes.
    int values[2] = { CLINUX_NETWORK_SHARED, 0 };
    size_t received = 0;
    while (received < sizeof values) {
        ssize_t count = read(status[0], (char *)values + received, sizeof values - received);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        received += (size_t)count;
    }
    close(status[0]);
    int error = 0;
    if (received >= sizeof(int) && values[0] < 0) error = -values[0];
    else if (received >= 2 * sizeof(int) && values[1] < 0) error = -values[1];
    if (error) {
        int ignored;
        while (waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {}
        return -error;
    }
    if (network) *network = received >= sizeof(int) ? values[0] : CLINUX_NETWORK_SHARED;
    return pid;
}

int clinux_open_no_symlinks(const char *path) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return (int)fd;
    if (path[0] == '/') {
        char resolved[PATH_MAX];
        if (!realpath(path, resolved)) return -1;
        if (strcmp(resolved, path) != 0) {
            errno = ELOOP;
            return -1;
        }
    }
    return open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
}
