#include "broker/host.h"

#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>
#include <map>
#include <optional>
#include <span>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "broker/cached_journal.h"
#include "broker/log_journal.h"
#include "timing/disk_scheduler.h"

namespace outrider::broker {
namespace asio = boost::asio;

namespace {

const log::logger logger{"broker"};
constexpr auto depth_refresh_interval = std::chrono::seconds(1);
// When next_wakeup() is a lower bound that tick() could not act on yet, wait at
// least this long before looking again instead of spinning.
constexpr auto min_rearm_delay = std::chrono::milliseconds(1);
// The checkpoint thread's nice value (the engine's stays 0).
constexpr int checkpoint_nice = 10;

wall_time system_now() {
  return std::chrono::system_clock::now();
}

double seconds_of(nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

struct host::impl {
  impl(io::file_system& f, host_options o, metrics::registry* r)
      : fs(f), opts(std::move(o)), registry(r) {}

  io::file_system& fs;
  host_options opts;
  metrics::registry* registry;

  std::unique_ptr<storage::log> log;
  std::unique_ptr<log_journal> journal;
  std::unique_ptr<cached_journal> cache;
  std::unique_ptr<timing::disk_scheduler> scheduler;
  std::unique_ptr<engine> eng;

  asio::io_context own_engine_ctx{1};  // unused with opts.engine_context
  asio::io_context& engine_ctx = opts.engine_context ? *opts.engine_context : own_engine_ctx;
  asio::io_context sync_ctx{1};
  asio::io_context checkpoint_ctx{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> engine_guard;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> sync_guard;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> checkpoint_guard;
  std::thread engine_thread;
  std::thread sync_thread;
  std::thread checkpoint_thread;  // writes checkpoints from snapshots
  asio::steady_timer wake_timer{engine_ctx};
  asio::steady_timer reclaim_timer{engine_ctx};
  asio::steady_timer depth_timer{engine_ctx};
  // Syncs records nobody waits for (host_options::unawaited_sync_delay).
  asio::steady_timer unawaited_timer{engine_ctx};
  bool unawaited_armed = false;
  std::optional<wall_time> armed_for;
  std::optional<wall_time> last_fired_for;

  // Engine-thread state. sync_in_flight: the sync thread's loop runs (its last
  // result has not arrived yet).
  bool sync_in_flight = false;
  // Set by stop(): the sync loop ends after the sync it is in (finish_stop
  // makes the rest durable itself).
  std::atomic<bool> stop_syncing{false};
  // The highest record position a completion waits on (engine thread writes,
  // the sync loop reads): the loop goes on at once only for those.
  std::atomic<std::uint64_t> awaited{0};
  // False once stopped: posted work is dropped from then on (see post()).
  std::shared_ptr<std::atomic<bool>> live = std::make_shared<std::atomic<bool>>(true);
  bool stopping = false;
  std::optional<error> failed;  // sticky after a failed fdatasync
  std::atomic<std::uint64_t> durable{0};
  std::multimap<std::uint64_t, std::function<void(status)>>
      waiters;  // record position -> completion
  struct consumer_entry {
    delivery_sink sink;
    std::uint64_t granted = 0;  // credit granted in total
    std::uint64_t settled = 0;  // deliveries acked or nacked
  };
  std::unordered_map<consumer_id, consumer_entry> consumers;
  std::unordered_map<delivery_tag, consumer_id> tag_owner;  // deliveries not yet settled
  std::vector<delivery> dispatch_buffer;
  // Checkpoints: the high-water of the one in place (0: none), its size, and
  // whether one is written but waits for the log to be durable up to it.
  std::optional<std::uint64_t> recovered_from;
  std::uint64_t checkpoint_high_water = 0;
  bool has_checkpoint = false;
  std::uint64_t checkpoint_bytes = 0;
  bool checkpoint_waiting = false;  // one is being written or waits for the log
  // The background write in flight (engine thread sets and clears it): stop
  // waits for it instead of racing it.
  std::optional<std::future<status>> checkpoint_writing;
  std::uint64_t checkpoint_writing_hw = 0;
  std::function<void(status)> checkpoint_install;  // completes the write in flight
  id128 log_id;  // this data directory's log identity (file log-id)
  // The delay index snapshot's copy buffer, kept between checkpoints.
  std::vector<timing::due_entry> spare_entries;
  std::promise<void> stopped;
  bool started = false;
  bool joined = false;

  // Metrics (null-safe: a host without a registry records nothing).
  metrics::counter* published = nullptr;
  metrics::counter* delivered = nullptr;
  metrics::counter* acked = nullptr;
  metrics::counter* nacked = nullptr;
  metrics::histogram* fsync_seconds = nullptr;
  metrics::histogram* fire_lag_seconds = nullptr;
  metrics::histogram* batch_records = nullptr;
  metrics::family<metrics::gauge>* depth = nullptr;

  void init_metrics() {
    if (registry == nullptr) return;
    published =
        &registry->add_counter("outrider_broker_published_total", "Messages accepted (durable)")
             .get();
    delivered =
        &registry->add_counter("outrider_broker_delivered_total", "Deliveries handed to consumers")
             .get();
    acked = &registry->add_counter("outrider_broker_acked_total", "Deliveries acknowledged").get();
    nacked =
        &registry->add_counter("outrider_broker_nacked_total", "Deliveries failed by consumers")
             .get();
    fsync_seconds =
        &registry
             ->add_histogram("outrider_broker_fsync_seconds", "Duration of one group-commit sync")
             .get();
    fire_lag_seconds =
        &registry
             ->add_histogram("outrider_broker_delayed_fire_lag_seconds",
                             "Delay between a scheduled message's due time and its delivery")
             .get();
    static constexpr double record_bounds[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};
    batch_records = &registry
                         ->add_histogram("outrider_broker_group_commit_bytes",
                                         "Log bytes made durable by one sync", {}, record_bounds)
                         .get();
    depth = &registry->add_gauge("outrider_broker_queue_messages", "Messages per queue and state",
                                 {"queue", "state"}, 10000);
  }

  template <class F>
  void post(F&& fn) {
    // Work that reaches the engine after the stop is dropped, as stopping its
    // own context would drop it: with host_options::engine_context the context
    // outlives the host, and a handler queued late (say an ack a delivery sink
    // posted during the stop) must not run against a destroyed host.
    asio::post(engine_ctx, [live = live, fn = std::forward<F>(fn)]() mutable {
      if (live->load(std::memory_order_acquire)) fn();
    });
  }

  // REQUIRES engine thread. Refuses work when stopping or failed.
  std::optional<error> refuse() const {
    if (failed)
      return error(errc::io_error,
                   "the broker's log failed to sync; restart the broker: " + failed->message);
    if (stopping) return error(errc::shutting_down, "the broker is shutting down");
    return std::nullopt;
  }

  // Calls `done` once the record at `position` is durable.
  void when_durable(std::uint64_t position, std::function<void(status)> done) {
    if (position < durable.load(std::memory_order_relaxed)) {
      done({});
      return;
    }
    waiters.emplace(position, std::move(done));
    if (position > awaited.load(std::memory_order_relaxed))
      awaited.store(position, std::memory_order_release);
  }

  // Engine thread: starts the sync thread's loop unless it is running, if a
  // completion waits for a record not yet durable (or `unawaited` is set: the
  // delay for records nobody waits for is over). Records nobody waits for (acks
  // and other settlements) only arm that delay: an fdatasync of acks alone costs
  // CPU and holds back the publishes arriving next, and losing them in a crash
  // only means a redelivery.
  void maybe_sync(bool unawaited = false) {
    if (sync_in_flight || failed || log->end() <= durable.load(std::memory_order_relaxed)) return;
    if (waiters.empty() && !unawaited && !stopping) {
      if (!unawaited_armed) {
        unawaited_armed = true;
        unawaited_timer.expires_after(opts.unawaited_sync_delay);
        unawaited_timer.async_wait([this](const boost::system::error_code& ec) {
          if (ec) return;  // cancelled: a sync started, or the host stopped
          unawaited_armed = false;
          maybe_sync(/*unawaited=*/true);
        });
      }
      return;
    }
    if (unawaited_armed) {
      unawaited_armed = false;
      unawaited_timer.cancel();  // this sync covers them
    }
    sync_in_flight = true;
    const auto from = durable.load(std::memory_order_relaxed);
    asio::post(sync_ctx, [this, from] { sync_loop(from); });
  }

  // Sync thread. Group commit without a round trip through the engine between
  // syncs: as soon as a sync returns, its result goes to the engine thread
  // (which confirms what it covers) and, if less than
  // opts.immediate_sync_bytes was appended while it ran, the next sync starts
  // at once. Each result says whether the loop goes on; the engine's
  // sync_in_flight stays set until the last one arrives, and then the engine
  // starts the next sync itself (maybe_sync) if anything is left.
  void sync_loop(std::uint64_t from) {
    for (;;) {
      const auto began = std::chrono::steady_clock::now();
      auto r = log->sync();
      const auto took = std::chrono::steady_clock::now() - began;
      // A small batch starts at once (a publisher with few unconfirmed
      // messages waits for it); a big one waits for the engine's round trip
      // and grows meanwhile. Positions across a segment roll differ by more
      // than any threshold: such a batch goes the long way too.
      // Only for a record someone waits for (a publish, a cancel): records
      // nobody waits for (acks) are synced when the engine next asks, so a
      // sync of acks alone does not hold back the publishes arriving next.
      const auto end = log->end();
      const bool more = r && !stop_syncing.load(std::memory_order_acquire) && end > *r &&
                        end - *r < opts.immediate_sync_bytes &&
                        awaited.load(std::memory_order_acquire) >= *r;
      const std::uint64_t covered = r ? *r : from;
      post([this, r = std::move(r), took, from, more]() mutable {
        on_synced(std::move(r), took, from, more);
      });
      if (!more) return;
      from = covered;
    }
  }

  // Engine thread: a sync's result. `more`: the sync thread has started the next one.
  void on_synced(result<std::uint64_t> r, nanoseconds took, std::uint64_t from, bool more) {
    if (!more) sync_in_flight = false;
    if (!r) {
      failed = r.error();
      logger.error("log sync failed; refusing new work until restart: {}", r.error().message);
      auto pending = std::move(waiters);
      waiters.clear();
      for (auto& [pos, done] : pending)
        done(error(errc::io_error, "log sync failed: " + r.error().message));
    } else {
      // Results arrive in the order of their syncs, so this only grows.
      durable.store(std::max(*r, durable.load(std::memory_order_relaxed)),
                    std::memory_order_relaxed);
      if (fsync_seconds != nullptr) fsync_seconds->observe(seconds_of(took));
      if (batch_records != nullptr && *r > from)
        batch_records->observe(static_cast<double>(*r - from) / 1024.0);
      while (!waiters.empty() && waiters.begin()->first < *r) {
        auto node = waiters.extract(waiters.begin());
        node.mapped()({});
      }
    }
    after_work();
  }

  void dispatch_all() {
    if (consumers.empty()) return;
    const auto now = system_now();
    // Early delivery hands out what is appended (the log reads records still in
    // its buffer; the read cache holds ready publishes anyway). After a failed
    // sync only what is durable goes out: the rest may be gone from disk.
    const auto limit =
        opts.deliver_after_fsync || failed ? durable.load(std::memory_order_relaxed) : UINT64_MAX;
    for (;;) {
      dispatch_buffer.clear();
      auto s = eng->dispatch(now, opts.dispatch_batch, dispatch_buffer, limit);
      if (!s) logger.error("dispatch: {}", s.error().message);
      if (dispatch_buffer.empty()) return;
      bool one_consumer = true;
      for (auto& d : dispatch_buffer) {
        if (fire_lag_seconds != nullptr && d.attempt == 1 &&
            d.msg.deliver_at > d.msg.published_at) {
          fire_lag_seconds->observe(seconds_of(now - d.msg.deliver_at));
        }
        tag_owner.emplace(d.tag, d.consumer);
        one_consumer = one_consumer && d.consumer == dispatch_buffer.front().consumer;
      }
      if (delivered != nullptr) delivered->inc(dispatch_buffer.size());
      if (one_consumer) {
        // The usual case: one batch of the right size, no grouping.
        auto it = consumers.find(dispatch_buffer.front().consumer);
        if (it != consumers.end()) {
          std::vector<delivery> batch(std::make_move_iterator(dispatch_buffer.begin()),
                                      std::make_move_iterator(dispatch_buffer.end()));
          it->second.sink(std::move(batch));
        }
      } else {
        // Group by consumer, keeping each consumer's order.
        std::unordered_map<consumer_id, std::vector<delivery>> by_consumer;
        for (auto& d : dispatch_buffer) by_consumer[d.consumer].push_back(std::move(d));
        for (auto& [c, batch] : by_consumer) {
          auto it = consumers.find(c);
          if (it != consumers.end()) it->second.sink(std::move(batch));
        }
      }
      if (dispatch_buffer.size() < opts.dispatch_batch || !s) return;
    }
  }

  void rearm() {
    auto w = eng->next_wakeup();
    // A timer armed for earlier than needed stays armed: firing early is harmless
    // (tick() finds nothing and the timer is armed again then). next_wakeup()
    // moves later whenever an ack ends the earliest lease, so re-arming each
    // time would cancel and re-arm the timer once per delivery.
    if (!w || (armed_for && *armed_for <= *w)) return;
    armed_for = w;
    auto delay = std::chrono::duration_cast<nanoseconds>(*w - system_now());
    if (last_fired_for && *last_fired_for == *w)
      delay = std::max<nanoseconds>(delay, min_rearm_delay);
    if (delay < nanoseconds::zero()) delay = nanoseconds::zero();
    wake_timer.expires_after(delay);
    wake_timer.async_wait([this, w](const boost::system::error_code& ec) {
      if (ec) return;
      armed_for.reset();
      last_fired_for = w;
      if (auto s = eng->tick(system_now()); !s) logger.error("tick: {}", s.error().message);
      after_work();
    });
  }

  // Engine thread: the log's next segment is written ahead on the checkpoint thread
  // (storage::log_options::prepare_segments: header and zeros, so the group commits in it
  // overwrite allocated blocks; ~0.1 instead of ~0.2 ms per fdatasync here).
  bool preparing_segment = false;
  void maybe_prepare_segment() {
    if (preparing_segment || failed || stopping || !log->wants_prepared_segment()) return;
    preparing_segment = true;
    asio::post(checkpoint_ctx, [this] {
      auto s = log->prepare_next_segment();
      post([this, s = std::move(s)] {
        preparing_segment = false;
        if (!s) logger.warn("writing the next log segment ahead: {}", s.error().message);
      });
    });
  }

  // After every engine operation: start a sync if needed, hand out deliveries, re-arm the timer.
  void after_work() {
    maybe_prepare_segment();
    maybe_sync();
    dispatch_all();
    rearm();
    if (stopping && !sync_in_flight) finish_stop();
  }

  // The engine limits unsettled deliveries; granted - settled keeps the total
  // delivered within the credit granted.
  void apply_credit(consumer_id c, consumer_entry& e) {
    const auto allowance = e.granted > e.settled ? e.granted - e.settled : 0;
    const auto credit = static_cast<std::uint32_t>(std::min<std::uint64_t>(allowance, UINT32_MAX));
    if (auto s = eng->set_credit(c, credit); !s) logger.debug("set_credit: {}", s.error().message);
  }

  void settled(delivery_tag tag) {
    auto it = tag_owner.find(tag);
    if (it == tag_owner.end()) return;
    auto c = consumers.find(it->second);
    if (c != consumers.end()) {
      ++c->second.settled;
      apply_credit(c->first, c->second);
    }
    tag_owner.erase(it);
  }

  std::string checkpoint_path() const { return opts.data_dir + "/checkpoint"; }
  std::string checkpoint_tmp_path() const { return opts.data_dir + "/checkpoint.tmp"; }

  // A fresh, empty delay index (its directory wiped).
  status open_scheduler() {
    const std::string index_dir = opts.data_dir + "/delay-index";
    OUTRIDER_TRY(fs.create_dirs(index_dir));
    auto old = fs.list_dir(index_dir);
    if (!old) return std::move(old).error();
    for (const auto& name : *old) OUTRIDER_TRY(fs.remove_file(index_dir + "/" + name));
    timing::disk_scheduler_options sched_opts;
    // Far entries go to one-hour files (168 for a 7-day spread, not 60,480 ten-second ones):
    // fewer files to write while scheduling, to delete and rewrite at every start.
    sched_opts.coarse_width_ns = std::chrono::nanoseconds(std::chrono::hours(1)).count();
    sched_opts.coarse_lead_ns = std::chrono::nanoseconds(std::chrono::minutes(10)).count();
    auto sched = timing::disk_scheduler::open(fs, index_dir, sched_opts);
    if (!sched) return std::move(sched).error();
    scheduler = std::move(sched->scheduler);
    return ok_status();
  }

  // Recovery from the checkpoint in place, if any, usable, and not older than
  // the log's first record. Errors: not_found (no checkpoint), anything else
  // means "replay the whole log instead".
  status open_from_checkpoint() {
    if (auto tmp = fs.exists(checkpoint_tmp_path()); tmp && *tmp) {
      (void)fs.remove_file(checkpoint_tmp_path());  // a checkpoint write cut short
    }
    if (opts.checkpoint_log_bytes == 0) return error(errc::not_found, "checkpoints are off");
    auto in = checkpoint_reader::open(fs, checkpoint_path());
    if (!in) return std::move(in).error();
    auto high_water = (*in)->get_header();
    if (!high_water) return std::move(high_water).error();
    if ((*in)->log_id() != log_id) {
      return error(errc::failed_precondition,
                   fmt::format("it describes log {}, this data directory's log is {}",
                               (*in)->log_id().to_hex(), log_id.to_hex()));
    }
    if (*high_water < log->begin() || *high_water > log->end()) {
      return error(errc::failed_precondition,
                   fmt::format("its high-water {} is outside the log [{}, {})", *high_water,
                               log->begin(), log->end()));
    }
    auto e = engine::open_from_checkpoint(*cache, *scheduler, **in, *high_water, opts.engine);
    if (!e) return std::move(e).error();
    eng = std::move(*e);
    recovered_from = *high_water;
    checkpoint_high_water = *high_water;
    has_checkpoint = true;
    checkpoint_bytes = fs.file_size(checkpoint_path()).value_or(0);
    return ok_status();
  }

  // The log's identity, recorded in every checkpoint: a checkpoint copied in
  // from another data directory names another log and is not used. Created
  // (random) with the data directory, or when the file is missing or damaged
  // (which only makes the checkpoint in place unusable).
  status load_log_id() {
    const std::string path = opts.data_dir + "/log-id";
    if (auto file = fs.open_for_read(path); file) {
      std::array<std::byte, 33> text{};
      auto n = (*file)->read_at(0, text);
      if (n && *n >= 32) {
        std::string hex(reinterpret_cast<const char*>(text.data()), 32);
        if (auto id = id128::parse_hex(hex); id && !id->is_zero()) {
          log_id = *id;
          return ok_status();
        }
      }
    }
    log_id = id128::random();
    const std::string tmp = path + ".tmp";
    if (auto exists = fs.exists(tmp); exists && *exists) OUTRIDER_TRY(fs.remove_file(tmp));
    auto out = fs.open_for_append(tmp);
    if (!out) return std::move(out).error();
    const std::string text = log_id.to_hex() + "\n";
    OUTRIDER_TRY((*out)->append(std::as_bytes(std::span(text))));
    OUTRIDER_TRY((*out)->sync());
    OUTRIDER_TRY((*out)->close());
    OUTRIDER_TRY(fs.rename(tmp, path));
    return fs.sync_dir(opts.data_dir);
  }

  // A consistent image of the engine and its delay index as of the log end
  // now, cheap to take (see engine::snapshot_for_checkpoint). REQUIRES engine
  // thread.
  struct checkpoint_image {
    std::uint64_t high_water = 0;
    std::unique_ptr<engine::checkpoint_snapshot> snapshot;
    std::shared_ptr<timing::disk_scheduler::entries_snapshot> entries;
    // For the log line: the delay index's part of the pause, and what it took.
    nanoseconds delay_index_took{0};
    std::size_t delay_index_files = 0;
    std::size_t delay_index_copied = 0;
  };
  result<checkpoint_image> snapshot_checkpoint() {
    const auto began = std::chrono::steady_clock::now();
    auto entries = scheduler->snapshot(std::move(spare_entries));
    spare_entries = {};
    if (!entries) return std::move(entries).error();
    checkpoint_image image;
    image.delay_index_took = std::chrono::steady_clock::now() - began;
    image.delay_index_files = entries->files.size();
    image.delay_index_copied = entries->in_memory.size();
    auto shared = std::make_shared<timing::disk_scheduler::entries_snapshot>(std::move(*entries));
    image.entries = shared;
    image.high_water = log->end();
    image.snapshot = eng->snapshot_for_checkpoint(
        [shared](const std::function<status(const timing::due_entry&)>& fn) {
          return shared->for_each(fn);
        });
    return image;
  }

  // Streams an image to checkpoint.tmp and syncs it. Any thread: touches
  // only the image and the file system.
  static status write_image(io::file_system& fs, const std::string& path, const id128& log_id,
                            checkpoint_image& image, const std::function<void()>& hook = nullptr) {
    auto out = checkpoint_writer::create(fs, path);
    if (!out) return std::move(out).error();
    (*out)->put_header(image.high_water, log_id);
    auto s = image.snapshot->write(**out);
    image.snapshot.reset();  // thaws the scheduled index before the sync
    if (hook) hook();
    auto finished = (*out)->finish();
    OUTRIDER_TRY(s);
    return finished;
  }

  // Renames checkpoint.tmp into place. REQUIRES: the log is durable up to
  // `high_water` (the checkpoint never describes records a crash could undo).
  status install_checkpoint(std::uint64_t high_water) {
    OUTRIDER_TRY(fs.rename(checkpoint_tmp_path(), checkpoint_path()));
    OUTRIDER_TRY(fs.sync_dir(opts.data_dir));
    checkpoint_high_water = high_water;
    has_checkpoint = true;
    checkpoint_bytes = fs.file_size(checkpoint_path()).value_or(0);
    return ok_status();
  }

  // Takes a snapshot on the engine thread, writes it on the checkpoint thread
  // while the engine goes on, and installs it once the log is durable up to
  // its high-water.
  void take_checkpoint(std::function<void(status)> done) {
    if (auto e = refuse()) return done(*e);
    if (checkpoint_waiting) {
      return done(error(errc::unavailable, "a checkpoint is being written"));
    }
    const auto began = std::chrono::steady_clock::now();
    auto image = snapshot_checkpoint();
    if (!image) {
      logger.warn("checkpoint: {}", image.error().message);
      return done(std::move(image).error());
    }
    const auto paused = std::chrono::steady_clock::now() - began;
    auto pause_detail = fmt::format(
        "delay index {} ms: {} files opened, {} entries copied",
        std::chrono::duration_cast<std::chrono::milliseconds>(image->delay_index_took).count(),
        image->delay_index_files, image->delay_index_copied);
    checkpoint_waiting = true;
    const std::uint64_t hw = image->high_water;
    auto written = std::make_shared<std::promise<status>>();
    checkpoint_writing = written->get_future();
    checkpoint_writing_hw = hw;
    checkpoint_install = [this, hw, began, paused, pause_detail = std::move(pause_detail),
                          done = std::move(done)](status s) mutable {
      checkpoint_waiting = false;
      if (s) s = install_checkpoint(hw);
      if (!s) {
        (void)fs.remove_file(checkpoint_tmp_path());
        logger.warn("checkpoint: {}", s.error().message);
      } else {
        logger.info(
            "checkpoint at log position {} ({} bytes) in {} ms (engine paused {} ms for the "
            "snapshot; {})",
            hw, checkpoint_bytes,
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  began)
                .count(),
            std::chrono::duration_cast<std::chrono::milliseconds>(paused).count(), pause_detail);
      }
      done(std::move(s));
    };
    asio::post(checkpoint_ctx, [this, image = std::make_shared<checkpoint_image>(std::move(*image)),
                                written]() mutable {
      status s = write_image(fs, checkpoint_tmp_path(), log_id, *image, opts.checkpoint_write_hook);
      written->set_value(s);
      post([this, s = std::move(s), image]() mutable {
        // The copy buffer's pages stay mapped for the next snapshot.
        spare_entries = std::move(image->entries->in_memory);
        image.reset();
        if (!checkpoint_writing) return;  // finish_stop took the result over
        checkpoint_writing.reset();
        auto install = std::move(checkpoint_install);
        checkpoint_install = nullptr;
        if (!s || checkpoint_writing_hw == 0) return install(std::move(s));
        when_durable(checkpoint_writing_hw - 1, std::move(install));
        after_work();
      });
    });
  }

  void maybe_checkpoint() {
    if (opts.checkpoint_log_bytes == 0 || checkpoint_waiting || failed) return;
    const std::uint64_t grown = log->end() - std::min(log->end(), checkpoint_high_water);
    if (grown < std::max(opts.checkpoint_log_bytes, 4 * checkpoint_bytes)) return;
    take_checkpoint([](status) {});
  }

  void schedule_reclaim() {
    reclaim_timer.expires_after(opts.reclaim_interval);
    reclaim_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      maybe_checkpoint();
      reclaim();
      schedule_reclaim();
    });
  }

