#include "tracing/tracer.h"

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

active_span tracer::start_span(span_start start) const {
  const detail::tracer_state& st = *state_;
  random_source& rng = st.rng != nullptr ? *st.rng : thread_random();
  active_span out;
  const span_context* parent = start.parent;
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
  if (!sampled || st.sink == nullptr) return out;
  out.tracer_ = state_;
  auto s = std::make_unique<span>();
  s->trace_id = out.context_.trace_id;
  s->span_id = out.context_.span_id;
  s->parent_id = parent != nullptr ? parent->span_id : 0;
  s->name = std::move(start.name);
  s->kind = start.kind;
  s->start_ns = to_unix_ns(start.start_time ? *start.start_time : st.time->now());
  s->trace_state = out.context_.trace_state;
  s->flags = out.context_.flags;
  s->local_endpoint.service_name = st.options.service_name;
  s->resource = st.resource;
  out.data_ = std::move(s);
  return out;
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

void active_span::set(std::string key, std::string value) {
  if (data_) data_->attributes.push_back({std::move(key), attribute_value::of(std::move(value))});
}
void active_span::set(std::string key, std::int64_t value) {
  if (data_) data_->attributes.push_back({std::move(key), attribute_value::of_int(value)});
}
void active_span::set(std::string key, bool value) {
  if (data_) data_->attributes.push_back({std::move(key), attribute_value::of_bool(value)});
}
void active_span::set(std::string key, double value) {
  if (data_) data_->attributes.push_back({std::move(key), attribute_value::of_double(value)});
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

void active_span::set_error(std::string message) {
  if (!data_) return;
  data_->status.code = status_code::error;
  data_->status.message = std::move(message);
}

void active_span::set_name(std::string name) {
  if (data_) data_->name = std::move(name);
}

void active_span::end() {
  if (!data_) return;
  end(tracer_->time->now());
}

void active_span::end(wall_time end_time) {
  if (!data_) return;
  std::unique_ptr<span> s = std::move(data_);
  s->end_ns = std::max(s->start_ns, to_unix_ns(end_time));
  auto owner = std::move(tracer_);
  owner->sink->export_span(std::move(*s));
}

}  // namespace outrider::tracing
