#include "http/detail/direct_io.h"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "io/runtime.h"

namespace outrider::http::detail {
namespace {

using tcp = boost::asio::ip::tcp;

// io::runtime's contexts (one thread each, no lock per descriptor) let reads skip the
// recv that would find nothing; a context that other threads may run does not.
TEST(direct_io, runtime_contexts_count_as_one_thread) {
  io::runtime rt{2};
  for (std::size_t i = 0; i < rt.size(); ++i) {
    tcp::socket s(rt.context(i));
    s.open(tcp::v4());
    EXPECT_TRUE(runs_on_one_thread(s)) << "context " << i;
    EXPECT_NE(read_speculation_flag(s), nullptr);
  }
  boost::asio::io_context one{1};
  tcp::socket one_socket(one);
  one_socket.open(tcp::v4());
  EXPECT_TRUE(runs_on_one_thread(one_socket));
  boost::asio::io_context shared;  // the default hint: any number of threads
  tcp::socket shared_socket(shared);
  shared_socket.open(tcp::v4());
  EXPECT_FALSE(runs_on_one_thread(shared_socket));
  shared_socket.close();
  EXPECT_EQ(read_speculation_flag(shared_socket), nullptr);  // closed
}

}  // namespace
}  // namespace outrider::http::detail
