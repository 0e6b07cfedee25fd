#include "common/driver.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>

namespace bench {
namespace {

constexpr double ns_per_ms = 1e6;
constexpr double ns_per_s = 1e9;
constexpr std::int64_t bytes_per_kib = 1024;
constexpr auto rss_sample_period = std::chrono::milliseconds(20);

void put_le64(char* out, std::int64_t value) {
  auto bits = static_cast<std::uint64_t>(value);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((bits >> (8 * i)) & 0xffU);
}

std::int64_t get_le64(const char* in) {
  std::uint64_t bits = 0;
  for (int i = 0; i < 8; ++i)
    bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return static_cast<std::int64_t>(bits);
}

}  // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

arg_parser::arg_parser(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag.substr(0, 2) != "--" || i + 1 >= argc) {
      problems_.push_back("expected '--name value', got '" + std::string(flag) + "'");
      continue;
    }
    values_[std::string(flag.substr(2))] = argv[i + 1];
    ++i;
  }
}

std::string arg_parser::get(const std::string& name, const std::string& fallback) {
  used_[name] = true;
  auto found = values_.find(name);
  return found == values_.end() ? fallback : found->second;
}

std::int64_t arg_parser::get_int(const std::string& name, std::int64_t fallback) {
  std::string text = get(name, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') {
    problems_.push_back("--" + name + " wants an integer, got '" + text + "'");
    return fallback;
  }
  return value;
}

double arg_parser::get_double(const std::string& name, double fallback) {
  std::string text = get(name, "");
  if (text.empty()) return fallback;
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (*end != '\0' || !std::isfinite(value)) {
    problems_.push_back("--" + name + " wants a number, got '" + text + "'");
    return fallback;
  }
  return value;
}

bool arg_parser::finish() {
  for (const auto& [name, value] : values_) {
    if (!used_.contains(name)) problems_.push_back("unknown flag --" + name);
  }
  for (const auto& problem : problems_) std::cerr << "error: " << problem << "\n";
  return problems_.empty();
}

std::string latency_samples::percentiles_json() {
  std::sort(samples_.begin(), samples_.end());
  auto at = [this](double quantile) -> double {
    if (samples_.empty()) return 0;
    auto rank =
        static_cast<std::size_t>(std::ceil(quantile * static_cast<double>(samples_.size())));
    rank = std::clamp<std::size_t>(rank, 1, samples_.size());
    return static_cast<double>(samples_[rank - 1]) / ns_per_ms;
  };
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "{\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,\"count\":%zu}",
                at(0.50), at(0.90), at(0.99), at(0.999), at(1.0), samples_.size());
  return buffer;
}

rate_pacer::rate_pacer(double messages_per_second)
    : interval_ns_(ns_per_s / messages_per_second), start_ns_(now_ns()) {}

std::int64_t rate_pacer::wait_for(std::uint64_t index) {
  auto due = start_ns_ + static_cast<std::int64_t>(interval_ns_ * static_cast<double>(index));
  auto now = now_ns();
  if (due > now) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
  return due;
}

std::int64_t read_rss_bytes(long pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * bytes_per_kib;
  }
  return 0;
}

rss_sampler::rss_sampler(long pid) : pid_(pid) {
  if (pid_ <= 0) return;
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      auto rss = read_rss_bytes(pid_);
      if (rss > peak_.load()) peak_.store(rss);
      std::this_thread::sleep_for(rss_sample_period);
    }
  });
}

rss_sampler::~rss_sampler() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void write_payload(std::string& buffer, std::size_t size, const payload_header& header) {
  buffer.assign(std::max(size, payload_header_size), 'x');
  put_le64(buffer.data(), header.sequence);
  put_le64(buffer.data() + 8, header.sent_ns);
  put_le64(buffer.data() + 16, header.due_us);
}

bool read_payload(std::string_view buffer, payload_header& header) {
  if (buffer.size() < payload_header_size) return false;
  header.sequence = get_le64(buffer.data());
  header.sent_ns = get_le64(buffer.data() + 8);
  header.due_us = get_le64(buffer.data() + 16);
  return true;
}

std::int64_t delay_offset_us(std::int64_t sequence, double window_s) {
  // splitmix64 finaliser: well spread, no state.
  auto z = static_cast<std::uint64_t>(sequence) + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  z ^= z >> 31U;
  constexpr double us_per_s = 1e6;
  constexpr double two_pow_64 = 18446744073709551616.0;
  return static_cast<std::int64_t>(static_cast<double>(z) / two_pow_64 * window_s * us_per_s);
}

void json_line::key(std::string_view name) {
  body_ += body_.empty() ? "\"" : ",\"";
  body_ += name;
  body_ += "\":";
}

json_line& json_line::str(std::string_view name, std::string_view value) {
  key(name);
  body_ += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') body_ += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) body_ += c;
  }
  body_ += '"';
  return *this;
}

