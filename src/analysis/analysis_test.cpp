// The analysis on synthetic traces with known answers: chains and their
// depth, fan-out, cycles, async edges that must not count as coupling,
// partial traces, Zipkin's shared spans, the replaceable-call heuristics, the
// sync share, availability, the score and the graph's numbers.
#include "analysis/analysis.h"

#include <algorithm>
#include <cmath>
#include <gtest/gtest.h>

#include "analysis/detail/findings.h"
#include "analysis/detail/stats.h"

namespace outrider::analysis {
namespace {

using tracing::span;
using tracing::span_kind;

constexpr std::int64_t t0_ms = 1'700'000'000'000;
constexpr std::int64_t ns_per_ms = 1'000'000;
const time_window window{t0_ms - 1000, t0_ms + 3'600'000};

// Builds one trace; times are milliseconds after t0.
class trace_builder {
 public:
  explicit trace_builder(std::uint64_t trace) : trace_(id128{0x1234, trace}) {}

  std::uint64_t add(std::uint64_t parent, std::string service, std::string name, span_kind kind,
                    double start_ms, double end_ms) {
    span s;
    s.trace_id = trace_;
    s.span_id = next_id_++;
    s.parent_id = parent;
    s.local_endpoint.service_name = std::move(service);
    s.name = std::move(name);
    s.kind = kind;
    s.start_ns = t0_ms * ns_per_ms + static_cast<std::int64_t>(start_ms * ns_per_ms);
    s.end_ns = t0_ms * ns_per_ms + static_cast<std::int64_t>(end_ms * ns_per_ms);
    spans_.push_back(std::move(s));
    return spans_.back().span_id;
  }
  // A synchronous call: the caller's CLIENT span and the callee's SERVER span inside it.
  std::uint64_t call(std::uint64_t parent, const std::string& caller, const std::string& callee,
                     const std::string& name, double start_ms, double end_ms) {
    const auto client = add(parent, caller, name, span_kind::client, start_ms, end_ms);
    spans_.back().remote_endpoint.service_name = callee;
    return add(client, callee, name, span_kind::server, start_ms + 1, end_ms - 1);
  }
  span& last() { return spans_.back(); }
  span& at(std::uint64_t id) { return spans_.at(id - 1); }
  std::vector<span> done() const { return spans_; }
  std::string id() const { return tracing::trace_id_hex(trace_); }

 private:
  id128 trace_;
  std::uint64_t next_id_ = 1;
  std::vector<span> spans_;
};

void set_attribute(span& s, std::string key, tracing::attribute_value v) {
  s.attributes.push_back(tracing::key_value{std::move(key), std::move(v)});
}

const entry_point* find_entry(const report& r, std::string_view service,
                              std::string_view operation) {
  for (const auto& e : r.entry_points) {
    if (e.service == service && e.operation == operation) return &e;
  }
  return nullptr;
}

std::vector<const finding*> findings_of(const report& r, std::string_view kind) {
  std::vector<const finding*> out;
  for (const auto& f : r.findings) {
    if (f.kind == kind) out.push_back(&f);
  }
  return out;
}

const graph_edge* find_edge(const service_graph& g, std::string_view from, std::string_view to,
                            edge_kind kind) {
  for (const auto& e : g.edges) {
    if (e.from == from && e.to == to && e.kind == kind) return &e;
  }
  return nullptr;
}

double metric(const finding& f, std::string_view name) {
  for (const auto& [k, v] : f.metrics) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no metric " << name;
  return -1;
}

// checkout -> orders -> inventory -> pricing, each waiting for the next.
std::vector<span> deep_chain(std::uint64_t id, double pricing_ms = 100) {
  trace_builder t(id);
  const auto root = t.add(0, "checkout", "POST /checkout", span_kind::server, 0, 400 + pricing_ms);
  const auto orders = t.call(root, "checkout", "orders", "POST /orders", 10, 390 + pricing_ms);
  const auto inventory = t.call(orders, "orders", "inventory", "GET /stock", 20, 380 + pricing_ms);
  t.call(inventory, "inventory", "pricing", "GET /price", 30, 30 + pricing_ms);
  return t.done();
}

TEST(analysis, a_blocking_chain_has_its_depth_path_share_and_latency) {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 4; ++i) traces.push_back(deep_chain(i, 100.0 * i));
  trace_builder shallow(9);
  const auto root = shallow.add(0, "checkout", "POST /checkout", span_kind::server, 0, 50);
  shallow.call(root, "checkout", "orders", "POST /orders", 5, 45);
  traces.push_back(shallow.done());

