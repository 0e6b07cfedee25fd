#include "io/mem_file_system.h"

#include <algorithm>
#include <cstring>
#include <fmt/core.h>
#include <set>

namespace outrider::io {
namespace {

// free_space() without a capacity: large, but far from overflow in sums.
constexpr std::uint64_t unlimited_free_bytes = std::uint64_t{1} << 50;
// tear_tail garbles at most this many of the last surviving bytes (a torn sector tail).
constexpr std::uint64_t max_garbled_bytes = 8;

// Canonical form: no duplicate, leading "./" or trailing slashes; root is "".
std::string normalize(const std::string& path) {
  std::string out;
  std::size_t i = 0;
  const bool absolute = !path.empty() && path[0] == '/';
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    const std::string_view part(path.data() + i, j - i);
    if (!part.empty() && part != ".") {
      if (!out.empty() || absolute) out += '/';
      out.append(part);
    }
    i = j + 1;
  }
  return out;
}

std::string parent_of(const std::string& normalized) {
  const auto slash = normalized.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  return normalized.substr(0, slash);
}

error stale_error(const std::string& path) {
  return error(errc::io_error, fmt::format("file '{}' was opened before a simulated crash", path));
}

}  // namespace

struct mem_file_system::node {
  std::vector<std::byte> data;  // what reads see now (then zeros up to zeros_end)
  std::uint64_t synced = 0;     // data[0, synced) is durable
  // Set when a truncate cut into the durable bytes: the image a crash restores.
  std::optional<std::vector<std::byte>> durable_image;
  // preallocate(): the file holds zeros past data up to here (appends overwrite them);
  // zeros_synced is the part the last sync made durable, which a crash keeps.
  std::uint64_t zeros_end = 0;
  std::uint64_t zeros_synced = 0;

  std::uint64_t size() const { return std::max<std::uint64_t>(data.size(), zeros_end); }
  // The zeros become ordinary contents (a new writer appends after them, as on a disk).
  void materialize_zeros() {
    if (zeros_end <= data.size()) return;
    const bool all_synced = synced == data.size() && !durable_image;
    data.resize(zeros_end);
    if (all_synced) synced = std::min<std::uint64_t>(zeros_synced, data.size());
    zeros_end = zeros_synced = 0;
  }
};

class mem_file_system::mem_writable_file final : public writable_file {
 public:
  mem_writable_file(mem_file_system& fs, std::shared_ptr<node> n, std::string path,
                    std::uint64_t generation)
      : fs_(fs), node_(std::move(n)), path_(std::move(path)), generation_(generation) {}

  status append(std::span<const std::byte> data) override {
    std::lock_guard lock(fs_.mutex_);
    OUTRIDER_TRY(check());
    OUTRIDER_TRY(fs_.take_fault(fs_op::append, path_));
    if (fs_.capacity_ && fs_.used_bytes_locked() + data.size() > *fs_.capacity_) {
      return error(errc::disk_full, fmt::format("append to '{}': capacity of {} bytes reached",
                                                path_, *fs_.capacity_));
    }
    node_->data.insert(node_->data.end(), data.begin(), data.end());
    return {};
  }

  status preallocate(std::uint64_t end) override {
    std::lock_guard lock(fs_.mutex_);
    OUTRIDER_TRY(check());
    if (end <= node_->size()) return {};
    if (fs_.capacity_ && fs_.used_bytes_locked() + (end - node_->size()) > *fs_.capacity_) {
      return error(errc::disk_full, fmt::format("preallocate '{}': capacity of {} bytes reached",
                                                path_, *fs_.capacity_));
    }
    node_->zeros_end = end;
    return {};
  }

  status sync() override {
    std::lock_guard lock(fs_.mutex_);
    OUTRIDER_TRY(check());
    OUTRIDER_TRY(fs_.take_fault(fs_op::sync, path_));
    node_->synced = node_->data.size();
    node_->durable_image.reset();
    node_->zeros_synced = node_->zeros_end;
    return {};
  }

