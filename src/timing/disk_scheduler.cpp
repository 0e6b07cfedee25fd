#include "timing/disk_scheduler.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <set>
#include <span>
#include <string_view>
#include <utility>
#include <zlib.h>

#include "timing/delay_index_format.h"

namespace outrider::timing {
namespace {

namespace format = delay_index_format;

static_assert(std::endian::native == std::endian::little, "the delay index assumes little-endian");

constexpr std::int64_t time_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t time_max = std::numeric_limits<std::int64_t>::max();

std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  return __builtin_sub_overflow(a, b, &r) ? (b > 0 ? time_min : time_max) : r;
}
std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? (b > 0 ? time_max : time_min) : r;
}

template <class T>
void put(std::vector<std::byte>& out, T value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

template <class T>
T get(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

std::uint32_t crc_of(std::uint32_t crc, const std::byte* data, std::size_t size) {
  // zlib's length is uInt: feed it in chunks that fit.
  constexpr std::size_t chunk = 1U << 30;
  uLong value = crc;
  while (size > 0) {
    const std::size_t n = std::min(size, chunk);
    value = crc32(value, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(n));
    data += n;
    size -= n;
  }
  return static_cast<std::uint32_t>(value);
}

// Appends `entries` as blocks of at most max_entries_per_block.
void encode_blocks(std::span<const due_entry> entries, std::vector<std::byte>& out) {
  while (!entries.empty()) {
    const std::size_t count = std::min<std::size_t>(entries.size(), format::max_entries_per_block);
    const std::size_t header_at = out.size();
    put<std::uint32_t>(out, format::block_magic);
    put<std::uint8_t>(out, format::version);
    put<std::uint8_t>(out, 0);
    put<std::uint16_t>(out, 0);
    put<std::uint32_t>(out, static_cast<std::uint32_t>(count));
    put<std::uint32_t>(out, 0);  // crc, patched below
    for (std::size_t i = 0; i < count; ++i) {
      put<std::int64_t>(out, entries[i].due_ns);
      put<std::uint64_t>(out, entries[i].ref);
    }
    std::uint32_t crc = crc_of(0, out.data() + header_at, format::block_crc_offset);
    crc =
        crc_of(crc, out.data() + header_at + format::block_header_size, count * format::entry_size);
    std::memcpy(out.data() + header_at + format::block_crc_offset, &crc, sizeof(crc));
    entries = entries.subspan(count);
  }
}

result<std::vector<std::byte>> read_range(io::file_system& fs, const std::string& path,
                                          std::uint64_t length) {
  auto file = fs.open_for_read(path);
  if (!file) return std::move(file).error();
  std::vector<std::byte> data(length);
  std::uint64_t done = 0;
  while (done < length) {
    auto n = (*file)->read_at(done, std::span(data).subspan(done));
    if (!n) return std::move(n).error();
    if (*n == 0) {
      return error(
          errc::data_corruption,
          fmt::format("delay index: {} is shorter than its recorded {} bytes", path, length));
    }
    done += *n;
  }
  return data;
}

// Reads the first `length` bytes of a bucket file and appends its entries to
// `out`, leaving out those in its first `recovered_length` bytes that are due at
// or before `fired_through` (checkpointed entries that fired before a restart).
status parse_file(const io::readable_file& file, const std::string& path, std::uint64_t length,
                  std::uint64_t recovered_length, std::int64_t fired_through,
                  std::vector<due_entry>& out) {
  std::vector<std::byte> data(length);
  std::uint64_t done = 0;
  while (done < length) {
    auto n = file.read_at(done, std::span(data).subspan(done));
    if (!n) return std::move(n).error();
    if (*n == 0) {
      return error(
          errc::data_corruption,
          fmt::format("delay index: {} is shorter than its recorded {} bytes", path, length));
    }
    done += *n;
  }
  const std::byte* bytes = data.data();
  std::uint64_t at = 0;
  while (at < length) {
    auto corrupt = [&](std::string_view what) {
      return error(errc::data_corruption,
                   fmt::format("delay index: {} at offset {}: {}", path, at, what));
    };
    if (length - at < format::block_header_size) return corrupt("truncated block header");
    const std::byte* header = bytes + at;
    if (get<std::uint32_t>(header) != format::block_magic) return corrupt("bad block magic");
    if (get<std::uint8_t>(header + 4) != format::version) return corrupt("unknown version");
    const std::uint32_t count = get<std::uint32_t>(header + 8);
    const std::uint64_t payload = std::uint64_t{count} * format::entry_size;
    if (length - at - format::block_header_size < payload) return corrupt("short block");
    std::uint32_t crc = crc_of(0, header, format::block_crc_offset);
    crc = crc_of(crc, header + format::block_header_size, payload);
    if (crc != get<std::uint32_t>(header + format::block_crc_offset)) {
      return corrupt("checksum mismatch");
    }
    const bool recovered = at < recovered_length;
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::byte* e = header + format::block_header_size + i * format::entry_size;
      const due_entry entry{get<std::int64_t>(e), get<std::uint64_t>(e + 8)};
      if (recovered && entry.due_ns <= fired_through) continue;
      out.push_back(entry);
    }
    at += format::block_header_size + payload;
  }
  return ok_status();
}

std::optional<std::int64_t> parse_bucket_name(std::string_view name) {
  if (!name.starts_with(format::bucket_prefix) || !name.ends_with(format::bucket_suffix)) {
    return std::nullopt;
  }
  name.remove_prefix(format::bucket_prefix.size());
  name.remove_suffix(format::bucket_suffix.size());
  std::int64_t start = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), start);
  if (ec != std::errc{} || end != name.data() + name.size()) return std::nullopt;
  return start;
}