  void reclaim() {
    // A sync may be in flight (under steady load the sync loop always runs): it
    // only touches the active segment, which is never removed.
    if (failed || log->segment_count() < 2) return;
    auto low_messages = eng->lowest_live_message_position();
    if (auto s = eng->rejournal_topology_below(low_messages.value_or(log->end())); !s) {
      logger.warn("reclaim: {}", s.error().message);
      return;
    }
    // Everything below both the lowest live reference and the durable end can go.
    auto limit = std::min(eng->lowest_live_position().value_or(log->end()), durable.load());
    // The checkpoint in place needs the log from its high-water on.
    if (has_checkpoint) limit = std::min(limit, checkpoint_high_water);
    auto before = log->segment_count();
    if (auto s = log->remove_segments_before(limit); !s) {
      logger.warn("reclaim: {}", s.error().message);
    } else if (log->segment_count() < before) {
      logger.info("reclaimed {} log segment(s)", before - log->segment_count());
    }
    after_work();
  }

  void schedule_depth_refresh() {
    if (depth == nullptr) return;
    depth_timer.expires_after(depth_refresh_interval);
    depth_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      for (const auto& name : eng->queue_names()) {
        auto st = eng->stats(name);
        if (!st) continue;
        auto set = [&](std::string_view state, double v) {
          if (auto* g = depth->with({name, state})) g->set(v);
        };
        set("ready", static_cast<double>(st->ready));
        set("leased", static_cast<double>(st->leased));
        set("retry_wait", static_cast<double>(st->retry_wait));
        set("scheduled", static_cast<double>(st->scheduled));
      }
      schedule_depth_refresh();
    });
  }

  void finish_stop() {
    if (joined) return;
    joined = true;
    // Make everything appended durable, complete what is, fail the rest.
    if (!failed && log->end() > durable.load()) {
      auto r = log->sync();
      if (r) durable.store(*r);
    }
    // A checkpoint being written in the background: wait for it, then treat it
    // as a waiter (installed if the log is durable up to it).
    if (checkpoint_writing) {
      status s = checkpoint_writing->get();
      checkpoint_writing.reset();
      auto install = std::move(checkpoint_install);
      checkpoint_install = nullptr;
      if (!s || checkpoint_writing_hw == 0) {
        install(std::move(s));
      } else {
        waiters.emplace(checkpoint_writing_hw - 1, std::move(install));
      }
    }
    auto pending = std::move(waiters);
    waiters.clear();
    for (auto& [pos, done] : pending) {
      if (pos < durable.load()) {
        done({});
      } else {
        done(error(errc::shutting_down, "the broker stopped before the write was durable"));
      }
    }
    // A clean stop leaves a checkpoint of everything, so the next start is quick.
    if (!failed && opts.checkpoint_log_bytes != 0 && opts.checkpoint_at_stop &&
        !checkpoint_waiting && durable.load() >= log->end() &&
        log->end() != checkpoint_high_water) {
      auto image = snapshot_checkpoint();
      status s = image ? write_image(fs, checkpoint_tmp_path(), log_id, *image)
                       : status(std::move(image).error());
      if (s) s = install_checkpoint(image->high_water);
      if (!s) logger.warn("checkpoint at stop: {}", s.error().message);
    }
    wake_timer.cancel();
    reclaim_timer.cancel();
    depth_timer.cancel();
    unawaited_timer.cancel();
    live->store(false, std::memory_order_release);
    stopped.set_value();
  }
};

