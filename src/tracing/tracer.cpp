#include "tracing/tracer.h"

#include <cmath>

namespace outrider::tracing {

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

tracer::tracer(tracer_options options, span_sink* sink, const clock& clk, random_source* rng)
    : options_(std::move(options)), sink_(sink), clock_(clk), rng_(rng) {
  auto res = std::make_shared<span_resource>();
  res->attributes.push_back({"service.name", attribute_value::of(options_.service_name)});
  for (const auto& kv : options_.resource_attributes) res->attributes.push_back(kv);
  res->scope_name = options_.scope_name;
  res->scope_version = options_.scope_version;
  resource_ = std::move(res);
}

active_span tracer::start_span(span_start start) const {
  random_source& rng = rng_ != nullptr ? *rng_ : thread_random();
  active_span out;
  out.tracer_ = this;
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
  const bool sampled = should_sample(options_.sampling, parent, out.context_.trace_id);
  out.context_.flags = sampled ? trace_flag_sampled : 0;
  if (!sampled || sink_ == nullptr) return out;
  auto s = std::make_unique<span>();
  s->trace_id = out.context_.trace_id;
  s->span_id = out.context_.span_id;
  s->parent_id = parent != nullptr ? parent->span_id : 0;
  s->name = std::move(start.name);
  s->kind = start.kind;
  s->start_ns = to_unix_ns(start.start_time ? *start.start_time : clock_.now());
  s->trace_state = out.context_.trace_state;
  s->flags = out.context_.flags;
  s->local_endpoint.service_name = options_.service_name;
  s->resource = resource_;
  out.data_ = std::move(s);
  return out;
}

void tracer::finish(span&& s) const {
  sink_->export_span(std::move(s));
}

active_span& active_span::operator=(active_span&& other) noexcept {
  if (this != &other) {
    end();
    tracer_ = other.tracer_;
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
      {to_unix_ns(tracer_->time_source().now()), std::move(name), std::move(attributes)});
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
  end(tracer_->time_source().now());
}

void active_span::end(wall_time end_time) {
  if (!data_) return;
  std::unique_ptr<span> s = std::move(data_);
  s->end_ns = std::max(s->start_ns, to_unix_ns(end_time));
  tracer_->finish(std::move(*s));
}

}  // namespace outrider::tracing
