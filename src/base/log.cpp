#include "base/log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <string>

namespace outrider::log {
namespace {

std::atomic<int> current_level{static_cast<int>(level::info)};

spdlog::level::level_enum to_spdlog(level l) {
  switch (l) {
    case level::trace: return spdlog::level::trace;
    case level::debug: return spdlog::level::debug;
    case level::info: return spdlog::level::info;
    case level::warn: return spdlog::level::warn;
    case level::error: return spdlog::level::err;
    case level::critical: return spdlog::level::critical;
    case level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

void append_json_escaped(spdlog::memory_buf_t& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20) {
          const char escaped[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
          out.append(escaped, escaped + sizeof(escaped));
        } else {
          out.push_back(ch);
        }
    }
  }
}

// One JSON object per line: {"ts":"...","level":"info","component":"http","msg":"..."}
class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto since_epoch = duration_cast<microseconds>(msg.time.time_since_epoch()).count();
    std::time_t seconds = static_cast<std::time_t>(since_epoch / 1000000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char ts[40];
    auto n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(ts + n, sizeof(ts) - n, ".%06lldZ",
                  static_cast<long long>(since_epoch % 1000000));
    dest.append(std::string_view("{\"ts\":\""));
    dest.append(std::string_view(ts));
    dest.append(std::string_view("\",\"level\":\""));
    auto lv = spdlog::level::to_string_view(msg.level);
    dest.append(lv.data(), lv.data() + lv.size());
    dest.append(std::string_view("\",\"component\":\""));
    append_json_escaped(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view("\",\"msg\":\""));
    append_json_escaped(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("\"}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }
};

std::mutex init_mutex;
std::shared_ptr<spdlog::logger> root;  // guarded by init_mutex for replacement

std::shared_ptr<spdlog::logger> make_logger(const options& opts) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (opts.color && opts.output == format::human) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  auto l = std::make_shared<spdlog::logger>("outrider", sink);
  if (opts.output == format::json) {
    l->set_formatter(std::make_unique<json_formatter>());
  } else {
    // Component is passed as the logger name of each record (see write()).
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc);
  }
  l->set_level(spdlog::level::trace);  // filtering is done by enabled()
  l->flush_on(spdlog::level::warn);
  return l;
}

std::shared_ptr<spdlog::logger> get_root() {
  std::lock_guard lock(init_mutex);
  if (!root) {
    root = make_logger(options{});
  }
  return root;
}

}  // namespace

result<level> parse_level(std::string_view text) {
  auto t = lower(text);
  if (t == "trace") return level::trace;
  if (t == "debug") return level::debug;
  if (t == "info") return level::info;
  if (t == "warn" || t == "warning") return level::warn;
  if (t == "error") return level::error;
  if (t == "critical") return level::critical;
  if (t == "off") return level::off;
  return error(errc::invalid_argument,
               fmt::format("unknown log level '{}' (expected trace, debug, info, warn, error, "
                           "critical or off)",
                           text));
}

result<format> parse_format(std::string_view text) {
  auto t = lower(text);
  if (t == "human" || t == "text") return format::human;
  if (t == "json") return format::json;
  return error(errc::invalid_argument,
               fmt::format("unknown log format '{}' (expected human or json)", text));
}

void init(const options& opts) {
  auto l = make_logger(opts);
  {
    std::lock_guard lock(init_mutex);
    root = std::move(l);
  }
  set_level(opts.min_level);
}

void set_level(level l) {
  current_level.store(static_cast<int>(l), std::memory_order_relaxed);
}

bool enabled(level l) noexcept {
  return static_cast<int>(l) >= current_level.load(std::memory_order_relaxed) && l != level::off;
}

void write(level l, std::string_view component, std::string_view message) {
  auto logger = get_root();
  spdlog::details::log_msg msg(spdlog::string_view_t(component.data(), component.size()),
                               to_spdlog(l), spdlog::string_view_t(message.data(), message.size()));
  for (auto& sink : logger->sinks()) {
    if (sink->should_log(msg.level)) {
      sink->log(msg);
    }
  }
  if (l >= level::warn) {
    for (auto& sink : logger->sinks()) sink->flush();
  }
}

void flush() noexcept {
  try {
    get_root()->flush();
  } catch (...) {  // flushing is best effort on the way down
  }
}

}  // namespace outrider::log
