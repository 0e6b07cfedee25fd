// resolver: name resolution for service invocation — which sidecar serves an
// app id. A small interface so other resolvers (mDNS, DNS SRV, Consul) can be
// added; the sidecar composes them (first match wins).
//
// Formats: the static table comes from the sidecar's YAML (`apps:` section);
// the resolve file (`--resolve-file`, written by `outrider dev`) is YAML:
//   apps:
//     orders: "127.0.0.1:3501"     # the target app's sidecar HTTP port
//
// Thread-safety: resolve() may be called from any thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "config/node.h"

namespace outrider::io {
class file_system;
}  // namespace outrider::io

namespace outrider::ambassador {

class resolver {
 public:
  virtual ~resolver() = default;
  // "host:port" of `app_id`'s sidecar. Errors: not_found (unknown app id).
  virtual result<std::string> resolve(std::string_view app_id) = 0;
};

// Parses `apps: {id: "host:port"}` (the whole document). Errors: config_invalid.
result<std::map<std::string, std::string>> parse_app_table(const config::node& doc);

class static_resolver final : public resolver {
 public:
  explicit static_resolver(std::map<std::string, std::string> apps) : apps_(std::move(apps)) {}
  result<std::string> resolve(std::string_view app_id) override;

 private:
  std::map<std::string, std::string> apps_;
};

// Reads `path` through `fs`; re-reads it when it was last read more than
// `recheck` ago and its content changed (checked lazily on resolve(), at most
// once per `recheck`, so an unchanged file costs nothing per call). A file
// that is missing or does not parse keeps the last good table (and logs).
class file_resolver final : public resolver {
 public:
  file_resolver(io::file_system& fs, std::string path, const clock& clk,
                nanoseconds recheck = std::chrono::milliseconds(500));
  result<std::string> resolve(std::string_view app_id) override;
  // Reads the file now (also done by the first resolve()).
  status reload();

 private:
  io::file_system& fs_;
  std::string path_;
  const clock& clock_;
  nanoseconds recheck_;
  std::mutex mutex_;
  std::optional<mono_time> last_check_;
  std::string last_text_;
  std::map<std::string, std::string> apps_;
};

// Asks each resolver in order; the first that knows the app id wins.
class chain_resolver final : public resolver {
 public:
  void add(std::shared_ptr<resolver> r) { chain_.push_back(std::move(r)); }
  bool empty() const noexcept { return chain_.empty(); }
  result<std::string> resolve(std::string_view app_id) override;

 private:
  std::vector<std::shared_ptr<resolver>> chain_;
};

}  // namespace outrider::ambassador
