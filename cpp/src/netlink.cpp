#include "socketeer/netlink.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "socketeer/interrupt.hpp"
#include "socketeer/netns.hpp"

namespace socketeer {

// --- NetlinkRequest -------------------------------------------------------------------------

NetlinkRequest::NetlinkRequest(uint16_t type, uint16_t flags, size_t capacity)
    : data_(new std::byte[capacity]()), capacity_(capacity) {
  if (capacity < NLMSG_HDRLEN) throw InvalidArgument("netlink request capacity too small");
  nlmsghdr* h = header();
  h->nlmsg_len = NLMSG_HDRLEN;
  h->nlmsg_type = type;
  h->nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST);
}

void* NetlinkRequest::append(size_t size) {
  size_t at = header()->nlmsg_len;  // always NLMSG_ALIGNed
  size_t aligned = NLMSG_ALIGN(size);
  if (aligned > capacity_ - at)
    throw InvalidArgument("netlink request larger than its " + std::to_string(capacity_) +
                          " bytes");
  header()->nlmsg_len = static_cast<uint32_t>(at + aligned);
  return data_.get() + at;  // zeroed at allocation, never written before
}

void NetlinkRequest::attribute(uint16_t type, const void* data, size_t size) {
  if (size > 0xffff - NLA_HDRLEN) throw InvalidArgument("netlink attribute larger than 64 KiB");
  auto* at = static_cast<std::byte*>(append(NLA_HDRLEN + size));
  nlattr attr{static_cast<uint16_t>(NLA_HDRLEN + size), type};
  std::memcpy(at, &attr, sizeof attr);
  if (size) std::memcpy(at + NLA_HDRLEN, data, size);
}

void NetlinkRequest::attribute_string(uint16_t type, std::string_view value) {
  auto* at = static_cast<std::byte*>(append(NLA_HDRLEN + value.size() + 1));
  nlattr attr{static_cast<uint16_t>(NLA_HDRLEN + value.size() + 1), type};
  std::memcpy(at, &attr, sizeof attr);
  std::memcpy(at + NLA_HDRLEN, value.data(), value.size());  // the NUL is already there
}

size_t NetlinkRequest::begin_nested(uint16_t type) {
  size_t offset = header()->nlmsg_len;
  attribute(type, nullptr, 0);
  return offset;
}

void NetlinkRequest::end_nested(size_t offset) {
  size_t length = header()->nlmsg_len - offset;
  if (offset + NLA_HDRLEN > header()->nlmsg_len || length > 0xffff)
    throw InvalidArgument("netlink nested attribute: bad offset or larger than 64 KiB");
  auto len = static_cast<uint16_t>(length);
  std::memcpy(data_.get() + offset + offsetof(nlattr, nla_len), &len, sizeof len);
}

// --- Attributes ----------------------------------------------------------------------------

Attributes Attributes::of_message(const nlmsghdr& message, size_t header_size) noexcept {
  size_t start = NLMSG_HDRLEN + NLMSG_ALIGN(header_size);
  if (message.nlmsg_len < start) return {};
  return {reinterpret_cast<const std::byte*>(&message) + start, message.nlmsg_len - start};
}

void Attributes::iterator::settle() noexcept {
  if (at_ == nullptr) return;
  size_t left = static_cast<size_t>(end_ - at_);
  nlattr attr;
  if (left >= NLA_HDRLEN) std::memcpy(&attr, at_, sizeof attr);
  if (left < NLA_HDRLEN || attr.nla_len < NLA_HDRLEN || attr.nla_len > left) {
    at_ = end_ = nullptr;  // end(), also for a malformed tail
    return;
  }
  current_ = {static_cast<uint16_t>(attr.nla_type & NLA_TYPE_MASK),
              {at_ + NLA_HDRLEN, static_cast<size_t>(attr.nla_len - NLA_HDRLEN)}};
}

Attributes::iterator& Attributes::iterator::operator++() noexcept {
  size_t step = NLA_ALIGN(static_cast<size_t>(current_.payload.size() + NLA_HDRLEN));
  if (step >= static_cast<size_t>(end_ - at_)) {
    at_ = end_ = nullptr;
  } else {
    at_ += step;
    settle();
  }
  return *this;
}

std::optional<std::span<const std::byte>> Attributes::find(uint16_t type) const noexcept {
  for (Attribute attr : *this)
    if (attr.type == type) return attr.payload;
  return std::nullopt;
}

Attributes Attributes::nested(uint16_t type) const noexcept {
  auto payload = find(type);
  return payload ? Attributes(*payload) : Attributes();
}

std::optional<std::string_view> Attributes::string_view(uint16_t type) const noexcept {
  auto payload = find(type);
  if (!payload) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(payload->data()), payload->size());
  return text.substr(0, text.find('\0'));
}

// --- errors ----------------------------------------------------------------------------------

namespace {

// The extended ACK's text in the TLVs after an error (NLM_F_ACK_TLVS), if the kernel sent one.
std::string_view extack_message(const nlmsghdr& message, size_t tlv_offset) {
  if (!(message.nlmsg_flags & NLM_F_ACK_TLVS) || message.nlmsg_len < NLMSG_HDRLEN + tlv_offset)
    return {};
  Attributes tlvs(reinterpret_cast<const std::byte*>(&message) + NLMSG_HDRLEN + tlv_offset,
                  message.nlmsg_len - NLMSG_HDRLEN - tlv_offset);
  return tlvs.string_view(NLMSGERR_ATTR_MSG).value_or(std::string_view());
}

Error error_with_message(int code, std::string_view what, std::string_view kernel_message) {
  std::string reason = std::strerror(code);
  if (!kernel_message.empty()) reason += " (kernel: " + std::string(kernel_message) + ")";
  return Error(code, std::string(what), {}, std::move(reason));
}

}  // namespace

