// The span store: round trips of the full model, restart, crash, retention,
// lookup of a trace whose spans arrive days apart, search filters (Zipkin's
// QueryRequest semantics), autocomplete and dependency links.
#include "tracing/span_store.h"

#include <gtest/gtest.h>

#include "io/mem_file_system.h"
#include "tracing/codec.h"

namespace outrider::tracing {
namespace {

using namespace std::chrono_literals;

constexpr std::int64_t ns_per_ms = 1'000'000;
const wall_time day0 = wall_time{} + std::chrono::hours(24 * 20000);  // 2024-10-04
std::int64_t ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

span make_span(std::uint64_t trace, std::uint64_t id, std::uint64_t parent, std::string service,
               std::string name, wall_time start, std::chrono::microseconds duration,
               span_kind kind = span_kind::server) {
  span s;
  s.trace_id = id128{0xabc, trace};
  s.span_id = id;
  s.parent_id = parent;
  s.local_endpoint.service_name = std::move(service);
  s.name = std::move(name);
  s.kind = kind;
  s.start_ns = ms(start) * ns_per_ms;
  s.end_ns = s.start_ns + duration.count() * 1000;
  return s;
}

span_store_options options(std::string dir = "/data") {
  span_store_options o;
  o.dir = std::move(dir);
  o.segment_bytes = 8 * 1024;
  return o;
}

TEST(span_store, keeps_the_full_model_across_restart) {
  io::mem_file_system fs;
  auto otlp = decode_otlp_json(
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"orders"}}]},
    "scopeSpans":[{"scope":{"name":"lib","version":"1"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
    "spanId":"eee19b7ec3c1b174","name":"consume","kind":5,"startTimeUnixNano":"1000","endTimeUnixNano":"5000",
    "attributes":[{"key":"n","value":{"intValue":"-7"}},{"key":"d","value":{"doubleValue":2.5}},
                  {"key":"kv","value":{"kvlistValue":{"values":[{"key":"a","value":{"bytesValue":"AAE="}}]}}}],
    "events":[{"timeUnixNano":"2000","name":"e","attributes":[{"key":"x","value":{"boolValue":true}}]}],
    "links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","traceState":"a=b"}],
    "status":{"code":1,"message":"fine"}}]}]}]})");
  ASSERT_TRUE(otlp) << otlp.error().message;
  {
    auto store = span_store::open(fs, options());
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->append(otlp->spans, day0));
    ASSERT_TRUE((*store)->sync());
    auto got = (*store)->get_trace(otlp->spans[0].trace_id);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), 1u);
    EXPECT_TRUE((*got)[0].same_as(otlp->spans[0]));
  }
  auto reopened = span_store::open(fs, options());
  ASSERT_TRUE(reopened) << reopened.error().message;
  auto got = (*reopened)->get_trace(otlp->spans[0].trace_id);
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_TRUE((*got)[0].same_as(otlp->spans[0]));
  EXPECT_EQ((*reopened)->service_names(), std::vector<std::string>{"orders"});
  EXPECT_EQ((*reopened)->stats().spans, 1u);
}

TEST(span_store, unsynced_spans_may_be_lost_in_a_crash_synced_ones_never) {
  io::mem_file_system fs;
  {
    auto store = span_store::open(fs, options());
    ASSERT_TRUE(store);
    ASSERT_TRUE((*store)->append(std::vector{make_span(1, 1, 0, "a", "x", day0, 10us)}, day0));
    ASSERT_TRUE((*store)->sync());
    ASSERT_TRUE((*store)->append(std::vector{make_span(2, 1, 0, "a", "x", day0, 10us)}, day0));
    fs.crash_for_test(io::crash_mode::drop_unsynced);
  }
  auto store = span_store::open(fs, options());
  ASSERT_TRUE(store) << store.error().message;
  EXPECT_EQ((*store)->get_trace(id128{0xabc, 1})->size(), 1u);
  EXPECT_LE((*store)->get_trace(id128{0xabc, 2})->size(), 1u);
}