status ignore_not_found(status s) {
  if (!s && s.error().code == errc::not_found) return ok_status();
  return s;
}

struct checkpoint_bucket {
  std::int64_t start = 0;
  std::uint64_t length = 0;
  std::uint64_t entries = 0;
};

struct checkpoint_data {
  std::uint64_t high_water = 0;
  std::int64_t fired_through = time_min;
  std::int64_t bucket_width = 0;
  std::vector<checkpoint_bucket> buckets;
};

result<checkpoint_data> parse_checkpoint(const std::vector<std::byte>& data,
                                         const std::string& path) {
  auto corrupt = [&](std::string_view what) {
    return error(errc::data_corruption, fmt::format("delay index: {}: {}", path, what));
  };
  if (data.size() < format::checkpoint_header_size + format::checkpoint_crc_size) {
    return corrupt("too short");
  }
  const std::size_t body = data.size() - format::checkpoint_crc_size;
  if (crc_of(0, data.data(), body) != get<std::uint32_t>(data.data() + body)) {
    return corrupt("checksum mismatch");
  }
  if (get<std::uint32_t>(data.data()) != format::checkpoint_magic) return corrupt("bad magic");
  if (get<std::uint8_t>(data.data() + 4) != format::version) return corrupt("unknown version");
  checkpoint_data cp;
  cp.high_water = get<std::uint64_t>(data.data() + 8);
  cp.fired_through = get<std::int64_t>(data.data() + 16);
  cp.bucket_width = get<std::int64_t>(data.data() + 24);
  const std::uint64_t count = get<std::uint64_t>(data.data() + 32);
  if (cp.bucket_width <= 0) return corrupt("bad bucket width");
  if ((body - format::checkpoint_header_size) / format::checkpoint_bucket_size != count ||
      (body - format::checkpoint_header_size) % format::checkpoint_bucket_size != 0) {
    return corrupt("bucket count does not match the size");
  }
  cp.buckets.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::byte* at =
        data.data() + format::checkpoint_header_size + i * format::checkpoint_bucket_size;
    cp.buckets.push_back(
        {get<std::int64_t>(at), get<std::uint64_t>(at + 8), get<std::uint64_t>(at + 16)});
  }
  return cp;
}

}  // namespace

disk_scheduler::disk_scheduler(io::file_system& fs, std::string dir, disk_scheduler_options options,
                               std::int64_t fired_through)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(options),
      wheel_({.tick_ns = options.tick_ns, .start_ns = std::max<std::int64_t>(fired_through, 0)}),
      cascaded_through_(time_min),
      horizon_(time_min),
      last_now_(fired_through),
      recovered_fired_through_(fired_through) {}

