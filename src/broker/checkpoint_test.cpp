// Checkpoints: an engine recovered from a checkpoint plus the journal tail
// equals one recovered by replaying the whole journal; a damaged, stale or
// half-written checkpoint falls back to the whole log without losing a
// confirmed message (the host on the in-memory, fault-injecting fs).
#include <atomic>
#include <fmt/core.h>
#include <future>
#include <gtest/gtest.h>
#include <map>
#include <set>
#include <thread>

#include "broker/checkpoint_file.h"
#include "broker/engine.h"
#include "broker/host.h"
#include "io/mem_file_system.h"
#include "timing/timing_wheel.h"

namespace outrider::broker {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::int64_t ns_of(wall_time t) {
  return std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

// ---------------------------------------------------------------- engine level

class checkpoint_engine : public ::testing::Test {
 protected:
  std::unique_ptr<timing::timing_wheel> make_wheel() {
    timing::timing_wheel_options w;
    w.start_ns = ns_of(now_);
    return std::make_unique<timing::timing_wheel>(w);
  }

  id128 publish(engine& e, const std::string& destination, std::optional<nanoseconds> delay = {}) {
    publish_request r;
    r.destination = destination;
    r.body = "body-" + std::to_string(++published_);
    if (delay) r.deliver_at = now_ + *delay;
    auto receipt = e.publish(std::move(r), now_);
    EXPECT_TRUE(receipt) << receipt.error().message;
    return receipt ? receipt->id : id128{};
  }

  // Writes `e`'s checkpoint (wheel entries listed from `wheel`) to `path`.
  void write(engine& e, timing::timing_wheel& wheel, const std::string& path) {
    auto out = checkpoint_writer::create(fs_, path);
    ASSERT_TRUE(out);
    (*out)->put_header(journal_.end_position());
    ASSERT_TRUE(e.write_checkpoint(
        [&wheel](const std::function<status(const timing::due_entry&)>& fn) {
          status s;
          wheel.for_each([&](const timing::due_entry& entry) {
            if (s) s = fn(entry);
          });
          return s;
        },
        **out));
    ASSERT_TRUE((*out)->finish());
  }

  result<std::unique_ptr<engine>> load(timing::timing_wheel& wheel, const std::string& path) {
    auto in = checkpoint_reader::open(fs_, path);
    if (!in) return std::move(in).error();
    auto high_water = (*in)->get_header();
    if (!high_water) return std::move(high_water).error();
    return engine::open_from_checkpoint(journal_, wheel, **in, *high_water);
  }

  // Everything observable about the engine's queues, as text.
  static std::map<std::string, std::string> describe(engine& e) {
    std::map<std::string, std::string> out;
    for (const auto& name : e.queue_names()) {
      auto st = e.stats(name);
      std::string d = fmt::format("ready={} leased={} retry={} scheduled={} dlq={} is_dlq={}",
                                  st->ready, st->leased, st->retry_wait, st->scheduled,
                                  st->dead_letter_queue, st->is_dead_letter_queue);
      std::set<std::string> messages;
      auto list = e.list(name, 100000);
      for (const auto& m : list.value()) {
        messages.insert(fmt::format("{}:{}:{}:{}:{}", m.id.to_string(), static_cast<int>(m.state),
                                    m.failed_attempts, m.position, m.origin_queue));
      }
      for (const auto& m : messages) d += " " + m;
      out[name] = d;
    }
    out["#scheduled"] = std::to_string(e.scheduled_count());
    out["#lowest"] = std::to_string(e.lowest_live_position().value_or(0));
    return out;
  }

  // Fires everything within `horizon` and consumes every queue; returns "queue:body" of each
  // delivery (a multiset: at-least-once duplicates would show).
  std::multiset<std::string> drain(engine& e, nanoseconds horizon) {
    const wall_time end = now_ + horizon;
    wall_time t = now_;
    for (auto w = e.next_wakeup(); w && *w <= end; w = e.next_wakeup()) {
      if (*w > t) t = *w;
      EXPECT_TRUE(e.tick(t));
      if (e.next_wakeup() == w) break;
    }
    t = end;
    EXPECT_TRUE(e.tick(t));
    std::multiset<std::string> got;
    for (const auto& name : e.queue_names()) {
      auto c = e.subscribe(name, 1000000);
      EXPECT_TRUE(c);
    }
    std::vector<delivery> out;
    EXPECT_TRUE(e.dispatch(t, 1000000, out));
    for (const auto& d : out) got.insert(d.queue + ":" + d.msg.body);
    return got;
  }