host::host(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

host::~host() {
  stop();
}

result<std::unique_ptr<host>> host::open(io::file_system& fs, host_options opts,
                                         metrics::registry* registry) {
  auto im = std::make_unique<impl>(fs, std::move(opts), registry);
  const auto& dir = im->opts.data_dir;
  OUTRIDER_TRY(fs.create_dirs(dir));
  const auto began = std::chrono::steady_clock::now();
  auto lg = storage::log::open(fs, dir + "/log", im->opts.log);
  if (!lg) return std::move(lg).error();
  im->log = std::move(*lg);
  im->durable.store(im->log->durable_end());
  im->journal = std::make_unique<log_journal>(*im->log);
  OUTRIDER_TRY(im->load_log_id());

  // The delay index is rebuilt on every start (from the checkpoint and the log
  // written after it, or from the whole log); far-future entries go to its
  // on-disk buckets, not memory.
  OUTRIDER_TRY(im->open_scheduler());
  im->cache = std::make_unique<cached_journal>(
      *im->journal, im->opts.message_cache_bytes,
      std::initializer_list<std::uint8_t>{static_cast<std::uint8_t>(record_type::publish)},
      // A scheduled message is read back when it comes due (maybe days later):
      // caching its body would only evict the messages delivered next.
      [](std::uint8_t, std::string_view payload) { return !is_scheduled_publish(payload); });
  if (auto from = im->open_from_checkpoint(); !from) {
    if (from.error().code != errc::not_found) {
      logger.warn("not using the checkpoint ({}); replaying the whole log", from.error().message);
    }
    im->eng.reset();
    im->scheduler.reset();
    OUTRIDER_TRY(im->open_scheduler());
    auto e = engine::open(*im->cache, *im->scheduler, im->opts.engine);
    if (!e) return std::move(e).error();
    im->eng = std::move(*e);
  }
  im->init_metrics();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - began);
  logger.info("recovered {} queue(s), {} scheduled message(s), {} log segment(s) in {} ms ({})",
              im->eng->queue_names().size(), im->eng->scheduled_count(), im->log->segment_count(),
              took.count(),
              im->recovered_from
                  ? fmt::format("checkpoint at {} + {} log bytes", *im->recovered_from,
                                im->log->end() - *im->recovered_from)
                  : std::string("whole log replayed"));
  return std::unique_ptr<host>(new host(std::move(im)));
}

