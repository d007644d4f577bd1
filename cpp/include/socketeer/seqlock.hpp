// A value that one thread publishes often and other threads read now and then, without a lock:
// a sequence lock. The reactor publishes its statistics once per loop turn, and the mutex this
// replaces cost ~60 instructions of lock and unlock per turn (a turn that echoes one small
// request is ~1,450), for readers that come once in a while.
//
// The writer never waits. A reader copies the value between two reads of the sequence number
// and retries if a write overlapped (an odd number, or a changed one). The value is held as
// relaxed atomic words, so an overlapping copy is a retry, not a data race (H. Boehm, "Can
// seqlocks get along with programming language memory models?", 2012).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>

namespace socketeer {

template <typename T>
class Seqlock {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) % sizeof(uint64_t) == 0,
                "a Seqlock holds a plain value made of whole 64-bit words");
  static constexpr size_t kWords = sizeof(T) / sizeof(uint64_t);
  using Words = std::array<uint64_t, kWords>;

 public:
  // One writer thread only.
  void store(const T& value) noexcept {
    auto words = std::bit_cast<Words>(value);
    uint64_t sequence = sequence_.load(std::memory_order_relaxed);
    sequence_.store(sequence + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);  // the odd number before any word
    for (size_t i = 0; i < kWords; ++i) words_[i].store(words[i], std::memory_order_relaxed);
    sequence_.store(sequence + 2, std::memory_order_release);
  }

  // Any thread.
  T load() const noexcept {
    Words words;
    for (;;) {
      uint64_t before = sequence_.load(std::memory_order_acquire);
      if (before & 1) {  // a write is under way: it takes nanoseconds, unless its thread was preempted
        std::this_thread::yield();
        continue;
      }
      for (size_t i = 0; i < kWords; ++i) words[i] = words_[i].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);  // every word before the second read
      if (sequence_.load(std::memory_order_relaxed) == before) return std::bit_cast<T>(words);
    }
  }

 private:
  std::atomic<uint64_t> sequence_{0};
  std::array<std::atomic<uint64_t>, kWords> words_{};
};

}  // namespace socketeer
