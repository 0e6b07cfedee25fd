// bench_collector: span ingestion into `outrider collector` and query latency.
//
//   bench_collector --mode ingest --port P --query-port Q [--protocol otlp|zipkin]
//                   [--spans 2000000] [--batch 512] [--connections 4] [--server-pid PID]
//                   [--data-dir DIR] [--queries 200] [--label L]
//       Sends --spans spans in batches of --batch (traces of 8 spans, 10 attributes
//       each, 4 services) over --connections keep-alive HTTP/1.1 connections as fast as the
//       collector accepts them (429 is retried after 10 ms and counted). OTLP/HTTP protobuf to
//       P/v1/traces, or Zipkin v2 JSON to P/api/v2/spans. While it sends, one thread queries Q
//       every 200 ms (trace by id of a stored trace, and a search): query_during_ingest_ms.
//       After: --queries trace-by-id lookups of random stored traces (trace_by_id_ms) and as
//       many searches by service + minDuration over the last hour (search_ms). Reports
//       throughput_spans_s, the on-disk bytes per span (of --data-dir) and the server's peak RSS.
//   bench_collector --mode disk --dir DIR [--bytes 600000000]
//       The disk's own rate for the same kind of writes: 1 MiB write(2)s, fdatasync every
//       4 MiB (the collector syncs once per writer round). Reports disk_mb_s.
//
// Batches are encoded once; each send patches the trace ids' high halves (found by a marker)
// so that every batch holds new traces. Every request carries spans that answer 200/202.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/driver.h"
#include "tracing/codec.h"
#include "tracing/span.h"

namespace {

using namespace outrider;

constexpr std::uint64_t marker = 0x5eedb0b0c0ffee11ULL;  // template trace id high half
constexpr int spans_per_trace = 8;
constexpr std::int64_t ns_per_ms = 1'000'000;

// One blocking keep-alive HTTP/1.1 connection to 127.0.0.1.
class connection {
 public:
  explicit connection(int port) : port_(port) {}
  ~connection() { close_fd(); }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Returns the status code (or -1 on a transport error); the body in `body`.
  int call(const std::string& method, const std::string& target, const std::string& payload,
           const std::string& content_type, std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (fd_ < 0 && !open_fd()) return -1;
      std::string head = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
      if (!payload.empty() || method == "POST") {
        head += "Content-Type: " + content_type +
                "\r\nContent-Length: " + std::to_string(payload.size()) + "\r\n";
      }
      head += "\r\n";
      if (!send_all(head) || !send_all(payload)) {
        close_fd();
        continue;  // the server may have closed an idle connection: reconnect once
      }
      const int status = read_response(body);
      if (status < 0) {
        close_fd();
        continue;
      }
      return status;
    }
    return -1;
  }

 private:
  bool open_fd() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close_fd();
      return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    buffer_.clear();
    return true;
  }
  void close_fd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  bool fill() {
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int read_response(std::string& body) {
    std::size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) return -1;
    }
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    const int status = std::atoi(head.c_str() + head.find(' ') + 1);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::size_t length = 0;
    if (auto at = lower.find("content-length:"); at != std::string::npos)
      length = std::strtoull(lower.c_str() + at + 15, nullptr, 10);
    while (buffer_.size() < length) {
      if (!fill()) return -1;
    }
    body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return status;
  }

  int port_;
  int fd_ = -1;
  std::string buffer_;
};

std::shared_ptr<const tracing::span_resource> resource(const std::string& service) {
  auto r = std::make_shared<tracing::span_resource>();
  r->attributes = {{"service.name", tracing::attribute_value::of(service)},
                   {"service.version", tracing::attribute_value::of("1.4.2")},
                   {"host.name", tracing::attribute_value::of("node-7")},
                   {"deployment.environment", tracing::attribute_value::of("bench")}};
  r->scope_name = "bench";
  return r;
}