TEST(span_store, spans_of_one_trace_arriving_days_apart_are_one_trace) {
  io::mem_file_system fs;
  auto store = *span_store::open(fs, options());
  ASSERT_TRUE(store->append(
      std::vector{make_span(7, 1, 0, "orders", "reserve", day0, 1000us, span_kind::producer)},
      day0));
  // Filler traffic in between, across many segments.
  for (int i = 0; i < 200; ++i) {
    std::vector<span> filler;
    for (int j = 0; j < 10; ++j) {
      filler.push_back(make_span(1000 + static_cast<std::uint64_t>(i),
                                 static_cast<std::uint64_t>(j) + 1, 0, "noise", "op",
                                 day0 + std::chrono::hours(i), 5us));
    }
    ASSERT_TRUE(store->append(filler, day0 + std::chrono::hours(i)));
  }
  const wall_time later = day0 + std::chrono::hours(24 * 7);
  ASSERT_TRUE(store->append(
      std::vector{make_span(7, 2, 1, "orders", "expire", later, 200us, span_kind::consumer)},
      later));
  ASSERT_TRUE(store->sync());
  EXPECT_GT(store->stats().segments, 2u);
  auto trace = store->get_trace(id128{0xabc, 7});
  ASSERT_TRUE(trace);
  ASSERT_EQ(trace->size(), 2u);
  EXPECT_EQ((*trace)[0].name, "reserve");
  EXPECT_EQ((*trace)[1].name, "expire");
  // Search finds it at the root's time, not the late span's.
  trace_query q;
  q.service_name = "orders";
  q.end_ts_ms = ms(day0) + 1;
  q.lookback_ms = 1000;
  auto found = store->find_traces(q);
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->front().size(), 2u);
}

class search : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = span_store::open(fs_, options());
    ASSERT_TRUE(s);
    store_ = std::move(*s);
    // trace 1: frontend GET /a (SERVER, 50 ms) -> backend query (CLIENT to mysql, 30 ms) with tags
    auto root = make_span(1, 1, 0, "Frontend", "GET /a", day0, 50000us);
    auto db = make_span(1, 2, 1, "backend", "query", day0 + 1ms, 30000us, span_kind::client);
    db.remote_endpoint.service_name = "mysql";
    db.attributes.push_back({"db.system", attribute_value::of("mysql")});
    db.events.push_back({db.start_ns, "retried", {}});
    auto backend = make_span(1, 3, 1, "backend", "serve", day0 + 1ms, 40000us, span_kind::server);
    // trace 2: frontend GET /b, fast, one hour later
    auto other = make_span(2, 1, 0, "frontend", "GET /b", day0 + 1h, 2000us);
    other.status.code = status_code::error;
    ASSERT_TRUE(store_->append(std::vector{root, db, backend, other}, day0));
  }

  trace_query window() const {
    trace_query q;
    q.end_ts_ms = ms(day0 + 2h);
    q.lookback_ms = std::chrono::duration_cast<std::chrono::milliseconds>(3h).count();
    return q;
  }
  std::vector<std::uint64_t> ids(const trace_query& q) const {
    auto r = store_->find_traces(q);
    EXPECT_TRUE(r);
    std::vector<std::uint64_t> out;
    for (const auto& t : *r) out.push_back(t.front().trace_id.low);
    return out;
  }

  io::mem_file_system fs_;
  std::unique_ptr<span_store> store_;
};

TEST_F(search, newest_first_within_the_window_and_limit) {
  EXPECT_EQ(ids(window()), (std::vector<std::uint64_t>{2, 1}));
  auto q = window();
  q.limit = 1;
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{2}));
  q = window();
  q.end_ts_ms = ms(day0 + 30min);
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q.lookback_ms = 1;
  q.end_ts_ms = ms(day0) - 1;
  EXPECT_TRUE(ids(q).empty());
}

TEST_F(search, by_service_span_name_and_remote_service_case_insensitive) {
  auto q = window();
  q.service_name = "FRONTEND";
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{2, 1}));
  q.span_name = "get /a";
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q = window();
  q.service_name = "backend";
  q.remote_service_name = "mysql";
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q.service_name = "frontend";  // mysql is backend's remote, not frontend's
  EXPECT_TRUE(ids(q).empty());
  q = window();
  q.service_name = "nobody";
  EXPECT_TRUE(ids(q).empty());
}

