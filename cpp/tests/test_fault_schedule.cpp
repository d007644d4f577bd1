// The fault schedule on a fake clock with seeded randomness: no sockets, no threads, no waiting.
#include <cstdlib>
#include <string>
#include <vector>

#include "socketeer/fault_schedule.hpp"
#include "testing.hpp"

using namespace socketeer;
using namespace std::chrono_literals;

namespace {

const TimePoint t0 = TimePoint{} + 1h;  // the fake clock's start

std::string pattern(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + i % 26);
  return data;
}

// Sends whatever is due at `now`, as a relay whose receiver takes everything would.
std::string send_due(StreamSchedule& schedule, const Faults& faults, TimePoint now) {
  std::string out;
  for (auto bytes = schedule.sendable(faults, now); !bytes.empty(); bytes = schedule.sendable(faults, now)) {
    out += bytes;
    schedule.sent(bytes.size(), faults, now);
  }
  return out;
}

struct Delivery {
  std::string bytes;
  TimePoint at;
};

// Runs the fake clock from due time to due time until the schedule is empty.
std::vector<Delivery> run_clock(StreamSchedule& schedule, const Faults& faults, TimePoint now) {
  std::vector<Delivery> deliveries;
  while (auto due = schedule.next_due()) {
    now = std::max(now, *due);
    deliveries.push_back({send_due(schedule, faults, now), now});
    CHECK(!deliveries.back().bytes.empty());  // next_due never names a time with nothing to send
  }
  return deliveries;
}

std::string joined(const std::vector<Delivery>& deliveries) {
  std::string all;
  for (auto& d : deliveries) all += d.bytes;
  return all;
}

}  // namespace

// --- TCP: what passes at once --------------------------------------------------------------------

TEST(without_faults_bytes_go_direct_and_count_towards_the_limits) {
  StreamSchedule schedule;
  Faults none;
  CHECK(schedule.direct(none));
  schedule.passed(100);
  CHECK_EQ(schedule.taken(), 100u);
  Faults slow;
  slow.latency = 10ms;
  CHECK(!schedule.direct(slow));
  CHECK(StreamSchedule(false).direct(slow));  // the connection lost its probability roll
}

TEST(queued_bytes_keep_later_ones_off_the_direct_path) {
  StreamSchedule schedule;
  Faults none;
  FaultRandom random(1);
  schedule.arrive("held", none, t0, random);  // a receiver that was full: the relay queued them
  CHECK(!schedule.direct(none));
  CHECK_EQ(send_due(schedule, none, t0), std::string("held"));
  CHECK(schedule.direct(none));
}

// --- latency and jitter ---------------------------------------------------------------------------

TEST(latency_holds_bytes_until_they_are_due) {
  StreamSchedule schedule;
  Faults faults;
  faults.latency = 50ms;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("ping", faults, t0, random), 4u);
  CHECK(schedule.next_due() == t0 + 50ms);
  CHECK(schedule.sendable(faults, t0 + 49ms).empty());
  CHECK_EQ(send_due(schedule, faults, t0 + 50ms), std::string("ping"));
  CHECK(!schedule.next_due());
}

TEST(jitter_varies_the_delay_but_never_the_order) {
  StreamSchedule schedule;
  Faults faults;
  faults.latency = 10ms;
  faults.jitter = 10ms;
  FaultRandom random(42);
  std::string sent_in;
  for (int i = 0; i < 1000; ++i) {
    std::string piece = std::to_string(i) + ",";
    sent_in += piece;
    schedule.arrive(piece, faults, t0 + i * 100us, random);
  }
  std::vector<Delivery> deliveries = run_clock(schedule, faults, t0);
  CHECK(joined(deliveries) == sent_in);  // order kept
  CHECK(deliveries.size() > 10);         // yet the delays did vary: many distinct due times
  for (size_t i = 1; i < deliveries.size(); ++i) CHECK(deliveries[i - 1].at < deliveries[i].at);
  CHECK(deliveries.front().at >= t0);
  CHECK(deliveries.back().at <= t0 + 999 * 100us + 20ms);  // latency + jitter at most
}

TEST(jitter_cannot_make_a_delay_negative) {
  Faults faults;
  faults.jitter = 5ms;  // no latency: every draw below zero is clamped to "at once"
  FaultRandom random(7);
  int at_once = 0;
  for (int i = 0; i < 1000; ++i) {
    StreamSchedule schedule;
    schedule.arrive("x", faults, t0, random);
    TimePoint due = *schedule.next_due();
    CHECK(due >= t0 && due <= t0 + 5ms);
    at_once += due == t0;
  }
  CHECK(at_once > 450 && at_once < 550);  // the draws below zero: about half
}

