// Message-oriented connections: those of a SOCK_SEQPACKET listener (Connection::records).
//
// A seqpacket socket carries records, not a byte stream. One recv returns exactly one record
// (the part that did not fit the buffer is discarded, not kept for the next recv), and one
// send is one record, sent whole or not at all. So the byte-stream machinery does not apply:
//  - input: there is nothing to frame (a record is a message; add_listener insists on raw
//    framing) and a short read says nothing about what is still queued, so records are read
//    one recv each until EAGAIN or the turn's share is used up, and each is one message event;
//  - output: chunks joined into one writev would leave as ONE record, so each chunk is a record
//    of its own (enqueue queues one per send on these connections), and a batch of them goes
//    with one sendmmsg, one message per record, as datagram endpoints send theirs.
#include <poll.h>
#include <sys/socket.h>

#include "reactor_parts.hpp"
#include "socketeer/error.hpp"

namespace socketeer {

using namespace reactor_parts;

namespace {

// A recv of 0 bytes is an empty record or the end: the peer's close (or shutdown) sets the
// socket's RCV_SHUTDOWN, which poll shows as POLLRDHUP. Empty records still queued in front of
// the end cannot be told from it, and are taken as the end.
bool at_end(const Socket& socket) { return socket.wait(POLLRDHUP, std::chrono::nanoseconds(0)); }

}  // namespace

// The block holds read_buffer bytes of records plus one of the largest (the framing's
// max_size); a recv is only made with room for the largest, and MSG_TRUNC makes it return a
// record's real length, so a longer record is seen as such instead of arriving cut short.
void Reactor::read_records(Connection& c) {
  size_t largest = options_.framing.max_size();
  if (c.in_end == 0 && c.input_size < options_.read_buffer + largest) {
    c.input_size = options_.read_buffer + largest;
    c.input = std::make_shared_for_overwrite<char[]>(c.input_size);
  }
  for (;;) {
    if (c.peer_closed) {
      // Records that came before the end are dispatched before the close, as on a stream.
      if (c.handed_out) read_next_turn(c);
      else begin_close(c, "eof", false);
      return;
    }
    if (c.handed_out == kMessagesPerTurn || c.input_size - c.in_end < largest) {
      read_next_turn(c);  // more may be queued
      return;
    }
    std::optional<size_t> n;
    try {
      ++stats_.reads;
      n = c.socket.recv(c.input.get() + c.in_end, c.input_size - c.in_end, MSG_TRUNC);
    } catch (const Error& error) {
      close_after_error(c, error);
      return;
    }
    if (!n) return;  // every queued record has been read: the next one raises an edge
    if (*n == 0 && at_end(c.socket)) {
      c.peer_closed = true;
      continue;
    }
    if (*n > largest) {
      begin_close(c, FrameTooLarge(*n, largest).what(), true);
      return;
    }
    std::string_view record(c.input.get() + c.in_end, *n);
    events_.push_back({ReactorEvent::Kind::message, c.id, record, record, nullptr, &c.input, c.input_size});
    c.in_end += *n;
    c.in_parsed = c.in_end;
    ++c.handed_out;
    stats_.received_bytes += *n;
  }
}

// A lone record goes with send(2) (cheaper for the kernel than sendmmsg, see
// Socket::send_vectors_now), several with one sendmmsg of up to kMaxIovecs records. Either way
// what went is a number of whole records. A record that can never go (EMSGSIZE: longer than the
// socket's send buffer) closes the connection, with the error as its reason: the records
// behind it cannot keep their order without it. False once the connection is closing.
bool Reactor::flush_records(Connection& c) {
  while (!c.output.empty()) {
    size_t sent = 0;
    try {
      if (c.output.size() == 1) {
        if (!c.socket.send_now(c.output.front().data, c.output.front().size)) break;
        sent = 1;
      } else {
        records_out_.reset(false);
        for (const Chunk& chunk : c.output)
          if (!records_out_.add({chunk.data, chunk.size, nullptr})) break;
        auto messages = c.socket.send_many(records_out_);
        if (!messages) break;
        sent = *messages;
      }
    } catch (const Error& error) {
      close_after_error(c, error);
      return false;
    }
    for (; sent > 0; --sent) {
      Chunk& front = c.output.front();
      count_sent(c, front.size);
      if (front.token) released_.push_back(front.token);
      c.output.pop_front();
    }
  }
  return true;
}

}  // namespace socketeer
