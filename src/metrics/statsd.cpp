#include "metrics/statsd.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace outrider::metrics {
namespace {

// Buckets for `h` / `d` values, whose unit the sink does not know: 1-2-5 steps
// from 0.001 to 1e6.
constexpr double generic_bounds[] = {0.001, 0.002, 0.005, 0.01,  0.02, 0.05, 0.1, 0.2, 0.5,  1,
                                     2,     5,     10,    20,    50,   100,  200, 500, 1000, 2000,
                                     5000,  10000, 20000, 50000, 1e5,  2e5,  5e5, 1e6};

bool parse_double(std::string_view text, double& out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end && std::isfinite(out);
}

std::string sanitize_label_name(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 1);
  for (char c : text) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    out.push_back(ok ? c : '_');
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out.insert(out.begin(), '_');
  // Names starting with "__" are reserved by Prometheus.
  while (out.size() >= 2 && out[0] == '_' && out[1] == '_') out.erase(0, 1);
  return out;
}

std::string_view next_field(std::string_view& rest, char sep) {
  const auto pos = rest.find(sep);
  std::string_view field = rest.substr(0, pos);
  rest = pos == std::string_view::npos ? std::string_view{} : rest.substr(pos + 1);
  return field;
}

}  // namespace

std::string sanitize_metric_name(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 1);
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == ':';
    out.push_back(ok ? c : '_');
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out.insert(out.begin(), '_');
  return out;
}

bool parse_statsd_line(std::string_view line, statsd_line& out, std::string& why) {
  why = "malformed";
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const auto colon = line.find(':');
  if (colon == 0 || colon == std::string_view::npos) return false;
  out = statsd_line{};
  out.name = std::string(line.substr(0, colon));
  std::string_view rest = line.substr(colon + 1);
  std::string_view value = next_field(rest, '|');
  std::string_view type = next_field(rest, '|');
  if (type == "c") {
    out.type = statsd_type::counter;
  } else if (type == "g") {
    out.type = statsd_type::gauge;
  } else if (type == "ms") {
    out.type = statsd_type::timer;
  } else if (type == "h" || type == "d") {
    out.type = statsd_type::histogram;
  } else if (type == "s") {
    why = "unsupported_type";
    return false;
  } else {
    return false;
  }
  if (out.type == statsd_type::gauge && !value.empty() && (value[0] == '+' || value[0] == '-')) {
    out.relative = true;
  }
  if (!value.empty() && value[0] == '+') value.remove_prefix(1);
  if (!parse_double(value, out.value)) return false;
  if (out.type == statsd_type::counter && out.value < 0) return false;
  while (!rest.empty()) {
    std::string_view field = next_field(rest, '|');
    if (field.size() > 1 && field[0] == '@') {
      if (!parse_double(field.substr(1), out.sample_rate) || out.sample_rate <= 0 ||
          out.sample_rate > 1) {
        return false;
      }
    } else if (field.size() > 1 && field[0] == '#') {
      std::string_view tags = field.substr(1);
      while (!tags.empty()) {
        std::string_view tag = next_field(tags, ',');
        if (tag.empty()) continue;
        const auto c = tag.find(':');
        std::string key(tag.substr(0, c));
        std::string val =
            c == std::string_view::npos ? std::string() : std::string(tag.substr(c + 1));
        if (key.empty()) return false;
        out.tags.emplace_back(std::move(key), std::move(val));
      }
    } else if (field.size() > 1 && field[0] == 'c' && field[1] == ':') {
      // DogStatsD container id: ignored.
    } else if (field.size() > 1 && field[0] == 'T') {
      // DogStatsD timestamp: ignored (the sink exposes the latest state).
    } else {
      return false;
    }
  }
  return true;
}

statsd_sink::statsd_sink(registry& reg, statsd_options opts)
    : reg_(reg),
      opts_(std::move(opts)),
      dropped_(&reg.add_counter("outrider_statsd_dropped_total",
                                "StatsD lines dropped: malformed, unsupported type, type conflict, "
                                "or a metric/series limit",
                                {"reason"}, 16)),
      accepted_(&reg.add_counter("outrider_statsd_lines_total", "StatsD lines applied").get()) {}

std::uint64_t statsd_sink::lines_dropped() const {
  std::uint64_t n = 0;
  for (const char* reason :
       {"malformed", "unsupported_type", "type_conflict", "metric_limit", "series_limit"}) {
    if (auto* c = dropped_->with({reason})) n += c->value();
  }
  return n;
}