// One batch: traces of 8 spans (frontend -> orders -> postgres, a message to shipping,
// payments), 10 attributes each; durations spread over 1..1000 ms.
std::vector<tracing::span> make_batch(int batch_size, std::int64_t start_ns) {
  const std::string services[] = {"frontend", "orders", "shipping", "payments"};
  std::shared_ptr<const tracing::span_resource> resources[4];
  for (int i = 0; i < 4; ++i) resources[i] = resource(services[i]);
  struct shape {
    int service;
    const char* name;
    tracing::span_kind kind;
    int parent;  // index in the trace, -1 root
    const char* peer;
  };
  const shape shapes[spans_per_trace] = {
      {0, "GET /orders", tracing::span_kind::server, -1, nullptr},
      {0, "GET /orders/{id}", tracing::span_kind::client, 0, "orders"},
      {1, "GET /orders/{id}", tracing::span_kind::server, 1, nullptr},
      {1, "SELECT orders", tracing::span_kind::client, 2, "postgres"},
      {1, "publish order-placed", tracing::span_kind::producer, 2, "outrider"},
      {2, "process order-placed", tracing::span_kind::consumer, 4, nullptr},
      {3, "POST /charge", tracing::span_kind::server, 2, nullptr},
      {2, "reserve shelf", tracing::span_kind::internal, 5, nullptr},
  };
  std::vector<tracing::span> out;
  for (int i = 0; i < batch_size; ++i) {
    const int t = i / spans_per_trace;
    const int k = i % spans_per_trace;
    const shape& sh = shapes[k];
    tracing::span s;
    s.trace_id = id128{marker, static_cast<std::uint64_t>(t) + 1};
    s.span_id = (static_cast<std::uint64_t>(t) << 8) + static_cast<std::uint64_t>(k) + 1;
    s.parent_id = sh.parent < 0 ? 0
                                : (static_cast<std::uint64_t>(t) << 8) +
                                      static_cast<std::uint64_t>(sh.parent) + 1;
    s.name = sh.name;
    s.kind = sh.kind;
    s.start_ns = start_ns + static_cast<std::int64_t>(k) * ns_per_ms;
    s.end_ns = s.start_ns + ((static_cast<std::int64_t>(i) * 37) % 1000 + 1) * ns_per_ms;
    s.flags = 1;
    s.resource = resources[sh.service];
    s.local_endpoint.service_name = services[sh.service];
    using av = tracing::attribute_value;
    s.attributes = {
        {"http.request.method", av::of("GET")},
        {"url.path", av::of("/orders/" + std::to_string(1000 + t))},
        {"http.response.status_code", av::of_int(200)},
        {"server.address", av::of("orders.internal")},
        {"server.port", av::of_int(8080)},
        {"user_agent.original", av::of("bench/1.0")},
        {"customer.tier", av::of(t % 3 == 0 ? "gold" : "standard")},
        {"region", av::of("eu-west-1")},
        {"retry.count", av::of_int(k % 2)},
        {"peer.service", av::of(sh.peer != nullptr ? sh.peer : "none")},
    };
    if (sh.peer != nullptr) s.remote_endpoint.service_name = sh.peer;
    out.push_back(std::move(s));
  }
  return out;
}

// Where the marker occurs in the encoded template (bytes or hex text).
std::vector<std::size_t> find_all(const std::string& body, const std::string& needle) {
  std::vector<std::size_t> at;
  for (auto p = body.find(needle); p != std::string::npos; p = body.find(needle, p + 1))
    at.push_back(p);
  return at;
}

std::string be_bytes(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v);
  return out;
}

std::int64_t dir_bytes(const std::string& dir) {
  std::int64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += static_cast<std::int64_t>(it->file_size(ec));
  }
  return total;
}

