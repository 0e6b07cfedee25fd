#include "storage/log.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/crc32c.h"
#include "base/log.h"

namespace outrider::storage {
namespace {

namespace lf = log_format;

const outrider::log::logger storage_log{"storage"};

constexpr std::uint64_t min_segment_bytes = 64;
constexpr std::uint64_t max_segment_bytes = std::uint64_t{1} << (lf::offset_bits - 1);
constexpr std::uint32_t max_record_limit = std::uint32_t{1} << 31;
// Read-ahead of a random read (header and a typical payload in one pread) and of readers.
constexpr std::size_t random_read_bytes = 4096;
constexpr std::size_t sequential_read_bytes = 256 * 1024;

constexpr position make_position(std::uint64_t segment, std::uint64_t offset) {
  return (segment << lf::offset_bits) | offset;
}
constexpr std::uint64_t segment_of(position p) {
  return p >> lf::offset_bits;
}
constexpr std::uint64_t offset_of(position p) {
  return p & lf::offset_mask;
}

void put_u32(std::byte* p, std::uint32_t v) {
  std::memcpy(p, &v, sizeof v);
}
void put_u64(std::byte* p, std::uint64_t v) {
  std::memcpy(p, &v, sizeof v);
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::array<std::byte, lf::segment_header_size> encode_segment_header(std::uint64_t number) {
  std::array<std::byte, lf::segment_header_size> h{};
  put_u32(h.data() + lf::segment_magic_offset, lf::segment_magic);
  h[lf::segment_version_offset] = std::byte{lf::format_version};
  put_u64(h.data() + lf::segment_number_offset, number);
  const auto crc = crc32c(std::span<const std::byte>(h.data(), lf::segment_crc_offset));
  put_u32(h.data() + lf::segment_crc_offset, crc32c_mask(crc));
  return h;
}

// Empty if `h` is a valid header of segment `number`, else what is wrong.
std::string check_segment_header(std::span<const std::byte> h, std::uint64_t number) {
  if (h.size() < lf::segment_header_size) return "the segment header is incomplete";
  const auto crc = crc32c(h.first(lf::segment_crc_offset));
  if (crc32c_unmask(get_u32(h.data() + lf::segment_crc_offset)) != crc) {
    return "the segment header fails its checksum";
  }
  if (get_u32(h.data() + lf::segment_magic_offset) != lf::segment_magic) {
    return "the segment header has a wrong magic number";
  }
  if (std::to_integer<std::uint8_t>(h[lf::segment_version_offset]) != lf::format_version) {
    return fmt::format("unsupported segment format version {}",
                       std::to_integer<int>(h[lf::segment_version_offset]));
  }
  if (get_u64(h.data() + lf::segment_number_offset) != number) {
    return "the segment header names another segment number";
  }
  return {};
}

enum class parse_outcome { ok, incomplete, bad_header, bad_checksum };

struct parsed_record {
  parse_outcome outcome;
  std::uint32_t length = 0;  // payload length from the header (when the header was read)
  std::uint8_t type = 0;
};

// Parses the record at the start of `bytes` (which holds everything up to the end of the
// valid region). incomplete: the header or payload runs past the end of `bytes`.
parsed_record parse_record(std::span<const std::byte> bytes) {
  if (bytes.size() < lf::record_header_size) return {parse_outcome::incomplete};
  const std::byte* h = bytes.data();
  parsed_record r{parse_outcome::ok, get_u32(h + lf::record_length_offset),
                  std::to_integer<std::uint8_t>(h[lf::record_type_offset])};
  if (std::to_integer<std::uint8_t>(h[lf::record_version_offset]) != lf::format_version) {
    r.outcome = parse_outcome::bad_header;
    return r;
  }
  if (bytes.size() - lf::record_header_size < r.length) {
    r.outcome = parse_outcome::incomplete;
    return r;
  }
  const auto covered =
      bytes.subspan(lf::record_crc_covered_offset,
                    lf::record_header_size - lf::record_crc_covered_offset + std::size_t{r.length});
  if (crc32c_unmask(get_u32(h + lf::record_crc_offset)) != crc32c(covered)) {
    r.outcome = parse_outcome::bad_checksum;
  }
  return r;
}

std::string parent_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const auto slash = dir.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return dir.substr(0, slash);
}

// The segment number of a file name "<20 digits>.log", or nullopt.
std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != lf::segment_name_digits + lf::segment_suffix.size() ||
      !name.ends_with(lf::segment_suffix)) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < lf::segment_name_digits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (n > lf::max_segment_number) return std::nullopt;
  return n;
}