void host::start() {
  auto& im = *impl_;
  OUTRIDER_ASSERT(!im.started, "host started twice");
  im.started = true;
  if (im.opts.engine_context == nullptr) im.engine_guard.emplace(im.engine_ctx.get_executor());
  im.sync_guard.emplace(im.sync_ctx.get_executor());
  im.checkpoint_guard.emplace(im.checkpoint_ctx.get_executor());
  im.sync_thread = std::thread([&im] { im.sync_ctx.run(); });
  im.checkpoint_thread = std::thread([&im] {
    // Below the engine's priority: on a busy machine a checkpoint (CRC and
    // copying of hundreds of MB) yields the CPU to the engine thread. Linux
    // nice values are per thread; best effort.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), checkpoint_nice);
    im.checkpoint_ctx.run();
  });
  if (im.opts.engine_context == nullptr)
    im.engine_thread = std::thread([&im] { im.engine_ctx.run(); });
  im.post([&im] {
    im.schedule_reclaim();
    im.schedule_depth_refresh();
    im.after_work();  // recovered messages may be due
  });
}

void host::stop() {
  auto& im = *impl_;
  if (!im.started) return;
  im.started = false;
  auto done = im.stopped.get_future();
  im.stop_syncing.store(true, std::memory_order_release);
  im.post([&im] {
    im.stopping = true;
    if (!im.sync_in_flight) im.finish_stop();
  });
  done.wait();
  im.engine_guard.reset();
  im.sync_guard.reset();
  im.checkpoint_guard.reset();
  if (im.opts.engine_context == nullptr) im.engine_ctx.stop();
  im.sync_ctx.stop();
  im.checkpoint_ctx.stop();
  if (im.engine_thread.joinable()) im.engine_thread.join();
  im.sync_thread.join();
  im.checkpoint_thread.join();
}

