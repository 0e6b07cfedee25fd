#include "sidecar/statsd_listener.h"

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <future>

namespace outrider::sidecar {
namespace asio = boost::asio;
using udp = asio::ip::udp;

struct statsd_listener::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& c, metrics::statsd_sink& s) : context(c), sink(s), socket(c) {}

  void receive() {
    socket.async_receive_from(
        asio::buffer(buffer), sender,
        [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
          if (ec == asio::error::operation_aborted || !self->socket.is_open()) return;
          if (!ec) self->sink.ingest(std::string_view(self->buffer.data(), n));
          self->receive();
        });
  }

  asio::io_context& context;
  metrics::statsd_sink& sink;
  udp::socket socket;
  udp::endpoint sender;
  std::array<char, 65536> buffer{};
  std::uint16_t bound_port = 0;
};

statsd_listener::statsd_listener(asio::io_context& context, metrics::statsd_sink& sink)
    : impl_(std::make_shared<impl>(context, sink)) {}

statsd_listener::~statsd_listener() {
  stop();
}

status statsd_listener::start(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return error(errc::invalid_argument, "statsd: bad listen address '" + host + "'");
  udp::endpoint endpoint(address, port);
  impl_->socket.open(endpoint.protocol(), ec);
  if (!ec) impl_->socket.bind(endpoint, ec);
  if (ec) {
    impl_->socket.close();
    return error(errc::unavailable, "statsd: cannot bind udp " + host + ":" + std::to_string(port) +
                                        ": " + ec.message());
  }
  impl_->bound_port = impl_->socket.local_endpoint().port();
  asio::post(impl_->context, [self = impl_] { self->receive(); });
  return ok_status();
}

void statsd_listener::stop() {
  if (impl_->bound_port == 0) return;
  impl_->bound_port = 0;
  // The socket belongs to its io_context's thread: close it there.
  auto closed = std::make_shared<std::promise<void>>();
  auto done = closed->get_future();
  asio::post(impl_->context, [self = impl_, closed] {
    boost::system::error_code ignored;
    self->socket.close(ignored);
    closed->set_value();
  });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    boost::system::error_code ignored;
    impl_->socket.close(ignored);  // the context is not running: nobody else touches it
  }
}

std::uint16_t statsd_listener::port() const {
  return impl_->bound_port;  // 0 once stopped
}

}  // namespace outrider::sidecar
