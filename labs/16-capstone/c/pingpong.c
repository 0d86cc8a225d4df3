/*
 * pingpong.c: the C reference of `capstone bench` (given: you do not need
 * to change this file). `capstone bench` compiles it with the system's
 * `cc -O2` when there is one and runs it in the same invocation, on the
 * same CPUs, with the same plan, so that each Rust transport can be held
 * against the same protocol written in C:
 *
 *   pipe       two pipes, one each way
 *   posix-shm  a POSIX shared memory object, futexes as doors
 *   spin       anonymous shared memory, counters spun on as doors
 *
 * The shared-memory layout and protocol are those of the lab's
 * `memory.rs` and `Mailbox`: a 4096-byte header of counters 64 bytes
 * apart (door i at i * 64), then for each direction SLOTS slots of
 * SLOT_BYTES; the writer waits Empty, copies a piece into slot
 * (sent % SLOTS), rings Full; the reader the mirror image; each reader
 * first rings Empty once per slot.
 *
 * usage: pingpong MECHANISM COUNT WARMUP CPU_PING CPU_PONG SHM_NAME SIZE...
 *        (a CPU of -1: not pinned)
 * prints one line per size: timing SIZE COUNT P50_NS P99_NS BYTES_PER_S
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 2
#define SLOT_BYTES (256 * 1024)
#define HEADER_BYTES 4096
#define REGION_BYTES (HEADER_BYTES + 2 * SLOTS * SLOT_BYTES)
#define SPINS 1000

enum mechanism { PIPE, POSIX_SHM, SPIN };
enum { PING, PONG };

struct end {
    enum mechanism mechanism;
    int role;
    int input, output;          /* pipe */
    unsigned char *region;      /* shared memory */
    size_t sent, received;
};