result<disk_scheduler::opened> disk_scheduler::open(io::file_system& fs, std::string dir,
                                                    disk_scheduler_options options) {
  if (options.bucket_width_ns <= 0 || options.load_ahead_ns < 0 || options.tick_ns <= 0 ||
      options.max_buffered_entries == 0 || options.coarse_width_ns < 0 ||
      (options.coarse_width_ns > 0 && (options.coarse_width_ns % options.bucket_width_ns != 0 ||
                                       options.coarse_lead_ns < options.load_ahead_ns))) {
    return error(errc::invalid_argument, "delay index: bad disk_scheduler_options");
  }
  const bool coarse = options.coarse_width_ns > 0;
  OUTRIDER_TRY(fs.create_dirs(dir));
  // The directory's own entry (and its parents', create_dirs may have made them) must be
  // durable before anything in it can be.
  OUTRIDER_TRY(fs.sync_dir(dir.starts_with('/') ? "/" : "."));
  for (auto slash = dir.find('/', 1); slash != std::string::npos;
       slash = dir.find('/', slash + 1)) {
    OUTRIDER_TRY(fs.sync_dir(dir.substr(0, slash)));
  }
  const std::string checkpoint_path = dir + "/" + std::string(format::checkpoint_name);
  checkpoint_data cp;
  auto has_checkpoint = fs.exists(checkpoint_path);
  if (!has_checkpoint) return std::move(has_checkpoint).error();
  if (*has_checkpoint) {
    auto size = fs.file_size(checkpoint_path);
    if (!size) return std::move(size).error();
    auto data = read_range(fs, checkpoint_path, *size);
    if (!data) return std::move(data).error();
    auto parsed = parse_checkpoint(*data, checkpoint_path);
    if (!parsed) return std::move(parsed).error();
    cp = std::move(*parsed);
    if (coarse && cp.bucket_width != options.bucket_width_ns) {
      return error(errc::invalid_argument,
                   "delay index: the coarse tier needs the checkpointed bucket width");
    }
    options.bucket_width_ns = cp.bucket_width;
  }

  // Files the checkpoint does not list were created after it: their entries come back by replay.
  std::set<std::int64_t> listed;
  for (const checkpoint_bucket& b : cp.buckets) listed.insert(b.start);
  auto names = fs.list_dir(dir);
  if (!names) return std::move(names).error();
  for (const std::string& name : *names) {
    const auto start = parse_bucket_name(name);
    if ((start && !listed.contains(*start)) || name == format::checkpoint_temp_name ||
        name.starts_with(format::coarse_prefix)) {
      OUTRIDER_TRY(ignore_not_found(fs.remove_file(dir + "/" + name)));
    }
  }

  std::unique_ptr<disk_scheduler> s(new disk_scheduler(fs, dir, options, cp.fired_through));
  for (const checkpoint_bucket& b : cp.buckets) {
    const std::string path = s->bucket_path(b.start);
    auto size = fs.file_size(path);
    if (!size && size.error().code != errc::not_found) return std::move(size).error();
    const std::uint64_t actual = size ? *size : 0;
    if (actual < b.length) {
      return error(errc::data_corruption,
                   fmt::format("delay index: {} has {} bytes, the checkpoint recorded {}", path,
                               actual, b.length));
    }
    if (actual > b.length) {  // a torn or post-checkpoint tail: cut it off
      auto file = fs.open_for_append(path);
      if (!file) return std::move(file).error();
      OUTRIDER_TRY((*file)->truncate(b.length));
      OUTRIDER_TRY((*file)->sync());
      OUTRIDER_TRY((*file)->close());
    }
    bucket& held = s->buckets_[b.start];
    held.file_length = held.synced_length = held.recovered_length = b.length;
    held.file_entries = b.entries;
    s->unloaded_entries_ += b.entries;
  }
  OUTRIDER_TRY(fs.sync_dir(dir));
  // Buckets reaching back to fired_through are loaded now, so every later pending entry due at
  // or before it is in the wheel and checkpoints never move fired_through backwards wrongly.
  if (cp.fired_through != time_min) OUTRIDER_TRY(s->load_through(cp.fired_through));
  return opened{std::move(s), cp.high_water};
}

std::int64_t disk_scheduler::bucket_start(std::int64_t due_ns) const {
  const std::int64_t width = options_.bucket_width_ns;
  std::int64_t q = due_ns / width;
  if (due_ns % width != 0 && due_ns < 0) --q;
  return q * width;
}

std::int64_t disk_scheduler::coarse_start(std::int64_t due_ns) const {
  const std::int64_t width = options_.coarse_width_ns;
  std::int64_t q = due_ns / width;
  if (due_ns % width != 0 && due_ns < 0) --q;
  return q * width;
}

std::string disk_scheduler::coarse_path(std::int64_t start) const {
  return fmt::format("{}/{}{}{}", dir_, format::coarse_prefix, start, format::bucket_suffix);
}

std::string disk_scheduler::path_of(std::string_view name) const {
  return fmt::format("{}/{}", dir_, name);
}

