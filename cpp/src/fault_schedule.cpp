#include "socketeer/fault_schedule.hpp"

#include <algorithm>

namespace socketeer {

using namespace std::chrono_literals;

bool roll(FaultRandom& random, double probability) {
  if (probability >= 1.0) return true;
  if (probability <= 0.0) return false;
  return std::uniform_real_distribution<double>(0, 1)(random) < probability;
}

bool shapes_stream(const Faults& f) {
  return f.latency > 0ns || f.jitter > 0ns || f.bandwidth || f.slice_size || f.reset_after >= 0 || f.close_after >= 0;
}

// --- TCP -----------------------------------------------------------------------------------------

TimePoint StreamSchedule::due_for(const Faults& faults, TimePoint now, FaultRandom& random) const {
  auto delay = faulty_ ? faults.latency : 0ns;
  if (faulty_ && faults.jitter > 0ns) {
    auto jitter = std::uniform_int_distribution<int64_t>(-faults.jitter.count(), faults.jitter.count())(random);
    delay = std::max(0ns, delay + std::chrono::nanoseconds(jitter));
  }
  return std::max(now + delay, last_due_);  // jitter never reorders a stream
}

size_t StreamSchedule::arrive(std::string_view data, const Faults& faults, TimePoint now, FaultRandom& random) {
  int64_t limit = -1;
  if (faulty_ && faults.reset_after >= 0) limit = faults.reset_after;
  if (faulty_ && faults.close_after >= 0 && (limit < 0 || faults.close_after < limit)) limit = faults.close_after;
  if (limit >= 0 && taken_ + data.size() >= static_cast<uint64_t>(limit)) {
    data = data.substr(0, static_cast<size_t>(limit) - std::min<uint64_t>(taken_, limit));
    end_ = faults.reset_after >= 0 && limit == faults.reset_after ? End::reset : End::close;
  }
  taken_ += data.size();
  TimePoint due = due_for(faults, now, random);
  size_t slice = faulty_ && faults.slice_size ? faults.slice_size : data.size();
  for (size_t offset = 0; offset < data.size(); offset += slice) {
    queue_.push_back({std::string(data.substr(offset, slice)), 0, due});
    queued_ += queue_.back().data.size();
    last_due_ = due;
    if (faulty_) due += faults.slice_delay;
  }
  return data.size();
}

std::string_view StreamSchedule::sendable(const Faults& faults, TimePoint now) const {
  if (queue_.empty()) return {};
  const Piece& piece = queue_.front();
  uint64_t bandwidth = faulty_ ? faults.bandwidth : 0;
  if (piece.due > now || (bandwidth && next_send_ > now)) return {};
  size_t size = piece.data.size() - piece.offset;
  if (bandwidth) {
    auto slice_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kPacingSlice).count();
    size = std::min<size_t>(size, std::max<uint64_t>(1, bandwidth * static_cast<uint64_t>(slice_ns) / 1'000'000'000ULL));
  }
  return std::string_view(piece.data).substr(piece.offset, size);
}

void StreamSchedule::sent(size_t size, const Faults& faults, TimePoint now) {
  Piece& piece = queue_.front();
  piece.offset += size;
  queued_ -= size;
  uint64_t bandwidth = faulty_ ? faults.bandwidth : 0;
  if (bandwidth) next_send_ = std::max(next_send_, now) + std::chrono::nanoseconds(size * 1'000'000'000ULL / bandwidth);
  if (piece.offset == piece.data.size()) queue_.pop_front();
}

std::optional<TimePoint> StreamSchedule::next_due() const {
  if (queue_.empty()) return std::nullopt;
  return std::max(queue_.front().due, next_send_);
}

// --- UDP -----------------------------------------------------------------------------------------

DatagramFate datagram_fate(const Faults& faults, TimePoint now, FaultRandom& random) {
  DatagramFate fate;
  bool faulty = roll(random, faults.probability);
  if (faulty && roll(random, faults.drop)) {
    fate.dropped = true;
    return fate;
  }
  fate.duplicated = faulty && roll(random, faults.duplicate);
  fate.due = now + (faulty ? faults.latency : 0ns);
  fate.held = faulty && roll(random, faults.reorder);
  if (fate.held) fate.due += kReorderHold;
  return fate;
}

}  // namespace socketeer
