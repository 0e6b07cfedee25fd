#include "http/router.h"

#include <gtest/gtest.h>

namespace outrider::http {
namespace {

response run(const router& r, std::string method, std::string target) {
  request req;
  req.method = std::move(method);
  req.target = std::move(target);
  split_target(req.target, req.path, req.query);
  std::optional<response> out;
  r.dispatch(std::move(req), responder([&](response&& resp) { out = std::move(resp); }));
  EXPECT_TRUE(out.has_value());
  return out ? std::move(*out) : response{};
}

router make_router() {
  router r;
  r.add_sync("POST", "/v1.0/publish/{pubsub}/{topic}", [](const request& req) {
    return response::with_body(
        200, std::string(req.params.at("pubsub")) + "|" + std::string(req.params.at("topic")),
        "text/plain");
  });
  r.add_sync("GET", "/v1.0/healthz", [](const request&) { return response::no_content(); });
  r.add_sync("GET", "/v1.0/{anything}",
             [](const request&) { return response::with_body(200, "param", "text/plain"); });
  r.add_sync("POST", "/v1.0/invoke/{app}/method/{*path}", [](const request& req) {
    return response::with_body(
        200, std::string(req.params.at("app")) + "|" + std::string(req.params.at("path")),
        "text/plain");
  });
  return r;
}

TEST(router, matches_params_and_decodes_them) {
  auto r = make_router();
  auto resp = run(r, "POST", "/v1.0/publish/my%20pubsub/orders?x=1");
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "my pubsub|orders");
}

TEST(router, literal_beats_parameter) {
  auto r = make_router();
  EXPECT_EQ(run(r, "GET", "/v1.0/healthz").status, 204);
  EXPECT_EQ(run(r, "GET", "/v1.0/other").body, "param");
}

TEST(router, tail_parameter_takes_the_rest) {
  auto r = make_router();
  EXPECT_EQ(run(r, "POST", "/v1.0/invoke/orders/method/a/b/c").body, "orders|a/b/c");
  EXPECT_EQ(run(r, "POST", "/v1.0/invoke/orders/method/").body, "orders|");
}

TEST(router, not_found_and_method_not_allowed_are_json) {
  auto r = make_router();
  auto nf = run(r, "GET", "/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_NE(nf.body.find("\"errorCode\":\"ERR_ROUTE_NOT_FOUND\""), std::string::npos);
  auto na = run(r, "DELETE", "/v1.0/healthz");
  EXPECT_EQ(na.status, 405);
  EXPECT_NE(na.headers.get("Allow")->find("GET"), std::string::npos);
  EXPECT_EQ(*na.headers.get("Content-Type"), "application/json");
}

TEST(router, bad_escape_is_400) {
  auto r = make_router();
  auto resp = run(r, "POST", "/v1.0/publish/bad%zz/t");
  EXPECT_EQ(resp.status, 400);
  EXPECT_NE(resp.body.find("ERR_MALFORMED_REQUEST"), std::string::npos);
}

TEST(router, head_uses_get_route) {
  auto r = make_router();
  EXPECT_EQ(run(r, "HEAD", "/v1.0/healthz").status, 204);
}

TEST(responder, dropped_responder_answers_500) {
  std::optional<response> out;
  {
    responder r([&](response&& resp) { out = std::move(resp); });
  }
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 500);
}

TEST(responder, only_first_send_counts) {
  int calls = 0;
  responder r([&](response&&) { ++calls; });
  r.send(response::no_content());
  r.send(response::no_content());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(r.sent());
}

// responder::of keeps any callable in the responder's state: the same
// contract (first send only, copies share it, 500 when dropped unsent).
TEST(responder, of_a_callable_keeps_the_contract) {
  std::vector<int> statuses;
  auto owned = std::make_shared<int>(7);  // a capture that is not trivially copyable
  {
    auto r = responder::of([&statuses, owned](response&& resp) {
      EXPECT_EQ(*owned, 7);
      statuses.push_back(resp.status);
    });
    const responder copy = r;
    EXPECT_FALSE(copy.sent());
    copy.send(response::no_content());
    r.send(response::no_content());
    EXPECT_TRUE(r.sent());
  }
  {
    auto dropped = responder::of([&statuses](response&& resp) { statuses.push_back(resp.status); });
  }
  EXPECT_EQ(statuses, (std::vector<int>{204, 500}));
  EXPECT_EQ(owned.use_count(), 1);  // the callable went with the responder
}