error corruption(std::string message) {
  return error(errc::data_corruption, std::move(message));
}

}  // namespace

struct log::segment {
  std::uint64_t number = 0;
  std::string path;
  std::uint64_t size = 0;                     // including buffered bytes (mutex_)
  std::uint64_t file_bytes = 0;               // handed to the file (mutex_)
  std::uint64_t uncached_bytes = 0;           // dropped from the page cache (write_mutex_)
  std::uint64_t zeros_end = 0;                // file written with zeros up to here (write_mutex_)
  bool prepared = false;                      // written ahead (prepare_next_segment) (mutex_)
  std::unique_ptr<io::writable_file> writer;  // active segment only (write_mutex_)
  std::shared_ptr<io::readable_file> reader;  // opened on first read (mutex_)
};

// A window of one segment's file bytes, so sequential reads cost one pread per window.
struct log::read_cache {
  explicit read_cache(std::size_t readahead) : readahead_bytes(readahead) {}

  // Bytes [offset, offset + length) of the file, reading ahead up to `limit`.
  // REQUIRES offset + length <= limit.
  result<std::span<const std::byte>> fetch(std::uint64_t number,
                                           const std::shared_ptr<io::readable_file>& f,
                                           std::uint64_t offset, std::size_t length,
                                           std::uint64_t limit) {
    if (number != segment_number || offset < base || offset + length > base + bytes.size()) {
      const std::size_t want = static_cast<std::size_t>(
          std::min<std::uint64_t>(std::max(length, readahead_bytes), limit - offset));
      file = f;
      segment_number = number;
      base = offset;
      bytes.resize(want);
      auto n = file->read_at(offset, bytes);
      if (!n) {
        bytes.clear();
        return n.error();
      }
      bytes.resize(*n);
      if (*n < length) {
        return corruption(fmt::format("segment {} is shorter than expected ({} bytes at {})",
                                      number, *n, offset));
      }
    }
    return std::span<const std::byte>(bytes).subspan(offset - base, length);
  }

  std::size_t readahead_bytes;
  std::uint64_t segment_number = 0;
  std::shared_ptr<io::readable_file> file;
  std::uint64_t base = 0;
  std::vector<std::byte> bytes;
};

log::log(io::file_system& fs, std::string dir, log_options opts)
    : fs_(fs), dir_(std::move(dir)), opts_(opts) {}

log::~log() {
  // A clean shutdown calls sync(); this only hands buffered bytes to the OS.
  std::lock_guard w(write_mutex_);
  if (!segments_.empty() && segments_.back()->writer) {
    (void)flush_pending();
    (void)segments_.back()->writer->close();
  }
}

result<std::unique_ptr<log>> log::open(io::file_system& fs, std::string dir, log_options opts) {
  if (dir.empty()) return error(errc::invalid_argument, "log directory is empty");
  if (opts.segment_bytes < min_segment_bytes || opts.segment_bytes > max_segment_bytes) {
    return error(errc::invalid_argument,
                 fmt::format("segment_bytes {} is outside [{}, {}]", opts.segment_bytes,
                             min_segment_bytes, max_segment_bytes));
  }
  if (opts.max_record_bytes == 0 || opts.max_record_bytes > max_record_limit) {
    return error(errc::invalid_argument, fmt::format("max_record_bytes {} is outside [1, {}]",
                                                     opts.max_record_bytes, max_record_limit));
  }
  if (opts.write_buffer_bytes == 0) {
    return error(errc::invalid_argument, "write_buffer_bytes must be positive");
  }
  std::unique_ptr<log> lg(new log(fs, std::move(dir), opts));
  std::lock_guard w(lg->write_mutex_);
  OUTRIDER_TRY(lg->recover());
  return lg;
}

std::string log::segment_path(std::uint64_t number) const {
  return fmt::format("{}/{:0{}}{}", dir_, number, lf::segment_name_digits, lf::segment_suffix);
}

std::shared_ptr<log::segment> log::find_segment_locked(std::uint64_t number) const {
  if (segments_.empty() || number < segments_.front()->number ||
      number > segments_.back()->number) {
    return nullptr;
  }
  return segments_[number - segments_.front()->number];
}

void log::set_broken(const error& e) {
  if (!broken_) {
    broken_ = error(errc::io_error,
                    fmt::format("log '{}' stopped: {}; reopen it to recover", dir_, e.message));
    storage_log.error("{}", broken_->message);
  }
}