std::uint64_t host::durable_end() const {
  return impl_->durable.load();
}

void host::checkpoint(std::function<void(status)> done) {
  impl_->post([im = impl_.get(), done = std::move(done)]() mutable {
    im->take_checkpoint(std::move(done));
  });
}

std::optional<std::uint64_t> host::recovered_from_checkpoint() const {
  return impl_->recovered_from;
}

void host::publish(std::vector<publish_request> batch,
                   std::function<void(std::vector<result<publish_receipt>>)> done) {
  impl_->post([im = impl_.get(), batch = std::move(batch), done = std::move(done)]() mutable {
    std::vector<result<publish_receipt>> results;
    results.reserve(batch.size());
    if (auto e = im->refuse()) {
      for (std::size_t i = 0; i < batch.size(); ++i) results.emplace_back(*e);
      done(std::move(results));
      return;
    }
    const auto now = system_now();
    std::optional<std::uint64_t> last;
    for (auto& req : batch) {
      auto r = im->eng->publish(std::move(req), now);
      if (r) last = std::max(last.value_or(0), r->position);
      results.push_back(std::move(r));
    }
    if (!last) {
      done(std::move(results));
    } else {
      im->when_durable(
          *last, [im, results = std::move(results), done = std::move(done)](status s) mutable {
            std::size_t accepted = 0;
            for (auto& r : results) {
              if (!r) continue;
              if (!s) {
                r = s.error();
              } else {
                ++accepted;
              }
            }
            if (im->published != nullptr) im->published->inc(accepted);
            done(std::move(results));
          });
    }
    im->after_work();
  });
}

