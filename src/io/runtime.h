// runtime: the threads that run Asio I/O.
//
// Model: one io_context per thread ("io_context per core"), N threads. State
// that belongs to a connection lives on the context that accepted/created it
// and is only touched from that thread, so per-connection code needs no locks
// or strands. Work that crosses threads is posted to the owning context.
// Modules document, for each piece of state, which context owns it.
//
// The contexts run with BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO: Asio's reactor
// takes no lock per socket operation, so a socket (or any descriptor) is opened,
// registered and used only on its own context's thread: never accept into
// another context (hand the descriptor over and assign it there, as
// http::server and broker::server do). Closing a socket elsewhere is allowed
// only with no operation pending on it (e.g. an http::client's idle pooled
// connections when the client goes: Asio's deregistration and an event being
// handled on the context's thread then touch different fields). Posting to a
// context, and timers, stay safe from any thread (the scheduler and the timer
// queues keep their locks).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace outrider::io {

class runtime {
 public:
  // REQUIRES: threads >= 1.
  explicit runtime(std::size_t threads);
  ~runtime();  // stops and joins
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  // Starts the threads. Work can be posted before start().
  void start();
  // Stops every context (pending handlers are abandoned) and joins the threads.
  // Idempotent. Must not be called from a runtime thread.
  void stop();

  std::size_t size() const noexcept { return contexts_.size(); }
  boost::asio::io_context& context(std::size_t index);
  // Round-robin choice for new connections. Thread-safe.
  boost::asio::io_context& next_context();

  // Runs `fn` on context `index`'s thread.
  void post(std::size_t index, std::function<void()> fn);

 private:
  struct slot;
  std::vector<std::unique_ptr<slot>> contexts_;
  std::vector<std::thread> threads_;
  std::atomic<std::size_t> next_{0};
  bool started_ = false;
};

// Blocks the calling thread until SIGINT or SIGTERM arrives; returns the signal
// number. The signals are blocked in the process while waiting (sigwait), so
// call it from the main thread after the runtime's threads exist; they inherit
// the mask only if block_shutdown_signals() ran first.
void block_shutdown_signals();
int wait_for_shutdown_signal();

}  // namespace outrider::io