// Scans the records of one segment file. valid_end: the end of the last good record
// before any damage; damage: what is wrong after it; more_after_damage: a valid record
// exists after the damage (so the damage is not a torn tail).
namespace {
struct scan_result {
  std::uint64_t valid_end = 0;
  std::string damage;
  bool more_after_damage = false;
  bool zero_tail = false;  // only zero bytes after valid_end (preallocated space): no damage
};

result<scan_result> scan_segment(io::readable_file& file, std::uint64_t size) {
  scan_result out;
  std::uint64_t off = lf::segment_header_size;
  std::vector<std::byte> window;
  std::uint64_t window_base = 0;
  // Reads [from, size) in windows; records may be up to max_record_limit long, so a
  // window grows to hold the record it must check.
  auto view = [&](std::uint64_t from, std::uint64_t need) -> result<std::span<const std::byte>> {
    const std::uint64_t avail = size - from;
    if (from < window_base || from + std::min(need, avail) > window_base + window.size()) {
      const std::uint64_t want =
          std::min(avail, std::max<std::uint64_t>(need, sequential_read_bytes));
      window.resize(static_cast<std::size_t>(want));
      window_base = from;
      auto n = file.read_at(from, window);
      if (!n) return n.error();
      window.resize(*n);
    }
    return std::span<const std::byte>(window).subspan(static_cast<std::size_t>(from - window_base));
  };
  while (off < size) {
    auto bytes = view(off, lf::record_header_size);
    if (!bytes) return bytes.error();
    auto parsed = parse_record(*bytes);
    if (parsed.outcome == parse_outcome::incomplete && bytes->size() >= lf::record_header_size &&
        off + lf::record_header_size + parsed.length <= size) {
      bytes = view(off, lf::record_header_size + std::uint64_t{parsed.length});
      if (!bytes) return bytes.error();
      parsed = parse_record(*bytes);
    }
    if (parsed.outcome == parse_outcome::ok) {
      off += lf::record_header_size + parsed.length;
      continue;
    }
    out.valid_end = off;
    {
      // Zeros to the end are the rest of a segment written ahead
      // (log_options::prepare_segments), not damage.
      std::vector<std::byte> rest(static_cast<std::size_t>(size - off));
      auto n = file.read_at(off, rest);
      if (!n) return n.error();
      if (*n == rest.size() &&
          std::all_of(rest.begin(), rest.end(), [](std::byte b) { return b == std::byte{0}; })) {
        out.zero_tail = true;
        return out;
      }
    }
    std::uint64_t search_from = off + 1;
    switch (parsed.outcome) {
      case parse_outcome::incomplete:
        // Usually a torn write. But a bit flip in the length field of a record in the middle
        // looks the same, so it is the tail only if no valid record follows.
        out.damage = fmt::format("an incomplete record at offset {}", off);
        break;
      case parse_outcome::bad_header:
        out.damage = fmt::format("a record header with a bad version at offset {}", off);
        break;
      case parse_outcome::bad_checksum:
        out.damage = fmt::format("a record failing its checksum at offset {}", off);
        search_from = off + lf::record_header_size + parsed.length;
        break;
      case parse_outcome::ok: break;
    }
    // Is there any valid record after the damage? Read the rest once and try every offset.
    if (search_from < size) {
      std::vector<std::byte> rest(static_cast<std::size_t>(size - search_from));
      auto n = file.read_at(search_from, rest);
      if (!n) return n.error();
      rest.resize(*n);
      for (std::size_t i = 0; i + lf::record_header_size <= rest.size(); ++i) {
        if (parse_record(std::span<const std::byte>(rest).subspan(i)).outcome ==
            parse_outcome::ok) {
          out.more_after_damage = true;
          out.damage += fmt::format(", followed by a valid record at offset {}", search_from + i);
          break;
        }
      }
    }
    return out;
  }
  out.valid_end = off;
  return out;
}
}  // namespace