void host::cancel(id128 id, std::function<void(status)> done) {
  impl_->post([im = impl_.get(), id, done = std::move(done)]() mutable {
    if (auto e = im->refuse()) return done(*e);
    auto r = im->eng->cancel(id);
    if (!r) return done(std::move(r).error());
    im->when_durable(*r, std::move(done));
    im->after_work();
  });
}

void host::declare_queue(std::string name, queue_options options,
                         std::function<void(status)> done) {
  impl_->post(
      [im = impl_.get(), name = std::move(name), options, done = std::move(done)]() mutable {
        if (auto e = im->refuse()) return done(*e);
        auto s = im->eng->declare_queue(name, options);
        if (!s) return done(std::move(s).error());
        im->when_durable(im->log->end() - 1, std::move(done));
        im->after_work();
      });
}

void host::declare_topic(std::string name, std::function<void(status)> done) {
  impl_->post([im = impl_.get(), name = std::move(name), done = std::move(done)]() mutable {
    if (auto e = im->refuse()) return done(*e);
    auto s = im->eng->declare_topic(name);
    if (!s) return done(std::move(s).error());
    im->when_durable(im->log->end() - 1, std::move(done));
    im->after_work();
  });
}

void host::bind(std::string topic, std::string queue, std::function<void(status)> done) {
  impl_->post([im = impl_.get(), topic = std::move(topic), queue = std::move(queue),
               done = std::move(done)]() mutable {
    if (auto e = im->refuse()) return done(*e);
    auto s = im->eng->bind(topic, queue);
    if (!s) return done(std::move(s).error());
    im->when_durable(im->log->end() - 1, std::move(done));
    im->after_work();
  });
}

