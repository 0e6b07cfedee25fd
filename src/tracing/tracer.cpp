#include "tracing/tracer.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace outrider::tracing {
namespace detail {
struct tracer_state {
  tracer_options options;
  std::shared_ptr<span_sink> sink;
  std::shared_ptr<const clock> time;
  random_source* rng = nullptr;
  std::shared_ptr<const span_resource> resource;
};
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

active_span tracer::start_span(std::string_view name, span_kind kind, const span_context* parent,
                               std::optional<wall_time> start_time) const {
  const detail::tracer_state& st = *state_;
  random_source& rng = st.rng != nullptr ? *st.rng : thread_random();
  active_span out;
  if (parent != nullptr && parent->valid()) {
    out.context_.trace_id = parent->trace_id;
    out.context_.trace_state = parent->trace_state;  // received tracestate goes on unchanged
  } else {
    parent = nullptr;
    do {
      out.context_.trace_id = id128{rng.next_u64(), rng.next_u64()};
    } while (out.context_.trace_id.is_zero());
  }
  do {
    out.context_.span_id = rng.next_u64();
  } while (out.context_.span_id == 0);
  const bool sampled = should_sample(st.options.sampling, parent, out.context_.trace_id);
  out.context_.flags = sampled ? trace_flag_sampled : 0;
  if (!sampled || st.sink == nullptr) return out;  // not recorded: only the context
  out.tracer_ = state_;
  auto s = acquire_recorded_span();
  s->trace_id = out.context_.trace_id;
  s->span_id = out.context_.span_id;
  s->parent_id = parent != nullptr ? parent->span_id : 0;
  s->name = s->store(name);
  s->kind = kind;
  s->start_ns = to_unix_ns(start_time ? *start_time : st.time->now());
  if (!out.context_.trace_state.empty()) s->trace_state = s->store(out.context_.trace_state);
  s->flags = out.context_.flags;
  s->resource = st.resource;
  out.data_ = std::move(s);
  return out;
}

active_span tracer::start_span(std::string_view name, span_kind kind, const span_context* parent,
                               std::initializer_list<string_attribute> attributes) const {
  active_span out = start_span(name, kind, parent, std::nullopt);
  if (out.data_) out.data_->add_strings(std::span(attributes.begin(), attributes.size()));
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

active_span& active_span::operator=(active_span&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = std::move(other.tracer_);
    context_ = std::move(other.context_);
    data_ = std::move(other.data_);
  }
  return *this;
}

active_span::~active_span() {
  end();
}

void active_span::set(attr key, std::string_view value) {
  if (data_) data_->add_string(key, value);
}
void active_span::set(attr key, std::int64_t value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::int64;
  a.number = value;
  data_->add(a);
}
void active_span::set(attr key, bool value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::boolean;
  a.number = value ? 1 : 0;
  data_->add(a);
}
void active_span::set(attr key, double value) {
  if (!data_) return;
  recorded_span::attribute a;
  a.key = key;
  a.kind = attribute_value::type::float64;
  a.number = std::bit_cast<std::int64_t>(value);
  data_->add(a);
}

namespace {
// id128::to_string()'s text (Crockford base32, lower case, 26 digits: base/id.h)
// into `out` without a heap string; tracer_test checks that they agree.
// Five bits a digit, the last digit the lowest bits: digits 14..25 are bits
// 0..59, digits 2..13 bits 60..119, digits 0..1 bits 120..127 (so that no
// step shifts a 128-bit value).
void write_id_text(const id128& id, char (&out)[id128::text_size]) noexcept {
  static_assert(id128::text_size == 26);
  static constexpr char digits[] = "0123456789abcdefghjkmnpqrstvwxyz";
  const auto twelve = [](char* to, std::uint64_t v) {
    for (int i = 11; i >= 0; --i) {
      to[i] = digits[v & 31];
      v >>= 5;
    }
  };
  twelve(out + 14, id.low);
  twelve(out + 2, (id.low >> 60) | (id.high << 4));
  out[1] = digits[(id.high >> 56) & 31];
  out[0] = digits[id.high >> 61];
}
}  // namespace

void active_span::set(attr key, const id128& id) {
  if (!data_) return;
  char text[id128::text_size];
  write_id_text(id, text);
  set(key, std::string_view(text, sizeof text));
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

void active_span::set(std::string_view key, std::string_view value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::string;
  a.text = data_->store(value);
  data_->add(a);
}
void active_span::set(std::string_view key, std::int64_t value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::int64;
  a.number = value;
  data_->add(a);
}
void active_span::set(std::string_view key, bool value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::boolean;
  a.number = value ? 1 : 0;
  data_->add(a);
}
void active_span::set(std::string_view key, double value) {
  if (!data_) return;
  auto a = custom_key(*data_, key);
  a.kind = attribute_value::type::float64;
  a.number = std::bit_cast<std::int64_t>(value);
  data_->add(a);
}

void active_span::add_link(const span_context& c, attribute_list attributes) {
  if (!data_ || !c.valid()) return;
  data_->links.push_back({c.trace_id, c.span_id, c.trace_state, std::move(attributes)});
}

void active_span::add_event(std::string name, attribute_list attributes) {
  if (!data_) return;
  data_->events.push_back(
      {to_unix_ns(tracer_->time->now()), std::move(name), std::move(attributes)});
}

void active_span::set_error(std::string_view message) {
  if (!data_) return;
  data_->status = status_code::error;
  data_->status_message = data_->store(message);
}

void active_span::set_name(std::string_view name) {
  if (data_) data_->name = data_->store(name);
}

void active_span::end() {
  if (!data_) return;
  end(tracer_->time->now());
}

void active_span::end(wall_time end_time) {
  if (!data_) return;
  recorded_span_ptr s = std::move(data_);
  s->end_ns = std::max(s->start_ns, to_unix_ns(end_time));
  auto owner = std::move(tracer_);
  owner->sink->export_recorded(std::move(s));
}

}  // namespace outrider::tracing