status log::recover() {
  // Directories created here are durable only once each one's parent is synced.
  std::vector<std::string> created;
  for (std::string d = dir_; d != "/" && d != ".";) {
    auto there = fs_.exists(d);
    if (!there) return there.error();
    if (*there) break;
    created.push_back(d);
    d = parent_dir(d);
  }
  OUTRIDER_TRY(fs_.create_dirs(dir_));
  for (const auto& d : created) OUTRIDER_TRY(fs_.sync_dir(parent_dir(d)));
  auto names = fs_.list_dir(dir_);
  if (!names) return names.error();
  std::vector<std::uint64_t> numbers;
  bool removed_temp = false;
  for (const auto& name : *names) {
    if (name.ends_with(std::string(lf::segment_suffix) + std::string(lf::temp_suffix))) {
      // A segment whose creation did not finish; it never held a record.
      storage_log.info("log '{}': removing unfinished segment file {}", dir_, name);
      OUTRIDER_TRY(fs_.remove_file(dir_ + "/" + name));
      removed_temp = true;
    } else if (auto n = parse_segment_name(name)) {
      numbers.push_back(*n);
    }
  }
  if (removed_temp) OUTRIDER_TRY(fs_.sync_dir(dir_));
  std::sort(numbers.begin(), numbers.end());
  const std::uint64_t next_unused = numbers.empty() ? lf::first_segment_number : numbers.back() + 1;

  // Damage found at segment index i, offset `cut` (0: the whole segment is bad).
  std::string damage;
  std::size_t damaged_index = numbers.size();
  std::uint64_t cut = 0;
  for (std::size_t i = 1; i < numbers.size() && damage.empty(); ++i) {
    if (numbers[i] != numbers[i - 1] + 1) {
      damage = fmt::format("segment {} is missing", numbers[i - 1] + 1);
      damaged_index = i;
    }
  }

  std::uint64_t last_valid_end = 0;
  bool torn_tail = false;
  bool zero_tail = false;
  std::string torn_what;
  const std::size_t scan_limit = damaged_index;
  for (std::size_t i = 0; i < scan_limit; ++i) {
    const bool is_last = i + 1 == numbers.size();
    const std::string path = segment_path(numbers[i]);
    auto file = fs_.open_for_read(path);
    if (!file) return file.error();
    auto size = (*file)->size();
    if (!size) return size.error();
    std::array<std::byte, lf::segment_header_size> header{};
    auto got = (*file)->read_at(0, header);
    if (!got) return got.error();
    std::string bad =
        check_segment_header(std::span<const std::byte>(header.data(), *got), numbers[i]);
    if (!bad.empty()) {
      damage = fmt::format("segment {}: {}", numbers[i], bad);
      damaged_index = i;
      cut = 0;
      break;
    }
    if (is_last || opts_.verify_all_segments) {
      auto scan = scan_segment(**file, *size);
      if (!scan) return scan.error();
      if (scan->zero_tail && is_last) {
        zero_tail = true;
        last_valid_end = scan->valid_end;
      } else if (scan->zero_tail) {
        // Rolls cut the zeros off a finished segment before the next one exists.
        damage = fmt::format("segment {}: zero bytes after offset {}", numbers[i], scan->valid_end);
        damaged_index = i;
        cut = scan->valid_end;
        break;
      } else if (!scan->damage.empty()) {
        if (is_last && !scan->more_after_damage) {
          torn_tail = true;
          torn_what = scan->damage;
          last_valid_end = scan->valid_end;
        } else {
          damage = fmt::format("segment {}: {}", numbers[i], scan->damage);
          damaged_index = i;
          cut = scan->valid_end;
          break;
        }
      } else if (is_last) {
        last_valid_end = scan->valid_end;
      }
    }
    auto seg = std::make_shared<segment>();
    seg->number = numbers[i];
    seg->path = path;
    seg->size = seg->file_bytes = *size;
    seg->reader = std::move(*file);
    segments_.push_back(std::move(seg));
  }

  if (!damage.empty()) {
    if (!opts_.repair) {
      return corruption(fmt::format(
          "log '{}': {}; open with repair to truncate the log there (loses what follows)", dir_,
          damage));
    }
    storage_log.error(
        "log '{}': REPAIR: {}; truncating the log there and deleting {} later "
        "segment(s)",
        dir_, damage, numbers.size() - damaged_index - (cut > 0 ? 1 : 0));
    for (std::size_t i = numbers.size(); i-- > damaged_index + (cut > 0 ? 1 : 0);) {
      OUTRIDER_TRY(fs_.remove_file(segment_path(numbers[i])));
    }
    OUTRIDER_TRY(fs_.sync_dir(dir_));
    if (cut > 0) {
      // The damaged segment keeps its good prefix and becomes the last one.
      const std::string path = segment_path(numbers[damaged_index]);
      auto seg = std::make_shared<segment>();
      seg->number = numbers[damaged_index];
      seg->path = path;
      auto file = fs_.open_for_read(path);
      if (!file) return file.error();
      seg->reader = std::move(*file);
      segments_.push_back(std::move(seg));
      torn_tail = true;
      last_valid_end = cut;
      torn_what = "repaired damage";
    } else {
      torn_tail = false;
      if (!segments_.empty()) {
        // The previous segment becomes the last one; it was complete when sealed.
        last_valid_end = segments_.back()->size;
      }
    }
  }

  if (segments_.empty()) return create_segment(next_unused);

  segment& last = *segments_.back();
  auto writer = fs_.open_for_append(last.path);
  if (!writer) return writer.error();
  if (torn_tail) {
    storage_log.warn("log '{}': truncating segment {} at offset {} ({} bytes dropped): {}", dir_,
                     last.number, last_valid_end, (*writer)->size() - last_valid_end, torn_what);
    OUTRIDER_TRY((*writer)->truncate(last_valid_end));
    OUTRIDER_TRY((*writer)->sync());
  } else if (zero_tail && (*writer)->size() > last_valid_end) {
    // Zeros of a segment written ahead: appends start at the record end again.
    storage_log.debug("log '{}': segment {} ends with {} bytes of zeros written ahead", dir_,
                      last.number, (*writer)->size() - last_valid_end);
    OUTRIDER_TRY((*writer)->truncate(last_valid_end));
    OUTRIDER_TRY((*writer)->sync());
  }
  last.size = last.file_bytes = (*writer)->size();
  last.writer = std::move(*writer);
  end_.store(make_position(last.number, last.size));
  durable_end_.store(end());
  return {};
}

