// socketeer-loadgen: a one-thread epoll load generator for echo servers.
//
// N connections each play ping-pong with S-byte messages: send S bytes, wait until S bytes came
// back, send the next. All connections are in flight at once, driven by one edge-triggered epoll
// loop over non-blocking sockets, so a single client core keeps up with any one-core server.
// Nothing is allocated per request: one send pattern, one receive buffer, a fixed log-bucket
// latency histogram.
//
//   socketeer-loadgen tcp://127.0.0.1:25000 --connections 10 --size 64 --duration 2 --warmup 0.5 --json
//   socketeer-loadgen unix:/tmp/echo.sock ...
//   socketeer-loadgen udp://127.0.0.1:25000 --window 1 --loss-timeout-ms 200 ...
//
// UDP: each "connection" is a connected datagram socket with at most --window datagrams in
// flight. A datagram carries its sequence number; one not answered within --loss-timeout-ms is
// counted lost and its slot reused, so a server that drops datagrams never hangs the run.
//
// --watch-pid PID reads the CPU time of PID from /proc exactly when the measured window opens and
// closes, so the harness gets the server's CPU time per request for that window only.
// Messages are b'x' * (S - 1) + b'\n', so line-framed servers can echo them too (vmbench's shape).

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "socketeer-loadgen: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "socketeer-loadgen: %s\n(see --help)\n", message.c_str());
    std::exit(2);
}

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

// ---- latency histogram: HDR-style log buckets, 64 linear sub-buckets per power of two (~1.6 %)

class Histogram {
public:
    void record(uint64_t ns) {
        ++counts_[index(ns)];
        ++total_;
        sum_ += ns;
        min_ = std::min(min_, ns);
        max_ = std::max(max_, ns);
    }
    void reset() { *this = Histogram{}; }
    uint64_t total() const { return total_; }
    double mean_us() const { return total_ ? double(sum_) / double(total_) / 1000.0 : 0.0; }
    double min_us() const { return total_ ? double(min_) / 1000.0 : 0.0; }
    double max_us() const { return double(max_) / 1000.0; }

    // The value at quantile q (0..1), as the middle of its bucket, clamped to the exact max.
    double quantile_us(double q) const {
        if (total_ == 0) return 0.0;
        auto rank = uint64_t(q * double(total_ - 1)) + 1;
        uint64_t seen = 0;
        for (size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return double(std::min(middle(i), max_)) / 1000.0;
        }
        return max_us();
    }

private:
    static constexpr int kSubBits = 6;
    static constexpr uint64_t kSub = 1u << kSubBits;

    static size_t index(uint64_t v) {
        if (v < kSub) return size_t(v);
        int msb = 63 - __builtin_clzll(v);
        int shift = msb - kSubBits;
        return size_t(kSub + uint64_t(shift) * kSub + ((v >> shift) - kSub));
    }
    static uint64_t middle(size_t i) {
        if (i < kSub) return i;
        uint64_t shift = (i - kSub) / kSub;
        uint64_t mantissa = kSub + (i - kSub) % kSub;
        return (mantissa << shift) + ((uint64_t(1) << shift) >> 1);
    }

    std::array<uint64_t, kSub + (64 - kSubBits) * kSub> counts_{};
    uint64_t total_ = 0, sum_ = 0, min_ = UINT64_MAX, max_ = 0;
};

// ---- command line

struct Options {
    std::string target;
    int connections = 10;
    size_t size = 64;
    double duration = 2.0;
    double warmup = 0.5;
    bool json = false;
    int cpu = -1;
    int window = 1;
    int loss_timeout_ms = 200;
    int connect_timeout_ms = 5000;
    long watch_pid = 0;
};

const char* kHelp =
    "usage: socketeer-loadgen TARGET [options]\n"
    "  TARGET                tcp://HOST:PORT | unix:PATH | udp://HOST:PORT (loopback only)\n"
    "  --connections N       concurrent connections (UDP: sockets), default 10\n"
    "  --size S              message size in bytes, default 64\n"
    "  --duration T          measured seconds, default 2\n"
    "  --warmup W            seconds run before measuring, default 0.5\n"
    "  --json                one JSON object on stdout instead of text\n"
    "  --cpu N               pin this process to CPU N (sched_setaffinity)\n"
    "  --window K            UDP: datagrams in flight per socket, default 1\n"
    "  --loss-timeout-ms M   UDP: a datagram unanswered after M ms is lost, default 200\n"
    "  --watch-pid PID       report PID's CPU time (utime, stime) over the measured window\n";