std::string disk_scheduler::bucket_path(std::int64_t start) const {
  return fmt::format("{}/{}{}{}", dir_, format::bucket_prefix, start, format::bucket_suffix);
}

status disk_scheduler::fail(error e) {
  broken_ = e;
  return e;
}

status disk_scheduler::insert(std::int64_t due_ns, std::uint64_t ref) {
  if (broken_) return *broken_;
  if (options_.coarse_width_ns > 0 && due_ns >= cascaded_through_) {
    if (pending_entries_ >= options_.max_buffered_entries) OUTRIDER_TRY(flush());
    coarse_[coarse_start(due_ns)].pending.push_back({due_ns, ref});
    ++pending_entries_;
    ++coarse_entries_;
    return ok_status();
  }
  return insert_fine(due_ns, ref);
}

status disk_scheduler::insert_fine(std::int64_t due_ns, std::uint64_t ref) {
  if (pending_entries_ >= options_.max_buffered_entries) OUTRIDER_TRY(flush());
  const std::int64_t start = bucket_start(due_ns);
  auto [it, created] = buckets_.try_emplace(start);
  bucket& b = it->second;
  if (created && start <= horizon_) b.loaded = true;  // nothing on disk to load
  b.pending.push_back({due_ns, ref});
  ++pending_entries_;
  if (b.loaded) {
    wheel_.add(due_ns, ref);
  } else {
    ++unloaded_entries_;
  }
  return ok_status();
}

status disk_scheduler::flush_bucket(const std::string& path, bucket& b) {
  if (b.pending.empty()) return ok_status();
  std::vector<std::byte> bytes;
  bytes.reserve(b.pending.size() * format::entry_size + format::block_header_size);
  encode_blocks(b.pending, bytes);
  auto file = fs_.open_for_append(path);
  if (!file) return std::move(file).error();
  const std::uint64_t before = (*file)->size();
  if (auto appended = (*file)->append(bytes); !appended) {
    // Roll back a partial append so the next block does not follow garbage.
    if (auto cut = (*file)->truncate(before); !cut) return fail(std::move(cut).error());
    return appended;
  }
  if (auto closed = (*file)->close(); !closed) return closed;
  b.file_length = before + bytes.size();
  b.file_entries += b.pending.size();
  pending_entries_ -= b.pending.size();
  b.pending = std::vector<due_entry>{};
  return ok_status();
}

status disk_scheduler::flush() {
  if (broken_) return *broken_;
  for (auto& [start, b] : buckets_) OUTRIDER_TRY(flush_bucket(bucket_path(start), b));
  for (auto& [start, b] : coarse_) OUTRIDER_TRY(flush_bucket(coarse_path(start), b));
  return ok_status();
}

status disk_scheduler::load_bucket(std::int64_t start, bucket& b) {
  auto read = read_entries(bucket_path(start), b, true);
  if (!read) return std::move(read).error();
  for (const due_entry& e : *read) wheel_.add(e.due_ns, e.ref);
  unloaded_entries_ -= b.file_entries + b.pending.size();
  b.loaded = true;
  return ok_status();
}

result<std::vector<due_entry>> disk_scheduler::read_entries(const std::string& path,
                                                            const bucket& b,
                                                            bool filter_recovered) const {
  std::vector<due_entry> entries;
  entries.reserve(b.file_entries + b.pending.size());
  if (b.file_length > 0) {
    auto file = fs_.open_for_read(path);
    if (!file) return std::move(file).error();
    OUTRIDER_TRY(parse_file(**file, path, b.file_length, filter_recovered ? b.recovered_length : 0,
                            recovered_fired_through_, entries));
  }
  entries.insert(entries.end(), b.pending.begin(), b.pending.end());
  return entries;
}

status disk_scheduler::for_each_entry(const std::function<status(const due_entry&)>& fn) const {
  if (broken_) return *broken_;
  status failed;
  wheel_.for_each([&](const due_entry& e) {
    if (failed) failed = fn(e);
  });
  OUTRIDER_TRY(failed);
  for (const auto& [start, b] : buckets_) {
    if (b.loaded) continue;  // its entries are in the wheel
    auto entries = read_entries(bucket_path(start), b, true);
    if (!entries) return std::move(entries).error();
    for (const due_entry& e : *entries) OUTRIDER_TRY(fn(e));
  }
  for (const auto& [start, b] : coarse_) {
    auto entries = read_entries(coarse_path(start), b, false);
    if (!entries) return std::move(entries).error();
    for (const due_entry& e : *entries) OUTRIDER_TRY(fn(e));
  }
  return ok_status();
}