status log::create_segment(std::uint64_t number) {
  if (number > lf::max_segment_number) {
    return error(errc::resource_exhausted,
                 fmt::format("log '{}' has used every segment number", dir_));
  }
  // Written under a temporary name, synced, then renamed: a file with a segment's
  // name always has a complete header.
  const std::string path = segment_path(number);
  std::optional<prepared_segment> ready;
  {
    std::lock_guard lock(mutex_);
    if (prepared_ && prepared_->number == number) {
      ready = std::move(prepared_);
      prepared_.reset();
    }
  }
  std::unique_ptr<io::writable_file> writer;
  if (ready) {
    // Written ahead (header, zeros, synced): only the rename is left.
    status st = fs_.rename(ready->temp_path, path);
    if (st) st = fs_.sync_dir(dir_);
    if (st) {
      writer = std::move(ready->writer);
    } else {
      storage_log.warn("log '{}': using prepared segment {}: {}", dir_, number, st.error().message);
      (void)ready->writer->close();
      (void)fs_.remove_file(ready->temp_path);
    }
  }
  if (!writer) {
    const std::string temp = path + std::string(lf::temp_suffix);
    auto opened = fs_.open_for_append(temp);
    if (!opened) return opened.error();
    const auto header = encode_segment_header(number);
    status st = (*opened)->truncate(0);
    if (st) st = (*opened)->append(header);
    if (st) st = (*opened)->sync();
    if (st) st = fs_.rename(temp, path);
    if (st) st = fs_.sync_dir(dir_);
    if (!st) {
      (void)fs_.remove_file(temp);
      return st;
    }
    writer = std::move(*opened);
  }
  auto seg = std::make_shared<segment>();
  seg->number = number;
  seg->path = path;
  seg->size = seg->file_bytes = lf::segment_header_size;
  seg->writer = std::move(writer);
  if (ready && seg->writer) {
    seg->prepared = true;
    seg->zeros_end = opts_.segment_bytes;
  }
  std::lock_guard lock(mutex_);
  if (!segments_.empty() && segments_.back()->writer) {
    if (auto closed = segments_.back()->writer->close(); !closed) {
      storage_log.warn("log '{}': closing segment {}: {}", dir_, segments_.back()->number,
                       closed.error().message);
    }
    segments_.back()->writer.reset();
  }
  segments_.push_back(std::move(seg));
  end_.store(make_position(number, lf::segment_header_size), std::memory_order_release);
  durable_end_.store(end(), std::memory_order_release);
  return {};
}

result<position> log::flush_pending() {
  std::shared_ptr<segment> seg;
  position covered;
  {
    std::lock_guard lock(mutex_);
    if (broken_) return *broken_;
    covered = end();
    if (pending_.empty()) return covered;
    inflight_.swap(pending_);
    seg = segments_.back();
  }
  const status st = seg->writer->append(inflight_);
  std::lock_guard lock(mutex_);
  if (!st) {
    // Put the bytes back in front of anything appended meanwhile; a later flush retries.
    inflight_.insert(inflight_.end(), pending_.begin(), pending_.end());
    pending_.swap(inflight_);
    inflight_.clear();
    if (seg->writer->size() != seg->file_bytes) {
      // Part of the write reached the file and could not be taken back.
      if (!seg->writer->truncate(seg->file_bytes) || seg->writer->size() != seg->file_bytes) {
        set_broken(st.error());
      }
    }
    return st.error();
  }
  seg->file_bytes += inflight_.size();
  inflight_.clear();
  return covered;
}