TEST_F(search, by_duration_of_the_services_spans) {
  auto q = window();
  q.min_duration_us = 45000;
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q.service_name = "backend";  // backend's spans are 30 and 40 ms
  EXPECT_TRUE(ids(q).empty());
  q.min_duration_us = 35000;
  q.max_duration_us = 45000;
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q = window();
  q.min_duration_us = 1000;
  q.max_duration_us = 3000;
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{2}));
}

TEST_F(search, by_annotation_query_tags_and_annotations) {
  auto q = window();
  q.annotation_query = {{"db.system", "mysql"}};
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q.annotation_query = {{"db.system", "postgres"}};
  EXPECT_TRUE(ids(q).empty());
  q.annotation_query = {{"retried", std::nullopt}, {"db.system", std::nullopt}};
  EXPECT_EQ(ids(q), (std::vector<std::uint64_t>{1}));
  q.service_name = "frontend";  // the tag is on backend's span
  EXPECT_TRUE(ids(q).empty());
}

TEST_F(search, names_autocomplete_and_dependencies) {
  EXPECT_EQ(store_->service_names(), (std::vector<std::string>{"backend", "frontend"}));
  EXPECT_EQ(store_->span_names("Frontend"), (std::vector<std::string>{"get /a", "get /b"}));
  EXPECT_EQ(store_->remote_service_names("backend"), (std::vector<std::string>{"mysql"}));
  EXPECT_TRUE(store_->span_names("nobody").empty());
  EXPECT_EQ(store_->autocomplete_keys(), (std::vector<std::string>{"db.system"}));
  EXPECT_EQ(store_->autocomplete_values("db.system"), (std::vector<std::string>{"mysql"}));
  auto deps = store_->dependencies(ms(day0 + 2h), 3 * 3600 * 1000);
  ASSERT_TRUE(deps);
  ASSERT_EQ(deps->size(), 2u);
  EXPECT_EQ((*deps)[0].parent, "backend");
  EXPECT_EQ((*deps)[0].child, "mysql");
  EXPECT_EQ((*deps)[1].parent, "frontend");
  EXPECT_EQ((*deps)[1].child, "backend");
  EXPECT_EQ((*deps)[1].call_count, 1u);
}

TEST(span_store, retention_by_age_drops_old_segments_only) {
  io::mem_file_system fs;
  auto opts = options();
  opts.max_age = 24h;
  auto store = *span_store::open(fs, opts);
  for (int i = 0; i < 100; ++i) {
    std::vector<span> batch;
    for (int j = 0; j < 10; ++j) {
      batch.push_back(make_span(static_cast<std::uint64_t>(i) + 1,
                                static_cast<std::uint64_t>(j) + 1, 0, "svc", "op",
                                day0 + std::chrono::hours(i), 5us));
    }
    ASSERT_TRUE(store->append(batch, day0 + std::chrono::hours(i)));
  }
  ASSERT_TRUE(store->sync());
  const auto before = store->stats();
  auto dropped = store->enforce_retention(day0 + std::chrono::hours(100));
  ASSERT_TRUE(dropped);
  EXPECT_GT(*dropped, 0u);
  const auto after = store->stats();
  EXPECT_LT(after.bytes_on_disk, before.bytes_on_disk);
  EXPECT_LT(after.traces, before.traces);
  EXPECT_TRUE(store->get_trace(id128{0xabc, 1})->empty());
  EXPECT_EQ(store->get_trace(id128{0xabc, 100})->size(), 10u);  // the newest day stays
  EXPECT_EQ(store->get_trace(id128{0xabc, 80})->size(), 10u);
  store.reset();
  auto reopened = *span_store::open(fs, opts);
  EXPECT_EQ(reopened->stats().traces, after.traces);
}

