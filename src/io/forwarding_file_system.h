// forwarding_file_system / forwarding_writable_file: a file system (or a file being
// written) that passes every call to an inner one. A wrapper that changes a few calls
// (a test double that holds or fails syncs, fault injection) derives from these and
// overrides only those, so a call added to the interface later is forwarded rather
// than silently answered by a default.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/file_system.h"

namespace outrider::io {

class forwarding_writable_file : public writable_file {
 public:
  explicit forwarding_writable_file(std::unique_ptr<writable_file> inner)
      : inner_(std::move(inner)) {}

  status append(std::span<const std::byte> data) override { return inner_->append(data); }
  status sync() override { return inner_->sync(); }
  status truncate(std::uint64_t size) override { return inner_->truncate(size); }
  std::uint64_t size() const override { return inner_->size(); }
  status preallocate(std::uint64_t end) override { return inner_->preallocate(end); }
  status close() override { return inner_->close(); }
  void drop_cached(std::uint64_t offset, std::uint64_t length) override {
    inner_->drop_cached(offset, length);
  }

 protected:
  writable_file& inner() { return *inner_; }

 private:
  std::unique_ptr<writable_file> inner_;
};

class forwarding_file_system : public file_system {
 public:
  explicit forwarding_file_system(file_system& inner) : inner_(inner) {}

  result<std::unique_ptr<writable_file>> open_for_append(const std::string& path) override {
    return inner_.open_for_append(path);
  }
  result<std::unique_ptr<readable_file>> open_for_read(const std::string& path) override {
    return inner_.open_for_read(path);
  }
  status create_dirs(const std::string& path) override { return inner_.create_dirs(path); }
  result<std::vector<std::string>> list_dir(const std::string& dir) override {
    return inner_.list_dir(dir);
  }
  status remove_file(const std::string& path) override { return inner_.remove_file(path); }
  status rename(const std::string& from, const std::string& to) override {
    return inner_.rename(from, to);
  }
  result<bool> exists(const std::string& path) override { return inner_.exists(path); }
  result<std::uint64_t> file_size(const std::string& path) override {
    return inner_.file_size(path);
  }
  status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
  result<std::uint64_t> free_space(const std::string& path) override {
    return inner_.free_space(path);
  }

 protected:
  file_system& inner() { return inner_; }

 private:
  file_system& inner_;
};

}  // namespace outrider::io