status log::roll() {
  std::lock_guard w(write_mutex_);
  auto flushed = flush_pending();
  if (!flushed) return flushed.error();
  std::shared_ptr<segment> old;
  {
    std::lock_guard lock(mutex_);
    old = segments_.back();
  }
  // The finished segment is made durable before the next one exists, so that only the
  // last segment can have a torn tail; the zeros preallocated past its end go first.
  const bool cut_zeros = old->zeros_end > offset_of(*flushed);
  if (cut_zeros) {
    if (auto st = old->writer->truncate(offset_of(*flushed)); !st) return st;
    old->zeros_end = 0;
  }
  if (durable_end() < *flushed || cut_zeros) {
    if (auto st = old->writer->sync(); !st) {
      std::lock_guard lock(mutex_);
      set_broken(st.error());
      return *broken_;
    }
    durable_end_.store(*flushed, std::memory_order_release);
  }
  if (opts_.cached_tail_bytes > 0) {
    old->writer->drop_cached(old->uncached_bytes, offset_of(*flushed) - old->uncached_bytes);
    old->uncached_bytes = offset_of(*flushed);
  }
  return create_segment(old->number + 1);
}

bool log::wants_prepared_segment() const {
  return opts_.prepare_segments && !preparing_.load(std::memory_order_relaxed) &&
         prepared_number_.load(std::memory_order_relaxed) != segment_of(end()) + 1;
}

status log::prepare_next_segment() {
  if (!opts_.prepare_segments || preparing_.exchange(true)) return {};
  struct done_preparing {
    std::atomic<bool>& flag;
    ~done_preparing() { flag.store(false); }
  } done{preparing_};
  const std::uint64_t number = segment_of(end()) + 1;
  if (prepared_number_.load() == number || number > lf::max_segment_number) return {};
  const std::string temp =
      fmt::format("{}/{:0{}}.prepared{}{}", dir_, number, lf::segment_name_digits,
                  lf::segment_suffix, lf::temp_suffix);
  auto writer = fs_.open_for_append(temp);
  status st = writer ? status{} : status(writer.error());
  const auto header = encode_segment_header(number);
  if (st) st = (*writer)->truncate(0);
  if (st) st = (*writer)->append(header);
  if (st) st = (*writer)->preallocate(opts_.segment_bytes);
  if (st) st = (*writer)->sync();
  if (!st) {
    if (writer) (void)(*writer)->close();
    (void)fs_.remove_file(temp);
    prepared_number_.store(number);  // not again for this segment
    return st;
  }
  std::optional<prepared_segment> stale;
  {
    std::lock_guard lock(mutex_);
    if (!broken_ && segment_of(end()) + 1 == number) {
      stale = std::move(prepared_);
      prepared_ = prepared_segment{number, temp, std::move(*writer)};
      prepared_number_.store(number);
      if (stale && stale->temp_path == temp) stale.reset();
    }
  }
  if (*writer) {
    // The log rolled past it meanwhile (or stopped): not needed.
    (void)(*writer)->close();
    (void)fs_.remove_file(temp);
  }
  if (stale) {
    (void)stale->writer->close();
    (void)fs_.remove_file(stale->temp_path);
  }
  return {};
}