// with_hook: the hook runs once, just before the response is delivered (also
// before a dropped responder's 500), and lets go of its captures as soon as it
// ran, while the responder lives on.
TEST(responder, with_hook_runs_once_before_delivery) {
  std::vector<std::string> calls;
  auto owned = std::make_shared<int>(7);
  {
    responder inner(
        [&calls](response&& resp) { calls.push_back("deliver " + std::to_string(resp.status)); });
    auto r = responder::with_hook(std::move(inner), [&calls, owned](response& resp) {
      calls.push_back("hook " + std::to_string(resp.status));
      resp.status = 202;  // the hook sees (and may change) what is delivered
    });
    EXPECT_EQ(owned.use_count(), 2);
    const responder copy = r;
    copy.send(response::no_content());
    EXPECT_EQ(owned.use_count(), 1);  // destroyed right after it ran
    r.send(response::no_content());
    EXPECT_TRUE(r.sent());
  }
  EXPECT_EQ(calls, (std::vector<std::string>{"hook 204", "deliver 202"}));
  calls.clear();
  {
    auto dropped = responder::with_hook(responder([&calls](response&& resp) {
                                          calls.push_back("deliver " + std::to_string(resp.status));
                                        }),
                                        [&calls, owned](response& resp) {
                                          calls.push_back("hook " + std::to_string(resp.status));
                                        });
  }
  EXPECT_EQ(calls, (std::vector<std::string>{"hook 500", "deliver 500"}));
  EXPECT_EQ(owned.use_count(), 1);
}

// A hook that does not fit the state, a second hook, a hook on a responder
// already sent: wrapped as with of(); the later hook runs first, each once.
TEST(responder, with_hook_falls_back_to_a_wrapper) {
  std::vector<std::string> calls;
  auto deliver = [&calls](response&& resp) {
    calls.push_back("deliver " + std::to_string(resp.status));
  };
  struct big {
    char bytes[responder::hook_capacity + 1] = {};
  };
  {
    auto r = responder::with_hook(responder::of(deliver),
                                  [&calls](response&) { calls.push_back("first"); });
    r = responder::with_hook(std::move(r), [&calls](response&) { calls.push_back("second"); });
    r = responder::with_hook(std::move(r), [&calls, b = big{}](response&) {
      calls.push_back("big " + std::to_string(sizeof b.bytes));
    });
    r.send(response::no_content());
    r.send(response::no_content());
  }
  EXPECT_EQ(calls, (std::vector<std::string>{"big " + std::to_string(responder::hook_capacity + 1),
                                             "second", "first", "deliver 204"}));
  calls.clear();
  {
    responder sent(deliver);
    sent.send(response::no_content());
    auto r = responder::with_hook(sent, [&calls](response&) { calls.push_back("late"); });
    r.send(response::no_content());
  }
  // The hook wraps the (already sent) responder: it runs, the inner send is ignored.
  EXPECT_EQ(calls, (std::vector<std::string>{"deliver 204", "late"}));
}

TEST(message, query_parsing_and_errors) {
  auto q = parse_query("metadata.ttlInSeconds=10&a=b%20c&plus=x+y&flag&&z=");
  ASSERT_TRUE(q);
  ASSERT_EQ(q->size(), 5u);
  EXPECT_EQ((*q)[0], std::make_pair(std::string("metadata.ttlInSeconds"), std::string("10")));
  EXPECT_EQ((*q)[1].second, "b c");
  EXPECT_EQ((*q)[2].second, "x y");
  EXPECT_EQ((*q)[3], std::make_pair(std::string("flag"), std::string()));
  EXPECT_FALSE(parse_query("a=%4"));
  EXPECT_FALSE(parse_query("a=%G0"));
}

TEST(message, fields_are_case_insensitive) {
  fields f;
  f.add("Content-Type", "a");
  f.add("X-Multi", "1");
  f.add("x-multi", "2");
  EXPECT_EQ(*f.get("content-type"), "a");
  f.set("X-MULTI", "3");
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(*f.get("x-multi"), "3");
}

TEST(message, set_replaces_the_first_field_in_place_and_drops_the_others) {
  fields f;
  f.add("traceparent", "00-old");
  f.add("Host", "h");
  f.add("TraceParent", "00-second");
  f.add("Accept", "*/*");
  f.set("traceparent", "00-new");
  ASSERT_EQ(f.size(), 3u);
  auto it = f.begin();
  EXPECT_EQ(it->value, "00-new");  // in the first one's place
  EXPECT_EQ((++it)->name, "Host");
  EXPECT_EQ((++it)->name, "Accept");
  f.set("content-type", "text/plain");  // absent: appended
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(*f.get("Content-Type"), "text/plain");
}

