#include <array>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "socketeer/seqlock.hpp"
#include "testing.hpp"

using namespace socketeer;

namespace {

// Sixteen words that a torn copy would tell apart: the writer always stores sixteen equal ones.
struct Wide {
  std::array<uint64_t, 16> words;
};

Wide all(uint64_t value) {
  Wide wide;
  wide.words.fill(value);
  return wide;
}

}  // namespace

TEST(a_load_sees_the_last_store) {
  Seqlock<Wide> lock;
  CHECK(lock.load().words == all(0).words);
  lock.store(all(7));
  CHECK(lock.load().words == all(7).words);
}

// Readers racing one writer never see a mix of two stores, and never go back in time.
TEST(concurrent_loads_are_never_torn) {
  Seqlock<Wide> lock;
  constexpr uint64_t kStores = 200000;
  std::atomic<bool> torn{false}, backwards{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      uint64_t last = 0;
      while (last < kStores) {
        Wide seen = lock.load();
        for (uint64_t word : seen.words)
          if (word != seen.words[0]) torn = true;
        if (seen.words[0] < last) backwards = true;
        last = seen.words[0];
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (uint64_t i = 1; i <= kStores; ++i) lock.store(all(i));
  for (auto& reader : readers) reader.join();
  CHECK(!torn);
  CHECK(!backwards);
  CHECK(reads.load() >= 2);
}

int main() { return socketeer::testing::run_all(); }
