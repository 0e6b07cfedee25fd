#include "ambassador/resolver.h"

#include <fmt/core.h>

#include "base/log.h"
#include "io/file_system.h"

namespace outrider::ambassador {
namespace {

const log::logger logger{"ambassador.resolver"};

error unknown(std::string_view app_id) {
  return error(errc::not_found, fmt::format("app id '{}' is not known to name resolution", app_id));
}

}  // namespace

result<std::map<std::string, std::string>> parse_app_table(const config::node& doc) {
  std::map<std::string, std::string> out;
  if (doc.is_null()) return out;
  if (!doc.is_map()) return doc.fail("expected a map with an 'apps' key");
  const auto* apps = doc.find("apps");
  if (apps == nullptr || apps->is_null()) return out;
  if (!apps->is_map()) return apps->fail("expected a map of app id to \"host:port\"");
  for (const auto& [id, value] : apps->entries()) {
    if (!value.is_scalar() || value.scalar().find(':') == std::string::npos) {
      return value.fail("expected \"host:port\" of the app's sidecar");
    }
    out[id] = value.scalar();
  }
  return out;
}

result<std::string> static_resolver::resolve(std::string_view app_id) {
  auto it = apps_.find(std::string(app_id));
  if (it == apps_.end()) return unknown(app_id);
  return it->second;
}

file_resolver::file_resolver(io::file_system& fs, std::string path, const clock& clk,
                             nanoseconds recheck)
    : fs_(fs), path_(std::move(path)), clock_(clk), recheck_(recheck) {}

status file_resolver::reload() {
  std::lock_guard lock(mutex_);
  last_check_ = clock_.monotonic_now();
  auto f = fs_.open_for_read(path_);
  if (!f) return f.error();
  auto size = (*f)->size();
  if (!size) return size.error();
  std::string text(*size, '\0');
  auto n = (*f)->read_at(0, std::as_writable_bytes(std::span(text.data(), text.size())));
  if (!n) return n.error();
  text.resize(*n);
  if (text == last_text_ && !apps_.empty()) return ok_status();
  auto doc = config::parse_yaml(text, path_);
  if (!doc) return doc.error();
  auto table = parse_app_table(*doc);
  if (!table) return table.error();
  last_text_ = std::move(text);
  apps_ = std::move(*table);
  logger.debug("resolve file {}: {} apps", path_, apps_.size());
  return ok_status();
}

result<std::string> file_resolver::resolve(std::string_view app_id) {
  bool due = false;
  {
    std::lock_guard lock(mutex_);
    due = !last_check_ || clock_.monotonic_now() - *last_check_ >= recheck_;
  }
  if (due) {
    if (auto st = reload(); !st) {
      logger.warn("resolve file {}: {} (keeping the last good table)", path_, st.error().message);
    }
  }
  std::lock_guard lock(mutex_);
  auto it = apps_.find(std::string(app_id));
  if (it == apps_.end()) return unknown(app_id);
  return it->second;
}

result<std::string> chain_resolver::resolve(std::string_view app_id) {
  for (const auto& r : chain_) {
    auto a = r->resolve(app_id);
    if (a || a.error().code != errc::not_found) return a;
  }
  return unknown(app_id);
}

}  // namespace outrider::ambassador