// --- bandwidth ----------------------------------------------------------------------------------

TEST(bandwidth_paces_in_ten_millisecond_slices) {
  StreamSchedule schedule;
  Faults faults;
  faults.bandwidth = 100'000;  // bytes per second: 1000 bytes per 10 ms slice
  FaultRandom random(1);
  std::string data = pattern(10'000);
  schedule.arrive(data, faults, t0, random);
  CHECK_EQ(schedule.sendable(faults, t0).size(), 1000u);
  auto deliveries = run_clock(schedule, faults, t0);
  CHECK(joined(deliveries) == data);
  CHECK_EQ(deliveries.size(), 10u);
  for (size_t i = 0; i < deliveries.size(); ++i) {
    CHECK_EQ(deliveries[i].bytes.size(), 1000u);
    CHECK(deliveries[i].at == t0 + i * 10ms);  // 10 000 bytes take 100 ms at 100 000 B/s
  }
}

TEST(bandwidth_counts_partial_writes) {
  StreamSchedule schedule;
  Faults faults;
  faults.bandwidth = 1000;  // 10 bytes per slice
  FaultRandom random(1);
  schedule.arrive(pattern(100), faults, t0, random);
  CHECK_EQ(schedule.sendable(faults, t0).size(), 10u);
  schedule.sent(4, faults, t0);  // the receiver took only 4: the pacing charges 4 ms for them
  CHECK(schedule.sendable(faults, t0 + 3ms).empty());
  CHECK_EQ(schedule.sendable(faults, t0 + 4ms).size(), 10u);
  CHECK_EQ(schedule.queued(), 96u);
}

TEST(a_very_low_bandwidth_still_sends_a_byte_per_slice) {
  StreamSchedule schedule;
  Faults faults;
  faults.bandwidth = 1;
  FaultRandom random(1);
  schedule.arrive("ab", faults, t0, random);
  CHECK_EQ(send_due(schedule, faults, t0), std::string("a"));
  CHECK(schedule.next_due() == t0 + 1s);
}

// --- slicing ---------------------------------------------------------------------------------

TEST(slices_are_cut_to_size_and_spaced_by_the_delay) {
  StreamSchedule schedule;
  Faults faults;
  faults.slice_size = 3;
  faults.slice_delay = 5ms;
  FaultRandom random(1);
  schedule.arrive("abcdefgh", faults, t0, random);
  auto deliveries = run_clock(schedule, faults, t0);
  CHECK_EQ(deliveries.size(), 3u);
  CHECK(deliveries[0].bytes == "abc" && deliveries[0].at == t0);
  CHECK(deliveries[1].bytes == "def" && deliveries[1].at == t0 + 5ms);
  CHECK(deliveries[2].bytes == "gh" && deliveries[2].at == t0 + 10ms);
}

TEST(slices_without_delay_go_at_once_but_one_write_each) {
  StreamSchedule schedule;
  Faults faults;
  faults.slice_size = 2;
  FaultRandom random(1);
  schedule.arrive("abcde", faults, t0, random);
  CHECK(schedule.sendable(faults, t0) == "ab");
  schedule.sent(2, faults, t0);
  CHECK(schedule.sendable(faults, t0) == "cd");
}

TEST(a_later_read_queues_behind_the_slices_of_an_earlier_one) {
  StreamSchedule schedule;
  Faults faults;
  faults.slice_size = 1;
  faults.slice_delay = 10ms;
  FaultRandom random(1);
  schedule.arrive("abc", faults, t0, random);       // due t0, +10, +20
  schedule.arrive("d", faults, t0 + 1ms, random);   // never before the last slice of "abc"
  auto deliveries = run_clock(schedule, faults, t0);
  CHECK(joined(deliveries) == "abcd");
  CHECK(deliveries.back().at >= t0 + 20ms);
}

// --- reset_after / close_after ------------------------------------------------------------------

TEST(reset_after_keeps_exactly_n_bytes) {
  StreamSchedule schedule;
  Faults faults;
  faults.reset_after = 10;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("abcd", faults, t0, random), 4u);
  CHECK(schedule.end() == StreamSchedule::End::none);
  CHECK_EQ(schedule.arrive("efghijklmn", faults, t0, random), 6u);
  CHECK(schedule.end() == StreamSchedule::End::reset);
  CHECK_EQ(schedule.taken(), 10u);
  CHECK_EQ(send_due(schedule, faults, t0), std::string("abcdefghij"));
}