result<position> log::append(std::uint8_t type, std::span<const std::byte> payload) {
  if (payload.size() > opts_.max_record_bytes) {
    return error(errc::invalid_argument,
                 fmt::format("record of {} bytes exceeds max_record_bytes {}", payload.size(),
                             opts_.max_record_bytes));
  }
  const std::uint64_t record_size = lf::record_header_size + payload.size();
  for (;;) {
    bool needs_roll = false;
    {
      std::lock_guard lock(mutex_);
      if (broken_) return *broken_;
      segment& seg = *segments_.back();
      // A segment written ahead is ready while the active one was not: roll into it
      // early (after a start, or when the preparation fell behind).
      const bool early = !seg.prepared && prepared_ && prepared_->number == seg.number + 1;
      needs_roll = seg.size > lf::segment_header_size &&
                   (seg.size + record_size > opts_.segment_bytes || early);
      // While a sync holds the file, the buffer grows (to write_buffer_max_bytes) rather
      // than this thread waiting for the sync's fdatasync to write it.
      const std::uint64_t buffer_limit =
          syncing_.load(std::memory_order_relaxed)
              ? std::max<std::uint64_t>(opts_.write_buffer_bytes, opts_.write_buffer_max_bytes)
              : opts_.write_buffer_bytes;
      const bool needs_flush = !pending_.empty() && pending_.size() + record_size > buffer_limit;
      if (!needs_roll && !needs_flush) {
        const std::size_t start = pending_.size();
        std::array<std::byte, lf::record_header_size> header{};
        put_u32(header.data() + lf::record_length_offset,
                static_cast<std::uint32_t>(payload.size()));
        header[lf::record_version_offset] = std::byte{lf::format_version};
        header[lf::record_type_offset] = std::byte{type};
        pending_.insert(pending_.end(), header.begin(), header.end());
        pending_.insert(pending_.end(), payload.begin(), payload.end());
        std::byte* p = pending_.data() + start;
        const auto crc = crc32c(std::span<const std::byte>(
            p + lf::record_crc_covered_offset,
            static_cast<std::size_t>(record_size) - lf::record_crc_covered_offset));
        put_u32(p + lf::record_crc_offset, crc32c_mask(crc));
        const position pos = make_position(seg.number, seg.size);
        seg.size += record_size;
        end_.store(pos + record_size, std::memory_order_release);
        return pos;
      }
    }
    if (needs_roll) {
      OUTRIDER_TRY(roll());
    } else {
      std::lock_guard w(write_mutex_);
      auto flushed = flush_pending();
      if (!flushed) return flushed.error();
    }
  }
}

result<position> log::sync() {
  std::lock_guard w(write_mutex_);
  syncing_.store(true, std::memory_order_relaxed);
  struct done_syncing {
    std::atomic<bool>& flag;
    ~done_syncing() { flag.store(false, std::memory_order_relaxed); }
  } done{syncing_};
  auto covered = flush_pending();
  if (!covered) return covered.error();
  if (*covered <= durable_end()) return durable_end();
  std::shared_ptr<segment> seg;
  {
    std::lock_guard lock(mutex_);
    seg = segments_.back();
  }
  if (auto st = seg->writer->sync(); !st) {
    std::lock_guard lock(mutex_);
    set_broken(st.error());
    return *broken_;
  }
  durable_end_.store(*covered, std::memory_order_release);
  if (opts_.cached_tail_bytes > 0) {
    // Dropped in steps of at least 4 MiB (one fadvise per step, not per sync).
    constexpr std::uint64_t min_drop = std::uint64_t{4} << 20;
    const std::uint64_t synced = offset_of(*covered);
    if (synced > seg->uncached_bytes + opts_.cached_tail_bytes + min_drop) {
      const std::uint64_t upto = synced - opts_.cached_tail_bytes;
      seg->writer->drop_cached(seg->uncached_bytes, upto - seg->uncached_bytes);
      seg->uncached_bytes = upto;
    }
  }
  return *covered;
}

position log::begin() const {
  std::lock_guard lock(mutex_);
  return make_position(segments_.front()->number, lf::segment_header_size);
}

result<record> log::read(position pos) const {
  read_cache cache(random_read_bytes);
  return read_at(pos, &cache);
}