void statsd_sink::drop(std::string_view reason) {
  if (auto* c = dropped_->with({reason})) c->inc();
}

void statsd_sink::ingest(std::string_view packet) {
  statsd_line line;
  std::string why;
  while (!packet.empty()) {
    std::string_view one = next_field(packet, '\n');
    if (one.empty() || one == "\r") continue;
    if (!parse_statsd_line(one, line, why)) {
      drop(why);
      continue;
    }
    apply(line);
  }
}

statsd_sink::metric* statsd_sink::find_or_declare(const statsd_line& line) {
  std::string name = opts_.prefix + sanitize_metric_name(line.name);
  if (line.type == statsd_type::counter) name += "_total";
  if (line.type == statsd_type::timer) name += "_seconds";
  auto it = metrics_.find(name);
  if (it != metrics_.end()) {
    if (it->second.type != line.type) {
      drop("type_conflict");
      return nullptr;
    }
    return &it->second;
  }
  if (metrics_.size() >= opts_.max_metrics || !registry::valid_name(name)) {
    drop(metrics_.size() >= opts_.max_metrics ? "metric_limit" : "malformed");
    return nullptr;
  }
  metric m;
  m.type = line.type;
  std::vector<std::pair<std::string, std::string>> keys;  // sanitized, raw
  for (const auto& [k, v] : line.tags) {
    std::string label = sanitize_label_name(k);
    if (label.empty()) continue;
    bool seen = false;
    for (const auto& have : keys) seen = seen || have.first == label;
    if (!seen) keys.emplace_back(std::move(label), k);
  }
  std::sort(keys.begin(), keys.end());
  for (auto& [label, raw] : keys) {
    m.label_names.push_back(label);
    m.tag_keys.push_back(raw);
  }
  const std::string help = "from the app over StatsD (" + line.name + ")";
  switch (line.type) {
    case statsd_type::counter:
      m.family = &reg_.add_counter(name, help, m.label_names, opts_.max_series_per_metric);
      break;
    case statsd_type::gauge:
      m.family = &reg_.add_gauge(name, help, m.label_names, opts_.max_series_per_metric);
      break;
    case statsd_type::timer:
      m.family = &reg_.add_histogram(name, help, m.label_names, latency_buckets_seconds(),
                                     opts_.max_series_per_metric);
      break;
    case statsd_type::histogram:
      m.family = &reg_.add_histogram(name, help, m.label_names, generic_bounds,
                                     opts_.max_series_per_metric);
      break;
  }
  return &metrics_.emplace(std::move(name), std::move(m)).first->second;
}

void statsd_sink::apply(const statsd_line& line) {
  std::lock_guard lock(mutex_);
  metric* m = find_or_declare(line);
  if (m == nullptr) return;
  std::vector<std::string> values(m->tag_keys.size());
  for (std::size_t i = 0; i < m->tag_keys.size(); ++i) {
    for (const auto& [k, v] : line.tags) {
      if (k == m->tag_keys[i]) {
        values[i] = v;
        break;
      }
    }
  }
  // A full family drops the update and counts it in the registry's own counter;
  // count it here too so the app's drops are visible per reason.
  switch (m->type) {
    case statsd_type::counter: {
      auto* c = static_cast<family<counter>*>(m->family)->with(values);
      if (c == nullptr) return drop("series_limit");
      c->inc(static_cast<std::uint64_t>(std::llround(line.value / line.sample_rate)));
      break;
    }
    case statsd_type::gauge: {
      auto* g = static_cast<family<gauge>*>(m->family)->with(values);
      if (g == nullptr) return drop("series_limit");
      if (line.relative) {
        g->add(line.value);
      } else {
        g->set(line.value);
      }
      break;
    }
    case statsd_type::timer:
    case statsd_type::histogram: {
      auto* h = static_cast<family<histogram>*>(m->family)->with(values);
      if (h == nullptr) return drop("series_limit");
      const double v = m->type == statsd_type::timer ? line.value / 1000.0 : line.value;
      // A sampled timer stands for 1/rate observations.
      const auto times = static_cast<std::uint64_t>(std::llround(1.0 / line.sample_rate));
      for (std::uint64_t i = 0; i < std::min<std::uint64_t>(times, 1000); ++i) h->observe(v);
      break;
    }
  }
  accepted_->inc();
}

}  // namespace outrider::metrics