TEST(reset_after_exactly_at_a_read_boundary) {
  StreamSchedule schedule;
  Faults faults;
  faults.reset_after = 4;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("abcd", faults, t0, random), 4u);
  CHECK(schedule.end() == StreamSchedule::End::reset);  // the 4th byte ends it: no read waits for a 5th
}

TEST(reset_after_counts_bytes_that_went_direct) {
  StreamSchedule schedule;
  FaultRandom random(1);
  schedule.passed(5);  // before the fault was set
  Faults faults;
  faults.reset_after = 8;
  CHECK_EQ(schedule.arrive("abcdef", faults, t0, random), 3u);
  CHECK(schedule.end() == StreamSchedule::End::reset);
}

TEST(reset_after_zero_ends_at_the_first_byte) {
  StreamSchedule schedule;
  Faults faults;
  faults.reset_after = 0;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("abc", faults, t0, random), 0u);
  CHECK(schedule.end() == StreamSchedule::End::reset);
  CHECK_EQ(schedule.queued(), 0u);
}

TEST(close_after_keeps_exactly_n_bytes_then_closes) {
  StreamSchedule schedule;
  Faults faults;
  faults.close_after = 3;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("abcdef", faults, t0, random), 3u);
  CHECK(schedule.end() == StreamSchedule::End::close);
}

TEST(the_smaller_limit_wins_and_a_tie_resets) {
  FaultRandom random(1);
  Faults faults;
  faults.reset_after = 5;
  faults.close_after = 3;
  StreamSchedule closing;
  CHECK_EQ(closing.arrive("abcdefgh", faults, t0, random), 3u);
  CHECK(closing.end() == StreamSchedule::End::close);
  faults.close_after = 5;
  StreamSchedule tied;
  CHECK_EQ(tied.arrive("abcdefgh", faults, t0, random), 5u);
  CHECK(tied.end() == StreamSchedule::End::reset);
}

TEST(limits_do_not_apply_to_a_connection_that_lost_its_roll) {
  StreamSchedule schedule(false);
  Faults faults;
  faults.reset_after = 2;
  faults.latency = 1s;
  FaultRandom random(1);
  CHECK_EQ(schedule.arrive("abcdef", faults, t0, random), 6u);
  CHECK(schedule.end() == StreamSchedule::End::none);
  CHECK_EQ(send_due(schedule, faults, t0), std::string("abcdef"));  // no latency either
}

TEST(limits_and_slices_and_latency_combine) {
  StreamSchedule schedule;
  Faults faults;
  faults.reset_after = 7;
  faults.slice_size = 3;
  faults.slice_delay = 1ms;
  faults.latency = 20ms;
  FaultRandom random(1);
  schedule.arrive(pattern(100), faults, t0, random);
  auto deliveries = run_clock(schedule, faults, t0);
  CHECK(joined(deliveries) == pattern(7));
  CHECK_EQ(deliveries.size(), 3u);
  CHECK(deliveries[0].at == t0 + 20ms && deliveries[2].at == t0 + 22ms);
}

// --- the probability roll ----------------------------------------------------------------------

TEST(roll_is_certain_at_zero_and_one_and_fair_between) {
  FaultRandom random(3);
  int hits = 0;
  for (int i = 0; i < 100'000; ++i) {
    CHECK(!roll(random, 0.0));
    CHECK(roll(random, 1.0));
    hits += roll(random, 0.25);
  }
  CHECK(hits > 24'000 && hits < 26'000);
}

// --- UDP: each datagram's fate, and reordering ----------------------------------------------------

namespace {

// Every datagram the schedule lets go, running the fake clock from due time to due time.
std::vector<std::string> drain(DatagramSchedule& schedule, TimePoint now) {
  std::vector<std::string> out;
  while (auto due = schedule.next_due()) {
    now = std::max(now, *due);
    auto data = schedule.pop_due(now);
    CHECK(data.has_value());  // next_due never names a time with nothing to send
    out.push_back(*data);
  }
  return out;
}

std::vector<std::string> numbered(int count) {
  std::vector<std::string> out;
  for (int i = 1; i <= count; ++i) out.push_back(std::to_string(i));
  return out;
}

}  // namespace

