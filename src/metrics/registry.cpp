#include "metrics/registry.h"

#include <algorithm>
#include <cmath>
#include <fmt/core.h>
#include <utility>

#include "base/assert.h"

namespace outrider::metrics {
namespace {

constexpr double default_latency_bounds[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1.0,    2.5,     5.0,    10.0};

// Label values escape backslash, double quote and newline (exposition format).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out.push_back(c);
    }
  }
}

// HELP text escapes backslash and newline.
void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out.push_back(c);
  }
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

std::string label_block(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, std::string_view extra_name = {},
                        std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += names[i];
    out += "=\"";
    append_label_value(out, values[i]);
    out.push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out.push_back(',');
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out.push_back('"');
  }
  out.push_back('}');
  return out;
}

}  // namespace

// A shard list (counter's or histogram's): pushed at the front, never shrunk
// while the series lives. Readers walk it from the head with acquire loads,
// so they see a pushed shard's contents.
struct detail::shard_list {
  template <typename Shard>
  static Shard& push(std::atomic<Shard*>& head, Shard* s) {
    auto* first = head.load(std::memory_order_relaxed);
    do {
      s->next_ = first;
    } while (!head.compare_exchange_weak(first, s, std::memory_order_release,
                                         std::memory_order_relaxed));
    return *s;
  }
  template <typename Shard>
  static void free(std::atomic<Shard*>& head) {
    for (auto* s = head.load(std::memory_order_acquire); s != nullptr;) {
      delete std::exchange(s, s->next_);
    }
  }
};

void gauge::add(double d) noexcept {
  double cur = value_.load(std::memory_order_relaxed);
  while (!value_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
  }
}

counter::~counter() {
  detail::shard_list::free(shards_);
}

std::uint64_t counter::value() const noexcept {
  std::uint64_t v = value_.load(std::memory_order_relaxed);
  for (auto* s = shards_.load(std::memory_order_acquire); s != nullptr; s = s->next_) {
    v += s->value();
  }
  return v;
}

counter_shard& counter::add_shard() {
  auto* s = new counter_shard();
  return detail::shard_list::push(shards_, s);
}

histogram_shard::histogram_shard(const histogram& owner)
    : owner_(owner), lines_(std::make_unique<bucket_line[]>((owner.bounds().size() + 8) / 8)) {}

void histogram_shard::observe(double v) noexcept {
  const std::size_t i = owner_.bucket_of(v);
  auto& bucket = lines_[i / 8].count[i % 8];
  bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  count_.store(count_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
}

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
  OUTRIDER_ASSERT(std::is_sorted(bounds_.begin(), bounds_.end()),
                  "histogram bounds must be sorted");
}

histogram::~histogram() {
  detail::shard_list::free(shards_);
}

std::size_t histogram::bucket_of(double v) const noexcept {
  return static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                  bounds_.begin());
}