TEST(span_store, retention_by_size_keeps_the_store_under_the_limit) {
  io::mem_file_system fs;
  auto opts = options();
  opts.max_age = nanoseconds::zero();
  opts.max_bytes = 64 * 1024;
  auto store = *span_store::open(fs, opts);
  for (int i = 0; i < 400; ++i) {
    std::vector<span> batch;
    for (int j = 0; j < 10; ++j) {
      batch.push_back(make_span(static_cast<std::uint64_t>(i) + 1,
                                static_cast<std::uint64_t>(j) + 1, 0, "svc", "op", day0, 5us));
    }
    ASSERT_TRUE(store->append(batch, day0));
  }
  ASSERT_TRUE(store->sync());
  ASSERT_GT(store->stats().bytes_on_disk, opts.max_bytes);
  ASSERT_TRUE(store->enforce_retention(day0));
  EXPECT_LE(store->stats().bytes_on_disk, opts.max_bytes + opts.segment_bytes);
  EXPECT_EQ(store->get_trace(id128{0xabc, 400})->size(), 10u);
}

// Names and autocomplete values leave the lists with the last retained span
// that uses them; a trace partly dropped is no longer found by what it lost.
TEST(span_store, retention_prunes_names_and_values_no_retained_span_uses) {
  io::mem_file_system fs;
  simulated_clock clock(day0);
  auto opts = options();
  opts.max_age = 24h;
  auto store = *span_store::open(fs, opts);
  auto tagged = [](span s, std::string key, std::string value) {
    s.attributes.push_back({std::move(key), attribute_value::of(std::move(value))});
    return s;
  };
  // Day 0: services old-svc and both; trace 1 starts here.
  for (int i = 0; i < 40; ++i) {
    const auto t = static_cast<std::uint64_t>(i) + 1;
    auto client = make_span(t, 1, 0, "old-svc", "old-op", clock.now(), 5us, span_kind::client);
    client.remote_endpoint.service_name = "old-remote";
    ASSERT_TRUE(store->append(
        std::vector<span>{
            tagged(tagged(std::move(client), "old.key", "x"), "k", "old"),
            tagged(make_span(t, 2, 1, "both", "shared-op", clock.now(), 5us), "k", "both")},
        clock.now()));
  }
  // More of day 0 without those names, so that the segment where day 0 ends
  // (kept: it also holds newer spans) holds none of them.
  for (int i = 0; i < 150; ++i) {
    const auto t = static_cast<std::uint64_t>(i) + 500;
    ASSERT_TRUE(store->append(
        std::vector<span>{make_span(t, 1, 0, "both", "shared-op", clock.now(), 5us)}, clock.now()));
  }
  clock.advance(48h);
  // Two days later: trace 1 gets a late span; new segments only hold new names.
  ASSERT_TRUE(store->append(
      std::vector<span>{make_span(1, 3, 1, "late-svc", "late-op", clock.now(), 5us)}, clock.now()));
  for (int i = 0; i < 40; ++i) {
    const auto t = static_cast<std::uint64_t>(i) + 1000;
    ASSERT_TRUE(
        store->append(std::vector<span>{tagged(
                          make_span(t, 1, 0, "both", "shared-op", clock.now(), 5us), "k", "new")},
                      clock.now()));
  }
  ASSERT_TRUE(store->sync());
  EXPECT_EQ(store->service_names(), (std::vector<std::string>{"both", "late-svc", "old-svc"}));
  ASSERT_TRUE(store->enforce_retention(clock.now()));

  auto check = [&](const span_store& s) {
    EXPECT_EQ(s.service_names(), (std::vector<std::string>{"both", "late-svc"}));
    EXPECT_TRUE(s.span_names("old-svc").empty());
    EXPECT_TRUE(s.remote_service_names("old-svc").empty());
    EXPECT_EQ(s.span_names("both"), (std::vector<std::string>{"shared-op"}));
    EXPECT_EQ(s.autocomplete_keys(), (std::vector<std::string>{"k"}));
    EXPECT_EQ(s.autocomplete_values("k"), (std::vector<std::string>{"new"}));
    EXPECT_TRUE(s.autocomplete_values("old.key").empty());
    // Trace 1 keeps only its late span, and is found by it only.
    auto trace = s.get_trace(id128{0xabc, 1});
    ASSERT_TRUE(trace);
    ASSERT_EQ(trace->size(), 1u);
    EXPECT_EQ((*trace)[0].name, "late-op");
    trace_query q;
    q.end_ts_ms = ms(clock.now());
    q.lookback_ms = 7LL * 24 * 3600 * 1000;
    q.limit = 100;
    q.service_name = "old-svc";
    EXPECT_TRUE(s.find_traces(q)->empty());
    q.service_name = "late-svc";
    EXPECT_EQ(s.find_traces(q)->size(), 1u);
  };
  check(*store);
  const auto before = store->stats();
  store.reset();
  auto reopened = *span_store::open(fs, opts);  // the same lists when rebuilt from the log
  check(*reopened);
  EXPECT_EQ(reopened->stats().spans, before.spans);
}