TEST(datagram_drop_and_duplicate_follow_their_probabilities) {
  FaultRandom random(11);
  Faults faults;
  faults.drop = 0.2;
  faults.duplicate = 0.5;
  DatagramSchedule schedule;
  int dropped = 0, duplicated = 0;
  constexpr int kDatagrams = 100'000;
  for (int i = 0; i < kDatagrams; ++i) {
    auto fate = schedule.arrive("x", faults, t0, random);
    dropped += fate.dropped;
    duplicated += fate.duplicated;
    CHECK(!(fate.dropped && fate.duplicated) && !fate.reordered);
  }
  CHECK(dropped > 19'000 && dropped < 21'000);
  CHECK(duplicated > 39'000 && duplicated < 41'000);  // half of the 80 % that were not dropped
  CHECK_EQ(drain(schedule, t0).size(), static_cast<size_t>(kDatagrams - dropped + duplicated));
}

TEST(datagram_faults_apply_only_with_the_probability_of_the_set) {
  FaultRandom random(5);
  Faults faults;
  faults.probability = 0.0;
  faults.drop = 1.0;
  faults.duplicate = 1.0;
  faults.reorder = 1.0;
  faults.latency = 1s;
  DatagramSchedule schedule;
  auto fate = schedule.arrive("a", faults, t0, random);
  CHECK(!fate.dropped && !fate.duplicated && !fate.reordered);
  CHECK(schedule.next_due() == t0);
  faults.probability = 1.0;
  faults.drop = 0.0;
  faults.reorder = 0.0;
  CHECK(schedule.arrive("b", faults, t0, random).duplicated);
  CHECK(schedule.pop_due(t0) == "a");
  CHECK(!schedule.pop_due(t0 + 999ms));
  CHECK(schedule.pop_due(t0 + 1s) == "b" && schedule.pop_due(t0 + 1s) == "b");
  faults.drop = 1.0;
  CHECK(schedule.arrive("c", faults, t0, random).dropped);
  CHECK(!schedule.next_due());
}

TEST(reorder_one_swaps_every_pair) {
  FaultRandom random(1);
  Faults faults;
  faults.reorder = 1.0;
  DatagramSchedule schedule;
  int reordered = 0;
  for (auto& data : numbered(6)) reordered += schedule.arrive(data, faults, t0, random).reordered;
  CHECK_EQ(reordered, 3);
  CHECK(drain(schedule, t0) == (std::vector<std::string>{"2", "1", "4", "3", "6", "5"}));
}

TEST(a_held_datagram_no_other_follows_goes_alone_after_the_hold) {
  FaultRandom random(1);
  Faults faults;
  faults.reorder = 1.0;
  DatagramSchedule schedule;
  for (auto& data : numbered(3)) schedule.arrive(data, faults, t0, random);
  CHECK(schedule.pop_due(t0) == "2");
  CHECK(schedule.pop_due(t0) == "1");
  CHECK(!schedule.pop_due(t0));  // "3" is held, waiting for a fourth
  CHECK(schedule.next_due() == t0 + kReorderHold);
  CHECK(!schedule.pop_due(t0 + kReorderHold - 1ms));
  CHECK(schedule.pop_due(t0 + kReorderHold) == "3");
  CHECK(!schedule.next_due());
  auto fate = schedule.arrive("4", faults, t0 + 1s, random);  // after the release: held again
  CHECK(!fate.reordered);
}

TEST(a_dropped_datagram_does_not_release_a_held_one) {
  FaultRandom random(1);
  Faults faults;
  faults.reorder = 1.0;
  DatagramSchedule schedule;
  schedule.arrive("1", faults, t0, random);
  Faults dropping = faults;
  dropping.drop = 1.0;
  CHECK(schedule.arrive("lost", dropping, t0, random).dropped);
  CHECK(!schedule.pop_due(t0));
  CHECK(schedule.arrive("2", faults, t0, random).reordered);
  CHECK(drain(schedule, t0) == (std::vector<std::string>{"2", "1"}));
}

TEST(a_duplicated_held_datagram_goes_twice_after_the_next) {
  FaultRandom random(1);
  Faults faults;
  faults.reorder = 1.0;
  faults.duplicate = 1.0;
  DatagramSchedule schedule;
  schedule.arrive("1", faults, t0, random);
  schedule.arrive("2", faults, t0, random);
  CHECK(drain(schedule, t0) == (std::vector<std::string>{"2", "2", "1", "1"}));
}