  status truncate(std::uint64_t size) override {
    std::lock_guard lock(fs_.mutex_);
    OUTRIDER_TRY(check());
    OUTRIDER_TRY(fs_.take_fault(fs_op::truncate, path_));
    if (size < node_->synced) {
      if (!node_->durable_image) {
        node_->durable_image.emplace(
            node_->data.begin(), node_->data.begin() + static_cast<std::ptrdiff_t>(node_->synced));
      }
      node_->synced = size;
    }
    node_->data.resize(size);
    // Zeros past the cut go (a crash before the next sync may bring the synced ones back).
    node_->zeros_end = std::min(node_->zeros_end, size);
    return {};
  }

  std::uint64_t size() const override {
    std::lock_guard lock(fs_.mutex_);
    return node_->data.size();
  }

  status close() override {
    std::lock_guard lock(fs_.mutex_);
    closed_ = true;
    return {};
  }

 private:
  status check() const {
    if (generation_ != fs_.generation_) return stale_error(path_);
    if (closed_) return error(errc::failed_precondition, fmt::format("file '{}' is closed", path_));
    return {};
  }

  mem_file_system& fs_;
  std::shared_ptr<node> node_;
  std::string path_;
  std::uint64_t generation_;
  bool closed_ = false;
};

class mem_file_system::mem_readable_file final : public readable_file {
 public:
  mem_readable_file(mem_file_system& fs, std::shared_ptr<node> n, std::string path,
                    std::uint64_t generation)
      : fs_(fs), node_(std::move(n)), path_(std::move(path)), generation_(generation) {}

  result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) const override {
    std::lock_guard lock(fs_.mutex_);
    if (generation_ != fs_.generation_) return stale_error(path_);
    const auto& data = node_->data;
    const std::uint64_t size = node_->size();
    if (offset >= size) return std::size_t{0};
    const std::size_t n = std::min<std::uint64_t>(out.size(), size - offset);
    const std::size_t from_data =
        offset >= data.size() ? 0 : std::min<std::uint64_t>(n, data.size() - offset);
    if (from_data > 0) std::memcpy(out.data(), data.data() + offset, from_data);
    std::memset(out.data() + from_data, 0, n - from_data);
    return n;
  }

  result<std::uint64_t> size() const override {
    std::lock_guard lock(fs_.mutex_);
    if (generation_ != fs_.generation_) return stale_error(path_);
    return node_->size();
  }

 private:
  mem_file_system& fs_;
  std::shared_ptr<node> node_;
  std::string path_;
  std::uint64_t generation_;
};

mem_file_system::mem_file_system(std::uint64_t seed) : random_(seed) {}
mem_file_system::~mem_file_system() = default;

status mem_file_system::take_fault(fs_op op, const std::string& path) {
  const auto it = faults_.find(op);
  if (it == faults_.end()) return {};
  const errc code = it->second;
  faults_.erase(it);
  return error(code, fmt::format("injected fault on '{}'", path));
}

bool mem_file_system::dir_exists(const name_space& ns, const std::string& path) const {
  if (path.empty()) return true;
  const auto it = ns.find(path);
  return it != ns.end() && it->second.is_dir;
}

std::uint64_t mem_file_system::used_bytes_locked() const {
  std::set<const node*> seen;
  std::uint64_t total = 0;
  for (const auto& [name, e] : live_) {
    if (e.file && seen.insert(e.file.get()).second) total += e.file->size();
  }
  return total;
}

std::uint64_t mem_file_system::used_bytes() const {
  std::lock_guard lock(mutex_);
  return used_bytes_locked();
}

result<std::unique_ptr<writable_file>> mem_file_system::open_for_append(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  OUTRIDER_TRY(take_fault(fs_op::open, path));
  auto it = live_.find(path);
  if (it == live_.end()) {
    if (path.empty() || !dir_exists(live_, parent_of(path))) {
      return error(errc::not_found, fmt::format("open for append '{}': no such directory", raw));
    }
    it = live_.emplace(path, entry{false, std::make_shared<node>()}).first;
  } else if (it->second.is_dir) {
    return error(errc::io_error, fmt::format("open for append '{}': is a directory", raw));
  }
  it->second.file->materialize_zeros();
  return std::unique_ptr<writable_file>(
      std::make_unique<mem_writable_file>(*this, it->second.file, path, generation_));
}

