#include "http/detail/simple_request.h"

#include <gtest/gtest.h>
#include <string>
#include <string_view>
#include <vector>

#include "http/detail/field_scan_test_support.h"

namespace outrider::http::detail {
namespace {

using scan_testing::fields_of;

const simple_request_limits limits{8 * 1024, 4 * 1024 * 1024};

// The scan's answer when it takes `wire`; and then Beast's must be the same.
bool taken_as_beast_does(std::string_view wire, const simple_request_limits& l = limits) {
  request mine;
  bool keep = false;
  const std::size_t taken = parse_simple_request(wire, l, mine, keep);
  if (taken == 0) {
    EXPECT_EQ(mine.headers.size(), 0U) << "a declined scan leaves the message as it was";
    EXPECT_TRUE(mine.method.empty() && mine.target.empty() && mine.body.empty());
    return false;
  }
  const auto beast = scan_testing::beast_parse<true>(wire, l.header_limit, l.body_limit);
  EXPECT_TRUE(beast.ok) << "taken, but Beast does not parse it: " << testing::PrintToString(wire);
  EXPECT_EQ(taken, beast.used) << testing::PrintToString(wire);
  EXPECT_EQ(mine.method, beast.message.method) << testing::PrintToString(wire);
  EXPECT_EQ(mine.target, beast.message.target) << testing::PrintToString(wire);
  EXPECT_EQ(mine.version, beast.message.version) << testing::PrintToString(wire);
  EXPECT_EQ(fields_of(mine.headers), fields_of(beast.message.headers))
      << testing::PrintToString(wire);
  EXPECT_EQ(mine.body, beast.message.body) << testing::PrintToString(wire);
  EXPECT_EQ(keep, beast.keep_alive) << testing::PrintToString(wire);
  return true;
}

constexpr std::string_view wrk_request =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:3500\r\ndapr-app-id: upstream\r\n\r\n";

TEST(simple_request, the_usual_requests_are_taken_as_beast_parses_them) {
  const std::vector<std::string> usual = {
      std::string(wrk_request),
      std::string(wrk_request) + "GET /next HTTP/1.1\r\n",  // a pipelined request after it
      "POST /v1.0/publish/pubsub/orders?metadata.ttl=1 HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
      "DELETE /a%20b HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\nGET",
      "GET http://example.com:8080/x?y=z HTTP/1.1\r\nX-Ws: \t padded \t \r\nX-Empty:\r\n"
      "X-Obs: caf\xc3\xa9\r\nCONNECTION: Keep-Alive\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
      "get * HTTP/1.1\r\n\r\n",
  };
  for (const auto& wire : usual) EXPECT_TRUE(taken_as_beast_does(wire)) << wire;
}

TEST(simple_request, what_beast_must_judge_is_declined) {
  const std::vector<std::string> declined = {
      "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
      "GET / HTTP/2.0\r\n\r\n",
      "GET / http/1.1\r\n\r\n",
      "GET /  HTTP/1.1\r\n\r\n",
      " GET / HTTP/1.1\r\n\r\n",
      "GET /a\x80 HTTP/1.1\r\n\r\n",
      "GET /a\x7f HTTP/1.1\r\n\r\n",
      "GE(T / HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: 1 1\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nx",
      "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
      "GET / HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\n\r\n",
      "GET / HTTP/1.1\r\nX-Ctl: a\x01z\r\n\r\n",
      "GET / HTTP/1.1\r\nX-Del: a\x7fz\r\n\r\n",
      "GET / HTTP/1.1\r\nX-Nul: a" + std::string(1, '\0') + "z\r\n\r\n",
      "GET / HTTP/1.1\r\nX-Sp : a\r\n\r\n",
      "GET / HTTP/1.1\r\n: a\r\n\r\n",
      "GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
      "GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nshor",  // more to read
      "GET / HTTP/1.1\r\nHost: x\r\n",                     // the head goes on
      "GET / HTTP/1.1\r\nHost: x\r\n\r",
  };
  for (const auto& wire : declined) {
    EXPECT_FALSE(taken_as_beast_does(wire)) << testing::PrintToString(wire);
  }
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 40; ++i) many += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_FALSE(taken_as_beast_does(many + "\r\n"));
}

TEST(simple_request, limits_are_left_to_beast) {
  const std::string wire = "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_TRUE(taken_as_beast_does(wire));
  EXPECT_FALSE(taken_as_beast_does(wire, {wire.size() - 5, 1024}));  // head limit
  EXPECT_FALSE(taken_as_beast_does(wire, {1024, 4}));                // body limit
  EXPECT_TRUE(taken_as_beast_does(wire, {wire.size() - 5 + 1, 5}));
}

// Every byte of usual requests replaced by bytes that matter to the grammar, and every
// prefix: whenever the scan takes the result, Beast parses it to the same message.
TEST(simple_request, mutations_the_scan_takes_are_parsed_the_same_by_beast) {
  const std::vector<std::string> seeds = {
      std::string(wrk_request),
      "POST /p?q HTTP/1.1\r\nA: b\r\nConnection: close\r\nContent-Length: 2\r\n\r\nnoGET",
  };
  const int taken = scan_testing::count_taken_mutations(
      seeds, [](std::string_view wire) { return taken_as_beast_does(wire); });
  EXPECT_GT(taken, 100);  // the check above ran on many taken messages
}

}  // namespace
}  // namespace outrider::http::detail
