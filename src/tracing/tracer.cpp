#include "tracing/tracer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>

namespace outrider::tracing {
namespace detail {
// What tracer::begin reads for every span comes first, on one cache line (the
// options, ~130 bytes, after it).
struct alignas(64) tracer_state {
  std::shared_ptr<span_sink> sink;
  std::shared_ptr<const clock> time;
  std::shared_ptr<const span_resource> resource;
  random_source* rng = nullptr;
  double sampling = 1.0;  // options.sampling
  tracer_options options;
};
static_assert(offsetof(tracer_state, sampling) + sizeof(double) <= 64);
}  // namespace detail

std::int64_t to_unix_ns(wall_time t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool should_sample(double ratio, const span_context* parent, const id128& trace_id) noexcept {
  if (parent != nullptr && parent->valid()) return parent->sampled();
  if (!(ratio > 0)) return false;  // also NaN
  if (ratio >= 1) return true;
  // 2^64 * ratio as the bound on the id's low 64 bits.
  const double bound = std::ldexp(ratio, 64);
  return static_cast<double>(trace_id.low) < bound;
}

tracer::tracer(tracer_options options, std::shared_ptr<span_sink> sink,
               std::shared_ptr<const clock> clk, random_source* rng) {
  auto state = std::make_shared<detail::tracer_state>();
  auto res = std::make_shared<span_resource>();
  res->attributes.push_back({"service.name", attribute_value::of(options.service_name)});
  for (const auto& kv : options.resource_attributes) res->attributes.push_back(kv);
  res->scope_name = options.scope_name;
  res->scope_version = options.scope_version;
  state->sampling = options.sampling;
  state->options = std::move(options);
  state->sink = std::move(sink);
  state->time = std::move(clk);
  state->rng = rng;
  state->resource = std::move(res);
  state_ = std::move(state);
}

const std::shared_ptr<const span_resource>& tracer::resource() const noexcept {
  return state_->resource;
}
const std::string& tracer::service_name() const noexcept {
  return state_->options.service_name;
}
double tracer::sampling() const noexcept {
  return state_->options.sampling;
}
const clock& tracer::time_source() const noexcept {
  return *state_->time;
}

recorded_span* tracer::begin(active_span& out, span_kind kind, const span_context* parent,
                             const wall_time* start_time) const {
  const detail::tracer_state& st = *state_;
  random_source& rng = st.rng != nullptr ? *st.rng : thread_random();
  span_context& c = out.context_;
  std::uint64_t parent_id = 0;
  if (parent != nullptr && parent->valid()) {
    c.trace_id = parent->trace_id;
    // Received tracestate goes on unchanged.
    if (!parent->trace_state.empty()) c.trace_state = parent->trace_state;
    parent_id = parent->span_id;
    c.flags = parent->sampled() ? trace_flag_sampled : 0;  // should_sample's parent rule
  } else {
    do {
      c.trace_id = id128{rng.next_u64(), rng.next_u64()};
    } while (c.trace_id.is_zero());
    c.flags = should_sample(st.sampling, nullptr, c.trace_id) ? trace_flag_sampled : 0;
  }
  do {
    c.span_id = rng.next_u64();
  } while (c.span_id == 0);
  if (c.flags == 0 || st.sink == nullptr) return nullptr;  // not recorded: only the context
  out.tracer_ = state_;
  out.data_ = acquire_recorded_span();
  recorded_span& s = *out.data_;
  s.trace_id = c.trace_id;
  s.span_id = c.span_id;
  s.parent_id = parent_id;
  s.kind = kind;
  s.flags = c.flags;
  s.start_ns = to_unix_ns(start_time != nullptr ? *start_time : st.time->now());
  if (!c.trace_state.empty()) s.trace_state = s.store(c.trace_state);
  s.resource = st.resource;
  return &s;
}

active_span tracer::start_span(std::string_view name, span_kind kind, const span_context* parent,
                               std::optional<wall_time> start_time) const {
  active_span out;
  if (recorded_span* s = begin(out, kind, parent, start_time ? &*start_time : nullptr)) {
    s->name = s->store(name);
  }
  return out;
}

active_span tracer::start_span(std::string_view name, span_kind kind, const span_context* parent,
                               std::initializer_list<string_attribute> attributes) const {
  active_span out;
  if (recorded_span* s = begin(out, kind, parent, nullptr)) {
    s->name = s->store(name);
    s->add_strings(std::span(attributes.begin(), attributes.size()));
  }
  return out;
}

active_span tracer::start_span(std::string_view name_first, std::string_view name_second,
                               span_kind kind, const span_context* parent,
                               std::initializer_list<string_attribute> attributes,
                               const wall_time* start_time) const {
  active_span out;
  if (recorded_span* s = begin(out, kind, parent, start_time)) {
    s->name = s->store_joined(name_first, name_second);
    s->add_strings(std::span(attributes.begin(), attributes.size()));
  }
  return out;
}

active_span tracer::start_job_span(std::string_view job_name, wall_time scheduled,
                                   const span_context* parent, std::int64_t attempt) const {
  const wall_time now = state_->time->now();
  constexpr std::string_view prefix = "job ";
  char name[128];
  std::string_view full;
  std::string long_name;
  if (prefix.size() + job_name.size() <= sizeof name) {
    std::copy(prefix.begin(), prefix.end(), name);
    std::copy(job_name.begin(), job_name.end(), name + prefix.size());
    full = std::string_view(name, prefix.size() + job_name.size());
  } else {
    long_name = std::string(prefix) + std::string(job_name);
    full = long_name;
  }
  auto s = start_span(full, span_kind::consumer, parent, now);
  if (s.recording()) {
    const auto ms = [](wall_time t) {
      return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    s.set(attr::outrider_job_name, job_name);
    s.set(attr::outrider_job_scheduled_time_ms, std::int64_t{ms(scheduled)});
    s.set(attr::outrider_job_fired_time_ms, std::int64_t{ms(now)});
    s.set(attr::outrider_job_lag_ms, std::int64_t{ms(now) - ms(scheduled)});
    s.set(attr::outrider_job_attempt, attempt);
  }
  return s;
}

span_recording& span_recording::operator=(span_recording&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = std::move(other.tracer_);
    data_ = std::move(other.data_);
  }
  return *this;
}

void span_recording::set(attr key, std::string_view value) {
  if (data_) data_->add_string(key, value);
}
void span_recording::set(attr key, std::int64_t value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::int64;
  a.number = value;
  data_->add(a);
}
void span_recording::set(attr key, bool value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::boolean;
  a.number = value ? 1 : 0;
  data_->add(a);
}
void span_recording::set(attr key, double value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::float64;
  a.number = std::bit_cast<std::int64_t>(value);
  data_->add(a);
}

void span_recording::set(attr key, const id128& id) {
  if (!data_) return;
  const auto text = id.to_chars();
  data_->add_string(key, std::string_view(text.data(), text.size()));
}

namespace {
// A custom key's attribute: the key text goes into the span too.
recorded_span::attribute custom_key(recorded_span& s, std::string_view key) {
  recorded_span::attribute a;
  a.key = attr::custom;
  const auto text = s.store(key.substr(0, recorded_span::max_key_size));
  a.key_offset = text.offset;
  a.key_size = static_cast<std::uint16_t>(text.size);
  return a;
}
}  // namespace

void span_recording::set(std::string_view key, std::string_view value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::string;
  a.text = data_->store(value);
  data_->add(a);
}
void span_recording::set(std::string_view key, std::int64_t value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::int64;
  a.number = value;
  data_->add(a);
}
void span_recording::set(std::string_view key, bool value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::boolean;
  a.number = value ? 1 : 0;
  data_->add(a);
}
void span_recording::set(std::string_view key, double value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::float64;
  a.number = std::bit_cast<std::int64_t>(value);
  data_->add(a);
}

void span_recording::add_link(const span_context& c, attribute_list attributes) {
  if (!data_ || !c.valid()) return;
  data_->links.push_back({c.trace_id, c.span_id, c.trace_state, std::move(attributes)});
}

void span_recording::add_event(std::string name, attribute_list attributes) {
  if (!data_) return;
  data_->events.push_back(
      {to_unix_ns(tracer_->time->now()), std::move(name), std::move(attributes)});
}

void span_recording::set_error(std::string_view message) {
  if (!data_) return;
  data_->status = status_code::error;
  data_->status_message = data_->store(message);
}

void span_recording::set_name(std::string_view name) {
  if (data_) data_->name = data_->store(name);
}

void span_recording::end() {
  if (!data_) return;
  end(tracer_->time->now());
}

void span_recording::end(wall_time end_time) {
  if (!data_) return;
  recorded_span_ptr s = std::move(data_);
  s->end_ns = std::max(s->start_ns, to_unix_ns(end_time));
  auto owner = std::move(tracer_);
  owner->sink->export_recorded(std::move(s));
}

}  // namespace outrider::tracing