void host::declare_subscription(std::string topic, std::string app_id, queue_options options,
                                std::function<void(result<std::string>)> done) {
  impl_->post([im = impl_.get(), topic = std::move(topic), app_id = std::move(app_id), options,
               done = std::move(done)]() mutable {
    if (auto e = im->refuse()) return done(*e);
    auto r = im->eng->declare_subscription(topic, app_id, options);
    if (!r) return done(std::move(r).error());
    im->when_durable(im->log->end() - 1, [name = *r, done = std::move(done)](status s) mutable {
      if (!s) return done(std::move(s).error());
      done(std::move(name));
    });
    im->after_work();
  });
}

void host::subscribe(std::string queue, std::uint32_t credit, delivery_sink sink,
                     std::function<void(result<consumer_id>)> done) {
  impl_->post([im = impl_.get(), queue = std::move(queue), credit, sink = std::move(sink),
               done = std::move(done)]() mutable {
    if (auto e = im->refuse()) return done(*e);
    auto c = im->eng->subscribe(queue, credit);
    if (c) im->consumers.emplace(*c, impl::consumer_entry{std::move(sink), credit, 0});
    done(c);
    im->after_work();
  });
}

void host::unsubscribe(consumer_id consumer, std::function<void(status)> done,
                       bool release_in_flight) {
  impl_->post([im = impl_.get(), consumer, done = std::move(done), release_in_flight] {
    im->consumers.erase(consumer);
    std::erase_if(im->tag_owner, [consumer](const auto& kv) { return kv.second == consumer; });
    auto s = im->eng->unsubscribe(consumer, release_in_flight);
    if (done) done(std::move(s));
    im->after_work();
  });
}

void host::add_credit(consumer_id consumer, std::uint32_t credit,
                      std::function<void(status)> done) {
  impl_->post([im = impl_.get(), consumer, credit, done = std::move(done)] {
    auto it = im->consumers.find(consumer);
    status s;
    if (it == im->consumers.end()) {
      s = error(errc::consumer_not_found, fmt::format("consumer {} not found", consumer));
    } else if (credit == 0) {
      s = error(errc::invalid_argument, "credit to add must be at least 1");
    } else {
      it->second.granted += credit;
      im->apply_credit(consumer, it->second);
    }
    if (done) done(std::move(s));
    im->after_work();
  });
}