  wall_time now_ = simulated_clock::default_start();
  io::mem_file_system fs_;
  mem_journal journal_;
  int published_ = 0;
};

TEST_F(checkpoint_engine, checkpoint_plus_tail_equals_whole_replay) {
  auto wheel = make_wheel();
  auto opened = engine::open(journal_, *wheel);
  ASSERT_TRUE(opened);
  engine& e = **opened;
  queue_options q;
  q.max_attempts = 2;
  ASSERT_TRUE(e.declare_queue("orders", q));
  ASSERT_TRUE(e.declare_topic("events"));
  ASSERT_TRUE(e.declare_subscription("events", "billing"));
  ASSERT_TRUE(e.declare_subscription("events", "audit"));
  for (int i = 0; i < 20; ++i) publish(e, "orders");
  for (int i = 0; i < 30; ++i) publish(e, "orders", hours(1 + i * 5));  // days ahead
  for (int i = 0; i < 10; ++i) publish(e, "events", seconds(10 + i));
  for (int i = 0; i < 5; ++i) publish(e, "events");
  const id128 cancelled = publish(e, "orders", hours(2));
  ASSERT_TRUE(e.cancel(cancelled));
  // Deliveries in every state: acked, nacked with a delay, dead-lettered, leased.
  auto c = e.subscribe("orders", 8);
  ASSERT_TRUE(c);
  std::vector<delivery> d;
  ASSERT_TRUE(e.dispatch(now_, 8, d));
  ASSERT_EQ(d.size(), 8U);
  ASSERT_TRUE(e.ack(d[0].tag, now_));
  ASSERT_TRUE(e.nack(d[1].tag, now_, seconds(30)));
  ASSERT_TRUE(e.dead_letter(d[2].tag, now_));
  ASSERT_TRUE(e.nack(d[3].tag, now_));  // ready again, one failure counted
  // d[4..7] stay leased: a checkpoint lists them as ready, as a replay would.

  write(e, *wheel, "ckpt");
  // The tail: more of everything after the checkpoint.
  ASSERT_TRUE(e.ack(d[4].tag, now_));
  ASSERT_TRUE(e.nack(d[5].tag, now_, seconds(5)));
  for (int i = 0; i < 5; ++i) publish(e, "orders", hours(3));
  const id128 tail_cancel = publish(e, "events", hours(4));
  ASSERT_TRUE(e.cancel(tail_cancel));
  ASSERT_TRUE(e.declare_queue("late"));
  publish(e, "late");

  auto full_wheel = make_wheel();
  auto full = engine::open(journal_, *full_wheel);
  ASSERT_TRUE(full) << full.error().message;
  auto ckpt_wheel = make_wheel();
  auto from_ckpt = load(*ckpt_wheel, "ckpt");
  ASSERT_TRUE(from_ckpt) << from_ckpt.error().message;
  EXPECT_EQ(describe(**from_ckpt), describe(**full));
  EXPECT_EQ(ckpt_wheel->size(), full_wheel->size());
  const auto got = drain(**from_ckpt, hours(24 * 8));
  EXPECT_EQ(got, drain(**full, hours(24 * 8)));
  // 20 ready + 30 far + 5 tail delayed in orders, minus 2 acked and 1 dead-lettered.
  EXPECT_EQ(got.count("orders:body-1"), 0U);  // acked before the checkpoint
  std::size_t orders = 0;
  for (const auto& g : got) orders += g.starts_with("orders:") ? 1 : 0;
  EXPECT_EQ(orders, 20U + 30U + 5U - 2U - 1U);
}

TEST_F(checkpoint_engine, a_damaged_or_truncated_checkpoint_is_refused) {
  auto wheel = make_wheel();
  auto opened = engine::open(journal_, *wheel);
  ASSERT_TRUE(opened);
  ASSERT_TRUE((*opened)->declare_queue("orders"));
  for (int i = 0; i < 3000; ++i) publish(**opened, "orders", seconds(10 + i));
  write(**opened, *wheel, "ckpt");
  auto size = fs_.file_size("ckpt");
  ASSERT_TRUE(size);
  {
    auto w = make_wheel();
    EXPECT_TRUE(load(*w, "ckpt"));
  }
  // Bit rot in the middle.
  ASSERT_TRUE(fs_.corrupt_for_test("ckpt", *size / 2, std::byte{0x10}));
  {
    auto w = make_wheel();
    auto e = load(*w, "ckpt");
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, errc::data_corruption);
  }
  ASSERT_TRUE(fs_.corrupt_for_test("ckpt", *size / 2, std::byte{0x10}));  // repaired
  // Torn: cut anywhere, including inside the last block and at a block boundary.
  for (std::uint64_t cut : {*size - 1, *size / 3, std::uint64_t{20}, std::uint64_t{0}}) {
    auto file = fs_.open_for_append("ckpt");
    ASSERT_TRUE(file);
    std::vector<std::byte> keep(*size);
    auto r = fs_.open_for_read("ckpt");
    ASSERT_TRUE(r);
    ASSERT_TRUE((*r)->read_at(0, keep));
    ASSERT_TRUE((*file)->truncate(cut));
    auto w = make_wheel();
    auto e = load(*w, "ckpt");
    ASSERT_FALSE(e) << "cut at " << cut;
    EXPECT_EQ(e.error().code, errc::data_corruption);
    ASSERT_TRUE((*file)->truncate(0));
    ASSERT_TRUE((*file)->append(keep));
  }
}

// ---------------------------------------------------------------- host level

class checkpoint_host : public ::testing::Test {
 protected:
  void TearDown() override { host_.reset(); }