json_line& json_line::num(std::string_view name, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.4f", std::isfinite(value) ? value : 0.0);
  return raw(name, buffer);
}

json_line& json_line::integer(std::string_view name, std::int64_t value) {
  return raw(name, std::to_string(value));
}

json_line& json_line::raw(std::string_view name, std::string_view json) {
  key(name);
  body_ += json;
  return *this;
}

void json_line::print() const {
  std::cout << "{" << body_ << "}\n";
  std::cout.flush();
}

common_options parse_common(arg_parser& args, std::string_view default_label) {
  constexpr std::int64_t default_messages = 200000;
  constexpr std::int64_t default_size = 1024;
  constexpr std::int64_t default_window = 100;
  constexpr double default_rate = 5000;
  constexpr double default_duration_s = 20;
  constexpr double default_window_s = 60;
  constexpr double default_timeout_s = 300;
  common_options options;
  options.mode = args.get("mode", "throughput");
  options.host = args.get("host", "127.0.0.1");
  options.port = static_cast<int>(args.get_int("port", 0));
  options.messages = args.get_int("messages", default_messages);
  options.size = args.get_int("size", default_size);
  options.inflight = args.get_int("inflight", default_window);
  options.prefetch = args.get_int("prefetch", default_window);
  options.rate = args.get_double("rate", default_rate);
  options.duration_s = args.get_double("duration-s", default_duration_s);
  options.window_s = args.get_double("window-s", default_window_s);
  options.near_every = args.get_int("near-every", 1);
  options.far_window_s = args.get_double("far-window-s", 0);
  options.near_rate = args.get_double("near-rate", 0);
  options.near_lead_s = args.get_double("near-lead-s", options.near_lead_s);
  options.server_pid = static_cast<long>(args.get_int("server-pid", 0));
  options.label = args.get("label", std::string(default_label));
  options.timeout_s = args.get_double("timeout-s", default_timeout_s);
  auto fail = [&args](const std::string& problem) { args.add_problem(problem); };
  if (options.mode != "throughput" && options.mode != "latency" && options.mode != "delayed") {
    fail("--mode must be throughput, latency or delayed");
  }
  if (options.port <= 0) fail("--port is required");
  if (options.messages <= 0) fail("--messages must be positive");
  if (options.size < static_cast<std::int64_t>(payload_header_size)) {
    fail("--size must be at least " + std::to_string(payload_header_size));
  }
  if (options.inflight <= 0 || options.prefetch <= 0)
    fail("--inflight/--prefetch must be positive");
  if (options.rate <= 0 || options.duration_s <= 0 || options.window_s <= 0) {
    fail("--rate, --duration-s and --window-s must be positive");
  }
  if (options.near_every < 1) fail("--near-every must be at least 1");
  if (options.far_window_s < 0) fail("--far-window-s must not be negative");
  if (options.near_rate < 0 || options.near_lead_s < 0) {
    fail("--near-rate and --near-lead-s must not be negative");
  }
  if (options.near_rate > 0 && (options.far_window_s <= 0 || options.near_every <= 1)) {
    fail("--near-rate needs --near-every > 1 and --far-window-s");
  }
  return options;
}

namespace {
bool is_far(const common_options& options, std::int64_t sequence) {
  if (options.far_window_s <= 0 || options.near_every <= 1) return false;
  // A burst sends the far messages first.
  if (options.near_rate > 0) return sequence < options.messages - near_messages(options);
  return sequence % options.near_every != 0;
}
}  // namespace

std::int64_t due_offset_us(const common_options& options, std::int64_t sequence) {
  if (!is_far(options, sequence)) return delay_offset_us(sequence, options.window_s);
  constexpr double us_per_s = 1e6;
  return static_cast<std::int64_t>(options.window_s * us_per_s) +
         delay_offset_us(sequence, options.far_window_s);
}

std::int64_t near_messages(const common_options& options) {
  if (options.far_window_s <= 0 || options.near_every <= 1) return options.messages;
  return (options.messages + options.near_every - 1) / options.near_every;
}

std::int64_t due_schedule::due_us(std::int64_t sequence) {
  const std::int64_t now = wall_us();
  if (options_.near_rate <= 0 || is_far(options_, sequence)) {
    return now + due_offset_us(options_, sequence);
  }
  if (first_near_us_ < 0) first_near_us_ = now;
  constexpr double us_per_s = 1e6;
  const auto k = sequence - (options_.messages - near_messages(options_));
  return first_near_us_ +
         static_cast<std::int64_t>(options_.near_lead_s * us_per_s +
                                   static_cast<double>(k) * us_per_s / options_.near_rate);
}

json_line report_header(const common_options& options, std::string_view generator) {
  json_line line;
  line.str("generator", generator).str("system", options.label).str("mode", options.mode);
  line.integer("size", options.size);
  return line;
}

}  // namespace bench