result<disk_scheduler::entries_snapshot> disk_scheduler::snapshot(
    std::vector<due_entry> buffer) const {
  if (broken_) return *broken_;
  entries_snapshot snap;
  snap.in_memory = std::move(buffer);
  snap.in_memory.clear();
  snap.fired_through = recovered_fired_through_;
  // Room for a full write buffer too: the buffer passed back then never has to grow (a new
  // allocation is what faults pages in).
  snap.in_memory.reserve(wheel_.size() +
                         std::max<std::size_t>(pending_entries_, options_.max_buffered_entries));
  wheel_.for_each([&](const due_entry& e) { snap.in_memory.push_back(e); });
  auto add = [&](const std::string& path, const bucket& b, bool filter_recovered) -> status {
    snap.in_memory.insert(snap.in_memory.end(), b.pending.begin(), b.pending.end());
    if (b.file_length == 0) return ok_status();
    auto file = fs_.open_for_read(path);
    if (!file) return std::move(file).error();
    snap.files.push_back(
        {std::move(*file), path, b.file_length, filter_recovered ? b.recovered_length : 0});
    return ok_status();
  };
  for (const auto& [start, b] : buckets_) {
    if (!b.loaded) OUTRIDER_TRY(add(bucket_path(start), b, true));
  }
  for (const auto& [start, b] : coarse_) OUTRIDER_TRY(add(coarse_path(start), b, false));
  return snap;
}

status disk_scheduler::entries_snapshot::for_each(
    const std::function<status(const due_entry&)>& fn) {
  for (const due_entry& e : in_memory) OUTRIDER_TRY(fn(e));
  in_memory.clear();
  std::vector<due_entry> entries;
  for (file_part& f : files) {
    entries.clear();
    OUTRIDER_TRY(parse_file(*f.file, f.path, f.length, f.recovered_length, fired_through, entries));
    f.file.reset();
    for (const due_entry& e : entries) OUTRIDER_TRY(fn(e));
  }
  files.clear();
  return ok_status();
}

status disk_scheduler::cascade_through(std::int64_t target) {
  while (!coarse_.empty() && coarse_.begin()->first <= target) {
    auto it = coarse_.begin();
    const std::int64_t start = it->first;
    bucket& b = it->second;
    const std::string path = coarse_path(start);
    auto entries = read_entries(path, b, false);
    if (!entries) return std::move(entries).error();
    // From here on, entries of this range go to fine buckets.
    cascaded_through_ =
        std::max(cascaded_through_, saturating_add(start, options_.coarse_width_ns));
    const std::size_t pending = b.pending.size();
    const std::uint64_t count = b.file_entries + pending;
    coarse_.erase(it);
    pending_entries_ -= pending;
    coarse_entries_ -= count;
    for (const due_entry& e : *entries) {
      // A failure here leaves entries neither in the coarse file's bucket nor in a fine one.
      if (auto added = insert_fine(e.due_ns, e.ref); !added) return fail(std::move(added).error());
    }
    if (count > pending) {
      if (auto removed = ignore_not_found(fs_.remove_file(path)); !removed) {
        return fail(std::move(removed).error());
      }
    }
  }
  if (target != time_max) {
    cascaded_through_ =
        std::max(cascaded_through_, saturating_add(coarse_start(target), options_.coarse_width_ns));
  }
  return ok_status();
}

status disk_scheduler::load_through(std::int64_t horizon) {
  if (horizon <= horizon_) return ok_status();
  for (auto it = buckets_.upper_bound(horizon_); it != buckets_.end() && it->first <= horizon;
       ++it) {
    OUTRIDER_TRY(load_bucket(it->first, it->second));
    horizon_ = it->first;
  }
  horizon_ = horizon;
  return ok_status();
}

result<std::size_t> disk_scheduler::pop_due(std::int64_t now_ns, std::vector<due_entry>& out,
                                            std::size_t max) {
  if (broken_) return *broken_;
  last_now_ = std::max(last_now_, now_ns);
  wheel_.advance(now_ns);  // first, so an empty wheel jumps to now before buckets load into it
  if (options_.coarse_width_ns > 0) {
    OUTRIDER_TRY(cascade_through(saturating_add(last_now_, options_.coarse_lead_ns)));
  }
  OUTRIDER_TRY(load_through(saturating_add(last_now_, options_.load_ahead_ns)));
  return wheel_.pop_due(now_ns, out, max);
}

