// The netlink core: build one request (NetlinkRequest), read a run of attributes (Attributes),
// and talk to the kernel over one socket (NetlinkSocket): a dump (multipart, ended by
// NLMSG_DONE) or a request answered by an ack. Kernel errors become socketeer::Error naming the
// request (`what`), with the kernel's extended ACK message when it sends one:
//   "add address 10.0.0.1/33 on veth0": [Errno 22] Invalid argument (kernel: Invalid prefix length)
// No Python in here; the families built on it (rtnetlink, sock_diag) parse messages into their
// own typed records.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "socketeer/error.hpp"
#include "socketeer/fd.hpp"

namespace socketeer {

// One netlink message under construction. The storage is allocated once, at `capacity` bytes,
// and never moves: a reference body<T>() returned stays valid for the request's lifetime, so a
// header can be filled in after attributes were appended. Going past the capacity throws
// InvalidArgument (no request of ours comes near the default).
class NetlinkRequest {
 public:
  static constexpr size_t kDefaultCapacity = 4096;

  // NLM_F_REQUEST is added to flags. The sequence number and port are set by NetlinkSocket.
  NetlinkRequest(uint16_t type, uint16_t flags, size_t capacity = kDefaultCapacity);

  // Appends a zeroed fixed header (ifinfomsg, rtmsg, inet_diag_req_v2 ...), NLMSG_ALIGNed.
  template <class T>
  T& body() {
    static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= NLMSG_ALIGNTO * 2);
    return *static_cast<T*>(append(sizeof(T)));
  }

  // Appends one attribute (rtattr and nlattr share this layout). `type` is used as given: OR in
  // NLA_F_NESTED yourself where the kernel's policy asks for it.
  void attribute(uint16_t type, const void* data, size_t size);
  void attribute_u8(uint16_t type, uint8_t value) { attribute(type, &value, sizeof value); }
  void attribute_u16(uint16_t type, uint16_t value) { attribute(type, &value, sizeof value); }
  void attribute_u32(uint16_t type, uint32_t value) { attribute(type, &value, sizeof value); }
  void attribute_u64(uint16_t type, uint64_t value) { attribute(type, &value, sizeof value); }
  // NUL-terminated, as the kernel's NLA_STRING / NLA_NUL_STRING policies take it.
  void attribute_string(uint16_t type, std::string_view value);

  // A nested attribute: begin_nested() returns its offset, end_nested() fixes its length once
  // the inner attributes are appended. `type` as in attribute().
  size_t begin_nested(uint16_t type);
  void end_nested(size_t offset);

  nlmsghdr* header() noexcept { return reinterpret_cast<nlmsghdr*>(data_.get()); }
  const nlmsghdr* header() const noexcept { return reinterpret_cast<const nlmsghdr*>(data_.get()); }
  std::span<const std::byte> bytes() const noexcept { return {data_.get(), header()->nlmsg_len}; }

 private:
  // Reserves NLMSG_ALIGN(size) zeroed bytes at the end and returns where they start.
  void* append(size_t size);

  std::unique_ptr<std::byte[]> data_;
  size_t capacity_;
};

struct Attribute {
  uint16_t type;  // NLA_TYPE_MASK applied: no NLA_F_NESTED / NLA_F_NET_BYTEORDER bits
  std::span<const std::byte> payload;
};

// A read-only view of a run of attributes (rtattr / nlattr). Iteration stops at the first
// attribute whose length is shorter than its header or runs past the end: nothing is ever read
// outside [start, start + length).
class Attributes {
 public:
  Attributes() noexcept = default;
  Attributes(const void* start, size_t length) noexcept
      : start_(static_cast<const std::byte*>(start)), length_(length) {}
  explicit Attributes(std::span<const std::byte> bytes) noexcept
      : Attributes(bytes.data(), bytes.size()) {}
  // The attributes after a message's fixed header of `header_size` bytes (ifinfomsg ...);
  // empty when the message is too short to hold that header.
  static Attributes of_message(const nlmsghdr& message, size_t header_size) noexcept;

  class iterator {
   public:
    using value_type = Attribute;
    using difference_type = std::ptrdiff_t;
    iterator() noexcept = default;
    iterator(const std::byte* at, const std::byte* end) noexcept : at_(at), end_(end) { settle(); }
    Attribute operator*() const noexcept { return current_; }
    iterator& operator++() noexcept;
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const iterator& other) const noexcept { return at_ == other.at_; }