double parse_number(const char* name, const char* text, double low, double high) {
    char* end = nullptr;
    double v = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(v >= low && v <= high))
        usage_error(std::string(name) + " wants a number in [" + std::to_string(low) + ", " +
                    std::to_string(high) + "], not '" + text + "'");
    return v;
}

Options parse_options(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](double low, double high) {
            if (i + 1 >= argc) usage_error(a + " needs a value");
            return parse_number(a.c_str(), argv[++i], low, high);
        };
        if (a == "-h" || a == "--help") { std::fputs(kHelp, stdout); std::exit(0); }
        else if (a == "--json") o.json = true;
        else if (a == "--connections" || a == "-c") o.connections = int(value(1, 100000));
        else if (a == "--size" || a == "-s") o.size = size_t(value(1, 64 << 20));
        else if (a == "--duration" || a == "-d") o.duration = value(0.01, 86400);
        else if (a == "--warmup" || a == "-w") o.warmup = value(0, 86400);
        else if (a == "--cpu") o.cpu = int(value(0, CPU_SETSIZE - 1));
        else if (a == "--window") o.window = int(value(1, 4096));
        else if (a == "--loss-timeout-ms") o.loss_timeout_ms = int(value(1, 600000));
        else if (a == "--watch-pid") o.watch_pid = long(value(1, 1 << 30));
        else if (!a.empty() && a[0] != '-' && o.target.empty()) o.target = a;
        else usage_error("unknown argument '" + a + "'");
    }
    if (o.target.empty()) usage_error("no TARGET given");
    return o;
}

// ---- targets: tcp://HOST:PORT, udp://HOST:PORT, unix:PATH

struct Target {
    int family = AF_INET;
    int type = SOCK_STREAM;
    sockaddr_storage addr{};
    socklen_t len = 0;
    bool udp() const { return type == SOCK_DGRAM; }
    const char* transport() const { return family == AF_UNIX ? "unix" : udp() ? "udp" : "tcp"; }
};

Target parse_target(const std::string& text) {
    Target t;
    if (text.rfind("unix:", 0) == 0) {
        std::string path = text.substr(5);
        auto* sun = reinterpret_cast<sockaddr_un*>(&t.addr);
        if (path.empty() || path.size() >= sizeof(sun->sun_path)) usage_error("bad unix path in " + text);
        sun->sun_family = AF_UNIX;
        std::memcpy(sun->sun_path, path.data(), path.size());
        if (path[0] == '@') sun->sun_path[0] = '\0';  // abstract namespace
        t.family = AF_UNIX;
        t.len = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));
        return t;
    }
    std::string rest;
    if (text.rfind("tcp://", 0) == 0) rest = text.substr(6);
    else if (text.rfind("udp://", 0) == 0) { rest = text.substr(6); t.type = SOCK_DGRAM; }
    else usage_error("target must start with tcp://, udp:// or unix:, not '" + text + "'");
    auto colon = rest.rfind(':');
    if (colon == std::string::npos) usage_error("no :PORT in " + text);
    std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = t.type;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res)
        usage_error("not a numeric HOST:PORT: " + text);
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.len = res->ai_addrlen;
    t.family = res->ai_family;
    freeaddrinfo(res);
    return t;
}

// ---- CPU accounting of the watched server
//
// /proc/PID/stat has utime and stime (fields 14, 15) in clock ticks of 10 ms: too coarse for a
// window of a second or two (0.4 us x 30k requests is about one tick). /proc/PID/task/*/schedstat
// has each thread's run time in ns, exact but not split. So the total comes from schedstat and
// only the user/system split from the ticks (from the process's whole life when the window saw
// no tick at all, which makes that split approximate for short windows).

struct CpuTimes {
    double user = 0, sys = 0;  // from the ticks
    double runtime = -1;       // seconds from schedstat, summed over threads; -1: not available
    bool ok = false;
};