TEST(message, overwrite_value_writes_over_the_value_it_views_only) {
  fields f;
  f.add("Host", "h1");
  f.add("traceparent", "00-aa");
  f.add("X-Copy", "00-aa");  // an equal value elsewhere is another field's
  const std::string_view view = *f.get("traceparent");
  EXPECT_TRUE(f.overwrite_value(view, "00-bb"));
  EXPECT_EQ(*f.get("traceparent"), "00-bb");
  EXPECT_EQ(*f.get("x-copy"), "00-aa");
  EXPECT_EQ(*f.get("host"), "h1");
  EXPECT_FALSE(f.overwrite_value(view, "00-ccc"));  // another size
  const std::string same_text = "00-bb";            // equal text, not a value of `f`
  EXPECT_FALSE(f.overwrite_value(same_text, "00-dd"));
  EXPECT_FALSE(f.overwrite_value(view.substr(1), "0-ee"));  // part of a value
  EXPECT_EQ(*f.get("traceparent"), "00-bb");
}

TEST(message, error_response_uses_catalog) {
  auto r = response::from_error(error(errc::unavailable, "broker down"), 5);
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"errorCode":"ERR_UNAVAILABLE","message":"broker down"})");
  EXPECT_EQ(*r.headers.get("Retry-After"), "5");
}

}  // namespace
}  // namespace outrider::http

namespace outrider::http {
namespace {

TEST(serialize_response, frames_the_body_and_owns_framing_headers) {
  auto r = response::with_body(200, "hello", "text/plain");
  r.headers.add("Content-Length", "999");         // ignored: the server frames
  r.headers.add("Transfer-Encoding", "chunked");  // ignored
  r.headers.add("X-Evil", "a\r\nSet-Cookie: x");  // dropped: response splitting
  std::string out;
  serialize_response(out, r, 11, true, false, "outrider");
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: outrider\r\nContent-Length: "
            "5\r\n\r\nhello");
}

TEST(serialize_response, head_close_http10_and_no_body_statuses) {
  std::string head;
  serialize_response(head, response::with_body(200, "hello", "text/plain"), 11, false, true, "s");
  EXPECT_EQ(head,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: s\r\nConnection: close\r\n"
            "Content-Length: 5\r\n\r\n");
  std::string old;
  serialize_response(old, response::no_content(), 10, true, false, "");
  EXPECT_EQ(old, "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n");
  response odd;
  odd.status = 299;
  odd.body = "x";
  std::string unknown;
  serialize_response(unknown, odd, 11, true, false, "");
  EXPECT_EQ(unknown, "HTTP/1.1 299 Unknown\r\nContent-Length: 1\r\n\r\nx");
}

// Fields only a parser added skip the CR/LF check (the grammar leaves none in a field
// line); one field added or set by code makes every field checked again.
TEST(serialize_response, checks_fields_unless_only_a_parser_added_them) {
  response r;
  r.body = "ok";
  r.headers.add_parsed("X-Parsed", "v");
  EXPECT_TRUE(r.headers.parsed_only());
  r.headers.add("X-Evil", "a\r\nSet-Cookie: x");
  EXPECT_FALSE(r.headers.parsed_only());
  r.headers.add_parsed("X-Later", "w");
  EXPECT_FALSE(r.headers.parsed_only());
  std::string out;
  serialize_response(out, r, 11, true, false, "");
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nX-Parsed: v\r\nX-Later: w\r\nContent-Length: 2\r\n\r\nok");
  fields set_by_code;
  set_by_code.add_parsed("A", "1");
  set_by_code.set("A", "2");
  EXPECT_FALSE(set_by_code.parsed_only());
  EXPECT_TRUE(fields().parsed_only());
}

TEST(serialize_response, appends_and_judges_every_field_past_the_64th) {
  response r;
  r.status = 200;
  r.body = "ok";
  std::string expected = "before|HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 70; ++i) {
    const std::string name = "X-" + std::to_string(i);
    // Every 7th field holds a CR or LF (dropped), one past 64 is the Server field.
    if (i % 7 == 3) {
      r.headers.add(name, i % 2 == 0 ? "a\rb" : "a\nb");
      continue;
    }
    r.headers.add(name, "v");
    expected += name + ": v\r\n";
  }
  r.headers.add("Content-Length", "1");
  r.headers.add("Server", "upstream");
  expected += "Server: upstream\r\nContent-Length: 2\r\n\r\nok";
  std::string out = "before|";
  serialize_response(out, r, 11, true, false, "outrider");
  EXPECT_EQ(out, expected);
}

}  // namespace
}  // namespace outrider::http
