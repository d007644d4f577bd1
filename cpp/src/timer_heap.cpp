#include "socketeer/timer_heap.hpp"

namespace socketeer {

void TimerHeap::push(double when, Token token) {
  entries_.push_back({when, next_order_++, token});
  std::push_heap(entries_.begin(), entries_.end(), later);
}

Token TimerHeap::pop() {
  std::pop_heap(entries_.begin(), entries_.end(), later);
  Token token = entries_.back().token;
  entries_.pop_back();
  return token;
}

void ReadyQueue::push(Token token) {
  if (size_ == ring_.size()) {  // full: unroll into a ring twice the size
    std::vector<Token> grown(ring_.empty() ? 64 : ring_.size() * 2);
    for (size_t i = 0; i < size_; ++i) grown[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(grown);
    head_ = 0;
  }
  ring_[(head_ + size_) & (ring_.size() - 1)] = token;
  ++size_;
}

Token ReadyQueue::pop() {
  Token token = ring_[head_];
  head_ = (head_ + 1) & (ring_.size() - 1);
  --size_;
  return token;
}

}  // namespace socketeer