std::optional<std::int64_t> disk_scheduler::next_due() const {
  std::optional<std::int64_t> next = wheel_.next_due();
  if (auto it = buckets_.upper_bound(horizon_); it != buckets_.end()) {
    const std::int64_t load_at = saturating_sub(it->first, options_.load_ahead_ns);
    next = next ? std::min(*next, load_at) : load_at;
  }
  if (!coarse_.empty()) {
    const std::int64_t cascade_at = saturating_sub(coarse_.begin()->first, options_.coarse_lead_ns);
    next = next ? std::min(*next, cascade_at) : cascade_at;
  }
  return next;
}

std::uint64_t disk_scheduler::size() const {
  return wheel_.size() + unloaded_entries_ + coarse_entries_;
}

std::int64_t disk_scheduler::compute_fired_through() const {
  std::int64_t fired = last_now_;
  if (auto earliest = wheel_.earliest_due_exact()) {
    fired = std::min(fired, saturating_sub(*earliest, 1));
  }
  if (auto it = buckets_.upper_bound(horizon_); it != buckets_.end()) {
    fired = std::min(fired, saturating_sub(it->first, 1));
  }
  return fired;
}

status disk_scheduler::checkpoint(std::uint64_t high_water) {
  if (options_.coarse_width_ns > 0) {
    return error(errc::failed_precondition,
                 "delay index: checkpoints are not supported with the coarse tier");
  }
  OUTRIDER_TRY(flush());
  for (auto& [start, b] : buckets_) {
    if (b.synced_length == b.file_length) continue;
    auto file = fs_.open_for_append(bucket_path(start));
    if (!file) return std::move(file).error();
    // A failed fsync may have dropped dirty pages: the file can no longer be trusted.
    if (auto synced = (*file)->sync(); !synced) return fail(std::move(synced).error());
    OUTRIDER_TRY((*file)->close());
    b.synced_length = b.file_length;
  }
  OUTRIDER_TRY(fs_.sync_dir(dir_));  // new bucket files must exist before the checkpoint names them

  const std::int64_t fired_through = compute_fired_through();
  std::vector<std::int64_t> dead;
  for (const auto& [start, b] : buckets_) {
    // Every due time in a loaded bucket ending at or before fired_through has fired.
    if (b.loaded && fired_through >= start &&
        static_cast<std::uint64_t>(fired_through) - static_cast<std::uint64_t>(start) >=
            static_cast<std::uint64_t>(options_.bucket_width_ns - 1)) {
      dead.push_back(start);
    }
  }
  OUTRIDER_TRY(write_checkpoint(high_water, fired_through, dead));
  for (std::int64_t start : dead) {
    // The checkpoint no longer names the file; if removal fails, open() removes it.
    if (fs_.remove_file(bucket_path(start))) buckets_.erase(start);
  }
  return ok_status();
}

status disk_scheduler::write_checkpoint(std::uint64_t high_water, std::int64_t fired_through,
                                        const std::vector<std::int64_t>& dead) {
  std::vector<std::byte> out;
  put<std::uint32_t>(out, format::checkpoint_magic);
  put<std::uint8_t>(out, format::version);
  put<std::uint8_t>(out, 0);
  put<std::uint16_t>(out, 0);
  put<std::uint64_t>(out, high_water);
  put<std::int64_t>(out, fired_through);
  put<std::int64_t>(out, options_.bucket_width_ns);
  put<std::uint64_t>(out, buckets_.size() - dead.size());
  for (const auto& [start, b] : buckets_) {
    if (std::binary_search(dead.begin(), dead.end(), start)) continue;
    put<std::int64_t>(out, start);
    put<std::uint64_t>(out, b.file_length);
    put<std::uint64_t>(out, b.file_entries);
  }
  put<std::uint32_t>(out, crc_of(0, out.data(), out.size()));

  const std::string temp = path_of(format::checkpoint_temp_name);
  OUTRIDER_TRY(ignore_not_found(fs_.remove_file(temp)));
  auto file = fs_.open_for_append(temp);
  if (!file) return std::move(file).error();
  OUTRIDER_TRY((*file)->append(out));
  OUTRIDER_TRY((*file)->sync());
  OUTRIDER_TRY((*file)->close());
  OUTRIDER_TRY(fs_.rename(temp, path_of(format::checkpoint_name)));
  return fs_.sync_dir(dir_);
}

}  // namespace outrider::timing