double read_runtime(long pid) {
    char dir_path[64];
    std::snprintf(dir_path, sizeof dir_path, "/proc/%ld/task", pid);
    DIR* dir = opendir(dir_path);
    if (!dir) return -1;
    double total = 0;
    bool any = false;
    for (int i = 0; i < 100000; ++i) {
        dirent* entry = readdir(dir);
        if (!entry) break;
        if (entry->d_name[0] == '.') continue;
        char path[320];
        std::snprintf(path, sizeof path, "/proc/%ld/task/%s/schedstat", pid, entry->d_name);
        FILE* f = std::fopen(path, "re");
        if (!f) continue;  // the thread ended meanwhile
        unsigned long long ns = 0;
        if (std::fscanf(f, "%llu", &ns) == 1) { total += double(ns) / 1e9; any = true; }
        std::fclose(f);
    }
    closedir(dir);
    return any ? total : -1;
}

CpuTimes read_proc_cpu(long pid) {
    CpuTimes c;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE* f = std::fopen(path, "re");
    if (!f) return c;
    char buf[1024];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');  // the command name may hold spaces and parentheses
    if (!p) return c;
    unsigned long long ut = 0, st = 0;
    // after ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
    if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return c;
    double tick = double(sysconf(_SC_CLK_TCK));
    c.user = double(ut) / tick;
    c.sys = double(st) / tick;
    c.runtime = read_runtime(pid);
    c.ok = true;
    return c;
}

// The server's CPU seconds in the window, split into user and system time.
struct CpuSpent {
    double user = 0, sys = 0;
    double total() const { return user + sys; }
};

CpuSpent cpu_between(const CpuTimes& before, const CpuTimes& after) {
    double ticks_user = after.user - before.user, ticks_sys = after.sys - before.sys;
    double ticks = ticks_user + ticks_sys;
    if (before.runtime < 0 || after.runtime < 0) return {ticks_user, ticks_sys};
    double total = std::max(0.0, after.runtime - before.runtime);
    double share = ticks > 0 ? ticks_user / ticks
                 : after.user + after.sys > 0 ? after.user / (after.user + after.sys) : 0.0;
    return {total * share, total * (1 - share)};
}

CpuTimes self_cpu() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    CpuTimes c;
    c.user = double(ru.ru_utime.tv_sec) + double(ru.ru_utime.tv_usec) / 1e6;
    c.sys = double(ru.ru_stime.tv_sec) + double(ru.ru_stime.tv_usec) / 1e6;
    c.ok = true;
    return c;
}

// ---- the run: phases, counters, the epoll loop

struct Stats {
    uint64_t requests = 0;
    uint64_t sent = 0;      // UDP datagrams sent
    uint64_t lost = 0;      // UDP datagrams not answered in time
    uint64_t stray = 0;     // UDP replies that match no outstanding datagram (late, duplicated)
    uint64_t errors = 0;    // connections closed or failed under us
    Histogram latency;
};

struct Conn {
    int fd = -1;
    bool alive = false;
    size_t sent = 0;        // bytes of the current request written
    size_t received = 0;    // bytes of the current reply read
    uint64_t started = 0;   // when the current request began
};

struct UdpSlot {
    uint64_t seq = 0;
    uint64_t sent_at = 0;
    bool busy = false;
};

struct UdpSock {
    int fd = -1;
    uint64_t next_seq = 1;
    std::vector<UdpSlot> slots;  // indexed by seq % window
};

class LoadGen {
public:
    explicit LoadGen(const Options& o) : opt_(o), target_(parse_target(o.target)) {
        if (target_.udp() && (opt_.size < 8 || opt_.size > 65507))
            usage_error("UDP --size must be 8 (the sequence number) to 65507 (the largest datagram)");
        message_.assign(opt_.size, 'x');
        message_.back() = '\n';
        recv_buf_.resize(std::max<size_t>(opt_.size, 256 * 1024));
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) die("epoll_create1");
    }

    int run() {
        if (target_.udp()) open_udp(); else open_streams();
        uint64_t t0 = now_ns();
        measure_from_ = t0 + uint64_t(opt_.warmup * 1e9);
        end_at_ = measure_from_ + uint64_t(opt_.duration * 1e9);
        if (target_.udp()) start_udp(t0); else start_streams(t0);
        loop();
        return report();
    }

