// Reactor: a datagram endpoint's state machine. Taking the socket over (with UDP GRO and GSO
// where the kernel has them), one recvmmsg per turn into the endpoint's arena, replies queued
// per endpoint and sent with sendmmsg (GSO runs where they apply). The loop that drives it is
// reactor.cpp.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "socketeer/error.hpp"
#include "socketeer/reactor.hpp"
#include "reactor_parts.hpp"

namespace socketeer {

using namespace reactor_parts;

namespace {

using namespace std::chrono_literals;

// --- UDP segmentation offloads (see datagram_batch.hpp) ---

// GRO may hand over up to 64 KiB in one slot (the kernel's limit for a coalesced packet, with
// the default gro_max_size); a smaller slot would truncate it and lose whole datagrams, so
// endpoints with smaller slots go without GRO.
constexpr size_t kCoalescedRoom = 65536;

bool is_udp(const Socket& socket) {
  return (socket.family() == AF_INET || socket.family() == AF_INET6) && socket.type() == SOCK_DGRAM &&
         (socket.protocol() == 0 || socket.protocol() == IPPROTO_UDP);
}

// UDP_GRO arrived in Linux 5.0, UDP_SEGMENT in 4.18; older kernels answer ENOPROTOOPT (EINVAL).
bool unknown_option(int code) { return code == ENOPROTOOPT || code == EINVAL; }

bool enable_receive_offload(Socket& socket) {
  try {
    socket.set_option(SOL_UDP, UDP_GRO, 1);
    return true;
  } catch (const Error& error) {
    if (!unknown_option(error.code_value())) throw;
    return false;
  }
}

// GSO is asked for per message, with a UDP_SEGMENT control message, and a kernel older than
// 4.18 ignores control messages of SOL_UDP: it would send a whole run as ONE datagram. So ask
// first whether the socket option of the same name (and age) exists.
bool supports_segment_offload(const Socket& socket) {
  try {
    (void)socket.get_option(SOL_UDP, UDP_SEGMENT);
    return true;
  } catch (const Error& error) {
    if (!unknown_option(error.code_value())) throw;
    return false;
  }
}

// A kernel that knows GSO may still refuse a GSO message: a device without checksum offload or
// a UDP-Lite socket (EIO), a segment larger than the route's MTU (EINVAL), a driver without
// support (EOPNOTSUPP). The same datagrams one per message may well go, so they are tried so.
bool refuses_segmentation(int code) {
  return code == EIO || code == EINVAL || code == ENOPROTOOPT || code == EOPNOTSUPP || code == EMSGSIZE;
}

}  // namespace

uint64_t Reactor::add_datagram(Socket endpoint) {
  endpoint.set_timeout(0ns);
  bool offload = options_.udp_gso && is_udp(endpoint);
  bool receive_offload = offload && options_.datagram_size >= kCoalescedRoom && enable_receive_offload(endpoint);
  bool segment_offload = offload && supports_segment_offload(endpoint);
  auto entry = std::make_unique<DatagramEndpoint>(
      0, std::move(endpoint), DatagramBatch(options_.datagram_batch, options_.datagram_size, receive_offload),
      segment_offload);
  engine_->add(entry->socket.fd(), Ready::readable | Ready::writable, Mode::edge, token_of(kDatagram, entry.get()));
  return hand_over(std::move(entry), pending_datagrams_);
}

void Reactor::read_datagrams(DatagramEndpoint& endpoint) {
  // One recvmmsg per turn: its arena is what this turn's events point into, so a second one
  // before dispatch would overwrite datagrams not yet delivered.
  if (endpoint.read_in_turn == stats_.turns) {
    endpoint.read_again = true;
    return;
  }
  endpoint.read_in_turn = stats_.turns;
  std::optional<size_t> count;
  try {
    count = endpoint.socket.recv_many(endpoint.batch);
  } catch (const Error&) {
    return;  // ICMP errors (ECONNREFUSED ...) surface here on UDP; nothing to close
  }
  if (!count) return;
  endpoint.senders.clear();
  endpoint.senders.reserve(*count);
  for (size_t i = 0; i < *count; ++i) endpoint.senders.push_back(endpoint.batch.address(i).value_or(UnixAddress()));
  size_t before = events_.size();
  for (size_t i = 0; i < *count; ++i) {
    if (endpoint.batch.truncated(i)) {
      ++stats_.truncated_datagrams;  // the rest of it is gone: a part is not the datagram sent
      continue;
    }
    std::string_view data = endpoint.batch.data(i);
    const Address* from = &endpoint.senders[i];
    // GRO: the kernel coalesces datagrams of one sender that arrive back to back while they
    // have one size, and a shorter one ends the run; so the slot holds pieces of segment_size
    // bytes, the last one possibly shorter. Each is a datagram of its own, with the same sender.
    size_t segment = endpoint.batch.segment_size(i);
    if (segment == 0 || data.size() <= segment) {
      events_.push_back({ReactorEvent::Kind::datagram, endpoint.id, data, {}, from});
      continue;
    }
    for (; !data.empty(); data.remove_prefix(std::min(segment, data.size()))) {
      events_.push_back({ReactorEvent::Kind::datagram, endpoint.id, data.substr(0, segment), {}, from});
      ++stats_.gro_segments;
    }
  }
  stats_.datagrams += events_.size() - before;
  if (*count == endpoint.batch.slots()) endpoint.read_again = true;
}

bool Reactor::send_to(uint64_t id, const char* data, size_t size, const Address& to, uint64_t token) {
  if (!on_loop_thread()) {
    auto copy = std::make_shared<std::string>(data, size);
    post([this, id, copy, to] { send_to(id, copy->data(), copy->size(), to); });
    return true;
  }
  for (auto& endpoint : datagrams_) {
    if (endpoint->id != id) continue;
    if (endpoint->output.size() >= options_.max_datagram_queue) {
      ++stats_.dropped_datagrams;
      if (token) released_.push_back(token);
      return false;
    }
    // Datagrams from this turn's arena stay valid until the flush below; others are copied.
    Chunk chunk{data, size, token, nullptr, false};
    bool in_arena = !token && !endpoint->senders.empty() && data >= endpoint->batch.data(0).data() &&
                    data < endpoint->batch.data(0).data() + endpoint->batch.slots() * endpoint->batch.slot_size();
    if (!token && !in_arena) {
      chunk.owned = std::make_unique<char[]>(size);
      std::memcpy(chunk.owned.get(), data, size);
      chunk.data = chunk.owned.get();
    }
    chunk.borrowed = in_arena;
    endpoint->output.push_back({std::move(chunk), to});
    if (!endpoint->dirty) {
      endpoint->dirty = true;
      datagram_dirty_.push_back(endpoint.get());
    }
    return true;
  }
  if (token) released_.push_back(token);
  return false;
}

// One sendmmsg of up to kMaxIovecs queued datagrams, repeated until the queue is empty or the
// socket is full (it reports writable again, edge, once it drains). With GSO, a run of replies
// to one address with one size goes as one message; it counts as all its datagrams.
void Reactor::flush(DatagramEndpoint& endpoint) {
  OutgoingBatch& batch = endpoint.outgoing;
  while (!endpoint.output.empty()) {
    batch.reset(endpoint.segment_offload);
    for (const Outgoing& outgoing : endpoint.output)
      if (!batch.add({outgoing.chunk.data, outgoing.chunk.size, &outgoing.to})) break;
    size_t done = 0;  // datagrams sent, or dropped
    try {
      auto sent = endpoint.socket.send_many(batch);
      if (!sent) break;
      done = batch.datagrams_in(*sent);
      for (size_t i = 0; i < *sent; ++i)
        if (batch.segments(i) > 1) stats_.gso_datagrams += batch.segments(i);
    } catch (const Error& error) {
      // The error is the first message's. A refused GSO message is not lost: GSO goes off for
      // this endpoint and the same datagrams are packed again, one per message.
      if (batch.segments(0) > 1 && refuses_segmentation(error.code_value())) {
        endpoint.segment_offload = false;
        continue;
      }
      // Otherwise the message cannot go (unreachable, too big ...): drop it, keep the rest.
      done = batch.datagrams_in(1);
      stats_.dropped_datagrams += done;
    }
    for (size_t i = 0; i < done; ++i) {
      if (endpoint.output.front().chunk.token) released_.push_back(endpoint.output.front().chunk.token);
      endpoint.output.pop_front();
    }
  }
  // What could not go now must not point into the arena the next recvmmsg overwrites.
  for (auto& outgoing : endpoint.output) {
    Chunk& chunk = outgoing.chunk;
    if (!chunk.borrowed) continue;
    chunk.owned = std::make_unique<char[]>(chunk.size);
    std::memcpy(chunk.owned.get(), chunk.data, chunk.size);
    chunk.data = chunk.owned.get();
    chunk.borrowed = false;
  }
}

}  // namespace socketeer