  void open(bool checkpoint_at_stop = true, const std::string& dir = "data",
            std::function<void()> before_write = nullptr) {
    host_options o;
    o.data_dir = dir;
    o.checkpoint_at_stop = checkpoint_at_stop;
    o.checkpoint_write_hook = std::move(before_write);
    auto h = host::open(fs_, o);
    ASSERT_TRUE(h) << h.error().message;
    host_ = std::move(*h);
    host_->start();
  }

  // A power cut: the host's files fail from now on, unsynced bytes are lost
  // (or torn), and the host is then stopped with nothing more reaching disk.
  void crash(io::crash_mode mode = io::crash_mode::tear_tail) {
    fs_.crash_for_test(mode);
    host_.reset();
  }

  template <class T, class F>
  T call(F&& start) {
    std::promise<T> p;
    start([&p](T v) { p.set_value(std::move(v)); });
    return p.get_future().get();
  }

  void declare(const std::string& q) {
    auto s = call<status>([&](auto done) { host_->declare_queue(q, {}, std::move(done)); });
    ASSERT_TRUE(s) << s.error().message;
  }

  // Publishes `n` messages (delayed by `delay` when given); returns the ids confirmed.
  std::vector<id128> publish(const std::string& q, int n, std::optional<nanoseconds> delay = {}) {
    std::vector<publish_request> batch;
    for (int i = 0; i < n; ++i) {
      publish_request r;
      r.destination = q;
      r.body = "m" + std::to_string(i);
      if (delay) r.deliver_at = std::chrono::system_clock::now() + *delay;
      batch.push_back(std::move(r));
    }
    auto results = call<std::vector<result<publish_receipt>>>(
        [&](auto done) { host_->publish(std::move(batch), std::move(done)); });
    std::vector<id128> ids;
    for (auto& r : results) {
      EXPECT_TRUE(r) << r.error().message;
      if (r) ids.push_back(r->id);
    }
    return ids;
  }

  std::map<std::string, std::uint64_t> stats() {
    auto v = call<std::vector<std::pair<std::string, std::uint64_t>>>(
        [&](auto done) { host_->stats(std::move(done)); });
    return {v.begin(), v.end()};
  }

  std::set<id128> listed(const std::string& q) {
    auto r = call<result<std::vector<message_info>>>(
        [&](auto done) { host_->list_messages(q, 1000000, std::move(done)); });
    EXPECT_TRUE(r);
    std::set<id128> ids;
    if (r) {
      for (const auto& m : *r) ids.insert(m.id);
    }
    return ids;
  }

  bool scheduled(const std::string& q, const id128& id) {
    return call<result<message>>([&](auto done) { host_->peek(q, id, std::move(done)); }).ok();
  }

  void checkpoint() {
    auto s = call<status>([&](auto done) { host_->checkpoint(std::move(done)); });
    ASSERT_TRUE(s) << s.error().message;
  }

  std::vector<std::byte> read_file(const std::string& path) {
    auto size = fs_.file_size(path);
    EXPECT_TRUE(size);
    std::vector<std::byte> bytes(size.value_or(0));
    auto r = fs_.open_for_read(path);
    EXPECT_TRUE(r);
    if (r) {
      EXPECT_TRUE((*r)->read_at(0, bytes));
    }
    return bytes;
  }
  void write_file(const std::string& path, const std::vector<std::byte>& bytes) {
    ASSERT_TRUE(fs_.remove_file(path));
    auto w = fs_.open_for_append(path);
    ASSERT_TRUE(w);
    ASSERT_TRUE((*w)->append(bytes));
    ASSERT_TRUE((*w)->sync());
    ASSERT_TRUE((*w)->close());
  }