// A long-running store whose span, service and remote names keep changing
// (a name per request, say) holds only the names its retained spans use: the
// intern table shrinks with retention, and reused ids do not mix names up.
TEST(span_store, interned_names_are_freed_when_retention_drops_their_spans) {
  io::mem_file_system fs;
  auto opts = options();
  opts.max_age = nanoseconds::zero();
  opts.max_bytes = 32 * 1024;
  auto store = *span_store::open(fs, opts);
  std::uint64_t peak = 0;
  constexpr int rounds = 2000;
  for (int i = 0; i < rounds; ++i) {
    const auto t = static_cast<std::uint64_t>(i) + 1;
    const std::string n = std::to_string(i);
    auto client =
        make_span(t, 1, 0, "svc-" + n, "Op-" + n, day0, 5us, span_kind::client);  // upper case too
    client.remote_endpoint.service_name = "remote-" + n;
    ASSERT_TRUE(store->append(
        std::vector<span>{std::move(client), make_span(t, 2, 1, "stable", "get", day0, 5us)},
        day0));
    if (i % 50 == 49) {
      ASSERT_TRUE(store->sync());
      ASSERT_TRUE(store->enforce_retention(day0));
    }
    peak = std::max(peak, store->stats().strings);
  }
  ASSERT_TRUE(store->sync());
  ASSERT_TRUE(store->enforce_retention(day0));
  const auto st = store->stats();
  // Three names per round and two stable ones: bounded by what the retained
  // bytes hold, far below what was ever seen.
  EXPECT_LT(peak, 3u * rounds / 4);
  EXPECT_LE(st.strings, 3 * st.traces + 2);
  EXPECT_GE(st.strings, 3 * st.traces);
  // The newest names (on reused ids) still answer queries; dropped ones do not.
  const std::string last = std::to_string(rounds - 1);
  EXPECT_EQ(store->span_names("svc-" + last), std::vector<std::string>{"op-" + last});
  EXPECT_EQ(store->remote_service_names("svc-" + last), std::vector<std::string>{"remote-" + last});
  EXPECT_TRUE(store->span_names("svc-0").empty());
  trace_query q;
  q.end_ts_ms = ms(day0) + 1;
  q.lookback_ms = 3600 * 1000;
  q.service_name = "svc-" + last;
  q.span_name = "OP-" + last;
  auto found = store->find_traces(q);
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0][0].name, "Op-" + last);
  q.service_name = "svc-0";
  q.span_name = "";
  EXPECT_TRUE(store->find_traces(q)->empty());
  const auto services = store->service_names();
  EXPECT_EQ(services.size(), st.traces + 1);  // svc-N of each retained trace, and "stable"
}