  const auto a = analyze(traces, window);
  ASSERT_EQ(a.coupling.traces, 5u);
  const auto* e = find_entry(a.coupling, "checkout", "POST /checkout");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->traces, 5u);
  EXPECT_EQ(e->depth_max, 3u);
  EXPECT_EQ(e->depth_p50, 3u);
  EXPECT_EQ(e->fan_out_max, 1u);
  EXPECT_EQ(e->blocking_services, (std::vector<std::string>{"inventory", "orders", "pricing"}));
  EXPECT_EQ(e->example_trace_ids.size(), 3u);  // the deepest ones only

  auto chains = findings_of(a.coupling, "blocking_chain");
  ASSERT_EQ(chains.size(), 1u);
  const finding& f = *chains[0];
  EXPECT_EQ(f.level, severity::high);
  EXPECT_EQ(f.services, (std::vector<std::string>{"checkout", "orders", "inventory", "pricing"}));
  EXPECT_EQ(metric(f, "depth"), 3);
  EXPECT_DOUBLE_EQ(metric(f, "share"), 0.8);
  // The entry waits on the first hop (checkout -> orders): 380 + pricing ms; p99 of 4 = the
  // largest.
  EXPECT_DOUBLE_EQ(metric(f, "p99Ms"), 380 + 400);
  EXPECT_EQ(f.text,
            "checkout → orders → inventory → pricing is a 3-deep blocking chain in 80% of traces "
            "of POST /checkout; it adds 780 ms at p99; consider an event");
  EXPECT_EQ(f.entry_point, "checkout: POST /checkout");
  EXPECT_EQ(f.example_trace_ids.size(), 3u);
}

