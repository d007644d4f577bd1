#include <set>
#include <vector>

#include "socketeer/timer_heap.hpp"
#include "testing.hpp"

using namespace socketeer;

TEST(timers_pop_in_deadline_order_and_ties_in_push_order) {
  TimerHeap heap;
  heap.push(3.0, 30);
  heap.push(1.0, 10);
  heap.push(2.0, 20);
  heap.push(1.0, 11);
  std::vector<Token> out;
  while (!heap.empty()) out.push_back(heap.pop());
  CHECK((out == std::vector<Token>{10, 11, 20, 30}));
}

TEST(sweep_drops_cancelled_timers_from_the_top_only_while_few) {
  TimerHeap heap;
  std::set<Token> cancelled{1, 3};
  for (Token t = 1; t <= 4; ++t) heap.push(static_cast<double>(t), t);
  heap.cancelled();
  heap.cancelled();
  std::vector<Token> dropped;
  heap.sweep([&](Token t) { return cancelled.count(t) > 0; }, [&](Token t) { dropped.push_back(t); });
  CHECK((dropped == std::vector<Token>{1}));  // 3 is not at the top yet
  CHECK_EQ(heap.size(), 3u);
  CHECK_EQ(heap.top().token, Token{2});
  CHECK_EQ(heap.cancelled_count(), 1u);
}

TEST(sweep_compacts_when_most_of_a_large_heap_is_cancelled) {
  TimerHeap heap;
  for (Token t = 0; t < 300; ++t) heap.push(static_cast<double>(t), t);
  for (int i = 0; i < 200; ++i) heap.cancelled();
  size_t dropped = 0;
  heap.sweep([](Token t) { return t % 3 != 0; }, [&](Token) { ++dropped; });
  CHECK_EQ(dropped, 200u);
  CHECK_EQ(heap.size(), 100u);
  CHECK_EQ(heap.cancelled_count(), 0u);
  Token last = 0;
  while (!heap.empty()) {
    Token t = heap.pop();
    CHECK(t % 3 == 0 && t >= last);
    last = t;
  }
}

TEST(ready_queue_is_fifo_across_growth_and_wraparound) {
  ReadyQueue queue;
  Token next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7 + round; ++i) queue.push(next_in++);
    for (int i = 0; i < 5 + round; ++i) CHECK_EQ(queue.pop(), next_out++);
  }
  CHECK_EQ(queue.size(), static_cast<size_t>(next_in - next_out));
  std::vector<Token> rest;
  queue.clear([&](Token t) { rest.push_back(t); });
  CHECK(queue.empty());
  CHECK_EQ(rest.front(), next_out);
  CHECK_EQ(rest.back(), next_in - 1);
}

int main() { return socketeer::testing::run_all(); }
