/* What the kernel charges for the same 64 bytes sent with send(2) and with sendmsg(2) of one
 * iovec. Callgrind counts user space only, so a choice between two syscalls that do the same
 * thing is invisible there; this measures the whole round (send + recv on a unix socketpair).
 *
 *     cmake --build build/bench --target syscall-costs && taskset -c 0 build/bench/syscall-costs
 *
 * The two loops alternate in short blocks, and the fastest block of each is reported beside the
 * mean, so that the host's noise (other tenants, frequency changes) falls on both alike.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

enum { kBlocks = 400, kIterations = 2000, kSize = 64 };

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

int main(void) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
    char out[kSize] = {0}, in[256];
    double best[2] = {1e18, 1e18}, total[2] = {0, 0};
    for (int block = 0; block < kBlocks; block++) {
        for (int way = 0; way < 2; way++) {
            double start = now_ns();
            for (int i = 0; i < kIterations; i++) {
                ssize_t sent;
                if (way == 0) {
                    sent = send(pair[0], out, kSize, MSG_NOSIGNAL);
                } else {
                    struct iovec vector = {out, kSize};
                    struct msghdr header = {.msg_iov = &vector, .msg_iovlen = 1};
                    sent = sendmsg(pair[0], &header, MSG_NOSIGNAL);
                }
                if (sent != kSize) die("send");
                if (recv(pair[1], in, sizeof in, 0) != kSize) die("recv");
            }
            double per_round = (now_ns() - start) / kIterations;
            if (per_round < best[way]) best[way] = per_round;
            total[way] += per_round;
        }
    }
    printf("send + recv, 64 B, unix socketpair: %.0f ns (mean %.0f)\n", best[0], total[0] / kBlocks);
    printf("sendmsg (1 iovec) + recv:           %.0f ns (mean %.0f)\n", best[1], total[1] / kBlocks);
    return 0;
}
