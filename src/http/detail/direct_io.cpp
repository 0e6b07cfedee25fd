#include "http/detail/direct_io.h"

#include <boost/asio/detail/concurrency_hint.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/scheduler.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <boost/version.hpp>

namespace outrider::http::detail {
namespace {

// The reactor state of a socket (Asio 1.81's epoll reactor): basic_socket::impl_ is
// protected (reached through a derived class's member pointer) and
// descriptor_state::try_speculative_ private (reached through an explicit template
// instantiation, where access checks do not apply). Asio's layout is not an API: the
// version is pinned here, and a new Boost must be checked before this is allowed again.
static_assert(BOOST_VERSION == 108100, "check Asio's epoll reactor before using this");

using reactor = boost::asio::detail::epoll_reactor;
using speculative_flags = bool (reactor::descriptor_state::*)[reactor::max_ops];

speculative_flags try_speculative_member();
template <speculative_flags Member>
struct grant_speculative {
  friend speculative_flags try_speculative_member() { return Member; }
};
template struct grant_speculative<&reactor::descriptor_state::try_speculative_>;

struct socket_access : boost::asio::ip::tcp::socket {
  using boost::asio::ip::tcp::socket::impl_;
};

}  // namespace

bool runs_on_one_thread(boost::asio::ip::tcp::socket& socket) {
  auto& context = boost::asio::query(socket.get_executor(), boost::asio::execution::context);
  const int hint =
      boost::asio::use_service<boost::asio::detail::scheduler>(context).concurrency_hint();
  // 1, or no lock on the reactor's descriptors (io::runtime's contexts): either way only
  // the one thread that runs the context touches its sockets.
  return hint == 1 || !BOOST_ASIO_CONCURRENCY_HINT_IS_LOCKING(REACTOR_IO, hint);
}

bool* read_speculation_flag(boost::asio::ip::tcp::socket& socket) {
  constexpr auto impl = &socket_access::impl_;
  reactor::per_descriptor_data state = (socket.*impl).get_implementation().reactor_data_;
  if (state == nullptr) return nullptr;  // closed
  return &(state->*try_speculative_member())[reactor::read_op];
}

}  // namespace outrider::http::detail