TEST(reorder_swaps_only_neighbours_at_the_expected_rate) {
  FaultRandom random(9);
  Faults faults;
  faults.reorder = 0.3;
  DatagramSchedule schedule;
  constexpr int kDatagrams = 100'000;
  int reordered = 0;
  for (int i = 0; i < kDatagrams; ++i) reordered += schedule.arrive(std::to_string(i), faults, t0, random).reordered;
  // Held with p while none is held, released by the next: p / (1 + p) of the datagrams swap.
  CHECK(reordered > 22'500 && reordered < 23'700);
  auto out = drain(schedule, t0);
  CHECK_EQ(out.size(), static_cast<size_t>(kDatagrams));
  int swaps = 0;
  for (int position = 0; position < kDatagrams; ++position) {
    int number = std::stoi(out[position]);
    CHECK(std::abs(number - position) <= 1);  // never further than one place
    swaps += number == position + 1;
  }
  CHECK_EQ(swaps, reordered);  // each counted swap put a datagram one place ahead, and only those
}

TEST(datagram_latency_and_jitter_delay_without_reordering) {
  FaultRandom random(4);
  Faults faults;
  faults.latency = 10ms;
  faults.jitter = 10ms;
  DatagramSchedule schedule;
  auto in = numbered(1000);
  TimePoint now = t0;
  for (auto& data : in) {
    schedule.arrive(data, faults, now, random);
    now += 100us;
  }
  CHECK(*schedule.next_due() <= t0 + 20ms);
  CHECK(drain(schedule, t0) == in);
}

// --- slow_close and the holds (timeout, black hole) -------------------------------------------

TEST(slow_close_holds_the_fin_for_its_delay_and_then_says_so_once) {
  Faults faults;
  faults.slow_close = 300ms;
  StreamSchedule schedule;
  CHECK(!schedule.fin_due(faults, t0));
  CHECK(schedule.next_due() == t0 + 300ms);  // the relay's loop wakes for it
  CHECK(!schedule.fin_due(faults, t0 + 299ms));
  CHECK(schedule.fin_due(faults, t0 + 300ms));
  CHECK(!schedule.next_due().has_value());  // given: no more wake-ups for it
}

TEST(slow_close_spares_a_connection_that_rolled_fault_free) {
  Faults faults;
  faults.slow_close = 300ms;
  StreamSchedule schedule(false);
  CHECK(schedule.fin_due(faults, t0));
}

TEST(a_timeout_holds_then_expires_and_zero_holds_for_ever) {
  Faults faults;
  faults.timeout = 1s;
  StreamHold hold;
  CHECK(hold.update(faults, true, false, t0) == StreamHold::State::held);
  CHECK(hold.expiry() == t0 + 1s);
  CHECK(hold.update(faults, true, false, t0 + 999ms) == StreamHold::State::held);
  CHECK(hold.update(faults, true, false, t0 + 1s) == StreamHold::State::expired);
  faults.timeout = 0s;
  StreamHold for_ever;
  CHECK(for_ever.update(faults, true, false, t0) == StreamHold::State::held);
  CHECK(!for_ever.expiry().has_value());
  CHECK(for_ever.update(faults, true, false, t0 + 1h) == StreamHold::State::held);
}

TEST(a_hold_lets_go_when_its_fault_goes_and_starts_afresh_next_time) {
  Faults timeout;
  timeout.timeout = 1s;
  StreamHold hold;
  CHECK(hold.update(timeout, true, false, t0) == StreamHold::State::held);
  CHECK(hold.update(Faults{}, true, false, t0 + 500ms) == StreamHold::State::flowing);
  CHECK(!hold.held() && !hold.expiry().has_value());
  CHECK(hold.update(timeout, true, false, t0 + 2s) == StreamHold::State::held);  // counted from now
  CHECK(hold.expiry() == t0 + 3s);
}

TEST(a_black_hole_holds_every_connection_and_never_expires) {
  StreamHold hold;
  CHECK(hold.update(Faults{}, false, true, t0) == StreamHold::State::held);  // even fault-free ones
  CHECK(!hold.expiry().has_value());
  Faults timeout;
  timeout.timeout = 1s;
  StreamHold spared;  // a connection that rolled fault-free ignores the timeout
  CHECK(spared.update(timeout, false, false, t0) == StreamHold::State::flowing);
}

int main() { return socketeer::testing::run_all(); }
