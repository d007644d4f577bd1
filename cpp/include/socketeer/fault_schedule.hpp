// The fault schedule: what a FaultProxy does to the bytes and datagrams passing through it, as
// pure decisions. No sockets, no threads, no clock of its own: the relays (fault_relay.hpp) read
// the sockets and the clock, and ask the schedule with the faults in force, the time and a
// random source, which the unit tests fix (a fake clock, a seeded generator). The idea is
// toxiproxy's: each fault stands apart from the link that runs it.
//
// TCP (StreamSchedule, one per direction of a connection): bytes read at time t are kept (or cut
// at reset_after / close_after), sliced, given a due time (latency +- jitter, never earlier than
// the bytes before them), and handed out once due, paced by the bandwidth.
// UDP (DatagramSchedule, one per direction of a client's flow): each datagram's fate is rolled on
// its own (dropped, duplicated, held back to go after the next one), and the datagrams that go
// are queued in sending order with their due times.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "socketeer/deadline.hpp"  // Clock

namespace socketeer {

// The faults of one direction. A fault set's `probability` is rolled once per connection (TCP)
// or per datagram (UDP): with 0.5, about half the connections see the faults at all.
struct Faults {
  double probability = 1.0;
  std::chrono::nanoseconds latency{0};
  std::chrono::nanoseconds jitter{0};
  uint64_t bandwidth = 0;  // bytes per second; 0: unlimited
  size_t slice_size = 0;   // 0: no slicing
  std::chrono::nanoseconds slice_delay{0};
  int64_t reset_after = -1;  // -1: never
  int64_t close_after = -1;
  bool half_close = false;
  std::chrono::nanoseconds slow_close{0};  // the FIN after the source's end waits this long
  std::chrono::nanoseconds timeout{-1};    // < 0: off; else data stops, and the connection
                                           // closes after this long (0: never; data waits)
  double drop = 0, duplicate = 0, reorder = 0;  // UDP
};

using FaultRandom = std::mt19937_64;
using TimePoint = Clock::time_point;

// Bandwidth is paced in slices of at most this long's worth of bytes.
inline constexpr std::chrono::milliseconds kPacingSlice{10};
// A datagram held back for reordering waits at most this long past its due time.
inline constexpr std::chrono::milliseconds kReorderHold{50};

// true with `probability`; 0 and 1 decide without drawing.
bool roll(FaultRandom& random, double probability);

// Whether the faults change what happens to bytes in flight (not just connection set-up).
bool shapes_stream(const Faults& faults);

// One direction of one TCP connection.
class StreamSchedule {
 public:
  enum class End { none, reset, close };  // what follows the last byte reset/close_after let through

  explicit StreamSchedule(bool faulty = true) : faulty_(faulty) {}

  // The connection's probability roll: false, and no fault ever applies to it.
  bool faulty() const noexcept { return faulty_; }
  // Bytes may skip the queue (the relay's zero-copy and send-at-once paths): nothing is queued
  // that they must stay behind, and no fault shapes them.
  bool direct(const Faults& faults) const noexcept { return queue_.empty() && !(faulty_ && shapes_stream(faults)); }
  // `size` bytes went straight through (direct): they count towards reset/close_after.
  void passed(size_t size) noexcept { taken_ += size; }
  // Bytes read from the source at `now`: queues what reset/close_after leave of them (all, or
  // up to the limit, after which end() says what comes next), cut into slices, each with its
  // due time. Returns how many it kept.
  size_t arrive(std::string_view data, const Faults& faults, TimePoint now, FaultRandom& random);
  // The bytes that may be written at `now`: the front slice's rest, capped by the bandwidth's
  // pacing. Empty while nothing is due (or nothing is queued).
  std::string_view sendable(const Faults& faults, TimePoint now) const;
  // `size` of the bytes sendable() gave were written at `now`.
  void sent(size_t size, const Faults& faults, TimePoint now);
  // When sendable() will have something, while anything is queued.
  std::optional<TimePoint> next_due() const;

  size_t queued() const noexcept { return queued_; }
  uint64_t taken() const noexcept { return taken_; }  // bytes taken from the source so far
  // none until a limit is reached; then nothing more is taken, and once queued() is 0 the
  // relay resets or closes the connection.
  End end() const noexcept { return end_; }
  // slow_close: the source has ended and everything queued is sent; whether its FIN may go on
  // at `now`. The first call starts the wait (slow_close, 0 for a connection that rolled
  // fault-free); next_due() includes the FIN's time until a call has said yes.
  bool fin_due(const Faults& faults, TimePoint now);

 private:
  struct Piece {
    std::string data;
    size_t offset = 0;  // bytes of it already sent
    TimePoint due;
  };
  TimePoint due_for(const Faults& faults, TimePoint now, FaultRandom& random) const;

  std::deque<Piece> queue_;
  size_t queued_ = 0;
  uint64_t taken_ = 0;
  TimePoint last_due_{};
  TimePoint next_send_{};  // bandwidth pacing
  std::optional<TimePoint> fin_at_;  // slow_close: when the FIN may go
  bool fin_given_ = false;
  bool faulty_;
  End end_ = End::none;
};

// timeout and black_hole: a direction of a connection whose data is held where it is (nothing read
// from its source, nothing sent to its receiver) for as long as either is in force, existing
// connections included. A timeout (> 0) that has held it that long closes the connection; with
// 0, or a black hole, it is held until the fault goes, and then flows on.
class StreamHold {
 public:
  enum class State { flowing, held, expired };
  // The faults in force at `now` (`faulty`: the connection's probability roll).
  State update(const Faults& faults, bool faulty, bool black_hole, TimePoint now);
  bool held() const noexcept { return since_.has_value(); }
  // When a held direction's timeout closes the connection (nullopt: never, or not held).
  std::optional<TimePoint> expiry() const noexcept { return expiry_; }

 private:
  std::optional<TimePoint> since_;
  std::optional<TimePoint> expiry_;
};

// One direction of one UDP client's flow.
//
// reorder(p): a datagram chosen (with p) is held back and sent right after the next datagram
// of the flow in that direction: the two are swapped. A datagram that arrives while one is held
// is never held itself, so with p = 1 every pair is swapped (1 2 3 4 -> 2 1 4 3). A held datagram
// that no other follows goes on alone kReorderHold after its due time, and does not count as
// reordered. Latency and jitter delay each datagram without reordering them (as for TCP):
// reorder is the one fault that changes the order.
class DatagramSchedule {
 public:
  struct Fate {
    bool dropped = false;
    bool duplicated = false;  // sent twice
    bool reordered = false;   // a held datagram goes right after this one
  };

  // A datagram read at `now`.
  Fate arrive(std::string data, const Faults& faults, TimePoint now, FaultRandom& random);
  // The next datagram to send at `now` (taken off the queue), or nullopt while none is due.
  std::optional<std::string> pop_due(TimePoint now);
  // When pop_due() will have one (a due time, or a held datagram's release).
  std::optional<TimePoint> next_due() const;

 private:
  struct Outgoing {
    std::string data;
    TimePoint due;
  };
  void queue(std::string data, TimePoint due, int copies);
  void release_held(TimePoint after);

  std::deque<Outgoing> queue_;  // in sending order; due times never decrease
  std::vector<std::string> held_;  // the held datagram (twice if duplicated)
  TimePoint held_due_{};
  TimePoint last_due_{};
};

}  // namespace socketeer
