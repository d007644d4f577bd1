// Reactor: giving memory back after a burst of connections, once the loop is quiet (see
// reactor.hpp, "Memory"); the loop (reactor.cpp) asks release_memory_if_due() after each poll
// while it is due.
#include <algorithm>
#include <chrono>

#include "socketeer/allocator.hpp"
#include "socketeer/reactor.hpp"
#include "reactor_parts.hpp"

namespace socketeer {

using namespace reactor_parts;
using namespace std::chrono_literals;

// A burst leaves its connections' buffers free inside the allocator's heaps, and glibc keeps
// them there (allocator.hpp). Once the loop freed kReleaseAfter since the last release, the
// next release comes when the loop has been quiet for kQuiet (its polls found nothing, nothing
// was posted, nothing is left over to read or deliver), or at once when the connections fell
// to a quarter of their peak but not to none (a few that keep talking after a burst would keep
// the loop from ever being quiet): once per such fall, never in every turn. The last ones
// closing wait for quiet instead: what the dispatcher frees as it hears of the closes comes
// after. Called after the poll, before the turn's work: nothing_ready says whether the poll
// found anything.
void Reactor::release_memory_if_due(bool nothing_ready) {
  bool quiet = nothing_ready && !has_posted_.load(std::memory_order_relaxed) && next_timeout() != 0ns;
  if (!quiet) quiet_since_ = now_;
  bool fell = connection_count_ > 0 && connection_count_ * 4 <= peak_connections_;
  if (fell || now_ - quiet_since_ >= kQuiet) release_memory();
}

// The loop's own tables go back to what the connections open now need, buffers that grew for a
// large message go back to their usual size, and the allocator returns its free pages.
void Reactor::release_memory() {
  size_t usual = options_.read_buffer + kReadSlack;
  for (auto& c : connections_) {
    if (!c) continue;
    c->output.shrink();
    if (!c->records && c->input_size > usual && c->in_start == c->in_end) {
      c->input = std::make_shared_for_overwrite<char[]>(usual);
      c->input_size = usual;
      c->in_start = c->in_parsed = c->in_end = c->in_searched = 0;
    }
  }
  for (auto& endpoint : datagrams_) endpoint->output.shrink();
  auto shrink = [](auto&... tables) { (tables.shrink_to_fit(), ...); };
  shrink(events_, dispatching_, reasons_, read_again_, dirty_, touched_, datagram_dirty_, again_, flushing_,
         flushing_datagrams_, graveyard_, released_);
  // The slot table down to its last connection; the free slots beyond it go with it.
  size_t slots = connections_.size();
  while (slots > 0 && !connections_[slots - 1]) --slots;
  connections_.resize(slots);
  std::erase_if(free_slots_, [slots](uint32_t slot) { return slot >= slots; });
  shrink(connections_, free_slots_);
  release_free_memory();
  freed_since_release_ = 0;
  peak_connections_ = connection_count_;
}

}  // namespace socketeer
