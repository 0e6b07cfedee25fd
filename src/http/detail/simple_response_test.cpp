#include "http/detail/simple_response.h"

#include <gtest/gtest.h>
#include <string>
#include <string_view>
#include <vector>

#include "http/detail/field_scan_test_support.h"

namespace outrider::http::detail {
namespace {

using scan_testing::fields_of;

const simple_response_limits limits{64 * 1024, 64 * 1024 * 1024, 0};

// The scan's answer when it takes `wire`; and then Beast's must be the same.
bool taken_as_beast_does(std::string_view wire, const simple_response_limits& l = limits) {
  response mine;
  bool keep = false;
  if (!parse_simple_response(wire, l, mine, keep)) {
    EXPECT_EQ(mine.headers.size(), 0U) << "a declined scan leaves the message as it was";
    EXPECT_TRUE(mine.body.empty());
    return false;
  }
  const auto beast = scan_testing::beast_parse<false>(wire, l.header_limit, l.body_limit);
  // An answer is taken whole: Beast must use every byte too.
  EXPECT_TRUE(beast.ok && beast.used == wire.size())
      << "taken, but Beast does not parse it: " << testing::PrintToString(wire);
  EXPECT_EQ(mine.status, beast.message.status) << testing::PrintToString(wire);
  EXPECT_EQ(fields_of(mine.headers), fields_of(beast.message.headers))
      << testing::PrintToString(wire);
  EXPECT_EQ(mine.body, beast.message.body) << testing::PrintToString(wire);
  EXPECT_EQ(keep, beast.keep_alive) << testing::PrintToString(wire);
  return true;
}

constexpr std::string_view nginx_answer =
    "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 23:59:00 GMT\r\n"
    "Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\n"
    "Hello, World!";

TEST(simple_response, the_usual_answers_are_taken_as_beast_parses_them) {
  const std::vector<std::string> usual = {
      std::string(nginx_answer),
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 503 \r\nContent-Length: 2\r\nConnection: close\r\nRetry-After: 1\r\n\r\nno",
      "HTTP/1.1 200 OK\r\nX-Ws: \t padded \t \r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n"
      "content-length: 3\r\nCONNECTION: Keep-Alive\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\nabc",
      "HTTP/1.1 201 Created \xe2\x9c\x93\r\nLocation: /a?b=c,d\r\nContent-Length: 1\r\n\r\nx",
  };
  for (const auto& wire : usual) EXPECT_TRUE(taken_as_beast_does(wire)) << wire;
}

TEST(simple_response, what_beast_must_judge_is_declined) {
  const std::vector<std::string> declined = {
      "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 204 No Content\r\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 1\r\n\r\n",
      "HTTP/1.1 101 Switching\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 1 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nclose-delimited",
      "HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\n\r\nx",
      "HTTP/1.1 200 OK\r\nX-Ctl: a\x01z\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nX-Del: a\x7fz\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nX-Nul: a" + std::string(1, '\0') + "z\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nX-Sp : a\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nshor",  // more to read
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nmore",  // a byte after it
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
      "HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 20 OK\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
      "HTTP/1.1 200 O\x01K\r\nContent-Length: 1\r\n\r\nx",
      "http/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
  };
  for (const auto& wire : declined) {
    EXPECT_FALSE(taken_as_beast_does(wire)) << testing::PrintToString(wire);
  }
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 40; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_FALSE(taken_as_beast_does(many + "Content-Length: 1\r\n\r\nx"));
}

TEST(simple_response, limits_are_left_to_beast) {
  const std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_TRUE(taken_as_beast_does(wire));
  EXPECT_FALSE(taken_as_beast_does(wire, {wire.size() - 5 - 1, 1024, 0}));  // head limit
  EXPECT_FALSE(taken_as_beast_does(wire, {1024, 4, 0}));                    // body limit
  EXPECT_FALSE(taken_as_beast_does(wire, {1024, 1024, 4}));                 // would stream
  EXPECT_TRUE(taken_as_beast_does(wire, {1024, 5, 5}));
}

// Every byte of usual answers replaced by bytes that matter to the grammar, and every
// prefix: whenever the scan takes the result, Beast parses it to the same message.
TEST(simple_response, mutations_the_scan_takes_are_parsed_the_same_by_beast) {
  const std::vector<std::string> seeds = {
      std::string(nginx_answer),
      "HTTP/1.1 503 x\r\nA: b\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno",
  };
  const int taken = scan_testing::count_taken_mutations(
      seeds, [](std::string_view wire) { return taken_as_beast_does(wire); });
  EXPECT_GT(taken, 100);  // the check above ran on many taken messages
}

}  // namespace
}  // namespace outrider::http::detail