   private:
    void settle() noexcept;  // reads the attribute at at_, or becomes end() if malformed
    const std::byte* at_ = nullptr;
    const std::byte* end_ = nullptr;
    Attribute current_{};
  };

  iterator begin() const noexcept { return {start_, start_ + length_}; }
  iterator end() const noexcept { return {}; }

  // The first attribute of that type (NLA_TYPE_MASK applied), if any.
  std::optional<std::span<const std::byte>> find(uint16_t type) const noexcept;
  // The attributes nested inside the first attribute of that type (empty if absent).
  Attributes nested(uint16_t type) const noexcept;

  // Typed getters: nullopt when absent or when the payload is shorter than the type.
  std::optional<uint8_t> u8(uint16_t type) const noexcept { return get<uint8_t>(type); }
  std::optional<uint16_t> u16(uint16_t type) const noexcept { return get<uint16_t>(type); }
  std::optional<uint32_t> u32(uint16_t type) const noexcept { return get<uint32_t>(type); }
  std::optional<uint64_t> u64(uint16_t type) const noexcept { return get<uint64_t>(type); }
  std::optional<int32_t> s32(uint16_t type) const noexcept { return get<int32_t>(type); }
  // The payload up to its first NUL (the whole payload if it has none).
  std::optional<std::string_view> string_view(uint16_t type) const noexcept;

  template <class T>
  std::optional<T> get(uint16_t type) const noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    auto payload = find(type);
    if (!payload || payload->size() < sizeof(T)) return std::nullopt;
    T value;
    std::memcpy(&value, payload->data(), sizeof(T));
    return value;
  }

 private:
  const std::byte* start_ = nullptr;
  size_t length_ = 0;
};

// The messages of one received datagram: a run of nlmsghdr, each checked with NLMSG_OK, so a
// truncated or malformed one ends the walk instead of being read past.
template <class F>
void for_each_message(std::span<const std::byte> bytes, F&& on_message) {
  auto* message = reinterpret_cast<const nlmsghdr*>(bytes.data());
  auto left = static_cast<int>(bytes.size());
  for (; NLMSG_OK(message, left); message = NLMSG_NEXT(message, left)) on_message(*message);
}

// An Error from an NLMSG_ERROR (or NLMSG_DONE) payload: code = -error, operation = what, reason
// = strerror plus " (kernel: MSG)" when the kernel attached an extended ACK message.
Error netlink_error(const nlmsghdr& message, int error, std::string_view what);

// One netlink socket: owns its fd (CLOEXEC), its sequence numbers and one receive buffer that
// every read reuses (no allocation per read on the dump path).
//
// A dump the kernel marks NLM_F_DUMP_INTR (its table changed while it was being walked, so
// entries may be missing or doubled) is read to its end and then reported: dump() throws
// Error(EINTR) naming the request; dump_consistent() calls on_restart() (the caller discards
// what it collected) and dumps again, up to `attempts` times, and only then throws. This is what
// iproute2 does by hand ("Dump was interrupted and may be inconsistent"), made a choice of the
// caller's. sock_diag never sets the flag; rtnetlink's address and route dumps can.
class NetlinkSocket {
 public:
  static constexpr size_t kReceiveBufferSize = 64 * 1024;  // > the kernel's 32 KiB dump skbs
  static constexpr int kSocketBufferSize = 4 * 1024 * 1024;

  // socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol), NETLINK_EXT_ACK, NETLINK_CAP_ACK and
  // NETLINK_GET_STRICT_CHK where the kernel has them, a 4 MiB receive buffer (SO_RCVBUFFORCE
  // with CAP_NET_ADMIN, else SO_RCVBUF up to net.core.rmem_max), bound to `groups` with a
  // kernel-assigned port id.
  explicit NetlinkSocket(int protocol, uint32_t groups = 0);
  // The same, created inside another network namespace (netns_fd: an open /proc/PID/ns/net or
  // /run/netns/NAME). The socket keeps talking to that namespace; the calling thread is back in
  // its own namespace when this returns or throws.
  NetlinkSocket(int protocol, uint32_t groups, int netns_fd);

