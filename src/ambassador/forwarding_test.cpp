#include "ambassador/forwarding.h"

#include <gtest/gtest.h>

namespace outrider::ambassador {
namespace {

TEST(forwarding, strips_hop_by_hop_fields_and_those_connection_names) {
  http::fields h;
  h.add("Connection", "keep-alive, X-Secret");
  h.add("X-Secret", "1");
  h.add("Keep-Alive", "timeout=5");
  h.add("Transfer-Encoding", "chunked");
  h.add("Proxy-Authorization", "Basic x");
  h.add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  h.add("X-Kept", "yes");
  strip_hop_by_hop(h);
  EXPECT_FALSE(h.contains("X-Secret"));
  EXPECT_FALSE(h.contains("Keep-Alive"));
  EXPECT_FALSE(h.contains("Transfer-Encoding"));
  EXPECT_FALSE(h.contains("Proxy-Authorization"));
  EXPECT_TRUE(h.contains("traceparent"));
  EXPECT_TRUE(h.contains("X-Kept"));
  EXPECT_FALSE(h.contains("Connection"));

  // Every listed name in any case, repeated fields, and Connection naming listed ones.
  http::fields all;
  for (std::string_view n :
       {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "PROXY-AUTHORIZATION",
        "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect"}) {
    all.add(n, "x");
  }
  all.add("Connection", "Upgrade,  close , x-b");
  all.add("X-A", "kept");
  all.add("x-B", "named");
  all.add("Host", "again");
  strip_hop_by_hop(all);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all.get("x-a"), "kept");

  // Names given as `also` go too, in the same pass; the order of the rest is kept.
  http::fields some;
  some.add("dapr-app-id", "upstream");
  some.add("X-1", "a");
  some.add("Connection", "keep-alive");
  some.add("Dapr-Api-Token", "secret");
  some.add("X-2", "b");
  strip_hop_by_hop(some, {"dapr-app-id", "dapr-api-token"});
  std::string left;
  for (const auto& f : some) left += f.name + "=" + f.value + ";";
  EXPECT_EQ(left, "X-1=a;X-2=b;");
}

TEST(forwarding, strips_a_response_for_the_server_but_its_framing_fields) {
  http::fields h;
  h.add("Server", "nginx");
  h.add("Content-Length", "13");
  h.add("Connection", "keep-alive, X-Secret, Transfer-Encoding");
  h.add("Transfer-Encoding", "chunked");
  h.add("X-Secret", "1");
  h.add("Keep-Alive", "timeout=5");
  h.add("Upgrade", "h2c");
  h.add("Host", "h");
  h.add("X-Kept", "yes");
  strip_hop_by_hop_but_framing(h);
  // The three framing fields are the server's writers' to drop; every other
  // hop-by-hop field and the names Connection lists go here.
  std::string left;
  for (const auto& f : h) left += f.name + ";";
  EXPECT_EQ(left, "Server;Content-Length;Connection;Transfer-Encoding;X-Kept;");
}

// The usual answer has nothing to erase and stays whole; a field that only
// Connection names goes even when it comes before Connection.
TEST(forwarding, an_answer_with_nothing_hop_by_hop_stays_whole) {
  auto names = [](const http::fields& h) {
    std::string s;
    for (const auto& f : h) s += f.name + ";";
    return s;
  };
  http::fields h;
  h.add("Server", "nginx");
  h.add("Content-Length", "13");
  h.add("Connection", "Keep-Alive");
  h.add("Date", "Tue, 24 Nov 2026 23:59:00 GMT");
  strip_hop_by_hop_but_framing(h);
  EXPECT_EQ(names(h), "Server;Content-Length;Connection;Date;");
  http::fields g;
  g.add("X-Only-Named", "1");
  g.add("Server", "nginx");
  g.add("Connection", "X-Only-Named");
  strip_hop_by_hop_but_framing(g);
  EXPECT_EQ(names(g), "Server;Connection;");
}

TEST(forwarding, parses_invocation_targets) {
  auto t = parse_invoke_target("/v1.0/invoke/orders/method/api/v1/items?x=1%202");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->app_id, "orders");
  EXPECT_EQ(t->method_target, "/api/v1/items?x=1%202");
  t = parse_invoke_target("/v1.0/invoke/orders/method/");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->method_target, "/");
  t = parse_invoke_target("/v1.0/invoke/orders/method?q=1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->method_target, "/?q=1");
  EXPECT_FALSE(parse_invoke_target("/v1.0/invoke//method/x"));
  EXPECT_FALSE(parse_invoke_target("/v1.0/invoke/orders/x"));
  EXPECT_FALSE(parse_invoke_target("/v1.0/invoke/or%zzders/method/x"));
}

TEST(forwarding, binding_request_becomes_an_http_call) {
  auto in = parse_binding_request(
      R"({"operation":"POST","data":{"amount":5},"metadata":{"path":"/refunds?x=1","X-Req":"7"}})");
  ASSERT_TRUE(in) << in.error().message;
  http_binding b;
  b.name = "payments";
  b.url = "http://127.0.0.1:8080/api/";
  b.headers = {{"X-Client", "outrider"}};
  auto call = make_binding_call(b, *in);
  ASSERT_TRUE(call) << call.error().message;
  EXPECT_EQ(call->request.method, "POST");
  EXPECT_EQ(call->destination.target, "/api/refunds?x=1");
  EXPECT_EQ(call->request.headers.get("X-Req"), "7");
  EXPECT_EQ(call->request.headers.get("X-Client"), "outrider");
  EXPECT_EQ(call->request.headers.get("Content-Type"), "application/json");
  EXPECT_EQ(call->request.body, R"({"amount":5})");

  in = parse_binding_request(R"({"operation":"fly"})");
  ASSERT_TRUE(in);
  EXPECT_FALSE(make_binding_call(b, *in));
  in = parse_binding_request(R"({"operation":"get","metadata":{"X-Bad\r\nInjected":"1"}})");
  ASSERT_TRUE(in);
  EXPECT_FALSE(make_binding_call(b, *in));
  EXPECT_FALSE(parse_binding_request("[1,2]"));
  // A number no double holds would be forwarded as `Infinity` (not JSON): refused.
  EXPECT_FALSE(parse_binding_request(R"({"operation":"post","data":{"n":-1e999}})"));
  EXPECT_FALSE(parse_binding_request(R"({"data":"x"})"));
  EXPECT_FALSE(parse_binding_request(R"({"operation":"get","metadata":{"n":1}})"));
}

TEST(forwarding, binding_response_carries_status_metadata) {
  http_binding b;
  b.name = "payments";
  http::response up;
  up.status = 201;
  up.body = "created";
  up.headers.add("Content-Type", "text/plain");
  auto r = binding_response(b, up);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "created");
  EXPECT_EQ(r.headers.get("metadata.statusCode"), "201");
  EXPECT_EQ(r.headers.get("metadata.Content-Type"), "text/plain");

  up.status = 404;
  r = binding_response(b, up);
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("ERR_INVOKE_OUTPUT_BINDING"), std::string::npos);
  b.error_if_not_2xx = false;
  r = binding_response(b, up);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers.get("metadata.statusCode"), "404");
}

}  // namespace
}  // namespace outrider::ambassador