void host::ack(std::vector<delivery_tag> tags, std::function<void(std::vector<status>)> done) {
  impl_->post([im = impl_.get(), tags = std::move(tags), done = std::move(done)]() mutable {
    std::vector<status> results;
    results.reserve(tags.size());
    const auto now = system_now();
    std::size_t ok = 0;
    for (auto tag : tags) {
      if (auto e = im->refuse()) {
        results.emplace_back(*e);
        continue;
      }
      auto r = im->eng->ack(tag, now);
      im->settled(tag);
      if (r) {
        ++ok;
        results.emplace_back();
      } else {
        results.emplace_back(std::move(r).error());
      }
    }
    if (im->acked != nullptr) im->acked->inc(ok);
    if (done) done(std::move(results));
    im->after_work();
  });
}

void host::nack(delivery_tag tag, nanoseconds delay, bool dead_letter,
                std::function<void(status)> done) {
  impl_->post([im = impl_.get(), tag, delay, dead_letter, done = std::move(done)]() mutable {
    status s;
    if (auto e = im->refuse()) {
      s = *e;
    } else if (auto r = dead_letter ? im->eng->dead_letter(tag, system_now())
                                    : im->eng->nack(tag, system_now(), delay);
               !r) {
      s = std::move(r).error();
      im->settled(tag);
    } else {
      im->settled(tag);
      if (im->nacked != nullptr) im->nacked->inc();
    }
    if (done) done(std::move(s));
    im->after_work();
  });
}

void host::release(delivery_tag tag, std::function<void(status)> done) {
  impl_->post([im = impl_.get(), tag, done = std::move(done)]() mutable {
    status s;
    if (auto e = im->refuse()) {
      s = *e;
    } else if (auto r = im->eng->release(tag, system_now()); !r) {
      s = std::move(r).error();
      im->settled(tag);
    } else {
      im->settled(tag);
    }
    if (done) done(std::move(s));
    im->after_work();
  });
}

void host::list_queues(std::function<void(std::vector<queue_summary>)> done) {
  impl_->post([im = impl_.get(), done = std::move(done)]() mutable {
    std::vector<queue_summary> out;
    for (auto& name : im->eng->queue_names()) {
      auto st = im->eng->stats(name);
      if (st) out.push_back(queue_summary{std::move(name), std::move(*st)});
    }
    done(std::move(out));
  });
}

void host::list_messages(std::string queue, std::size_t max,
                         std::function<void(result<std::vector<message_info>>)> done) {
  impl_->post([im = impl_.get(), queue = std::move(queue), max, done = std::move(done)]() mutable {
    done(im->eng->list(queue, max));
  });
}

void host::peek(std::string queue, id128 id, std::function<void(result<message>)> done) {
  impl_->post([im = impl_.get(), queue = std::move(queue), id, done = std::move(done)]() mutable {
    done(im->eng->peek(queue, id));
  });
}

void host::replay_dead_letters(std::string dead_letter_queue, std::size_t max,
                               std::function<void(result<std::size_t>)> done) {
  impl_->post(
      [im = impl_.get(), q = std::move(dead_letter_queue), max, done = std::move(done)]() mutable {
        if (auto e = im->refuse()) return done(*e);
        auto r = im->eng->replay_dead_letters(q, max);
        if (!r) return done(std::move(r).error());
        auto count = *r;
        im->when_durable(im->log->end() - 1, [count, done = std::move(done)](status s) mutable {
          if (!s) return done(std::move(s).error());
          done(count);
        });
        im->after_work();
      });
}

void host::peek_messages(
    std::string queue, std::size_t max,
    std::function<void(result<std::vector<std::pair<message_info, message>>>)> done) {
  impl_->post([im = impl_.get(), queue = std::move(queue), max, done = std::move(done)]() mutable {
    auto infos = im->eng->list(queue, max);
    if (!infos) return done(std::move(infos).error());
    std::vector<std::pair<message_info, message>> out;
    out.reserve(infos->size());
    for (auto& info : *infos) {
      auto m = im->eng->peek(queue, info.id);
      if (!m) {
        if (m.error().code == errc::message_not_found) continue;  // settled meanwhile
        return done(std::move(m).error());
      }
      out.emplace_back(std::move(info), std::move(*m));
    }
    done(std::move(out));
  });
}

void host::stats(std::function<void(std::vector<std::pair<std::string, std::uint64_t>>)> done) {
  impl_->post([im = impl_.get(), done = std::move(done)]() mutable {
    std::uint64_t ready = 0, leased = 0, retry = 0, scheduled = 0;
    auto names = im->eng->queue_names();
    for (const auto& n : names) {
      if (auto st = im->eng->stats(n)) {
        ready += st->ready;
        leased += st->leased;
        retry += st->retry_wait;
        scheduled += st->scheduled;
      }
    }
    auto counter = [](metrics::counter* c) { return c != nullptr ? c->value() : 0; };
    done({{"queues", names.size()},
          {"messages_ready", ready},
          {"messages_leased", leased},
          {"messages_retry_wait", retry},
          {"messages_scheduled", scheduled},
          {"messages_published", counter(im->published)},
          {"messages_delivered", counter(im->delivered)},
          {"messages_acked", counter(im->acked)},
          {"messages_nacked", counter(im->nacked)},
          {"log_segments", im->log->segment_count()},
          {"log_bytes", im->log->bytes_on_disk()},
          {"log_durable_end", im->durable.load()}});
  });
}

}  // namespace outrider::broker
