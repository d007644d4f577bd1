#include "socketeer/fault_schedule.hpp"

#include <algorithm>

namespace socketeer {

using namespace std::chrono_literals;

namespace {

// latency +- jitter (never below zero) for data that rolled faulty; none otherwise.
std::chrono::nanoseconds delay_of(const Faults& faults, bool faulty, FaultRandom& random) {
  if (!faulty) return 0ns;
  auto delay = faults.latency;
  if (faults.jitter > 0ns) {
    auto jitter = std::uniform_int_distribution<int64_t>(-faults.jitter.count(), faults.jitter.count())(random);
    delay = std::max(0ns, delay + std::chrono::nanoseconds(jitter));
  }
  return delay;
}

}  // namespace

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
  return std::max(now + delay_of(faults, faulty_, random), last_due_);  // jitter never reorders a stream
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
  if (queue_.empty()) return fin_given_ ? std::nullopt : fin_at_;
  return std::max(queue_.front().due, next_send_);
}

bool StreamSchedule::fin_due(const Faults& faults, TimePoint now) {
  if (!fin_at_) fin_at_ = now + (faulty_ ? faults.slow_close : 0ns);
  fin_given_ = now >= *fin_at_;
  return fin_given_;
}

StreamHold::State StreamHold::update(const Faults& faults, bool faulty, bool black_hole, TimePoint now) {
  bool timeout = faulty && faults.timeout >= 0ns;
  if (!timeout && !black_hole) {
    since_.reset();
    expiry_.reset();
    return State::flowing;
  }
  if (!since_) since_ = now;
  expiry_.reset();
  if (timeout && faults.timeout > 0ns) expiry_ = *since_ + faults.timeout;
  return expiry_ && now >= *expiry_ ? State::expired : State::held;
}

// --- UDP -----------------------------------------------------------------------------------------

DatagramSchedule::Fate DatagramSchedule::arrive(std::string data, const Faults& faults, TimePoint now,
                                                FaultRandom& random) {
  Fate fate;
  bool faulty = roll(random, faults.probability);
  if (faulty && roll(random, faults.drop)) {
    fate.dropped = true;
    return fate;
  }
  fate.duplicated = faulty && roll(random, faults.duplicate);
  int copies = fate.duplicated ? 2 : 1;
  TimePoint due = std::max(now + delay_of(faults, faulty, random), last_due_);
  if (!held_.empty()) {  // this is the next one: it goes first, the held one right after
    queue(std::move(data), due, copies);
    release_held(due);
    fate.reordered = true;
  } else if (faulty && roll(random, faults.reorder)) {
    held_.assign(copies, std::move(data));
    held_due_ = due;
  } else {
    queue(std::move(data), due, copies);
  }
  return fate;
}

void DatagramSchedule::queue(std::string data, TimePoint due, int copies) {
  last_due_ = std::max(due, last_due_);
  for (int i = 1; i < copies; ++i) queue_.push_back({data, last_due_});
  queue_.push_back({std::move(data), last_due_});
}

void DatagramSchedule::release_held(TimePoint after) {
  last_due_ = std::max({held_due_, after, last_due_});
  for (auto& data : held_) queue_.push_back({std::move(data), last_due_});
  held_.clear();
}

std::optional<std::string> DatagramSchedule::pop_due(TimePoint now) {
  if (!held_.empty() && now >= held_due_ + kReorderHold) release_held(held_due_ + kReorderHold);
  if (queue_.empty() || queue_.front().due > now) return std::nullopt;
  std::string data = std::move(queue_.front().data);
  queue_.pop_front();
  return data;
}

std::optional<TimePoint> DatagramSchedule::next_due() const {
  std::optional<TimePoint> next;
  if (!queue_.empty()) next = queue_.front().due;
  if (!held_.empty()) next = next ? std::min(*next, held_due_ + kReorderHold) : held_due_ + kReorderHold;
  return next;
}

}  // namespace socketeer