// What queries see of a store, to compare one opened from index files with one
// rebuilt from the log.
std::string snapshot(const span_store& s, wall_time now) {
  std::string out;
  const auto st = s.stats();
  out += "spans=" + std::to_string(st.spans) + " traces=" + std::to_string(st.traces) +
         " records=" + std::to_string(st.records) + " strings=" + std::to_string(st.strings) + "\n";
  for (const auto& svc : s.service_names()) {
    out += "service " + svc + ":";
    for (const auto& n : s.span_names(svc)) out += " " + n;
    out += " |";
    for (const auto& n : s.remote_service_names(svc)) out += " " + n;
    out += "\n";
  }
  for (const auto& k : s.autocomplete_keys()) {
    out += "key " + k + ":";
    for (const auto& v : s.autocomplete_values(k)) out += " " + v;
    out += "\n";
  }
  trace_query q;
  q.end_ts_ms = ms(now) + 1;
  q.lookback_ms = 30LL * 24 * 3600 * 1000;
  q.limit = 1000;
  for (const std::string svc : {"", "svc-1", "edge"}) {
    q.service_name = svc;
    const auto found = s.find_traces(q);
    for (const auto& trace : *found) {
      out += "trace " + trace[0].trace_id.to_hex() + " " + std::to_string(trace.size()) + "\n";
    }
  }
  q.service_name = "";
  q.min_duration_us = 40;
  out += "slow " + std::to_string(s.find_traces(q)->size()) + "\n";
  for (std::uint64_t t = 1; t <= 3; ++t) {
    for (const auto& id : s.traces_linking_to(id128{0xabc, t})) out += "link " + id.to_hex() + "\n";
  }
  auto links = s.dependencies(ms(now) + 1, 30LL * 24 * 3600 * 1000);
  for (const auto& l : *links)
    out += "dep " + l.parent + ">" + l.child + " " + std::to_string(l.call_count) + "\n";
  return out;
}

// Many small segments of varied spans (names, tags, links, a trace across days).
void fill(span_store& store, wall_time start) {
  for (int i = 0; i < 300; ++i) {
    const auto t = static_cast<std::uint64_t>(i % 120) + 1;  // traces get spans in later batches
    const wall_time at = start + std::chrono::minutes(i);
    auto root = make_span(t, static_cast<std::uint64_t>(i) * 4 + 1, i < 120 ? 0 : 7, "Edge",
                          "GET /" + std::to_string(i % 7), at,
                          std::chrono::microseconds(10 + i % 50), span_kind::server);
    root.attributes.push_back({"http.method", attribute_value::of(i % 2 ? "GET" : "POST")});
    root.attributes.push_back({"retry", attribute_value::of_int(i % 3)});
    auto client = make_span(t, static_cast<std::uint64_t>(i) * 4 + 2, root.span_id, "edge", "call",
                            at, 5us, span_kind::client);
    client.remote_endpoint.service_name = "svc-" + std::to_string(i % 5);
    if (i % 10 == 0) client.links.push_back({id128{0xabc, 1 + t % 3}, 1, "", {}});
    auto server = make_span(t, static_cast<std::uint64_t>(i) * 4 + 3, client.span_id,
                            "svc-" + std::to_string(i % 5), "serve", at, 4us);
    ASSERT_TRUE(store.append(std::vector<span>{root, client, server}, at));
  }
  ASSERT_TRUE(store.sync());
}

std::vector<std::string> index_files(io::mem_file_system& fs) {
  auto names = fs.list_dir("/data/index");
  return names ? *names : std::vector<std::string>{};
}

TEST(span_store, restart_reads_finished_segments_from_index_files) {
  io::mem_file_system fs;
  const wall_time end = day0 + std::chrono::minutes(300);
  std::string live;
  {
    auto store = *span_store::open(fs, options());
    fill(*store, day0);
    live = snapshot(*store, end);
    EXPECT_GT(store->stats().segments, 5u);
    // Every finished segment has its file; the active one does not.
    EXPECT_EQ(index_files(fs).size(), store->stats().segments - 1);
  }
  auto reopened = *span_store::open(fs, options());
  EXPECT_EQ(snapshot(*reopened, end), live);
  // New spans after the restart: the active segment keeps being journaled.
  fill(*reopened, end);
  const std::string more = snapshot(*reopened, end + std::chrono::minutes(300));
  EXPECT_EQ(index_files(fs).size(), reopened->stats().segments - 1);
  reopened.reset();
  // The same from index files as from the log alone.
  auto from_files = *span_store::open(fs, options());
  EXPECT_EQ(snapshot(*from_files, end + std::chrono::minutes(300)), more);
  from_files.reset();
  for (const auto& name : index_files(fs)) ASSERT_TRUE(fs.remove_file("/data/index/" + name));
  auto from_log = *span_store::open(fs, options());
  EXPECT_EQ(snapshot(*from_log, end + std::chrono::minutes(300)), more);
  EXPECT_EQ(index_files(fs).size(), from_log->stats().segments - 1);  // written again
}

