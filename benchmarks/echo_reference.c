/* echo-reference: the plain C epoll echo server every benchmark figure is a ratio to.
 *
 * The physical limit on this machine for "read a message, write it back": edge-triggered epoll,
 * non-blocking sockets, one fixed read buffer, a write straight back from it. Only when the
 * kernel takes less than was read does the rest go to the connection's pending buffer; reading
 * then pauses until EPOLLOUT has flushed it (so memory is bounded by one buffer per connection).
 * UDP: recvmmsg a batch, sendmmsg it back to the senders.
 *
 *   echo-reference tcp://127.0.0.1:0 | unix:/tmp/echo.sock | udp://127.0.0.1:0 [--cpu N] [--lifetime S]
 *
 * The first stdout line is the bound endpoint (tcp://127.0.0.1:41234), so a harness can connect
 * without racing the bind. SIGINT/SIGTERM or --lifetime seconds end it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)
#define UDP_BATCH 64
#define UDP_MAX 65536
#define MAX_EVENTS 256

static void die(const char *what) {
    fprintf(stderr, "echo-reference: %s: %s\n", what, strerror(errno));
    exit(2);
}

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

struct conn {
    int fd;
    int paused;          /* pending data not yet flushed: reading waits for EPOLLOUT */
    size_t pending_off;
    size_t pending_len;
    char *pending;       /* BUF_SIZE bytes, allocated on the first partial write */
};

static char buf[BUF_SIZE];

/* ---- endpoints -------------------------------------------------------------------------- */

struct endpoint {
    int family, type;
    struct sockaddr_storage addr;
    socklen_t len;
    char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void parse_endpoint(const char *text, struct endpoint *ep) {
    memset(ep, 0, sizeof *ep);
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ep->addr;
        const char *path = text + 5;
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof sun->sun_path) { fprintf(stderr, "echo-reference: bad unix path\n"); exit(2); }
        sun->sun_family = AF_UNIX;
        memcpy(sun->sun_path, path, n);
        if (path[0] == '@') sun->sun_path[0] = '\0';
        else memcpy(ep->unix_path, path, n + 1);
        ep->family = AF_UNIX;
        ep->type = SOCK_STREAM;
        ep->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
        return;
    }
    const char *rest;
    if (strncmp(text, "tcp://", 6) == 0) { rest = text + 6; ep->type = SOCK_STREAM; }
    else if (strncmp(text, "udp://", 6) == 0) { rest = text + 6; ep->type = SOCK_DGRAM; }
    else { fprintf(stderr, "echo-reference: endpoint must be tcp://, udp:// or unix:\n"); exit(2); }
    char host[256];
    const char *colon = strrchr(rest, ':');
    if (!colon || (size_t)(colon - rest) >= sizeof host) { fprintf(stderr, "echo-reference: no :PORT\n"); exit(2); }
    memcpy(host, rest, (size_t)(colon - rest));
    host[colon - rest] = '\0';
    char *h = host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { h[hl - 1] = '\0'; ++h; }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = ep->type;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0 || !res) {
        fprintf(stderr, "echo-reference: not a numeric HOST:PORT: %s\n", text);
        exit(2);
    }
    memcpy(&ep->addr, res->ai_addr, res->ai_addrlen);
    ep->len = res->ai_addrlen;
    ep->family = res->ai_family;
    freeaddrinfo(res);
}

static void print_bound(int fd, const struct endpoint *ep, const char *text) {
    if (ep->family == AF_UNIX) { printf("%s\n", text); fflush(stdout); return; }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) die("getsockname");
    char host[INET6_ADDRSTRLEN];
    int port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        printf("%s://[%s]:%d\n", ep->type == SOCK_DGRAM ? "udp" : "tcp", host, port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        printf("%s://%s:%d\n", ep->type == SOCK_DGRAM ? "udp" : "tcp", host, port);
    }
    fflush(stdout);
}

/* ---- streams ---------------------------------------------------------------------------- */

static void close_conn(struct conn *c) {
    close(c->fd);
    free(c->pending);
    free(c);
}

/* Write pending bytes; returns 0 when all are out, 1 when the kernel is full, -1 on error. */
static int flush_pending(struct conn *c) {
    while (c->pending_len > 0) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
        c->pending_off += (size_t)n;
        c->pending_len -= (size_t)n;
    }
    c->pending_off = 0;
    return 0;
}