result<std::unique_ptr<readable_file>> mem_file_system::open_for_read(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  OUTRIDER_TRY(take_fault(fs_op::open, path));
  const auto it = live_.find(path);
  if (it == live_.end()) {
    return error(errc::not_found, fmt::format("open for read '{}': no such file", raw));
  }
  if (it->second.is_dir) {
    return error(errc::io_error, fmt::format("open for read '{}': is a directory", raw));
  }
  return std::unique_ptr<readable_file>(
      std::make_unique<mem_readable_file>(*this, it->second.file, path, generation_));
}

status mem_file_system::create_dirs(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  for (std::size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    const std::string prefix = pos == std::string::npos ? path : path.substr(0, pos);
    if (!prefix.empty()) {
      const auto it = live_.find(prefix);
      if (it == live_.end()) {
        live_.emplace(prefix, entry{true, nullptr});
      } else if (!it->second.is_dir) {
        return error(errc::io_error, fmt::format("mkdir '{}': not a directory", prefix));
      }
    }
    if (pos == std::string::npos) break;
  }
  return {};
}

result<std::vector<std::string>> mem_file_system::list_dir(const std::string& raw) {
  const std::string dir = normalize(raw);
  std::lock_guard lock(mutex_);
  if (!dir_exists(live_, dir)) {
    return error(errc::not_found, fmt::format("opendir '{}': no such directory", raw));
  }
  std::vector<std::string> names;
  for (const auto& [name, e] : live_) {
    if (parent_of(name) == dir) names.push_back(name.substr(dir.empty() ? 0 : dir.size() + 1));
  }
  // Strip a leading '/' left by absolute children of the root.
  for (auto& n : names) {
    if (!n.empty() && n[0] == '/') n.erase(0, 1);
  }
  return names;
}

status mem_file_system::remove_file(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  OUTRIDER_TRY(take_fault(fs_op::remove, path));
  const auto it = live_.find(path);
  if (it == live_.end())
    return error(errc::not_found, fmt::format("unlink '{}': no such file", raw));
  if (it->second.is_dir)
    return error(errc::io_error, fmt::format("unlink '{}': is a directory", raw));
  live_.erase(it);
  return {};
}

status mem_file_system::rename(const std::string& raw_from, const std::string& raw_to) {
  const std::string from = normalize(raw_from);
  const std::string to = normalize(raw_to);
  std::lock_guard lock(mutex_);
  OUTRIDER_TRY(take_fault(fs_op::rename, from));
  const auto it = live_.find(from);
  if (it == live_.end()) {
    return error(errc::not_found, fmt::format("rename '{}': no such file", raw_from));
  }
  if (it->second.is_dir) {
    return error(errc::io_error,
                 fmt::format("rename '{}': mem_file_system renames files only", raw_from));
  }
  if (!dir_exists(live_, parent_of(to))) {
    return error(errc::not_found, fmt::format("rename to '{}': no such directory", raw_to));
  }
  const auto target = live_.find(to);
  if (target != live_.end() && target->second.is_dir) {
    return error(errc::io_error, fmt::format("rename to '{}': is a directory", raw_to));
  }
  if (from == to) return {};
  entry moved = it->second;
  live_.erase(it);
  live_[to] = std::move(moved);
  return {};
}

result<bool> mem_file_system::exists(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  return path.empty() || live_.contains(path);
}

result<std::uint64_t> mem_file_system::file_size(const std::string& raw) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  const auto it = live_.find(path);
  if (it == live_.end()) return error(errc::not_found, fmt::format("stat '{}': no such file", raw));
  if (it->second.is_dir) return std::uint64_t{0};
  return it->second.file->size();
}