TEST(span_store, a_damaged_or_foreign_index_file_falls_back_to_the_log) {
  io::mem_file_system fs;
  const wall_time end = day0 + std::chrono::minutes(300);
  std::string live;
  {
    auto store = *span_store::open(fs, options());
    fill(*store, day0);
    live = snapshot(*store, end);
  }
  auto files = index_files(fs);
  ASSERT_GE(files.size(), 4u);
  auto read_all = [&](const std::string& path) {
    auto f = *fs.open_for_read(path);
    std::string bytes(static_cast<std::size_t>(*f->size()), '\0');
    EXPECT_TRUE(f->read_at(0, std::as_writable_bytes(std::span(bytes))));
    return bytes;
  };
  auto write_all = [&](const std::string& path, const std::string& bytes) {
    auto f = *fs.open_for_append(path);
    ASSERT_TRUE(f->truncate(0));
    ASSERT_TRUE(f->append(std::as_bytes(std::span(bytes))));
  };
  const std::string dir = "/data/index/";
  const std::string original = read_all(dir + files[0]);
  ASSERT_TRUE(
      fs.corrupt_for_test(dir + files[0], original.size() / 2, std::byte{0x10}));  // bit flip
  write_all(dir + files[1], read_all(dir + files[1]).substr(0, 40));               // torn
  write_all(dir + files[2], read_all(dir + files[3]));  // another segment's file
  write_all(dir + files[3], "");                        // empty
  {
    auto reopened = *span_store::open(fs, options());
    EXPECT_EQ(snapshot(*reopened, end), live);
  }
  EXPECT_EQ(read_all(dir + files[0]), original);  // rewritten from the log
  auto again = *span_store::open(fs, options());
  EXPECT_EQ(snapshot(*again, end), live);
}

TEST(span_store, retention_removes_index_files_of_dropped_segments) {
  io::mem_file_system fs;
  auto opts = options();
  opts.max_age = 24h;
  auto store = *span_store::open(fs, opts);
  fill(*store, day0);
  fill(*store, day0 + 72h);
  const auto before = index_files(fs).size();
  ASSERT_TRUE(store->enforce_retention(day0 + 72h + std::chrono::minutes(300)));
  EXPECT_LT(index_files(fs).size(), before);
  EXPECT_EQ(index_files(fs).size(), store->stats().segments - 1);
  const std::string live = snapshot(*store, day0 + 80h);
  store.reset();
  auto reopened = *span_store::open(fs, opts);
  EXPECT_EQ(snapshot(*reopened, day0 + 80h), live);
}

TEST(span_store, reports_disk_and_memory_per_span) {
  io::mem_file_system fs;
  auto store = *span_store::open(fs, options());
  std::vector<span> batch;
  for (int j = 0; j < 100; ++j) {
    auto s = make_span(static_cast<std::uint64_t>(j / 10) + 1, static_cast<std::uint64_t>(j) + 1, 0,
                       "svc", "op", day0, 5us);
    for (int a = 0; a < 10; ++a)
      s.attributes.push_back({"attribute." + std::to_string(a), attribute_value::of("value")});
    batch.push_back(std::move(s));
  }
  ASSERT_TRUE(store->append(batch, day0));
  const auto st = store->stats();
  EXPECT_EQ(st.spans, 100u);
  EXPECT_EQ(st.traces, 10u);
  EXPECT_GT(st.index_bytes, 0u);
  EXPECT_LT(st.bytes_on_disk / st.spans, 400u);
}

}  // namespace
}  // namespace outrider::tracing