int run_ingest(bench::arg_parser& args) {
  const auto port = static_cast<int>(args.get_int("port", 0));
  const auto query_port = static_cast<int>(args.get_int("query-port", 0));
  const std::string protocol = args.get("protocol", "otlp");
  const std::int64_t total_spans = args.get_int("spans", 2'000'000);
  const auto batch_size = static_cast<int>(args.get_int("batch", 512));
  const auto connections = static_cast<int>(args.get_int("connections", 4));
  const long server_pid = static_cast<long>(args.get_int("server-pid", 0));
  const std::string data_dir = args.get("data-dir", "");
  const auto queries = static_cast<int>(args.get_int("queries", 200));
  const std::string label = args.get("label", "outrider");
  if (port <= 0 || query_port <= 0) args.add_problem("--port and --query-port are required");
  if (protocol != "otlp" && protocol != "zipkin") args.add_problem("--protocol: otlp or zipkin");
  if (batch_size < spans_per_trace || batch_size % spans_per_trace != 0)
    args.add_problem("--batch must be a multiple of 8");
  if (!args.finish()) return 2;

  const std::int64_t start_ns = bench::wall_us() * 1000;
  const auto spans = make_batch(batch_size, start_ns);
  const bool otlp = protocol == "otlp";
  const std::string body =
      otlp ? tracing::encode_otlp_protobuf(spans) : tracing::zipkin_json_list(spans);
  const std::string needle = otlp ? be_bytes(marker) : tracing::to_hex16(marker);
  const auto offsets = find_all(body, needle);
  if (offsets.size() != static_cast<std::size_t>(batch_size)) {
    std::fprintf(stderr, "marker found %zu times, expected %d\n", offsets.size(), batch_size);
    return 1;
  }
  const std::string path = otlp ? "/v1/traces" : "/api/v2/spans";
  const std::string type = otlp ? "application/x-protobuf" : "application/json";
  std::random_device rd;
  const std::uint64_t nonce = (static_cast<std::uint64_t>(rd()) & 0xffffffU) << 32;
  auto high_of = [nonce](std::int64_t batch) {
    return (std::uint64_t{1} << 60) | nonce | static_cast<std::uint64_t>(batch);
  };
  auto trace_hex = [&](std::int64_t batch, int trace) {
    return tracing::to_hex16(high_of(batch)) +
           tracing::to_hex16(static_cast<std::uint64_t>(trace) + 1);
  };
  const std::int64_t batches = (total_spans + batch_size - 1) / batch_size;
  const int traces_per_batch = batch_size / spans_per_trace;

  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> completed{0};
  std::atomic<std::int64_t> retries{0};
  std::atomic<std::int64_t> failures{0};
  std::atomic<bool> sending{true};
  bench::rss_sampler rss(server_pid);
  bench::latency_samples during;
  const std::string search_target = "/api/v2/traces?serviceName=orders&minDuration=900000&limit=10";
  auto search_path = [&] {
    const std::int64_t now_ms = bench::wall_us() / 1000;
    return search_target + "&endTs=" + std::to_string(now_ms + 60000) + "&lookback=3600000";
  };

  const std::int64_t t0 = bench::now_ns();
  std::vector<std::thread> senders;
  for (int c = 0; c < connections; ++c) {
    senders.emplace_back([&] {
      connection conn(port);
      std::string copy = body;
      std::string reply;
      while (true) {
        const std::int64_t b = next.fetch_add(1);
        if (b >= batches) break;
        const std::string high = otlp ? be_bytes(high_of(b)) : tracing::to_hex16(high_of(b));
        for (std::size_t at : offsets) copy.replace(at, high.size(), high);
        while (true) {
          const int status = conn.call("POST", path, copy, type, reply);
          if (status == 200 || status == 202) break;
          if (status == 429 || status == 503) {
            retries.fetch_add(1);
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
          }
          std::fprintf(stderr, "POST %s answered %d: %s\n", path.c_str(), status,
                       reply.substr(0, 200).c_str());
          failures.fetch_add(1);
          break;
        }
        completed.fetch_add(1);
      }
    });
  }
  std::thread querier([&] {
    connection conn(query_port);
    std::string reply;
    std::mt19937_64 rng(7);
    while (sending.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      const std::int64_t done = completed.load();
      if (done <= connections) continue;
      const std::int64_t b =
          static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(done - connections));
      std::int64_t q0 = bench::now_ns();
      conn.call("GET", "/api/v2/trace/" + trace_hex(b, static_cast<int>(rng() % traces_per_batch)),
                "", "", reply);
      during.add(bench::now_ns() - q0);
      q0 = bench::now_ns();
      conn.call("GET", search_path(), "", "", reply);
      during.add(bench::now_ns() - q0);
    }
  });
  for (auto& t : senders) t.join();
  const double elapsed_s = static_cast<double>(bench::now_ns() - t0) / 1e9;
  sending.store(false);
  querier.join();
  const std::int64_t sent_spans = completed.load() * batch_size;

  // Queries over what is stored now.
  bench::latency_samples by_id;
  bench::latency_samples search;
  std::int64_t not_found = 0;
  {
    connection conn(query_port);
    std::string reply;
    std::mt19937_64 rng(11);
    for (int i = 0; i < queries; ++i) {
      const auto b = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(batches));
      std::int64_t q0 = bench::now_ns();
      const int status = conn.call(
          "GET", "/api/v2/trace/" + trace_hex(b, static_cast<int>(rng() % traces_per_batch)), "",
          "", reply);
      by_id.add(bench::now_ns() - q0);
      if (status != 200) ++not_found;
      q0 = bench::now_ns();
      conn.call("GET", search_path(), "", "", reply);
      search.add(bench::now_ns() - q0);
    }
  }
  auto line = bench::json_line();
  line.str("generator", "bench_collector").str("system", label).str("mode", "ingest");
  line.str("protocol", otlp ? "otlp_protobuf" : "zipkin_json");
  line.integer("spans", sent_spans).integer("batch", batch_size);
  line.integer("connections", connections)
      .integer("request_bytes", static_cast<std::int64_t>(body.size()));
  line.num("elapsed_s", elapsed_s);
  line.num("throughput_spans_s", static_cast<double>(sent_spans) / elapsed_s);
  line.integer("retries_429", retries.load()).integer("failures", failures.load());
  line.raw("query_during_ingest_ms", during.percentiles_json());
  line.integer("queries_during_ingest", static_cast<std::int64_t>(during.size()));
  line.raw("trace_by_id_ms", by_id.percentiles_json());
  line.raw("search_ms", search.percentiles_json());
  line.integer("trace_not_found", not_found);
  if (!data_dir.empty()) {
    const std::int64_t bytes = dir_bytes(data_dir);
    line.integer("store_bytes", bytes);
  }
  line.integer("server_peak_rss_bytes", rss.peak_bytes());
  line.print();
  return failures.load() == 0 ? 0 : 1;
}