TEST(analysis, async_hops_start_their_own_region_and_do_not_count_as_coupling) {
  trace_builder t(1);
  const auto root = t.add(0, "checkout", "POST /checkout", span_kind::server, 0, 20);
  const auto send = t.add(root, "checkout", "orders.placed send", span_kind::producer, 5, 8);
  t.last().remote_endpoint.service_name = "broker";
  // Delivered a day later: the consumer waits on a carrier through a sync call.
  const double day = 24 * 3600 * 1000.0;
  const auto consume =
      t.add(send, "shipping", "orders.placed process", span_kind::consumer, day, day + 300);
  t.call(consume, "shipping", "carrier", "POST /labels", day + 10, day + 290);

  const auto a = analyze({t.done()}, window);
  const auto* checkout = find_entry(a.coupling, "checkout", "POST /checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->depth_max, 0u);
  EXPECT_EQ(checkout->fan_out_max, 0u);
  EXPECT_EQ(checkout->sync_share, 0);
  EXPECT_EQ(checkout->availability, 1);
  EXPECT_EQ(checkout->score, 0);
  EXPECT_TRUE(checkout->blocking_services.empty());
  const auto* shipping = find_entry(a.coupling, "shipping", "orders.placed process");
  ASSERT_NE(shipping, nullptr);
  EXPECT_EQ(shipping->depth_max, 1u);
  EXPECT_EQ(shipping->blocking_services, std::vector<std::string>{"carrier"});

  const auto* async = find_edge(a.graph, "checkout", "shipping", edge_kind::async);
  ASSERT_NE(async, nullptr);
  EXPECT_EQ(async->calls, 1u);
  EXPECT_DOUBLE_EQ(async->p50_ms, day - 5);  // send -> start of processing
  EXPECT_EQ(find_edge(a.graph, "checkout", "shipping", edge_kind::sync), nullptr);
  EXPECT_NE(find_edge(a.graph, "shipping", "carrier", edge_kind::sync), nullptr);
  // The producer was consumed, so no edge to the broker.
  EXPECT_EQ(find_edge(a.graph, "checkout", "broker", edge_kind::async), nullptr);
  EXPECT_TRUE(a.coupling.cycles.empty());
  EXPECT_TRUE(findings_of(a.coupling, "blocking_chain").empty());
}

TEST(analysis, a_consumer_linked_to_a_producer_in_another_trace_is_an_async_edge) {
  trace_builder first(1);
  const auto root = first.add(0, "orders", "POST /reserve", span_kind::server, 0, 10);
  const auto send = first.add(root, "orders", "expire send", span_kind::producer, 2, 3);
  trace_builder second(2);
  second.add(0, "orders", "expire process", span_kind::consumer, 7000, 7010);
  second.last().links.push_back(tracing::span_link{id128{0x1234, 1}, send, "", {}});
  // A producer nobody consumed goes to its remote service.
  trace_builder third(3);
  const auto r3 = third.add(0, "billing", "POST /invoice", span_kind::server, 0, 10);
  third.add(r3, "billing", "invoices send", span_kind::producer, 1, 2);
  third.last().remote_endpoint.service_name = "mailer";

  const auto a = analyze({first.done(), second.done(), third.done()}, window);
  const auto* self = find_edge(a.graph, "orders", "orders", edge_kind::async);
  ASSERT_NE(self, nullptr);
  EXPECT_EQ(self->calls, 1u);
  EXPECT_DOUBLE_EQ(self->p50_ms, 7000 - 2);
  const auto* mail = find_edge(a.graph, "billing", "mailer", edge_kind::async);
  ASSERT_NE(mail, nullptr);
  EXPECT_EQ(mail->calls, 1u);
  EXPECT_EQ(mail->p50_ms, 0);  // no sample: no consumer seen
  EXPECT_NE(find_entry(a.coupling, "orders", "expire process"), nullptr);
}

TEST(analysis, fan_out_counts_blocking_calls_of_one_handling) {
  // A BFF composing a page: four concurrent reads.
  trace_builder page(1);
  const auto root = page.add(0, "bff", "GET /order-page", span_kind::server, 0, 100);
  for (const char* svc : {"orders", "customers", "stock", "reviews"}) {
    page.call(root, "bff", svc, "GET /" + std::string(svc), 5, 90);
  }
  // Sequential commands: each waits for the previous.
  trace_builder pay(2);
  const auto r2 = pay.add(0, "checkout", "POST /pay", span_kind::server, 0, 400);
  int at = 0;
  for (const char* svc : {"payments", "ledger", "loyalty", "email", "audit", "risk"}) {
    pay.call(r2, "checkout", svc, "POST /" + std::string(svc), at + 1, at + 60);
    at += 60;
  }
  const auto a = analyze({page.done(), pay.done()}, window);
  const auto* bff = find_entry(a.coupling, "bff", "GET /order-page");
  ASSERT_NE(bff, nullptr);
  EXPECT_EQ(bff->fan_out_max, 4u);
  EXPECT_EQ(bff->depth_max, 1u);
  const auto* checkout = find_entry(a.coupling, "checkout", "POST /pay");
  ASSERT_NE(checkout, nullptr);
  EXPECT_EQ(checkout->fan_out_max, 6u);

  auto fan = findings_of(a.coupling, "blocking_fan_out");
  ASSERT_EQ(fan.size(), 2u);
  // Ranked: the sequential 6-wide one first (high), the concurrent composition last (low).
  EXPECT_EQ(fan[0]->entry_point, "checkout: POST /pay");
  EXPECT_EQ(fan[0]->level, severity::high);
  EXPECT_EQ(metric(*fan[0], "maxConcurrent"), 1);
  EXPECT_NE(fan[0]->text.find("one after another"), std::string::npos);
  EXPECT_EQ(fan[1]->entry_point, "bff: GET /order-page");
  EXPECT_EQ(fan[1]->level, severity::low);
  EXPECT_EQ(metric(*fan[1], "maxConcurrent"), 4);
  EXPECT_EQ(fan[1]->text,
            "bff makes 4 blocking calls to 4 services while answering one request of bff: GET "
            "/order-page, up to 4 at a time, so the slowest sets the latency; fine for composing "
            "a page from queries; keep commands out of it");
}

TEST(analysis, cycles_in_the_sync_call_graph_are_found) {
  trace_builder one(1);
  const auto r1 = one.add(0, "orders", "POST /orders", span_kind::server, 0, 100);
  const auto inv = one.call(r1, "orders", "inventory", "POST /reserve", 10, 90);
  const auto pricing = one.call(inv, "inventory", "pricing", "GET /price", 20, 80);
  one.call(pricing, "pricing", "orders", "GET /orders/1", 30, 70);
  // A service calling itself is no cycle.
  trace_builder two(2);
  const auto r2 = two.add(0, "a", "GET /", span_kind::server, 0, 10);
  two.call(r2, "a", "b", "GET /b", 1, 9);
  two.add(r2, "a", "GET /self", span_kind::client, 2, 3);
  two.last().remote_endpoint.service_name = "a";

  const auto a = analyze({one.done(), two.done()}, window);
  ASSERT_EQ(a.coupling.cycles.size(), 1u);
  EXPECT_EQ(a.coupling.cycles[0], (std::vector<std::string>{"inventory", "pricing", "orders"}));
  auto f = findings_of(a.coupling, "sync_cycle");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]->level, severity::high);
  EXPECT_EQ(f[0]->text.substr(0, f[0]->text.find(" call")),
            "inventory → pricing → orders → inventory");
  EXPECT_EQ(f[0]->example_trace_ids, std::vector<std::string>{one.id()});
  const auto* e = find_entry(a.coupling, "orders", "POST /orders");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->depth_max, 3u);
}