result<record> log::read_at(position pos, read_cache* cache) const {
  const std::uint64_t number = segment_of(pos);
  const std::uint64_t offset = offset_of(pos);
  std::shared_ptr<io::readable_file> file;
  std::uint64_t limit;
  {
    std::lock_guard lock(mutex_);
    const auto seg = find_segment_locked(number);
    if (!seg) {
      if (number < segments_.front()->number) {
        return error(errc::not_found,
                     fmt::format("position {:#x}: segment {} was reclaimed", pos, number));
      }
      return error(errc::invalid_argument, fmt::format("position {:#x} is past the end", pos));
    }
    if (offset < lf::segment_header_size || offset >= seg->size) {
      return error(errc::invalid_argument,
                   fmt::format("position {:#x}: segment {} holds records in [{}, {})", pos, number,
                               lf::segment_header_size, seg->size));
    }
    if (offset >= seg->file_bytes) {
      // Still in memory (only the active segment has such bytes).
      std::uint64_t rel = offset - seg->file_bytes;
      std::span<const std::byte> src;
      if (rel < inflight_.size()) {
        src = std::span<const std::byte>(inflight_).subspan(static_cast<std::size_t>(rel));
      } else {
        src = std::span<const std::byte>(pending_).subspan(
            static_cast<std::size_t>(rel - inflight_.size()));
      }
      const auto parsed = parse_record(src);
      if (parsed.outcome != parse_outcome::ok) {
        return corruption(fmt::format("position {:#x} is not the start of a record", pos));
      }
      const auto payload = src.subspan(lf::record_header_size, parsed.length);
      return record{pos, parsed.type, std::vector<std::byte>(payload.begin(), payload.end()),
                    pos + lf::record_header_size + parsed.length};
    }
    if (!seg->reader) {
      auto opened = fs_.open_for_read(seg->path);
      if (!opened) return opened.error();
      seg->reader = std::move(*opened);
    }
    file = seg->reader;
    limit = seg->file_bytes;
  }
  if (offset + lf::record_header_size > limit) {
    return corruption(fmt::format("position {:#x} is not the start of a record", pos));
  }
  auto header = cache->fetch(number, file, offset, lf::record_header_size, limit);
  if (!header) return header.error();
  const std::uint32_t length = get_u32(header->data() + lf::record_length_offset);
  if (offset + lf::record_header_size + length > limit) {
    return corruption(
        fmt::format("position {:#x}: record length {} runs past the segment end", pos, length));
  }
  auto bytes = cache->fetch(number, file, offset, lf::record_header_size + length, limit);
  if (!bytes) return bytes.error();
  const auto parsed = parse_record(*bytes);
  if (parsed.outcome != parse_outcome::ok) {
    return corruption(
        fmt::format("segment {}: the record at offset {} fails its {} check", number, offset,
                    parsed.outcome == parse_outcome::bad_header ? "version" : "checksum"));
  }
  const auto payload = bytes->subspan(lf::record_header_size, length);
  return record{pos, parsed.type, std::vector<std::byte>(payload.begin(), payload.end()),
                pos + lf::record_header_size + length};
}

result<log::reader> log::read_from(position from) const {
  if (from > end()) {
    return error(errc::invalid_argument,
                 fmt::format("position {:#x} is past the end {:#x}", from, end()));
  }
  {
    std::lock_guard lock(mutex_);
    if (segment_of(from) < segments_.front()->number) {
      return error(errc::not_found, fmt::format("position {:#x} was reclaimed", from));
    }
  }
  return reader(this, from);
}

log::reader::reader(const log* owner, position from)
    : log_(owner), pos_(from), cache_(std::make_unique<read_cache>(sequential_read_bytes)) {}
log::reader::reader(reader&&) noexcept = default;
log::reader& log::reader::operator=(reader&&) noexcept = default;
log::reader::~reader() = default;

result<std::optional<record>> log::reader::next() {
  for (;;) {
    if (pos_ >= log_->end()) return std::optional<record>();
    {
      std::lock_guard lock(log_->mutex_);
      const auto seg = log_->find_segment_locked(segment_of(pos_));
      if (seg && offset_of(pos_) >= seg->size && seg != log_->segments_.back()) {
        pos_ = make_position(seg->number + 1, lf::segment_header_size);
        continue;
      }
    }
    auto rec = log_->read_at(pos_, cache_.get());
    if (!rec) return rec.error();
    pos_ = rec->next;
    return std::optional<record>(std::move(*rec));
  }
}

status log::remove_segments_before(position pos) {
  std::vector<std::shared_ptr<segment>> victims;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
      const auto& seg = segments_[i];
      const bool before = seg->number < segment_of(pos) ||
                          (seg->number == segment_of(pos) && offset_of(pos) >= seg->size);
      if (!before) break;
      victims.push_back(seg);
    }
  }
  if (victims.empty()) return {};
  std::size_t removed = 0;
  status st;
  for (const auto& seg : victims) {
    st = fs_.remove_file(seg->path);
    if (!st) break;
    ++removed;
  }
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < removed; ++i) segments_.pop_front();
  }
  if (removed > 0) {
    storage_log.debug("log '{}': removed {} segment(s) before {:#x}", dir_, removed, pos);
    OUTRIDER_TRY(fs_.sync_dir(dir_));
  }
  return st;
}

std::uint64_t log::segment_count() const {
  std::lock_guard lock(mutex_);
  return segments_.size();
}

std::uint64_t log::bytes_on_disk() const {
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  for (const auto& seg : segments_) total += seg->size;
  return total;
}

}  // namespace outrider::storage