int run_disk(bench::arg_parser& args) {
  const std::string dir = args.get("dir", "");
  const std::int64_t bytes = args.get_int("bytes", 600'000'000);
  const std::string label = args.get("label", "disk");
  if (dir.empty()) args.add_problem("--dir is required");
  if (!args.finish()) return 2;
  const std::string path = dir + "/disk-probe";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror("open");
    return 1;
  }
  constexpr std::size_t chunk = std::size_t{1} << 20;
  constexpr std::int64_t sync_every = std::int64_t{4} << 20;
  const std::string block(chunk, 'x');
  const std::int64_t t0 = bench::now_ns();
  std::int64_t written = 0;
  std::int64_t since_sync = 0;
  while (written < bytes) {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
      std::perror("write");
      ::close(fd);
      return 1;
    }
    written += static_cast<std::int64_t>(chunk);
    since_sync += static_cast<std::int64_t>(chunk);
    if (since_sync >= sync_every) {
      ::fdatasync(fd);
      since_sync = 0;
    }
  }
  ::fdatasync(fd);
  const double elapsed_s = static_cast<double>(bench::now_ns() - t0) / 1e9;
  ::close(fd);
  ::unlink(path.c_str());
  auto line = bench::json_line();
  line.str("generator", "bench_collector").str("system", label).str("mode", "disk");
  line.integer("bytes", written).num("elapsed_s", elapsed_s);
  line.num("disk_mb_s", static_cast<double>(written) / elapsed_s / 1e6);
  line.print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::arg_parser args(argc, argv);
  const std::string mode = args.get("mode", "ingest");
  if (mode == "disk") return run_disk(args);
  if (mode != "ingest") {
    args.add_problem("--mode must be ingest or disk");
    args.finish();
    return 2;
  }
  return run_ingest(args);
}