void histogram::observe(double v) noexcept {
  buckets_[bucket_of(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::uint64_t histogram::bucket_count(std::size_t i) const noexcept {
  std::uint64_t n = buckets_[i].load(std::memory_order_relaxed);
  for (auto* s = shards_.load(std::memory_order_acquire); s != nullptr; s = s->next_) {
    n += s->bucket_count(i);
  }
  return n;
}

std::uint64_t histogram::count() const noexcept {
  std::uint64_t n = count_.load(std::memory_order_relaxed);
  for (auto* s = shards_.load(std::memory_order_acquire); s != nullptr; s = s->next_) {
    n += s->count_.load(std::memory_order_relaxed);
  }
  return n;
}

double histogram::sum() const noexcept {
  double v = sum_.load(std::memory_order_relaxed);
  for (auto* s = shards_.load(std::memory_order_acquire); s != nullptr; s = s->next_) {
    v += s->sum_.load(std::memory_order_relaxed);
  }
  return v;
}

histogram_shard& histogram::add_shard() {
  auto* s = new histogram_shard(*this);
  return detail::shard_list::push(shards_, s);
}

std::span<const double> latency_buckets_seconds() {
  return default_latency_bounds;
}

template <class T>
family<T>::family(std::string name, std::string help, std::vector<std::string> labels,
                  std::size_t max_series, std::vector<double> bounds, registry* owner)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(labels)),
      max_series_(max_series),
      bounds_(std::move(bounds)),
      owner_(owner) {}

template <class T>
T* family<T>::find_or_create(std::vector<std::string> values) {
  OUTRIDER_ASSERT(values.size() == label_names_.size(), "wrong number of label values");
  std::lock_guard lock(mutex_);
  auto it = series_.find(values);
  if (it != series_.end()) return it->second.get();
  if (series_.size() >= max_series_) {
    owner_->count_dropped();
    return nullptr;
  }
  std::unique_ptr<T> metric;
  if constexpr (std::is_same_v<T, histogram>) {
    metric = std::make_unique<T>(bounds_);
  } else {
    metric = std::make_unique<T>();
  }
  auto* raw = metric.get();
  series_.emplace(std::move(values), std::move(metric));
  return raw;
}

template <class T>
T* family<T>::with(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> values;
  values.reserve(label_values.size());
  for (auto v : label_values) values.emplace_back(v);
  return find_or_create(std::move(values));
}

template <class T>
T* family<T>::with(const std::vector<std::string>& label_values) {
  return find_or_create(label_values);
}

template <class T>
T& family<T>::get() {
  OUTRIDER_ASSERT(label_names_.empty(), "get() on a labelled family");
  auto* m = find_or_create({});
  OUTRIDER_ASSERT(m != nullptr, "unlabelled series always fits");
  return *m;
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

registry::registry() {
  dropped_ = &add_counter("outrider_metrics_series_dropped_total",
                          "Metric updates dropped because a family reached its series limit")
                  .get();
}

bool registry::valid_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void registry::check_new(const std::string& name) {
  OUTRIDER_ASSERT(valid_name(name), "invalid metric name");
  for (const auto& e : entries_) OUTRIDER_ASSERT(e.name != name, "metric declared twice");
}

family<counter>& registry::add_counter(std::string name, std::string help,
                                       std::vector<std::string> labels, std::size_t max_series) {
  std::lock_guard lock(mutex_);
  check_new(name);
  counters_.push_back(std::unique_ptr<family<counter>>(
      new family<counter>(name, std::move(help), std::move(labels), max_series, {}, this)));
  entries_.push_back({metric_type::counter, std::move(name), counters_.back().get()});
  return *counters_.back();
}

family<gauge>& registry::add_gauge(std::string name, std::string help,
                                   std::vector<std::string> labels, std::size_t max_series) {
  std::lock_guard lock(mutex_);
  check_new(name);
  gauges_.push_back(std::unique_ptr<family<gauge>>(
      new family<gauge>(name, std::move(help), std::move(labels), max_series, {}, this)));
  entries_.push_back({metric_type::gauge, std::move(name), gauges_.back().get()});
  return *gauges_.back();
}

family<histogram>& registry::add_histogram(std::string name, std::string help,
                                           std::vector<std::string> labels,
                                           std::span<const double> bounds, std::size_t max_series) {
  std::lock_guard lock(mutex_);
  check_new(name);
  histograms_.push_back(std::unique_ptr<family<histogram>>(
      new family<histogram>(name, std::move(help), std::move(labels), max_series,
                            std::vector<double>(bounds.begin(), bounds.end()), this)));
  entries_.push_back({metric_type::histogram, std::move(name), histograms_.back().get()});
  return *histograms_.back();
}

std::string registry::expose() const {
  std::vector<entry> sorted;
  {
    std::lock_guard lock(mutex_);
    sorted = entries_;
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const entry& a, const entry& b) { return a.name < b.name; });
  std::string out;
  auto header = [&](const std::string& name, const std::string& help, std::string_view type) {
    out += "# HELP " + name + " ";
    append_help(out, help);
    out += "\n# TYPE " + name + " ";
    out += type;
    out.push_back('\n');
  };
  for (const auto& e : sorted) {
    switch (e.type) {
      case metric_type::counter: {
        auto* f = static_cast<family<counter>*>(e.family_ptr);
        header(f->name_, f->help_, "counter");
        std::lock_guard lock(f->mutex_);
        for (const auto& [values, m] : f->series_) {
          out += f->name_ + label_block(f->label_names_, values) + " " +
                 std::to_string(m->value()) + "\n";
        }
        break;
      }
      case metric_type::gauge: {
        auto* f = static_cast<family<gauge>*>(e.family_ptr);
        header(f->name_, f->help_, "gauge");
        std::lock_guard lock(f->mutex_);
        for (const auto& [values, m] : f->series_) {
          out += f->name_ + label_block(f->label_names_, values) + " " + format_value(m->value()) +
                 "\n";
        }
        break;
      }
      case metric_type::histogram: {
        auto* f = static_cast<family<histogram>*>(e.family_ptr);
        header(f->name_, f->help_, "histogram");
        std::lock_guard lock(f->mutex_);
        for (const auto& [values, m] : f->series_) {
          std::uint64_t cumulative = 0;
          auto bounds = m->bounds();
          for (std::size_t i = 0; i <= bounds.size(); ++i) {
            cumulative += m->bucket_count(i);
            auto le = i < bounds.size() ? format_value(bounds[i]) : std::string("+Inf");
            out += f->name_ + "_bucket" + label_block(f->label_names_, values, "le", le) + " " +
                   std::to_string(cumulative) + "\n";
          }
          out += f->name_ + "_sum" + label_block(f->label_names_, values) + " " +
                 format_value(m->sum()) + "\n";
          out += f->name_ + "_count" + label_block(f->label_names_, values) + " " +
                 std::to_string(m->count()) + "\n";
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace outrider::metrics