private:
    // -- streams (TCP, unix)

    void open_streams() {
        conns_.resize(size_t(opt_.connections));
        for (size_t i = 0; i < conns_.size(); ++i) {
            Conn& c = conns_[i];
            c.fd = connect_blocking();
            int one = 1;
            if (target_.family != AF_UNIX) setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            set_nonblocking(c.fd);
            c.alive = true;
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            ev.data.u64 = i;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) < 0) die("epoll_ctl");
        }
    }

    void start_streams(uint64_t now) {
        for (auto& c : conns_) begin_request(c, now);
    }

    void begin_request(Conn& c, uint64_t now) {
        c.sent = c.received = 0;
        c.started = now;
        flush(c);
    }

    void flush(Conn& c) {
        while (c.alive && c.sent < message_.size()) {
            ssize_t n = ::send(c.fd, message_.data() + c.sent, message_.size() - c.sent, MSG_NOSIGNAL);
            if (n > 0) { c.sent += size_t(n); continue; }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT resumes it
            fail(c);
        }
    }

    // Read until the reply is complete or the socket is drained. A short read means the receive
    // queue was empty, so no EAGAIN round trip is spent; the next edge wakes us for new data.
    void on_stream_event(Conn& c, uint32_t events, uint64_t now) {
        if (c.sent < message_.size()) flush(c);
        while (c.alive && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) {
            size_t want = std::min(recv_buf_.size(), message_.size() - c.received);
            ssize_t n = ::recv(c.fd, recv_buf_.data(), want, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n <= 0) { fail(c); return; }
            c.received += size_t(n);
            if (c.received == message_.size()) {
                now = now_ns();
                complete(now - c.started, now);
                if (now >= end_at_) return;
                begin_request(c, now);
                return;  // ping-pong: nothing more can be queued for this connection now
            }
            if (size_t(n) < want) return;
        }
    }

    void fail(Conn& c) {
        if (!c.alive) return;
        c.alive = false;
        ++stats_.errors;
        ::close(c.fd);
        c.fd = -1;
        --alive_;
    }

    // -- UDP

    void open_udp() {
        udps_.resize(size_t(opt_.connections));
        for (size_t i = 0; i < udps_.size(); ++i) {
            UdpSock& u = udps_[i];
            u.fd = ::socket(target_.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (u.fd < 0) die("socket");
            if (::connect(u.fd, reinterpret_cast<sockaddr*>(&target_.addr), target_.len) < 0) die("connect");
            u.slots.resize(size_t(opt_.window));
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLET;
            ev.data.u64 = i;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, u.fd, &ev) < 0) die("epoll_ctl");
        }
    }

    void start_udp(uint64_t now) {
        for (auto& u : udps_)
            for (auto& s : u.slots) send_datagram(u, s, now);
    }

    void send_datagram(UdpSock& u, UdpSlot& slot, uint64_t now) {
        uint64_t seq = u.next_seq;
        // the slot for seq must be this one: advance next_seq until it maps here
        size_t index = size_t(&slot - u.slots.data());
        while (seq % u.slots.size() != index) ++seq;
        u.next_seq = seq + 1;
        std::memcpy(message_.data(), &seq, sizeof seq);
        slot.seq = seq;
        slot.sent_at = now;
        slot.busy = true;
        ssize_t n = ::send(u.fd, message_.data(), message_.size(), 0);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNREFUSED && errno != ENOBUFS) die("send");
        if (in_window(now)) ++stats_.sent;
        // A refused or dropped send is left to the loss timeout, like a datagram lost in flight.
    }

    void on_udp_event(UdpSock& u, uint64_t now) {
        for (int i = 0; i < 1 << 20; ++i) {  // bounded: drains at most this many per wake-up
            ssize_t n = ::recv(u.fd, recv_buf_.data(), recv_buf_.size(), 0);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == ECONNREFUSED) { ++stats_.errors; continue; }  // server not there (yet)
                return;  // EAGAIN
            }
            uint64_t seq = 0;
            if (size_t(n) < sizeof seq) { ++stats_.stray; continue; }
            std::memcpy(&seq, recv_buf_.data(), sizeof seq);
            UdpSlot& slot = u.slots[seq % u.slots.size()];
            if (!slot.busy || slot.seq != seq) { ++stats_.stray; continue; }
            now = now_ns();
            complete(now - slot.sent_at, now);
            slot.busy = false;
            if (now < end_at_) send_datagram(u, slot, now);
        }
    }

    void expire_udp(uint64_t now) {
        uint64_t timeout = uint64_t(opt_.loss_timeout_ms) * 1000000u;
        for (auto& u : udps_)
            for (auto& s : u.slots)
                if (s.busy && now - s.sent_at >= timeout) {
                    if (in_window(s.sent_at)) ++stats_.lost;
                    s.busy = false;
                    send_datagram(u, s, now);
                }
    }

    // -- shared

    bool in_window(uint64_t t) const { return t >= measure_from_ && t < end_at_; }

    void complete(uint64_t latency_ns, uint64_t now) {
        if (!in_window(now)) return;
        ++stats_.requests;
        stats_.latency.record(latency_ns);
    }

    // Snapshots taken when the window opens and closes: our own and the watched server's CPU.
    void open_window() {
        window_open_ = true;
        watch_before_ = opt_.watch_pid ? read_proc_cpu(opt_.watch_pid) : CpuTimes{};
        self_before_ = self_cpu();
    }

    void close_window() {
        watch_after_ = opt_.watch_pid ? read_proc_cpu(opt_.watch_pid) : CpuTimes{};
        self_after_ = self_cpu();
        measured_ns_ = now_ns() - measure_from_;
    }

    void loop() {
        std::array<epoll_event, 256> events{};
        uint64_t next_expiry = 0;
        for (;;) {
            uint64_t now = now_ns();
            if (!window_open_ && now >= measure_from_) open_window();
            if (now >= end_at_) break;
            if (!target_.udp() && alive_ == 0) break;
            if (target_.udp() && now >= next_expiry) {
                expire_udp(now);
                next_expiry = now + 1000000;  // scan for losses once a millisecond at most
            }
            uint64_t until = window_open_ ? end_at_ : measure_from_;
            if (target_.udp()) until = std::min(until, next_expiry);
            int timeout_ms = int(std::min<uint64_t>((until - now + 999999) / 1000000, 1000));
            int n = epoll_wait(ep_, events.data(), int(events.size()), timeout_ms);
            if (n < 0) {
                if (errno == EINTR) continue;
                die("epoll_wait");
            }
            now = now_ns();
            for (int i = 0; i < n; ++i) {
                size_t index = size_t(events[size_t(i)].data.u64);
                if (target_.udp()) on_udp_event(udps_[index], now);
                else on_stream_event(conns_[index], events[size_t(i)].events, now);
            }
        }
        if (!window_open_) open_window();
        close_window();
    }

    int connect_blocking() {
        int fd = ::socket(target_.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        timeval tv{opt_.connect_timeout_ms / 1000, (opt_.connect_timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect()
        for (int attempt = 0;; ++attempt) {
            if (::connect(fd, reinterpret_cast<sockaddr*>(&target_.addr), target_.len) == 0) break;
            // A listen backlog full of our own earlier connections: retry briefly.
            if ((errno == EAGAIN || errno == EINTR) && attempt < 100) { usleep(10000); continue; }
            std::fprintf(stderr, "socketeer-loadgen: connect to %s: %s\n", opt_.target.c_str(), std::strerror(errno));
            std::exit(3);
        }
        ++alive_;
        return fd;
    }

    static void set_nonblocking(int fd) {
        timeval zero{};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof zero);
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) die("fcntl O_NONBLOCK");
    }

    int report() {
        double seconds = double(measured_ns_) / 1e9;
        double rps = seconds > 0 ? double(stats_.requests) / seconds : 0.0;
        double mib = rps * double(opt_.size) / (1024.0 * 1024.0);
        const Histogram& h = stats_.latency;
        double client_cpu = (self_after_.user + self_after_.sys) - (self_before_.user + self_before_.sys);
        bool watched = watch_before_.ok && watch_after_.ok;
        CpuSpent spent = cpu_between(watch_before_, watch_after_);
        double su = spent.user, ss = spent.sys;
        double per = stats_.requests ? 1e6 / double(stats_.requests) : 0.0;
        if (opt_.json) {
            std::printf("{\"target\": \"%s\", \"transport\": \"%s\", \"connections\": %d, \"size\": %zu, "
                        "\"warmup\": %.3f, \"duration\": %.6f, \"requests\": %" PRIu64 ", \"rps\": %.1f, "
                        "\"mib_per_s\": %.3f, \"errors\": %" PRIu64 ", "
                        "\"latency_us\": {\"min\": %.2f, \"mean\": %.2f, \"p50\": %.2f, \"p90\": %.2f, "
                        "\"p99\": %.2f, \"p999\": %.2f, \"max\": %.2f}, \"client_cpu_utilization\": %.3f",
                        json_escape(opt_.target).c_str(), target_.transport(), opt_.connections, opt_.size,
                        opt_.warmup, seconds, stats_.requests, rps, mib, stats_.errors, h.min_us(), h.mean_us(),
                        h.quantile_us(0.5), h.quantile_us(0.9), h.quantile_us(0.99), h.quantile_us(0.999),
                        h.max_us(), seconds > 0 ? client_cpu / seconds : 0.0);
            if (target_.udp())
                std::printf(", \"udp\": {\"window\": %d, \"sent\": %" PRIu64 ", \"lost\": %" PRIu64
                            ", \"stray\": %" PRIu64 ", \"loss_timeout_ms\": %d}",
                            opt_.window, stats_.sent, stats_.lost, stats_.stray, opt_.loss_timeout_ms);
            if (watched)
                std::printf(", \"server_cpu\": {\"pid\": %ld, \"user_s\": %.3f, \"sys_s\": %.3f, "
                            "\"user_us_per_req\": %.4f, \"sys_us_per_req\": %.4f, \"cpu_us_per_req\": %.4f, "
                            "\"utilization\": %.3f}",
                            opt_.watch_pid, su, ss, su * per, ss * per, (su + ss) * per,
                            seconds > 0 ? (su + ss) / seconds : 0.0);
            else if (opt_.watch_pid)
                std::printf(", \"server_cpu\": null");
            std::printf("}\n");
        } else {
            std::printf("%" PRIu64 " requests of %zu B over %d %s connections in %.3f s\n", stats_.requests,
                        opt_.size, opt_.connections, target_.transport(), seconds);
            std::printf("Requests/sec: %.1f   Transfer/sec: %.3f MiB   errors: %" PRIu64 "\n", rps, mib, stats_.errors);
            std::printf("Latency us: min %.1f  mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n",
                        h.min_us(), h.mean_us(), h.quantile_us(0.5), h.quantile_us(0.9), h.quantile_us(0.99),
                        h.quantile_us(0.999), h.max_us());
            if (target_.udp())
                std::printf("UDP: window %d, sent %" PRIu64 ", lost %" PRIu64 ", stray %" PRIu64 "\n", opt_.window,
                            stats_.sent, stats_.lost, stats_.stray);
            std::printf("Client CPU: %.0f %%\n", seconds > 0 ? 100.0 * client_cpu / seconds : 0.0);
            if (watched)
                std::printf("Server CPU: %.3f us/request (user %.3f, sys %.3f), %.0f %% busy\n", (su + ss) * per,
                            su * per, ss * per, seconds > 0 ? 100.0 * (su + ss) / seconds : 0.0);
        }
        std::fflush(stdout);
        return stats_.requests > 0 ? 0 : 1;
    }

    static std::string json_escape(const std::string& s) {
        std::string out;
        for (char ch : s) {
            if (ch == '"' || ch == '\\') out += '\\';
            if (static_cast<unsigned char>(ch) < 0x20) continue;
            out += ch;
        }
        return out;
    }

    Options opt_;
    Target target_;
    int ep_ = -1;
    std::string message_;
    std::vector<char> recv_buf_;
    std::vector<Conn> conns_;
    std::vector<UdpSock> udps_;
    int alive_ = 0;
    Stats stats_;
    uint64_t measure_from_ = 0, end_at_ = 0, measured_ns_ = 0;
    bool window_open_ = false;
    CpuTimes watch_before_, watch_after_, self_before_, self_after_;
};

}  // namespace

int main(int argc, char** argv) {
    Options opt = parse_options(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (opt.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opt.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) < 0) die("sched_setaffinity");
    }
    LoadGen gen(opt);
    return gen.run();
}