status mem_file_system::sync_dir(const std::string& raw) {
  const std::string dir = normalize(raw);
  std::lock_guard lock(mutex_);
  OUTRIDER_TRY(take_fault(fs_op::sync_dir, dir));
  if (!dir_exists(live_, dir)) {
    return error(errc::not_found, fmt::format("open directory '{}': no such directory", raw));
  }
  for (auto it = durable_.begin(); it != durable_.end();) {
    if (parent_of(it->first) == dir && !live_.contains(it->first)) {
      it = durable_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [name, e] : live_) {
    if (parent_of(name) == dir) durable_[name] = e;
  }
  return {};
}

result<std::uint64_t> mem_file_system::free_space(const std::string& /*path*/) {
  std::lock_guard lock(mutex_);
  if (!capacity_) return unlimited_free_bytes;
  const std::uint64_t used = used_bytes_locked();
  return used >= *capacity_ ? 0 : *capacity_ - used;
}

void mem_file_system::crash_for_test(crash_mode mode) {
  std::lock_guard lock(mutex_);
  ++generation_;
  // Every file the crash can touch: durable entries (their data survives in part).
  std::set<node*> nodes;
  for (const auto& [name, e] : durable_) {
    if (e.file) nodes.insert(e.file.get());
  }
  for (node* n : nodes) {
    if (n->durable_image) {
      n->data = std::move(*n->durable_image);
      n->durable_image.reset();
    } else {
      std::uint64_t keep = n->synced;
      const std::uint64_t unsynced = n->data.size() - n->synced;
      if (mode == crash_mode::tear_tail && unsynced > 0) {
        keep += random_.uniform(unsynced + 1);
        const std::uint64_t kept_unsynced = keep - n->synced;
        if (kept_unsynced > 0 && random_.uniform(2) == 0) {
          const std::uint64_t garbled =
              1 + random_.uniform(std::min(kept_unsynced, max_garbled_bytes));
          for (std::uint64_t i = keep - garbled; i < keep; ++i) {
            n->data[i] = static_cast<std::byte>(random_.next_u64());
          }
        }
      }
      n->data.resize(keep);
    }
    n->synced = n->data.size();
    // Synced zeros stay (appends that overwrote them were lost or torn above).
    n->zeros_end = n->zeros_synced;
  }
  // The namespace is what was made durable, minus entries whose parent did not survive.
  name_space survived;
  for (const auto& [name, e] : durable_) {
    bool reachable = true;
    for (std::string p = parent_of(name); !p.empty(); p = parent_of(p)) {
      const auto it = durable_.find(p);
      if (it == durable_.end() || !it->second.is_dir) {
        reachable = false;
        break;
      }
    }
    if (reachable) survived.emplace(name, e);
  }
  durable_ = survived;
  live_ = std::move(survived);
}

void mem_file_system::fail_next_for_test(fs_op op, errc code) {
  std::lock_guard lock(mutex_);
  faults_[op] = code;
}

void mem_file_system::set_capacity_for_test(std::optional<std::uint64_t> bytes) {
  std::lock_guard lock(mutex_);
  capacity_ = bytes;
}

status mem_file_system::corrupt_for_test(const std::string& raw, std::uint64_t offset,
                                         std::byte mask) {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  const auto it = live_.find(path);
  if (it == live_.end() || it->second.is_dir) {
    return error(errc::not_found, fmt::format("corrupt '{}': no such file", raw));
  }
  node& n = *it->second.file;
  if (offset >= n.data.size()) {
    return error(errc::invalid_argument,
                 fmt::format("corrupt '{}': offset {} past end", raw, offset));
  }
  n.data[offset] ^= mask;
  if (n.durable_image && offset < n.durable_image->size()) (*n.durable_image)[offset] ^= mask;
  return {};
}

result<std::uint64_t> mem_file_system::synced_size_for_test(const std::string& raw) const {
  const std::string path = normalize(raw);
  std::lock_guard lock(mutex_);
  const auto it = live_.find(path);
  if (it == live_.end() || it->second.is_dir) {
    return error(errc::not_found, fmt::format("'{}': no such file", raw));
  }
  return it->second.file->synced;
}

}  // namespace outrider::io