TEST(analysis, find_cycles_reports_one_cycle_per_component) {
  const auto cycles = detail::find_cycles({{"a", "b"},
                                           {"b", "a"},
                                           {"c", "d"},
                                           {"d", "e"},
                                           {"e", "c"},
                                           {"e", "d"},
                                           {"x", "x"},
                                           {"a", "c"}});
  ASSERT_EQ(cycles.size(), 2u);
  EXPECT_EQ(cycles[0], (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(cycles[1], (std::vector<std::string>{"c", "d", "e"}));
}

TEST(analysis, a_very_deep_chain_and_a_long_ring_need_no_recursion) {
  constexpr int services = 5000;
  trace_builder t(1);
  auto parent = t.add(0, "s0", "GET /", span_kind::server, 0, 2 * services + 10);
  for (int i = 1; i < services; ++i) {
    parent = t.call(parent, "s" + std::to_string(i - 1), "s" + std::to_string(i), "GET /", i,
                    2 * services + 10 - i);
  }
  // ... and the last calls the first: one ring of every service.
  t.call(parent, "s" + std::to_string(services - 1), "s0", "GET /", services, services + 2);
  const auto a = analyze({t.done()}, window);
  const auto* e = find_entry(a.coupling, "s0", "GET /");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->depth_max, static_cast<std::uint32_t>(services));
  ASSERT_EQ(a.coupling.cycles.size(), 1u);
  EXPECT_EQ(a.coupling.cycles[0].size(), static_cast<std::size_t>(services));
}

TEST(analysis, partial_traces_and_malformed_parents_are_handled) {
  trace_builder t(1);
  // The caller (gateway) is not in the trace: only its name, from the server's remote endpoint.
  const auto orphan = t.add(77, "orders", "GET /orders", span_kind::server, 0, 50);
  t.last().remote_endpoint.service_name = "gateway";
  t.call(orphan, "orders", "stock", "GET /stock", 5, 45);
  // Two spans naming each other as parent are never reached.
  t.add(5, "x", "loop", span_kind::server, 0, 1);  // id 4
  t.add(4, "y", "loop", span_kind::server, 0, 1);  // id 5
  // The same span reported twice counts once.
  auto spans = t.done();
  spans.push_back(spans[0]);

  const auto a = analyze({spans}, window);
  const auto* e = find_entry(a.coupling, "orders", "GET /orders");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->traces, 1u);
  EXPECT_EQ(e->depth_max, 1u);
  const auto* gw = find_edge(a.graph, "gateway", "orders", edge_kind::sync);
  ASSERT_NE(gw, nullptr);
  EXPECT_EQ(gw->calls, 1u);
  EXPECT_EQ(find_entry(a.coupling, "x", "loop"), nullptr);
  for (const auto& n : a.graph.nodes) {
    if (n.service == "orders") {
      EXPECT_EQ(n.spans, 2u);
    }  // the duplicate is ignored
  }
}