Error netlink_error(const nlmsghdr& message, int error, std::string_view what) {
  int code = error < 0 ? -error : error;
  size_t tlv_offset = 0;
  if (message.nlmsg_type == NLMSG_ERROR) {
    // nlmsgerr, then the request echoed whole unless NLM_F_CAPPED (NETLINK_CAP_ACK), then TLVs.
    tlv_offset = sizeof(nlmsgerr);
    if (!(message.nlmsg_flags & NLM_F_CAPPED) &&
        message.nlmsg_len >= NLMSG_HDRLEN + sizeof(nlmsgerr)) {
      nlmsgerr err;
      std::memcpy(&err, NLMSG_DATA(&message), sizeof err);
      if (err.msg.nlmsg_len > NLMSG_HDRLEN) tlv_offset += NLMSG_ALIGN(err.msg.nlmsg_len - NLMSG_HDRLEN);
    }
  } else {  // NLMSG_DONE: the int error, then TLVs
    tlv_offset = NLMSG_ALIGN(sizeof(int));
  }
  return error_with_message(code, what, extack_message(message, tlv_offset));
}

void NetlinkSocket::check_ack(const nlmsghdr& message, std::string_view what) {
  int error;
  if (message.nlmsg_len < NLMSG_LENGTH(sizeof error))
    throw Error(EBADMSG, std::string(what), {}, "truncated netlink error message");
  std::memcpy(&error, NLMSG_DATA(&message), sizeof error);
  if (error != 0) throw netlink_error(message, error, what);
}

void NetlinkSocket::check_done(const nlmsghdr& message, std::string_view what) {
  int error;
  if (message.nlmsg_len < NLMSG_LENGTH(sizeof error)) return;  // an old kernel's empty DONE
  std::memcpy(&error, NLMSG_DATA(&message), sizeof error);
  if (error < 0) throw netlink_error(message, error, what);
}

void NetlinkSocket::throw_interrupted(std::string_view what) {
  throw Error(EINTR, std::string(what), {},
              "Interrupted system call (the kernel's table changed during the dump, which may "
              "be inconsistent; retry)");
}

// --- NetlinkSocket ----------------------------------------------------------------------------

NetlinkSocket::NetlinkSocket(int protocol, uint32_t groups) { open(protocol, groups); }

NetlinkSocket::NetlinkSocket(int protocol, uint32_t groups, int netns_fd) {
  NetnsScope scope(netns_fd);
  open(protocol, groups);
}

void NetlinkSocket::open(int protocol, uint32_t groups) {
  fd_.reset(check(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol), "socket(AF_NETLINK)"));
  int fd = fd_.get();
  int one = 1;
  // Options newer kernels have; an older one answering ENOPROTOOPT just goes without.
  for (int option : {NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK}) {
    if (::setsockopt(fd, SOL_NETLINK, option, &one, sizeof one) != 0 && errno != ENOPROTOOPT)
      throw_error(errno, "setsockopt(SOL_NETLINK)");
  }
  // A big dump arrives faster than it is read: without room it fails with ENOBUFS. FORCE takes
  // CAP_NET_ADMIN; without it the kernel caps SO_RCVBUF at net.core.rmem_max.
  int size = kSocketBufferSize;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    check(::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size), "setsockopt(SO_RCVBUF)");
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = groups;
  check(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local), "bind(AF_NETLINK)");
  socklen_t length = sizeof local;
  check(::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length), "getsockname(AF_NETLINK)");
  port_id_ = local.nl_pid;
  buffer_.reset(new std::byte[kReceiveBufferSize]);
}

uint32_t NetlinkSocket::send(NetlinkRequest& request, uint16_t flags, std::string_view what) {
  nlmsghdr* h = request.header();
  h->nlmsg_flags = static_cast<uint16_t>(h->nlmsg_flags | flags);
  h->nlmsg_seq = ++seq_;
  h->nlmsg_pid = 0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  auto bytes = request.bytes();
  ssize_t sent = retry_eintr([&] {
    return ::sendto(fd_.get(), bytes.data(), bytes.size(), 0,
                    reinterpret_cast<const sockaddr*>(&kernel), sizeof kernel);
  });
  check(sent, what);
  return h->nlmsg_seq;
}

std::span<const std::byte> NetlinkSocket::receive_batch(std::string_view what) {
  for (;;) {
    sockaddr_nl from{};
    iovec iov{buffer_.get(), kReceiveBufferSize};
    msghdr header{};
    header.msg_name = &from;
    header.msg_namelen = sizeof from;
    header.msg_iov = &iov;
    header.msg_iovlen = 1;
    ssize_t n = retry_eintr([&] { return ::recvmsg(fd_.get(), &header, 0); });
    check(n, what);
    if (header.msg_flags & MSG_TRUNC)
      throw Error(EMSGSIZE, std::string(what), {},
                  "netlink message larger than the " + std::to_string(kReceiveBufferSize) +
                      "-byte receive buffer");
    if (from.nl_pid != 0) continue;  // not from the kernel: not an answer to us
    return {buffer_.get(), static_cast<size_t>(n)};
  }
}

size_t NetlinkSocket::receive(std::span<std::byte> buffer) {
  ssize_t n = retry_eintr([&] { return ::recv(fd_.get(), buffer.data(), buffer.size(), 0); });
  return static_cast<size_t>(check(n, "recv(AF_NETLINK)"));
}

}  // namespace socketeer