/* Echo what has arrived. A short read means the queue is empty: the next edge wakes us. */
static int echo_stream(struct conn *c) {
    for (;;) {
        ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        if (n == 0) return -1;
        ssize_t w = 0;
        while (w < n) {
            ssize_t k = send(c->fd, buf + w, (size_t)(n - w), MSG_NOSIGNAL);
            if (k < 0 && errno == EINTR) continue;
            if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
            if (k < 0) break;
            w += k;
        }
        if (w < n) {  /* the kernel is full: keep the rest, stop reading until it drains */
            if (!c->pending && !(c->pending = malloc(BUF_SIZE))) die("malloc");
            memcpy(c->pending, buf + w, (size_t)(n - w));
            c->pending_off = 0;
            c->pending_len = (size_t)(n - w);
            c->paused = 1;
            return 0;
        }
        if (n < BUF_SIZE) return 0;
    }
}

static void on_conn_event(struct conn *c, unsigned events) {
    if (events & EPOLLERR) { close_conn(c); return; }
    if (c->paused && (events & EPOLLOUT)) {
        int r = flush_pending(c);
        if (r < 0) { close_conn(c); return; }
        if (r > 0) return;
        c->paused = 0;
        if (echo_stream(c) < 0) close_conn(c);  /* data may have queued while paused */
        return;
    }
    if (!c->paused && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
        if (echo_stream(c) < 0) close_conn(c);
}

static void accept_all(int ep, int lfd, int tcp) {
    for (int i = 0; i < 4096; ++i) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EMFILE || errno == ENFILE) { perror("echo-reference: accept4"); return; }
            die("accept4");
        }
        int one = 1;
        if (tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    }
}

/* ---- UDP -------------------------------------------------------------------------------- */

static void echo_datagrams(int fd) {
    static char data[UDP_BATCH][UDP_MAX];
    static struct sockaddr_storage peers[UDP_BATCH];
    static struct iovec iov[UDP_BATCH];
    static struct mmsghdr msgs[UDP_BATCH];
    for (int round = 0; round < 1 << 16; ++round) {
        for (int i = 0; i < UDP_BATCH; ++i) {
            iov[i].iov_base = data[i];
            iov[i].iov_len = UDP_MAX;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &peers[i];
            msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
        }
        int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            die("recvmmsg");
        }
        for (int i = 0; i < n; ++i) iov[i].iov_len = msgs[i].msg_len;
        for (int sent = 0; sent < n;) {
            int k = sendmmsg(fd, msgs + sent, (unsigned)(n - sent), MSG_DONTWAIT);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) { ++sent; continue; }  /* drop the one the kernel refused: it is UDP */
            sent += k;
        }
        if (n < UDP_BATCH) return;  /* fewer than asked: the queue is empty */
    }
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    const char *endpoint = NULL;
    int cpu = -1;
    double lifetime = 0;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--cpu") == 0 && i + 1 < argc) cpu = atoi(argv[++i]);
        else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc) lifetime = atof(argv[++i]);
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            puts("usage: echo-reference tcp://HOST:PORT|unix:PATH|udp://HOST:PORT [--cpu N] [--lifetime SECONDS]");
            return 0;
        } else if (argv[i][0] != '-' && !endpoint) endpoint = argv[i];
        else { fprintf(stderr, "echo-reference: unknown argument %s\n", argv[i]); return 2; }
    }
    if (!endpoint) endpoint = "tcp://127.0.0.1:0";
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct endpoint ep;
    parse_endpoint(endpoint, &ep);
    if (ep.unix_path[0]) unlink(ep.unix_path);
    int lfd = socket(ep.family, ep.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    if (ep.family != AF_UNIX) setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&ep.addr, ep.len) < 0) die("bind");
    if (ep.type == SOCK_STREAM && listen(lfd, 4096) < 0) die("listen");
    if (ep.type == SOCK_DGRAM) {
        int size = 4 << 20;
        setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll_ctl");
    int tfd = -1;
    if (lifetime > 0) {  /* a harness that dies never leaves us running for ever */
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = {0};
        its.it_value.tv_sec = (time_t)lifetime;
        its.it_value.tv_nsec = (long)((lifetime - (double)(time_t)lifetime) * 1e9);
        if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0) die("timerfd");
        struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &tfd};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev) < 0) die("epoll_ctl");
    }
    print_bound(lfd, &ep, endpoint);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; ++i) {
            void *p = events[i].data.ptr;
            if (p == &tfd) stopping = 1;
            else if (p == NULL && ep.type == SOCK_DGRAM) echo_datagrams(lfd);
            else if (p == NULL) accept_all(epfd, lfd, ep.family != AF_UNIX);
            else on_conn_event(p, events[i].events);
        }
    }
    if (ep.unix_path[0]) unlink(ep.unix_path);
    return 0;
}