TEST(analysis, zipkin_shared_spans_and_uninstrumented_peers) {
  trace_builder t(1);
  const auto root = t.add(0, "web", "GET /", span_kind::server, 0, 100);
  const auto client = t.add(root, "web", "GET /api", span_kind::client, 10, 90);
  // The server half shares the client's id (Zipkin B3 "shared").
  span server = t.last();
  server.kind = span_kind::server;
  server.shared = true;
  server.local_endpoint.service_name = "api";
  server.start_ns += ns_per_ms;
  server.end_ns -= ns_per_ms;
  std::vector<span> spans = t.done();
  spans.push_back(server);
  // A child of the shared server names the shared id as its parent, and calls
  // a payment gateway that records no spans.
  span gateway_call = spans[0];
  gateway_call.span_id = 50;
  gateway_call.parent_id = client;
  gateway_call.kind = span_kind::client;
  gateway_call.local_endpoint.service_name = "api";
  gateway_call.name = "POST /charges";
  gateway_call.remote_endpoint.service_name = "payment-gateway";
  gateway_call.start_ns = t0_ms * ns_per_ms + 20 * ns_per_ms;
  gateway_call.end_ns = t0_ms * ns_per_ms + 80 * ns_per_ms;
  spans.push_back(gateway_call);

  const auto a = analyze({spans}, window);
  const auto* e = find_entry(a.coupling, "web", "GET /");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->depth_max, 2u);
  EXPECT_EQ(e->blocking_services, (std::vector<std::string>{"api", "payment-gateway"}));
  const auto* web_api = find_edge(a.graph, "web", "api", edge_kind::sync);
  ASSERT_NE(web_api, nullptr);
  EXPECT_EQ(web_api->calls, 1u);
  EXPECT_NE(find_edge(a.graph, "api", "payment-gateway", edge_kind::sync), nullptr);
  EXPECT_EQ(find_edge(a.graph, "web", "payment-gateway", edge_kind::sync), nullptr);
  // A command to the gateway (POST by name).
  auto commands = findings_of(a.coupling, "command_call");
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0]->services, (std::vector<std::string>{"api", "payment-gateway"}));
}

TEST(analysis, a_call_within_one_service_is_no_hop) {
  // orders' app calls its own sidecar (same service name), which calls inventory.
  trace_builder t(1);
  const auto root = t.add(0, "orders", "GET /orders", span_kind::server, 0, 100);
  const auto sidecar = t.call(root, "orders", "orders", "GET /v1.0/invoke/inventory", 5, 95);
  t.call(sidecar, "orders", "inventory", "GET /stock", 10, 90);
  const auto a = analyze({t.done()}, window);
  const auto* e = find_entry(a.coupling, "orders", "GET /orders");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->depth_max, 1u);
  EXPECT_EQ(e->fan_out_max, 1u);
  EXPECT_EQ(find_edge(a.graph, "orders", "orders", edge_kind::sync), nullptr);
  // Waiting counts through the sidecar: 10..90 of 0..100.
  EXPECT_NEAR(e->sync_share, 0.8, 1e-9);
}

TEST(analysis, a_sidecar_delivering_to_its_own_app_on_loopback_is_no_call) {
  // As `outrider sidecar` records a delivery: CONSUMER, then a CLIENT span to the app
  // (server.address 127.0.0.1), whose app records nothing.
  trace_builder t(1);
  const auto root =
      t.add(0, "orders", "POST /v1.0/publish/pubsub/reserved", span_kind::server, 0, 5);
  const auto send = t.add(root, "orders", "publish reserved", span_kind::producer, 1, 2);
  t.last().remote_endpoint.service_name = "outrider";
  const auto consume =
      t.add(send, "notifications", "process reserved", span_kind::consumer, 10, 30);
  t.add(consume, "notifications", "POST /reserved", span_kind::client, 11, 29);
  t.last().remote_endpoint.service_name = "127.0.0.1";
  t.last().remote_endpoint.port = 5001;
  const auto a = analyze({t.done()}, window);
  const auto* e = find_entry(a.coupling, "notifications", "process reserved");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->depth_max, 0u);
  EXPECT_TRUE(e->blocking_services.empty());
  EXPECT_TRUE(a.coupling.findings.empty());
  ASSERT_EQ(a.graph.edges.size(), 1u);
  EXPECT_EQ(a.graph.edges[0].kind, edge_kind::async);
  for (const char* host : {"127.0.0.1", "localhost", "::1", "[::1]", "127.1.2.3"}) {
    EXPECT_TRUE(detail::is_loopback(host)) << host;
  }
  for (const char* host : {"10.0.0.1", "orders", "1270.0.0.1", "::2"}) {
    EXPECT_FALSE(detail::is_loopback(host)) << host;
  }
}

