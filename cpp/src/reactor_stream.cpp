// Reactor: a stream connection's state machine. Reading into its input block and handing out
// the messages the framing finds, queueing output (borrowed, owned or token-held chunks) and
// flushing it with one writev, backpressure, and closing (graceful after the output drained, or
// abort). Record connections (SOCK_SEQPACKET) take their own way in and out in
// reactor_records.cpp; the loop that drives these is reactor.cpp.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "socketeer/error.hpp"
#include "socketeer/reactor.hpp"
#include "reactor_parts.hpp"

namespace socketeer {

using namespace reactor_parts;

namespace {

bool is_reset(int code) { return code == ECONNRESET || code == EPIPE || code == ETIMEDOUT; }

}  // namespace

void Reactor::read(Connection& c, bool stop_on_short_read) {
  if (c.read_paused || c.closing) return;
  if (!c.touched) {
    c.touched = true;
    touched_.push_back(&c);
    // No message views into the buffer yet this turn: it may still be moved or grown.
    size_t kept = c.in_end - c.in_start;
    size_t size = c.input_size;
    size_t frame_room = options_.framing.max_size() + 16 + options_.framing.delimiter().size();
    if (kept == size && size < frame_room) size = std::min(size * 2, frame_room);
    if (size != c.input_size || c.input.use_count() > 1) {
      auto block = std::make_shared_for_overwrite<char[]>(size);
      std::memcpy(block.get(), c.input.get() + c.in_start, kept);
      c.input = std::move(block);
      c.input_size = size;
    } else if (c.in_start > 0) {
      std::memmove(c.input.get(), c.input.get() + c.in_start, kept);
    }
    c.in_end = kept;
    c.in_parsed = c.in_start = 0;
  }
  c.last_active = now_;
  if (c.records) return read_records(c);
  // Messages left over from an earlier turn (kMessagesPerTurn, or a pause) come first; so does
  // an end of stream that arrived behind them.
  bool drained = false;
  for (size_t reads = 0;; ++reads) {
    if (c.in_parsed < c.in_end && !hand_out(c)) return;
    if (c.peer_closed) {
      // Messages that arrived with the end of stream (a client that half-closes after its
      // request) must still be answerable: close once they are dispatched, next turn.
      if (c.handed_out) read_next_turn(c);
      else begin_close(c, c.in_parsed == c.in_end ? "eof" : "eof in the middle of a message", false);
      return;
    }
    // A short read emptied the socket's queue, and bytes arriving from now on raise a new edge
    // (epoll reports each arrival), so the recv that would only say EAGAIN can be saved. Not
    // when the peer may have closed already: a FIN that arrived with the last bytes raises no
    // edge of its own, and only another recv (returning 0) would show it. So this is only for
    // events whose mask, computed when epoll reported them, has no read_closed/hangup/error.
    if (drained && stop_on_short_read) return;
    if (c.in_end == c.input_size || reads == kReadsPerTurn) {
      read_next_turn(c);  // more may be waiting
      return;
    }
    size_t room = c.input_size - c.in_end;
    std::optional<size_t> n;
    try {
      ++stats_.reads;
      n = c.socket.recv_now(c.input.get() + c.in_end, room);
    } catch (const Error& error) {
      close_after_error(c, error);
      return;
    }
    if (!n) return;  // drained: wait for the next edge
    if (*n == 0) c.peer_closed = true;
    drained = *n < room;
    c.in_end += *n;
    stats_.received_bytes += *n;
  }
}

// Splits the received bytes into message events, up to this turn's share. False once the
// connection is closing (a frame too large) or its share is used up (read again next turn).
bool Reactor::hand_out(Connection& c) {
  try {
    std::string_view rest(c.input.get() + c.in_parsed, c.in_end - c.in_parsed);
    while (c.handed_out < kMessagesPerTurn) {
      auto frame = options_.framing.next(rest, c.in_searched);
      if (!frame) {
        c.in_searched = rest.size();
        return true;
      }
      c.in_searched = 0;
      std::string_view wire = rest.substr(0, frame->total());
      events_.push_back(
          {ReactorEvent::Kind::message, c.id, wire.substr(frame->header, frame->payload), wire, nullptr, &c.input,
           c.input_size});
      rest.remove_prefix(frame->total());
      c.in_parsed += frame->total();
      ++c.handed_out;
    }
  } catch (const FrameTooLarge& error) {
    begin_close(c, error.what(), true);
    return false;
  }
  read_next_turn(c);
  return false;
}

void Reactor::read_next_turn(Connection& c) {
  if (!c.queued_read) read_again_.push_back(&c);
  c.queued_read = true;
}

// --- output ------------------------------------------------------------------------------------

Reactor::Connection* Reactor::find(uint64_t id) const {
  auto slot = static_cast<size_t>(id & 0xffffffffu);
  if (slot >= connections_.size() || !connections_[slot]) return nullptr;
  Connection* c = connections_[slot].get();
  return c->id == id && !c->dead ? c : nullptr;
}

// The free slot in connections_ that the next connection takes (the last one freed: its memory
// is the warmest); it is the last of free_slots_ until the caller pops it.
uint32_t Reactor::free_slot() {
  if (free_slots_.empty()) {
    free_slots_.push_back(static_cast<uint32_t>(connections_.size()));
    connections_.emplace_back();
  }
  return free_slots_.back();
}

bool Reactor::send(uint64_t id, const char* data, size_t size, uint64_t token) {
  return enqueue(id, {}, std::string_view(data, size), token, {});
}

bool Reactor::send_message(uint64_t id, const char* data, size_t size, uint64_t token) {
  const Framing& framing = options_.framing;
  framing.check_message(std::string_view(data, size));  // before anything is queued or taken
  char header[Framing::kMaxHeader];
  return enqueue(id, std::string_view(header, framing.write_header(size, header)), std::string_view(data, size), token,
                 framing.trailer());
}

// Queues header (copied: a few bytes), payload (sent from the caller's memory when a token keeps
// it alive or it lies in this turn's input, else copied) and trailer (the framing's delimiter,
// which lives as long as the reactor: never copied).
bool Reactor::enqueue(uint64_t id, std::string_view header, std::string_view payload, uint64_t token,
                      std::string_view trailer) {
  if (!on_loop_thread()) {
    auto copy = std::make_shared<std::string>();
    copy->append(header).append(payload).append(trailer);
    post([this, id, copy] { send(id, copy->data(), copy->size()); });
    return true;
  }
  Connection* c = find(id);
  if (!c || c->closing || payload.empty()) [[unlikely]] {
    if (token) released_.push_back(std::exchange(token, 0));
    if (!c || c->closing) return false;
  }
  // Always inlined: GCC's inliner weighs it against enqueue's size, and one more branch in
  // enqueue (empty records) was enough for it to call it, and vector::push_back, out of line.
  auto push = [&](Chunk chunk) __attribute__((always_inline)) {
    c->output_bytes += chunk.size;
    stats_.queued_bytes += chunk.size;
    c->output.push_back(std::move(chunk));
  };
  auto copied = [](std::string_view bytes) {
    Chunk chunk{nullptr, bytes.size(), 0, std::make_unique<char[]>(bytes.size()), false};
    std::memcpy(chunk.owned.get(), bytes.data(), bytes.size());
    chunk.data = chunk.owned.get();
    return chunk;
  };
  if (!header.empty()) push(copied(header));
  // On a record connection an empty payload is an empty record (on a byte stream, nothing).
  if (!payload.empty() || c->records) {
    const char* data = payload.data();
    bool borrowed = !token && data >= c->input.get() && data < c->input.get() + c->input_size;
    if (token || borrowed || payload.empty()) push(Chunk{data, payload.size(), token, nullptr, borrowed});
    else push(copied(payload));  // the caller's bytes may not outlive this call
  }
  if (!trailer.empty()) push(Chunk{trailer.data(), trailer.size(), 0, nullptr, false});
  if (c->output.empty()) return true;  // nothing at all to send
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
  if (c->output_bytes > options_.high_watermark && !c->read_paused) {
    c->read_paused = true;
    ++stats_.paused_reads;
  }
  return true;
}

// One sendmsg (writev) of up to 64 queued chunks, repeated until the queue is empty or the
// socket is full; a full socket reports writable again (edge) once it drains. Records go their
// own way: flush_records.
void Reactor::flush(Connection& c) {
  if (c.records) [[unlikely]] {
    if (!flush_records(c)) return;
  } else {
    while (!c.output.empty()) {
      iovec vectors[kMaxIovecs];
      size_t count = 0;
      for (auto it = c.output.begin(); it != c.output.end() && count < kMaxIovecs; ++it, ++count)
        vectors[count] = {const_cast<char*>(it->data), it->size};
      std::optional<size_t> sent;
      try {
        sent = c.socket.send_vectors_now(std::span(vectors, count));
      } catch (const Error& error) {
        close_after_error(c, error);
        return;
      }
      if (!sent) break;
      size_t left = *sent;
      count_sent(c, left);
      while (left > 0) {
        Chunk& front = c.output.front();
        size_t used = std::min(left, front.size);
        front.data += used;
        front.size -= used;
        left -= used;
        if (front.size == 0) {
          if (front.token) released_.push_back(front.token);
          c.output.pop_front();
        }
      }
    }
  }
  if (c.read_paused && c.output_bytes <= options_.low_watermark) {
    c.read_paused = false;
    read_next_turn(c);  // edge-triggered: data may be waiting
  }
}

[[gnu::cold]] void Reactor::close_after_error(Connection& c, const Error& error) {
  begin_close(c, is_reset(error.code_value()) ? "connection reset" : error.what(), true);
}

void Reactor::begin_close(Connection& c, std::string reason, bool abort) {
  if (c.closing && !abort) return;
  if (!c.closing) {
    reasons_.push_back(std::move(reason));
    events_.push_back({ReactorEvent::Kind::closed, c.id, reasons_.back(), {}, nullptr});
  }
  c.closing = true;
  c.state->open = false;
  if (abort) {
    linger hard{1, 0};
    try {
      c.socket.set_option_bytes(SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    } catch (const Error&) {
    }
    drop_output(c);
  }
  // Closed for real at the end of the turn (finish_turn), after its events were dispatched.
  if (!c.dirty) {
    c.dirty = true;
    dirty_.push_back(&c);
  }
}

void Reactor::destroy(Connection& c) {
  // What the allocator holds free once the graveyard lets go of it: release_memory's due.
  size_t freed = sizeof c + c.input_size;
  if (freed_since_release_ < kReleaseAfter && freed_since_release_ + freed >= kReleaseAfter) quiet_since_ = now_;
  freed_since_release_ += freed;
  peak_connections_ = std::max(peak_connections_, connection_count_);
  engine_->remove(c.socket.fd());  // and so its events still in this turn's batch (comment 7 there)
  c.dead = true;
  c.state->open = false;
  drop_output(c);
  // Nothing may reach it after this turn: the graveyard frees it when the turn ends.
  if (c.queued_read) std::erase(read_again_, &c);
  if (c.dirty) std::erase(dirty_, &c);
  c.queued_read = c.dirty = false;
  c.socket.close();
  ++stats_.closed;
  auto slot = static_cast<uint32_t>(c.id & 0xffffffffu);
  graveyard_.push_back(std::move(connections_[slot]));  // events of this turn may still point at it
  free_slots_.push_back(slot);
  --connection_count_;
}

void Reactor::drop_output(Connection& c) {
  for (auto& chunk : c.output)
    if (chunk.token) released_.push_back(chunk.token);
  c.output.clear();
  stats_.queued_bytes -= c.output_bytes;
  c.output_bytes = 0;
}

void Reactor::close(uint64_t id, bool abort) {
  if (!on_loop_thread()) {
    post([this, id, abort] { close(id, abort); });
    return;
  }
  if (Connection* c = find(id)) begin_close(*c, abort ? "aborted" : "closed", abort);
}

std::shared_ptr<const ConnectionState> Reactor::connection_state(uint64_t id) const {
  Connection* c = find(id);
  return c ? c->state : nullptr;
}

}  // namespace socketeer
