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

#include "io/forwarding_file_system.h"
#include "io/mem_file_system.h"

namespace outrider::broker {

// How long a test waits for something that must happen.
inline constexpr std::chrono::milliseconds generous_wait{20000};

// Wraps mem_file_system: syncs of files under "<data dir>/log/" wait while the
// gate is closed; released, they go on (or fail with io_error without
// syncing). Everything else passes through.
class gated_file_system final : public io::forwarding_file_system {
 public:
  explicit gated_file_system(io::mem_file_system& inner) : forwarding_file_system(inner) {}

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
    auto f = inner().open_for_append(path);
    if (!f) return std::move(f).error();
    const bool gated = path.find("/log/") != std::string::npos;
    return std::unique_ptr<io::writable_file>(new gated_file(*this, std::move(*f), gated));
  }

 private:
  class gated_file final : public io::forwarding_writable_file {
   public:
    gated_file(gated_file_system& owner, std::unique_ptr<io::writable_file> inner, bool gated)
        : forwarding_writable_file(std::move(inner)), owner_(owner), gated_(gated) {}
    status sync() override {
      if (gated_ && owner_.pass_gate()) {
        return error(errc::io_error, "fdatasync: input/output error (injected)");
      }
      return inner().sync();
    }

   private:
    gated_file_system& owner_;
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

  std::mutex m_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool fail_ = false;
  int held_ = 0;
  int arrivals_ = 0;
  int passes_ = 0;
};

}  // namespace outrider::broker