TEST(analysis, a_call_the_caller_does_not_wait_for_is_not_awaited) {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 4; ++i) {
    trace_builder t(i);
    const auto root = t.add(0, "orders", "POST /orders", span_kind::server, 0, 50);
    // The last one waits; three answer before the call ends.
    t.call(root, "orders", "notifications", "POST /email", 40, i == 4 ? 49 : 120);
    traces.push_back(t.done());
  }
  const auto a = analyze(traces, window);
  auto f = findings_of(a.coupling, "not_awaited");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]->level, severity::medium);
  EXPECT_EQ(metric(*f[0], "notAwaited"), 3);
  EXPECT_EQ(f[0]->text,
            "orders calls notifications (POST /email) but answers before the call completes in "
            "75% of 4 calls: nothing waits for the result; send a message instead");
  EXPECT_EQ(f[0]->example_trace_ids.size(), 3u);
  // Not awaited: no command finding for the same calls, and no depth beyond the awaited one.
  EXPECT_TRUE(findings_of(a.coupling, "command_call").empty());
  const auto* e = find_entry(a.coupling, "orders", "POST /orders");
  EXPECT_EQ(e->depth_max, 1u);
  EXPECT_EQ(e->depth_p50, 0u);
  const auto* edge = find_edge(a.graph, "orders", "notifications", edge_kind::sync);
  ASSERT_NE(edge, nullptr);
  EXPECT_EQ(edge->calls, 4u);
}

TEST(analysis, command_like_calls_are_candidates_for_messages) {
  trace_builder t(1);
  const auto root = t.add(0, "orders", "orders.Orders/Complete", span_kind::server, 0, 100);
  const auto charge = t.call(root, "orders", "payments", "charge", 10, 40);
  set_attribute(t.at(charge - 1), "http.request.method", tracing::attribute_value::of("POST"));
  set_attribute(t.at(charge), "http.response.status_code", tracing::attribute_value::of_int(202));
  t.call(root, "orders", "inventory", "inventory.Stock/ReserveItems", 40, 60);
  t.call(root, "orders", "catalog", "GET /items/cancel-policy", 60, 70);  // a read
  const auto a = analyze({t.done()}, window);
  auto f = findings_of(a.coupling, "command_call");
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0]->services, (std::vector<std::string>{"orders", "payments"}));
  EXPECT_EQ(f[0]->level, severity::medium);  // 202: nothing to wait for
  EXPECT_NE(f[0]->text.find("it answers 202/204"), std::string::npos);
  EXPECT_EQ(f[1]->services, (std::vector<std::string>{"orders", "inventory"}));
  EXPECT_EQ(f[1]->level, severity::low);
}

TEST(analysis, sync_share_is_the_union_of_waits_over_the_entry_duration) {
  trace_builder t(1);
  const auto root = t.add(0, "bff", "GET /x", span_kind::server, 0, 100);
  t.call(root, "bff", "a", "GET /a", 10, 40);
  t.call(root, "bff", "b", "GET /b", 30, 60);  // overlaps a: 10..60 = 50 ms
  trace_builder u(2);
  const auto r2 = u.add(0, "bff", "GET /x", span_kind::server, 0, 100);
  u.call(r2, "bff", "a", "GET /a", 0, 100);
  const auto a = analyze({t.done(), u.done()}, window);
  const auto* e = find_entry(a.coupling, "bff", "GET /x");
  ASSERT_NE(e, nullptr);
  EXPECT_NEAR(e->sync_share, (50.0 + 100.0) / 200.0, 1e-9);
}

