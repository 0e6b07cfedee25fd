// metrics: counters, gauges and histograms with labels, exposed in the
// Prometheus text format (version 0.0.4).
//
// Hot paths hold a reference to one series (`counter&`) resolved once, so an
// increment is one relaxed atomic add. Looking up a series by label values
// takes a mutex; each family has a bound on its number of series: beyond it,
// new label combinations go to no series (the update is dropped) and the
// registry counts the drop in outrider_metrics_series_dropped_total, so
// hostile or runaway label values (StatsD tags from an app) cannot grow memory
// without bound.
//
// Thread-safety: everything here is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outrider::metrics {

namespace detail {
struct shard_list;  // registry.cpp: pushes onto and frees a series' shard list
}  // namespace detail

// Single-writer shards. A series updated on every request by several threads
// (the ambassador's calls on each I/O context) gives each thread a shard of its
// own: an update is a load and a store on a cache line no other thread writes
// (no atomic read-modify-write, no line bouncing between cores), and the series'
// value adds its shards up when it is read (a scrape). A shard lives as long as
// its series (series are never removed). REQUIRES: one thread at a time updates a
// given shard; any thread may read.
class alignas(64) counter_shard {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  friend class counter;
  friend struct detail::shard_list;
  std::atomic<std::uint64_t> value_{0};
  counter_shard* next_ = nullptr;  // the counter's list (fixed once published)
};

class counter {
 public:
  counter() = default;
  ~counter();
  counter(const counter&) = delete;
  counter& operator=(const counter&) = delete;

  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  // The count over inc() and every shard.
  std::uint64_t value() const noexcept;
  // A new shard for one writing thread. Thread-safe; allocates.
  counter_shard& add_shard();

 private:
  std::atomic<std::uint64_t> value_{0};
  std::atomic<counter_shard*> shards_{nullptr};  // newest first; never shrinks
};

class gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept;
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class histogram;

// One thread's part of a histogram (see counter_shard): observe() is loads and
// stores on cache lines of the shard's own.
class alignas(64) histogram_shard {
 public:
  void observe(double v) noexcept;

 private:
  friend class histogram;
  friend struct detail::shard_list;
  struct alignas(64) bucket_line {
    std::atomic<std::uint64_t> count[8];
  };
  explicit histogram_shard(const histogram& owner);
  std::uint64_t bucket_count(std::size_t i) const noexcept {
    return lines_[i / 8].count[i % 8].load(std::memory_order_relaxed);
  }

  const histogram& owner_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
  std::unique_ptr<bucket_line[]> lines_;  // bounds().size() + 1 buckets, 8 a line
  histogram_shard* next_ = nullptr;       // the histogram's list (fixed once published)
};

// Cumulative histogram with fixed upper bounds (le), plus sum and count.
class histogram {
 public:
  explicit histogram(std::span<const double> bounds);
  ~histogram();
  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  void observe(double v) noexcept;
  std::span<const double> bounds() const noexcept { return bounds_; }
  // The bucket `v` falls in (bounds().size() is +Inf).
  std::size_t bucket_of(double v) const noexcept;
  // Non-cumulative count of bucket i (i == bounds().size() is +Inf), over
  // observe() and every shard (as count() and sum()).
  std::uint64_t bucket_count(std::size_t i) const noexcept;
  std::uint64_t count() const noexcept;
  double sum() const noexcept;
  // A new shard for one writing thread. Thread-safe; allocates.
  histogram_shard& add_shard();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
  std::atomic<histogram_shard*> shards_{nullptr};  // newest first; never shrinks
};

// Default latency buckets in seconds: 50 µs .. 10 s.
std::span<const double> latency_buckets_seconds();

enum class metric_type { counter, gauge, histogram };

class registry;

// All series of one metric name. T is counter, gauge or histogram.
template <class T>
class family {
 public:
  // The series for `label_values` (one value per declared label, in order), or
  // nullptr when the family is at its series limit and these values are new.
  // REQUIRES: label_values.size() == number of declared labels.
  T* with(std::initializer_list<std::string_view> label_values);
  T* with(const std::vector<std::string>& label_values);
  // The series with no labels. REQUIRES: the family has no labels.
  T& get();

 private:
  friend class registry;
  family(std::string name, std::string help, std::vector<std::string> labels,
         std::size_t max_series, std::vector<double> bounds, registry* owner);
  T* find_or_create(std::vector<std::string> values);

  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::size_t max_series_;
  std::vector<double> bounds_;  // histograms only
  registry* owner_;
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_;
};

class registry {
 public:
  static constexpr std::size_t default_max_series = 1000;

  registry();

  // Declares a metric family. Names follow Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*);
  // the returned reference lives as long as the registry.
  // REQUIRES: name not declared before.
  family<counter>& add_counter(std::string name, std::string help,
                               std::vector<std::string> labels = {},
                               std::size_t max_series = default_max_series);
  family<gauge>& add_gauge(std::string name, std::string help, std::vector<std::string> labels = {},
                           std::size_t max_series = default_max_series);
  family<histogram>& add_histogram(std::string name, std::string help,
                                   std::vector<std::string> labels = {},
                                   std::span<const double> bounds = latency_buckets_seconds(),
                                   std::size_t max_series = default_max_series);

  // The Prometheus text exposition of every family, sorted by name.
  std::string expose() const;

  // Updates dropped because a family was at its series limit.
  std::uint64_t dropped_series() const noexcept { return dropped_->value(); }
  void count_dropped() noexcept { dropped_->inc(); }

  static bool valid_name(std::string_view name) noexcept;

 private:
  struct entry {
    metric_type type;
    std::string name;
    void* family_ptr;
  };
  void check_new(const std::string& name);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<family<counter>>> counters_;
  std::vector<std::unique_ptr<family<gauge>>> gauges_;
  std::vector<std::unique_ptr<family<histogram>>> histograms_;
  std::vector<entry> entries_;
  counter* dropped_ = nullptr;
};

}  // namespace outrider::metrics
