// gated_file_system: a test double over io::mem_file_system whose log syncs can
// be held, let through one by one, or failed, so tests see the host between an
// append and its fsync (test code only).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/mem_file_system.h"

namespace outrider::broker {

// How long a test waits for something that must happen.
inline constexpr std::chrono::milliseconds generous_wait{20000};

// Wraps mem_file_system: syncs of files under "<data dir>/log/" wait while the
// gate is closed; released, they go on (or fail with io_error without
// syncing). Everything else passes through.
class gated_file_system final : public io::file_system {
 public:
  explicit gated_file_system(io::mem_file_system& inner) : inner_(inner) {}

  void close_gate() {
    std::lock_guard lock(m_);
    closed_ = true;
  }
  // Lets held and later syncs through; `fail`: they fail instead of syncing.
  void open_gate(bool fail = false) {
    {
      std::lock_guard lock(m_);
      closed_ = false;
      fail_ = fail;
    }
    cv_.notify_all();
  }
  // While the gate is closed, lets the next `n` syncs through (they succeed).
  void let_through(int n) {
    {
      std::lock_guard lock(m_);
      passes_ += n;
    }
    cv_.notify_all();
  }
  // Whether a sync is held at the gate now (waits up to `timeout` for one).
  bool wait_for_held_sync(std::chrono::milliseconds timeout = generous_wait) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [this] { return held_ > 0; });
  }
  // Whether `n` syncs of the log have reached the gate so far, counting those
  // that went through (waits up to `timeout`).
  bool wait_for_arrivals(int n, std::chrono::milliseconds timeout = generous_wait) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, timeout, [this, n] { return arrivals_ >= n; });
  }
  int arrivals() {
    std::lock_guard lock(m_);
    return arrivals_;
  }

  result<std::unique_ptr<io::writable_file>> open_for_append(const std::string& path) override {
    auto f = inner_.open_for_append(path);
    if (!f) return std::move(f).error();
    const bool gated = path.find("/log/") != std::string::npos;
    return std::unique_ptr<io::writable_file>(new gated_file(*this, std::move(*f), gated));
  }
  result<std::unique_ptr<io::readable_file>> open_for_read(const std::string& path) override {
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

 private:
  class gated_file final : public io::writable_file {
   public:
    gated_file(gated_file_system& owner, std::unique_ptr<io::writable_file> inner, bool gated)
        : owner_(owner), inner_(std::move(inner)), gated_(gated) {}
    status append(std::span<const std::byte> data) override { return inner_->append(data); }
    status sync() override {
      if (gated_ && owner_.pass_gate()) {
        return error(errc::io_error, "fdatasync: input/output error (injected)");
      }
      return inner_->sync();
    }
    status truncate(std::uint64_t size) override { return inner_->truncate(size); }
    std::uint64_t size() const override { return inner_->size(); }
    status close() override { return inner_->close(); }

   private:
    gated_file_system& owner_;
    std::unique_ptr<io::writable_file> inner_;
    bool gated_;
  };

  // Waits while the gate is closed; returns whether the sync must fail.
  bool pass_gate() {
    std::unique_lock lock(m_);
    ++held_;
    ++arrivals_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !closed_ || passes_ > 0; });
    --held_;
    if (closed_) {
      --passes_;
      return false;
    }
    return fail_;
  }

  io::mem_file_system& inner_;
  std::mutex m_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool fail_ = false;
  int held_ = 0;
  int arrivals_ = 0;
  int passes_ = 0;
};

}  // namespace outrider::broker