TEST(analysis, availability_multiplies_callee_success_rates) {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 10; ++i) {
    trace_builder t(i);
    const auto root = t.add(0, "orders", "POST /orders", span_kind::server, 0, 100);
    const auto pay = t.call(root, "orders", "payments", "GET /balance", 10, 20);
    if (i <= 2) t.at(pay).status.code = tracing::status_code::error;  // 80% success
    const auto stock = t.call(root, "orders", "stock", "GET /stock", 20, 30);
    if (i == 3) set_attribute(t.at(stock), "http.status_code", tracing::attribute_value::of("503"));
    traces.push_back(t.done());
  }
  const auto a = analyze(traces, window);
  const auto* e = find_entry(a.coupling, "orders", "POST /orders");
  ASSERT_NE(e, nullptr);
  EXPECT_NEAR(e->availability, 0.8 * 0.9, 1e-9);
  auto f = findings_of(a.coupling, "availability");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0]->level, severity::high);
  EXPECT_NE(f[0]->text.find("72.0%"), std::string::npos) << f[0]->text;
  const auto* edge = find_edge(a.graph, "orders", "payments", edge_kind::sync);
  ASSERT_NE(edge, nullptr);
  EXPECT_EQ(edge->errors, 2u);
  for (const auto& n : a.graph.nodes) {
    if (n.service == "payments") {
      EXPECT_EQ(n.errors, 2u);
    }
    if (n.service == "stock") {
      EXPECT_EQ(n.errors, 1u);
    }
  }
}

TEST(analysis, the_score_follows_its_formula) {
  // depth p50 3 -> 0.35 * 3/4; fan-out p50 1 -> 0.15 * 1/8; sync share 390/410 -> 0.25 * that;
  // availability 1 and no cycle -> 0.
  const auto a = analyze({deep_chain(1, 10)}, window);
  const auto* e = find_entry(a.coupling, "checkout", "POST /checkout");
  ASSERT_NE(e, nullptr);
  EXPECT_NEAR(e->sync_share, 390.0 / 410.0, 1e-9);
  const double expected = 100 * (0.35 * 0.75 + 0.15 / 8 + 0.25 * 390.0 / 410.0);
  EXPECT_EQ(e->score, static_cast<int>(std::lround(expected)));
}

TEST(analysis, graph_numbers_are_calls_errors_and_latency_percentiles) {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 100; ++i) {
    trace_builder t(i);
    const auto root = t.add(0, "web", "GET /", span_kind::server, 0, 200);
    t.call(root, "web", "api", "GET /api", 0, static_cast<double>(i));  // client span: i ms
    if (i % 10 == 0) t.at(3).status.code = tracing::status_code::error;
    traces.push_back(t.done());
  }
  const auto a = analyze(traces, window);
  ASSERT_EQ(a.graph.nodes.size(), 2u);
  EXPECT_EQ(a.graph.nodes[0].service, "api");
  EXPECT_EQ(a.graph.nodes[0].spans, 100u);
  EXPECT_EQ(a.graph.nodes[0].errors, 10u);
  EXPECT_EQ(a.graph.nodes[1].service, "web");
  EXPECT_EQ(a.graph.nodes[1].spans, 200u);
  ASSERT_EQ(a.graph.edges.size(), 1u);
  const auto& e = a.graph.edges[0];
  EXPECT_EQ(e.calls, 100u);
  EXPECT_EQ(e.errors, 10u);
  EXPECT_DOUBLE_EQ(e.p50_ms, 50);
  EXPECT_DOUBLE_EQ(e.p99_ms, 99);
}

TEST(analysis, findings_are_ranked_by_severity_then_impact) {
  std::vector<std::vector<span>> traces;
  for (std::uint64_t i = 1; i <= 3; ++i) traces.push_back(deep_chain(i));
  const auto a = analyze(traces, window);
  ASSERT_FALSE(a.coupling.findings.empty());
  for (std::size_t i = 1; i < a.coupling.findings.size(); ++i) {
    EXPECT_GE(a.coupling.findings[i - 1].level, a.coupling.findings[i].level);
  }
  EXPECT_EQ(a.coupling.findings[0].kind, "blocking_chain");
}

TEST(analysis, empty_input_gives_an_empty_report) {
  const auto a = analyze({}, window);
  EXPECT_EQ(a.coupling.traces, 0u);
  EXPECT_TRUE(a.coupling.entry_points.empty());
  EXPECT_TRUE(a.coupling.findings.empty());
  EXPECT_TRUE(a.graph.nodes.empty());
  EXPECT_EQ(a.coupling.window, window);
}

}  // namespace
}  // namespace outrider::analysis