  int fd() const noexcept { return fd_.get(); }
  uint32_t port_id() const noexcept { return port_id_; }

  // Sets NLM_F_DUMP and a fresh sequence number, sends, and calls on_message(const nlmsghdr&)
  // for every message of the reply until NLMSG_DONE. Throws Error naming `what` on NLMSG_ERROR
  // or an error in NLMSG_DONE, EINTR if the kernel flagged the dump interrupted (see above).
  template <class F>
  void dump(NetlinkRequest& request, std::string_view what, F&& on_message) {
    if (run_dump(request, what, on_message)) throw_interrupted(what);
  }
  template <class F, class R>
  void dump_consistent(NetlinkRequest& request, std::string_view what, R&& on_restart, F&& on_message,
                       int attempts = 3) {
    for (int attempt = 1;; ++attempt) {
      if (!run_dump(request, what, on_message)) return;
      if (attempt >= attempts) throw_interrupted(what);
      on_restart();
    }
  }

  // Sets NLM_F_ACK and a fresh sequence number, sends, and waits for the kernel's ack; throws
  // Error naming `what` if the kernel refused. Replies before the ack (a NLM_F_ECHO, or the
  // answer of a non-dump RTM_GET*) go to on_message.
  void request(NetlinkRequest& request, std::string_view what) {
    this->request(request, what, [](const nlmsghdr&) {});
  }
  template <class F>
  void request(NetlinkRequest& request, std::string_view what, F&& on_message) {
    uint32_t seq = send(request, NLM_F_ACK, what);
    for (;;) {
      bool acked = false;
      for_each_message(receive_batch(what), [&](const nlmsghdr& message) {
        if (acked || !ours(message, seq)) return;
        if (message.nlmsg_type == NLMSG_ERROR) {
          check_ack(message, what);
          acked = true;
        } else if (message.nlmsg_type != NLMSG_NOOP && message.nlmsg_type != NLMSG_DONE) {
          on_message(message);
        }
      });
      if (acked) return;
    }
  }

  // One blocking recv into the caller's buffer (for monitoring multicast groups); returns the
  // datagram's size. EINTR is retried through the interrupt hook; ENOBUFS (the kernel dropped
  // messages: the receive buffer overflowed) is thrown. The caller releases the GIL.
  size_t receive(std::span<std::byte> buffer);

 private:
  void open(int protocol, uint32_t groups);
  // Stamps flags, a fresh sequence number and port 0 into the request and sends it; returns
  // the sequence number.
  uint32_t send(NetlinkRequest& request, uint16_t flags, std::string_view what);
  // One recv into the reused buffer, datagrams from anyone but the kernel dropped; the bytes.
  std::span<const std::byte> receive_batch(std::string_view what);
  bool ours(const nlmsghdr& message, uint32_t seq) const noexcept {
    return message.nlmsg_seq == seq && message.nlmsg_pid == port_id_;
  }
  // An NLMSG_ERROR: returns on an ack (error 0), throws netlink_error otherwise.
  static void check_ack(const nlmsghdr& message, std::string_view what);
  // NLMSG_DONE's payload, when it has one, is an error (a dump that failed part way).
  static void check_done(const nlmsghdr& message, std::string_view what);
  [[noreturn]] static void throw_interrupted(std::string_view what);

  // The dump loop: true if the kernel flagged it NLM_F_DUMP_INTR.
  template <class F>
  bool run_dump(NetlinkRequest& request, std::string_view what, F& on_message) {
    uint32_t seq = send(request, NLM_F_DUMP, what);
    bool interrupted = false, done = false;
    while (!done) {
      for_each_message(receive_batch(what), [&](const nlmsghdr& message) {
        if (done || !ours(message, seq)) return;
        if (message.nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        switch (message.nlmsg_type) {
          case NLMSG_DONE:
            check_done(message, what);
            done = true;
            return;
          case NLMSG_ERROR:
            check_ack(message, what);  // an ack inside a dump carries nothing: skip it
            return;
          case NLMSG_NOOP:
            return;
          default:
            on_message(message);
        }
      });
    }
    return interrupted;
  }

  Fd fd_;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
  std::unique_ptr<std::byte[]> buffer_;
};

}  // namespace socketeer