  // The state every test expects after recovery: `ready` listed in "orders",
  // `far` scheduled (peekable) and counted.
  void expect_state(const std::vector<id128>& ready, const std::vector<id128>& far) {
    EXPECT_EQ(listed("orders"), std::set<id128>(ready.begin(), ready.end()));
    auto st = stats();
    EXPECT_EQ(st["messages_ready"], ready.size());
    EXPECT_EQ(st["messages_scheduled"], far.size());
    for (const auto& id : far) EXPECT_TRUE(scheduled("orders", id)) << id.to_string();
  }

  static std::vector<id128> joined(std::vector<id128> a, const std::vector<id128>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  io::mem_file_system fs_{7};
  std::unique_ptr<host> host_;
};

TEST_F(checkpoint_host, a_clean_stop_leaves_a_checkpoint_and_restart_starts_from_it) {
  open();
  declare("orders");
  const auto ready = publish("orders", 50);
  const auto far = publish("orders", 200, hours(24 * 7));
  host_.reset();
  open();
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(ready, far);
  // And again after more work: the second stop's checkpoint covers it.
  const auto more = publish("orders", 20, hours(24));
  host_.reset();
  open();
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(ready, joined(far, more));
}

TEST_F(checkpoint_host, a_crash_recovers_the_checkpoint_plus_the_log_tail) {
  open(false);
  declare("orders");
  const auto ready = publish("orders", 30);
  const auto far = publish("orders", 100, hours(100));
  checkpoint();
  const auto tail_ready = publish("orders", 30);
  const auto tail_far = publish("orders", 100, hours(50));
  const auto high_water = host_->durable_end();
  crash();
  open(false);
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  EXPECT_LT(*host_->recovered_from_checkpoint(), high_water);
  expect_state(joined(ready, tail_ready), joined(far, tail_far));
}

TEST_F(checkpoint_host, a_crash_while_writing_a_checkpoint_keeps_the_previous_one) {
  open(false);
  declare("orders");
  const auto ready = publish("orders", 10);
  const auto far = publish("orders", 40, hours(30));
  checkpoint();
  const auto first = read_file("data/checkpoint");
  const auto tail_far = publish("orders", 40, hours(20));
  // The rename that installs the second checkpoint fails; then the power goes.
  fs_.fail_next_for_test(io::fs_op::rename, errc::io_error);
  auto s = call<status>([&](auto done) { host_->checkpoint(std::move(done)); });
  EXPECT_FALSE(s);
  crash();
  EXPECT_EQ(read_file("data/checkpoint"), first);
  open(false);
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(ready, joined(far, tail_far));
  auto tmp = fs_.exists("data/checkpoint.tmp");
  ASSERT_TRUE(tmp);
  EXPECT_FALSE(*tmp);
}

TEST_F(checkpoint_host, a_corrupt_checkpoint_falls_back_to_the_whole_log) {
  open();
  declare("orders");
  const auto ready = publish("orders", 25);
  const auto far = publish("orders", 3000, hours(24 * 6));
  host_.reset();
  auto size = fs_.file_size("data/checkpoint");
  ASSERT_TRUE(size);
  ASSERT_TRUE(fs_.corrupt_for_test("data/checkpoint", *size / 2, std::byte{0x01}));
  open();
  EXPECT_FALSE(host_->recovered_from_checkpoint().has_value());
  expect_state(ready, far);
  // A torn one (cut short) too; the stop above wrote a good one again, so cut that.
  host_.reset();
  auto good = read_file("data/checkpoint");
  good.resize(good.size() * 2 / 3);
  write_file("data/checkpoint", good);
  open();
  EXPECT_FALSE(host_->recovered_from_checkpoint().has_value());
  expect_state(ready, far);
}

TEST_F(checkpoint_host, an_older_checkpoint_replays_a_longer_tail_and_a_foreign_one_is_refused) {
  open();
  declare("orders");
  const auto ready = publish("orders", 10);
  const auto far = publish("orders", 50, hours(10));
  host_.reset();
  const auto old = read_file("data/checkpoint");
  open();
  const auto more_ready = publish("orders", 10);
  const auto more_far = publish("orders", 50, hours(11));
  host_.reset();
  // Put the first checkpoint back: it is older than the log tail, still valid.
  write_file("data/checkpoint", old);
  open();
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(joined(ready, more_ready), joined(far, more_far));
  host_.reset();
  const auto latest = read_file("data/checkpoint");

  // Another data directory with a shorter log: a checkpoint whose high-water
  // lies beyond its log end is not used.
  open(true, "other");
  declare("orders");
  const auto other_ready = publish("orders", 3);
  host_.reset();
  write_file("other/checkpoint", latest);
  open(true, "other");
  EXPECT_FALSE(host_->recovered_from_checkpoint().has_value());
  expect_state(other_ready, {});
}

TEST_F(checkpoint_host, a_checkpoint_copied_from_another_data_directory_is_refused) {
  // "other" gets the longer log, so the copied checkpoint's high-water lies
  // inside it: only the log identity tells the two apart.
  open(true, "data");
  declare("orders");
  const auto ready = publish("orders", 5);
  host_.reset();
  const auto foreign = read_file("data/checkpoint");
  open(true, "other");
  declare("orders");
  const auto other_ready = publish("orders", 20);
  const auto other_far = publish("orders", 20, hours(5));
  host_.reset();
  ASSERT_TRUE(fs_.file_size("other/checkpoint"));
  write_file("other/checkpoint", foreign);
  open(true, "other");
  EXPECT_FALSE(host_->recovered_from_checkpoint().has_value());
  expect_state(other_ready, other_far);
  // Its own checkpoint (written at that stop) is used again.
  host_.reset();
  open(true, "other");
  EXPECT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(other_ready, other_far);
}

// A gate the checkpoint thread waits at before writing: the test knows the
// write is in flight and decides when it goes on.
struct write_gate {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released{release.get_future().share()};
  std::atomic<bool> armed{false};
  std::function<void()> hook() {
    return [this] {
      if (!armed.exchange(false)) return;
      entered.set_value();
      released.wait();
    };
  }
};

TEST_F(checkpoint_host, the_engine_goes_on_while_a_checkpoint_is_written) {
  write_gate gate;
  open(false, "data", gate.hook());
  declare("orders");
  const auto ready = publish("orders", 20);
  const auto far = publish("orders", 300, hours(48));
  gate.armed = true;
  std::promise<status> written;
  host_->checkpoint([&written](status s) { written.set_value(std::move(s)); });
  gate.entered.get_future().wait();
  // The write is held: publishing, listing and peeking still complete, and
  // none of it is in the snapshot (the tail after its high-water covers it).
  const auto during_ready = publish("orders", 20);
  const auto during_far = publish("orders", 300, hours(47));
  expect_state(joined(ready, during_ready), joined(far, during_far));
  gate.release.set_value();
  auto s = written.get_future().get();
  ASSERT_TRUE(s) << s.error().message;
  const auto after_far = publish("orders", 10, hours(1));
  crash();
  open(false);
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(joined(ready, during_ready), joined(joined(far, during_far), after_far));
}

TEST_F(checkpoint_host, a_crash_during_a_background_checkpoint_keeps_the_previous_one) {
  write_gate gate;
  open(false, "data", gate.hook());
  declare("orders");
  const auto ready = publish("orders", 10);
  const auto far = publish("orders", 200, hours(30));
  checkpoint();
  const auto first = read_file("data/checkpoint");
  const auto tail_far = publish("orders", 200, hours(20));
  gate.armed = true;
  std::promise<status> written;
  host_->checkpoint([&written](status s) { written.set_value(std::move(s)); });
  gate.entered.get_future().wait();
  const auto during_ready = publish("orders", 10);
  // The power goes while the snapshot is being written: the file the writer
  // holds fails from now on and its unsynced bytes are gone.
  fs_.crash_for_test(io::crash_mode::tear_tail);
  gate.release.set_value();
  EXPECT_FALSE(written.get_future().get());
  host_.reset();
  EXPECT_EQ(read_file("data/checkpoint"), first);
  open(false);
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state(joined(ready, during_ready), joined(far, tail_far));
}

TEST_F(checkpoint_host, a_stop_waits_for_the_checkpoint_being_written) {
  write_gate gate;
  open(true, "data", gate.hook());
  declare("orders");
  const auto far = publish("orders", 100, hours(3));
  gate.armed = true;
  std::promise<status> written;
  host_->checkpoint([&written](status s) { written.set_value(std::move(s)); });
  gate.entered.get_future().wait();
  const auto more = publish("orders", 100, hours(4));
  std::thread releaser([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.release.set_value();
  });
  host_.reset();  // waits for the write, installs it, then writes the final one
  releaser.join();
  EXPECT_TRUE(written.get_future().get());
  open(true);
  ASSERT_TRUE(host_->recovered_from_checkpoint().has_value());
  expect_state({}, joined(far, more));
}

}  // namespace
}  // namespace outrider::broker
