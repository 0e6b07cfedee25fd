#include "broker/checkpoint_file.h"

#include <cstring>
#include <fmt/core.h>
#include <span>

#include "base/crc32c.h"

namespace outrider::broker {
namespace {

namespace format = checkpoint_format;

template <class T>
T load(const std::byte* at) {
  T value;
  std::memcpy(&value, at, sizeof(T));
  return value;
}

template <class T>
void store(std::byte* at, T value) {
  std::memcpy(at, &value, sizeof(T));
}

}  // namespace

// ---------------------------------------------------------------- writer

result<std::unique_ptr<checkpoint_writer>> checkpoint_writer::create(io::file_system& fs,
                                                                     const std::string& path) {
  if (auto exists = fs.exists(path); exists && *exists) OUTRIDER_TRY(fs.remove_file(path));
  auto file = fs.open_for_append(path);
  if (!file) return std::move(file).error();
  return std::unique_ptr<checkpoint_writer>(new checkpoint_writer(std::move(*file)));
}

checkpoint_writer::checkpoint_writer(std::unique_ptr<io::writable_file> file)
    : file_(std::move(file)) {
  block_.reserve(format::block_header_bytes + format::block_payload_bytes);
  block_.resize(format::block_header_bytes);
}

void checkpoint_writer::put_string(std::string_view s) {
  put_u32(static_cast<std::uint32_t>(s.size()));
  put_raw(s.data(), s.size());
}

void checkpoint_writer::put_raw(const void* data, std::size_t size) {
  const auto* bytes = static_cast<const std::byte*>(data);
  while (size > 0) {
    const std::size_t room =
        format::block_header_bytes + format::block_payload_bytes - block_.size();
    const std::size_t n = std::min(room, size);
    block_.insert(block_.end(), bytes, bytes + n);
    bytes += n;
    size -= n;
    if (block_.size() == format::block_header_bytes + format::block_payload_bytes) flush_block();
  }
}

void checkpoint_writer::flush_block() {
  const std::size_t payload = block_.size() - format::block_header_bytes;
  if (payload == 0) return;
  if (!failed_) {
    store<std::uint32_t>(block_.data(), format::block_magic);
    store<std::uint32_t>(block_.data() + 4, static_cast<std::uint32_t>(payload));
    store<std::uint32_t>(block_.data() + 8,
                         crc32c(std::span(block_).subspan(format::block_header_bytes)));
    if (auto s = file_->append(block_); !s) {
      failed_ = std::move(s).error();
    } else {
      written_ += block_.size();
    }
  }
  block_.resize(format::block_header_bytes);
}

void checkpoint_writer::put_header(std::uint64_t high_water, const id128& log_id) {
  put_u64(format::file_magic);
  put_u32(format::version);
  put_u64(high_water);
  put_id(log_id);
}

status checkpoint_writer::finish() {
  flush_block();
  if (!failed_) {
    if (auto s = file_->sync(); !s) failed_ = std::move(s).error();
  }
  if (auto s = file_->close(); !s && !failed_) failed_ = std::move(s).error();
  if (failed_) return *failed_;
  return ok_status();
}

// ---------------------------------------------------------------- reader

result<std::unique_ptr<checkpoint_reader>> checkpoint_reader::open(io::file_system& fs,
                                                                   const std::string& path) {
  auto file = fs.open_for_read(path);
  if (!file) return std::move(file).error();
  auto size = (*file)->size();
  if (!size) return std::move(size).error();
  return std::unique_ptr<checkpoint_reader>(new checkpoint_reader(std::move(*file), *size, path));
}

checkpoint_reader::checkpoint_reader(std::unique_ptr<io::readable_file> file, std::uint64_t size,
                                     std::string path)
    : file_(std::move(file)), size_(size), path_(std::move(path)) {}

void checkpoint_reader::corrupt(std::string_view what) {
  if (!failed_) {
    failed_ = outrider::error(errc::data_corruption,
                              fmt::format("broker checkpoint {}: {}", path_, what));
  }
}

status checkpoint_reader::error() const {
  if (failed_) return *failed_;
  return ok_status();
}

result<std::uint64_t> checkpoint_reader::get_header() {
  std::uint64_t magic = 0;
  std::uint32_t version = 0;
  std::uint64_t high_water = 0;
  if (get_u64(magic) && magic != format::file_magic) corrupt("not a broker checkpoint");
  if (get_u32(version) && version != format::version) {
    corrupt(fmt::format("unknown version {}", version));
  }
  get_u64(high_water);
  get_id(log_id_);
  OUTRIDER_TRY(error());
  return high_water;
}

bool checkpoint_reader::get_string(std::string& s, std::size_t max) {
  std::uint32_t size = 0;
  if (!get_u32(size)) return false;
  if (size > max) {
    corrupt(fmt::format("a {}-byte string (at most {})", size, max));
    return false;
  }
  s.resize(size);
  return get_raw(s.data(), size);
}

bool checkpoint_reader::get_raw(void* data, std::size_t size) {
  auto* out = static_cast<std::byte*>(data);
  while (size > 0) {
    if (failed_) return false;
    if (used_ == block_.size() && !next_block()) return false;
    const std::size_t n = std::min(size, block_.size() - used_);
    std::memcpy(out, block_.data() + used_, n);
    used_ += n;
    out += n;
    size -= n;
  }
  return !failed_;
}

bool checkpoint_reader::next_block() {
  auto read_exact = [this](std::uint64_t at, std::span<std::byte> out) {
    std::size_t done = 0;
    while (done < out.size()) {
      auto n = file_->read_at(at + done, out.subspan(done));
      if (!n) {
        if (!failed_) failed_ = std::move(n).error();
        return false;
      }
      if (*n == 0) {
        corrupt(fmt::format("truncated at offset {}", at + done));
        return false;
      }
      done += *n;
    }
    return true;
  };
  if (offset_ >= size_) {
    corrupt("ends before its end marker");
    return false;
  }
  std::byte header[format::block_header_bytes];
  if (!read_exact(offset_, header)) return false;
  const auto length = load<std::uint32_t>(header + 4);
  if (load<std::uint32_t>(header) != format::block_magic || length == 0 ||
      length > format::block_payload_bytes) {
    corrupt(fmt::format("bad block header at offset {}", offset_));
    return false;
  }
  block_.resize(length);
  if (!read_exact(offset_ + format::block_header_bytes, block_)) return false;
  if (crc32c(block_) != load<std::uint32_t>(header + 8)) {
    corrupt(fmt::format("checksum mismatch in the block at offset {}", offset_));
    return false;
  }
  offset_ += format::block_header_bytes + length;
  used_ = 0;
  return true;
}

}  // namespace outrider::broker
