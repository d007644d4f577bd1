// TimerHeap and ReadyQueue: the two queues of an event loop's run loop (socketeer.aio.Loop), in
// the core so that they know nothing of Python: each entry carries an opaque Token (the binding
// stores a pointer to its handle object there and owns the reference).
//
// TimerHeap is a binary min-heap keyed by deadline (seconds on any monotonic clock, as a double,
// the unit of asyncio's loop.time()). Entries with the same deadline come out in the order they
// were pushed. Cancellation is lazy, as in CPython's asyncio (base_events.py): the caller marks
// its handle cancelled and calls cancelled(); sweep() then drops cancelled entries from the top,
// or rebuilds the heap without them once they are more than half of a heap of over 100, so a
// program that arms and cancels many timeouts (asyncio.timeout, wait_for) keeps the heap small.
//
// ReadyQueue is a FIFO ring of Tokens: push at the back, pop at the front, no allocation once it
// has grown to the loop's peak.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace socketeer {

using Token = std::uintptr_t;

class TimerHeap {
 public:
  struct Entry {
    double when;
    uint64_t order;  // push order: ties on when keep FIFO
    Token token;
  };

  void push(double when, Token token);
  bool empty() const noexcept { return entries_.empty(); }
  size_t size() const noexcept { return entries_.size(); }
  const Entry& top() const { return entries_.front(); }
  Token pop();  // the earliest entry's token; the heap must not be empty

  // Counts one more cancelled entry still in the heap (the caller's handle is marked cancelled).
  void cancelled() noexcept { ++cancelled_; }
  size_t cancelled_count() const noexcept { return cancelled_; }

  // Drops cancelled entries (is_cancelled(token) true), handing each to drop(token): from the
  // top only, or all at once when they are over half of a heap of more than 100 entries.
  template <typename IsCancelled, typename Drop>
  void sweep(IsCancelled is_cancelled, Drop drop) {
    if (entries_.size() > kCompactMinimum && cancelled_ * 2 > entries_.size()) {
      auto kept = std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& entry) {
        if (!is_cancelled(entry.token)) return false;
        drop(entry.token);
        return true;
      });
      entries_.erase(kept, entries_.end());
      std::make_heap(entries_.begin(), entries_.end(), later);
      cancelled_ = 0;
      return;
    }
    while (!entries_.empty() && is_cancelled(top().token)) {
      if (cancelled_) --cancelled_;
      drop(pop());
    }
  }

  // Hands every token to each (the caller decides what clearing means for them), then empties.
  template <typename Each>
  void clear(Each each) {
    std::vector<Entry> entries;
    entries.swap(entries_);
    cancelled_ = 0;
    for (const Entry& entry : entries) each(entry.token);
  }
  template <typename Each>
  void for_each(Each each) const {
    for (const Entry& entry : entries_) each(entry.token);
  }

 private:
  static constexpr size_t kCompactMinimum = 100;
  static bool later(const Entry& a, const Entry& b) {
    return a.when > b.when || (a.when == b.when && a.order > b.order);
  }
  std::vector<Entry> entries_;
  uint64_t next_order_ = 0;
  size_t cancelled_ = 0;
};

class ReadyQueue {
 public:
  void push(Token token);
  Token pop();  // the oldest token; the queue must not be empty
  bool empty() const noexcept { return size_ == 0; }
  size_t size() const noexcept { return size_; }
  template <typename Each>
  void for_each(Each each) const {
    for (size_t i = 0; i < size_; ++i) each(ring_[(head_ + i) & (ring_.size() - 1)]);
  }
  template <typename Each>
  void clear(Each each) {
    while (!empty()) each(pop());
  }

 private:
  std::vector<Token> ring_;  // capacity a power of two (or zero)
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace socketeer
