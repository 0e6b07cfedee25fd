#include "io/runtime.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <optional>

#include "base/assert.h"
#include "base/log.h"

namespace outrider::io {
namespace {
const log::logger logger{"io"};
}

struct runtime::slot {
  // One thread runs each context, and every socket is used only on its context's
  // thread (runtime.h): the reactor takes no per-descriptor lock (about 230
  // instructions per proxied request). Posts from other threads still go through the
  // scheduler's lock, and timers through the reactor's.
  boost::asio::io_context context{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard{
      context.get_executor()};
};

runtime::runtime(std::size_t threads) {
  OUTRIDER_ASSERT(threads >= 1, "runtime needs at least one thread");
  contexts_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) contexts_.push_back(std::make_unique<slot>());
}

runtime::~runtime() {
  stop();
}

void runtime::start() {
  OUTRIDER_ASSERT(!started_, "runtime started twice");
  started_ = true;
  for (auto& s : contexts_) {
    threads_.emplace_back([ctx = &s->context] {
      for (;;) {
        try {
          ctx->run();
          return;
        } catch (const std::exception& e) {
          // Handlers must not throw; log and keep the thread serving.
          logger.error("unhandled exception in I/O thread: {}", e.what());
        }
      }
    });
  }
}

void runtime::stop() {
  for (auto& s : contexts_) {
    s->guard.reset();
    s->context.stop();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

boost::asio::io_context& runtime::context(std::size_t index) {
  OUTRIDER_ASSERT(index < contexts_.size(), "context index out of range");
  return contexts_[index]->context;
}

boost::asio::io_context& runtime::next_context() {
  auto i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
  return contexts_[i]->context;
}

void runtime::post(std::size_t index, std::function<void()> fn) {
  boost::asio::post(context(index), std::move(fn));
}

void block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_shutdown_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int signal_number = 0;
  while (sigwait(&set, &signal_number) != 0) {
  }
  return signal_number;
}

}  // namespace outrider::io