static void die(const char *what) {
    fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* ---- doors: counters in the region's header ---- */

static _Atomic uint32_t *counter(struct end *e, int door) {
    return (_Atomic uint32_t *)(e->region + door * 64);
}

static int full_door(int direction) { return 2 * direction; }
static int empty_door(int direction) { return 2 * direction + 1; }

static void ring(struct end *e, int door) {
    _Atomic uint32_t *c = counter(e, door);
    atomic_fetch_add_explicit(c, 1, memory_order_release);
    if (e->mechanism == POSIX_SHM &&
        syscall(SYS_futex, (uint32_t *)c, FUTEX_WAKE, 1, NULL, NULL, 0) == -1)
        die("futex wake");
}

static void wait_door(struct end *e, int door) {
    _Atomic uint32_t *c = counter(e, door);
    uint32_t spins = 0;
    while (atomic_load_explicit(c, memory_order_acquire) == 0) {
        if (e->mechanism == POSIX_SHM) {
            if (syscall(SYS_futex, (uint32_t *)c, FUTEX_WAIT, 0, NULL, NULL, 0) == -1 &&
                errno != EAGAIN && errno != EINTR)
                die("futex wait");
        } else if (++spins % SPINS == 0) {
            sched_yield();
        } else {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#elif defined(__aarch64__)
            __asm__ __volatile__("yield");
#endif
        }
    }
    atomic_fetch_sub_explicit(c, 1, memory_order_relaxed);
}

static size_t slot_offset(int direction, size_t slot) {
    return HEADER_BYTES + ((size_t)direction * SLOTS + slot) * SLOT_BYTES;
}

/* ---- the channel ---- */

static void send_message(struct end *e, const unsigned char *message, size_t len) {
    if (e->mechanism == PIPE) {
        while (len > 0) {
            ssize_t n = write(e->output, message, len);
            if (n == -1) {
                if (errno == EINTR) continue;
                die("write");
            }
            message += n;
            len -= (size_t)n;
        }
        return;
    }
    int direction = e->role == PING ? 0 : 1;
    for (size_t at = 0; at < len; at += SLOT_BYTES) {
        size_t piece = len - at < SLOT_BYTES ? len - at : SLOT_BYTES;
        wait_door(e, empty_door(direction));
        memcpy(e->region + slot_offset(direction, e->sent % SLOTS), message + at, piece);
        ring(e, full_door(direction));
        e->sent++;
    }
}

static void recv_message(struct end *e, unsigned char *message, size_t len) {
    if (e->mechanism == PIPE) {
        while (len > 0) {
            ssize_t n = read(e->input, message, len);
            if (n == -1) {
                if (errno == EINTR) continue;
                die("read");
            }
            if (n == 0) {
                errno = EPIPE;
                die("end-of-file");
            }
            message += n;
            len -= (size_t)n;
        }
        return;
    }
    int direction = e->role == PING ? 1 : 0;
    for (size_t at = 0; at < len; at += SLOT_BYTES) {
        size_t piece = len - at < SLOT_BYTES ? len - at : SLOT_BYTES;
        wait_door(e, full_door(direction));
        memcpy(message + at, e->region + slot_offset(direction, e->received % SLOTS), piece);
        ring(e, empty_door(direction));
        e->received++;
    }
}

/* ---- timing ---- */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample that p% of the samples do not exceed. */
static uint64_t percentile(const uint64_t *sorted, size_t n, size_t p) {
    size_t rank = (p * n + 99) / 100;
    if (rank == 0) rank = 1;
    return sorted[rank - 1];
}

static void ping(struct end *e, size_t size, size_t count, size_t warmup) {
    unsigned char *message = malloc(size), *answer = malloc(size);
    uint64_t *samples = malloc(count * sizeof *samples);
    unsigned char ack;
    if (!message || !answer || !samples) die("malloc");
    memset(message, 0xA5, size);
    memset(answer, 0, size);
    for (size_t i = 0; i < warmup; i++) {
        send_message(e, message, size);
        recv_message(e, answer, size);
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t start = now_ns();
        send_message(e, message, size);
        recv_message(e, answer, size);
        samples[i] = now_ns() - start;
    }
    uint64_t start = now_ns();
    for (size_t i = 0; i < count; i++) {
        message[0] = (unsigned char)i;
        send_message(e, message, size);
    }
    recv_message(e, &ack, 1);
    double seconds = (double)(now_ns() - start) / 1e9;
    qsort(samples, count, sizeof *samples, by_value);
    printf("timing %zu %zu %llu %llu %f\n", size, count,
           (unsigned long long)percentile(samples, count, 50),
           (unsigned long long)percentile(samples, count, 99),
           (double)(count * size) / seconds);
    fflush(stdout);
    free(message);
    free(answer);
    free(samples);
}

static void pong(struct end *e, size_t size, size_t count, size_t warmup) {
    unsigned char *message = malloc(size), ack = 1;
    if (!message) die("malloc");
    memset(message, 0, size);
    for (size_t i = 0; i < warmup + count; i++) {
        recv_message(e, message, size);
        send_message(e, message, size);
    }
    for (size_t i = 0; i < count; i++)
        recv_message(e, message, size);
    send_message(e, &ack, 1);
    free(message);
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) == -1) die("sched_setaffinity");
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: pingpong MECHANISM COUNT WARMUP CPU_PING CPU_PONG SHM_NAME SIZE...\n");
        return 2;
    }
    struct end e = {0};
    if (strcmp(argv[1], "pipe") == 0) e.mechanism = PIPE;
    else if (strcmp(argv[1], "posix-shm") == 0) e.mechanism = POSIX_SHM;
    else if (strcmp(argv[1], "spin") == 0) e.mechanism = SPIN;
    else {
        fprintf(stderr, "pingpong: no mechanism %s\n", argv[1]);
        return 2;
    }
    size_t count = strtoul(argv[2], NULL, 10), warmup = strtoul(argv[3], NULL, 10);
    int cpus[2] = {atoi(argv[4]), atoi(argv[5])};
    const char *shm_name = argv[6];
    if (count == 0) return 2;

    int to_pong[2], to_ping[2];
    if (e.mechanism == PIPE) {
        if (pipe2(to_pong, O_CLOEXEC) == -1 || pipe2(to_ping, O_CLOEXEC) == -1) die("pipe2");
    } else if (e.mechanism == POSIX_SHM) {
        int fd = shm_open(shm_name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
        if (fd == -1) die("shm_open");
        if (ftruncate(fd, REGION_BYTES) == -1) {
            shm_unlink(shm_name);
            die("ftruncate");
        }
        e.region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        shm_unlink(shm_name);
        close(fd);
        if (e.region == MAP_FAILED) die("mmap");
    } else {
        e.region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (e.region == MAP_FAILED) die("mmap");
    }

    fflush(stdout);
    pid_t child = fork();
    if (child == -1) die("fork");
    e.role = child == 0 ? PONG : PING;
    pin(cpus[e.role]);
    if (e.mechanism == PIPE) {
        e.input = e.role == PING ? to_ping[0] : to_pong[0];
        e.output = e.role == PING ? to_pong[1] : to_ping[1];
        close(e.role == PING ? to_ping[1] : to_pong[1]);
        close(e.role == PING ? to_pong[0] : to_ping[0]);
    } else {
        /* Give the writer of the direction this side reads its free slots. */
        for (int i = 0; i < SLOTS; i++) ring(&e, empty_door(e.role == PING ? 1 : 0));
    }
    for (int i = 7; i < argc; i++) {
        size_t size = strtoul(argv[i], NULL, 10);
        if (size == 0) return 2;
        if (e.role == PING) ping(&e, size, count, warmup);
        else pong(&e, size, count, warmup);
    }
    if (e.role == PONG) _exit(0);
    int status;
    if (waitpid(child, &status, 0) == -1) die("waitpid");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
