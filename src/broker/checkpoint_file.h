// checkpoint_file: the byte stream of a broker checkpoint, in checksummed blocks.
//
// A checkpoint (docs/formats/broker-checkpoint.md) is one file written once and
// renamed into place. Its content is a stream of little-endian fields cut into
// blocks of at most block_payload_bytes, each [u32 magic][u32 length][u32
// CRC-32C of the payload][payload], so a reader checks every byte it uses and a
// multi-hundred-megabyte checkpoint is streamed in both directions, never held
// in memory whole. Fields may straddle blocks.
//
// Errors are sticky: a writer's put_*() buffer and write full blocks, and the
// first failure is returned by finish(); a reader's get_*() return false after
// the first failure (truncated file, bad magic, checksum mismatch) and error()
// tells which. The engine's content on top is engine.cpp's business.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/id.h"
#include "base/result.h"
#include "io/file_system.h"

namespace outrider::broker {

namespace checkpoint_format {
inline constexpr std::uint32_t block_magic = 0x4b42434fU;  // "OCBK" little-endian
inline constexpr std::size_t block_header_bytes = 12;
inline constexpr std::size_t block_payload_bytes = 1U << 20;
// First field of the stream, then the version.
inline constexpr std::uint64_t file_magic = 0x31544b5043524f4fULL;  // "OORCPKT1"
// 1: index as (fingerprint, position) pairs; 2: no log identity in the header.
inline constexpr std::uint32_t version = 3;
// Last field of the stream: a reader that meets it knows the checkpoint is whole.
inline constexpr std::uint64_t end_magic = 0x444e454b5043524fULL;  // "ORCPKEND"
}  // namespace checkpoint_format

class checkpoint_writer {
 public:
  // Creates (truncating) `path`. Errors: the file system's.
  static result<std::unique_ptr<checkpoint_writer>> create(io::file_system& fs,
                                                           const std::string& path);

  void put_u8(std::uint8_t v) { put_raw(&v, sizeof v); }
  void put_u32(std::uint32_t v) { put_raw(&v, sizeof v); }
  void put_u64(std::uint64_t v) { put_raw(&v, sizeof v); }
  void put_i64(std::int64_t v) { put_raw(&v, sizeof v); }
  void put_id(const id128& id) {
    put_u64(id.high);
    put_u64(id.low);
  }
  void put_string(std::string_view s);
  void put_bytes(const void* data, std::size_t size) { put_raw(data, size); }

  // The stream's first fields: file magic, version, the journal high-water and
  // the identity of the log it describes (a checkpoint is only used with it).
  void put_header(std::uint64_t high_water, const id128& log_id = {});

  // Writes the last block, syncs and closes the file. Returns the first error.
  status finish();
  std::uint64_t bytes_written() const noexcept { return written_; }

 private:
  explicit checkpoint_writer(std::unique_ptr<io::writable_file> file);
  void put_raw(const void* data, std::size_t size);
  void flush_block();

  std::unique_ptr<io::writable_file> file_;
  std::vector<std::byte> block_;  // header placeholder + payload
  std::uint64_t written_ = 0;
  std::optional<error> failed_;
};

class checkpoint_reader {
 public:
  // Errors: the file system's (not_found when there is no checkpoint).
  static result<std::unique_ptr<checkpoint_reader>> open(io::file_system& fs,
                                                         const std::string& path);

  bool get_u8(std::uint8_t& v) { return get_raw(&v, sizeof v); }
  bool get_u32(std::uint32_t& v) { return get_raw(&v, sizeof v); }
  bool get_u64(std::uint64_t& v) { return get_raw(&v, sizeof v); }
  bool get_i64(std::int64_t& v) { return get_raw(&v, sizeof v); }
  bool get_id(id128& id) { return get_u64(id.high) && get_u64(id.low); }
  bool get_bytes(void* data, std::size_t size) { return get_raw(data, size); }
  // Strings longer than `max` are corruption.
  bool get_string(std::string& s, std::size_t max);
  // Reads the stream's first fields; returns the journal high-water. Errors:
  // data_corruption (not a checkpoint, unknown version, torn), the file system's.
  result<std::uint64_t> get_header();
  // The log identity get_header() read.
  const id128& log_id() const noexcept { return log_id_; }
  // True when every byte of the file has been consumed.
  bool at_end() const noexcept { return used_ == block_.size() && offset_ == size_; }
  // Makes later get_*() fail with data_corruption: `what` (for checks above this layer).
  void corrupt(std::string_view what);

  // The first failure (data_corruption or the file system's), or ok.
  status error() const;

 private:
  checkpoint_reader(std::unique_ptr<io::readable_file> file, std::uint64_t size, std::string path);
  bool get_raw(void* data, std::size_t size);
  bool next_block();

  std::unique_ptr<io::readable_file> file_;
  std::uint64_t size_;
  std::string path_;
  std::uint64_t offset_ = 0;  // of the next block in the file
  std::vector<std::byte> block_;
  std::size_t used_ = 0;
  std::optional<outrider::error> failed_;
  id128 log_id_;
};

// The same fields as checkpoint_writer, into memory: a part of the stream
// serialized on one thread (the engine's, quickly) and written on another.
class checkpoint_buffer {
 public:
  void put_u8(std::uint8_t v) { put_raw(&v, sizeof v); }
  void put_u32(std::uint32_t v) { put_raw(&v, sizeof v); }
  void put_u64(std::uint64_t v) { put_raw(&v, sizeof v); }
  void put_i64(std::int64_t v) { put_raw(&v, sizeof v); }
  void put_id(const id128& id) {
    put_u64(id.high);
    put_u64(id.low);
  }
  void put_string(std::string_view s) {
    put_u32(static_cast<std::uint32_t>(s.size()));
    put_raw(s.data(), s.size());
  }
  const std::vector<std::byte>& bytes() const noexcept { return bytes_; }

 private:
  void put_raw(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    bytes_.insert(bytes_.end(), p, p + size);
  }
  std::vector<std::byte> bytes_;
};

}  // namespace outrider::broker
