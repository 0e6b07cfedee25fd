#include "broker_client/codec.h"

#include <cstring>
#include <gtest/gtest.h>
#include <random>

#include "base/crc32c.h"

namespace outrider::broker_client {
namespace {

using namespace std::chrono_literals;

wall_time at_ns(std::int64_t ns) {
  return wall_time(std::chrono::duration_cast<wall_time::duration>(nanoseconds(ns)));
}

// Parses exactly one frame out of `wire` and checks its header.
frame one_frame(const std::string& wire, wire::opcode op, std::uint32_t request_id) {
  std::size_t used = 0;
  auto f = parse_frame(wire, wire::default_max_frame_bytes, used);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (!f.ok() || !*f) {
    ADD_FAILURE() << "no complete frame";
    return {};
  }
  EXPECT_EQ(used, wire.size());
  EXPECT_EQ((*f)->op, op);
  EXPECT_EQ((*f)->request_id, request_id);
  EXPECT_EQ((*f)->version, wire::protocol_version);
  return **f;
}

TEST(broker_codec, frame_layout_matches_the_documented_one) {
  std::string wire;
  encode_ping(wire, 0x01020304);
  ASSERT_EQ(wire.size(), wire::frame_overhead);
  std::uint32_t length = 0;
  std::memcpy(&length, wire.data(), 4);
  EXPECT_EQ(length, wire::frame_min_length);
  EXPECT_EQ(static_cast<std::uint8_t>(wire[4]), wire::protocol_version);
  EXPECT_EQ(static_cast<std::uint8_t>(wire[5]), static_cast<std::uint8_t>(wire::opcode::ping));
  EXPECT_EQ(static_cast<std::uint8_t>(wire[6]), 0x04);  // little-endian request id
  std::uint32_t crc = 0;
  std::memcpy(&crc, wire.data() + 10, 4);
  EXPECT_EQ(crc32c_unmask(crc),
            crc32c(std::as_bytes(std::span<const char>(wire.data(), wire::header_size))));
}

TEST(broker_codec, hello_and_session_frames_round_trip) {
  std::string w;
  encode_hello(w, 1, hello{1, 3, "sidecar-7"});
  auto h = decode_hello(one_frame(w, wire::opcode::hello, 1).payload);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->min_version, 1);
  EXPECT_EQ(h->max_version, 3);
  EXPECT_EQ(h->client_name, "sidecar-7");

  w.clear();
  encode_hello_ok(w, 1, hello_ok{1, 5000000, 1048576, 4096, "outrider-broker"});
  auto ok = decode_hello_ok(one_frame(w, wire::opcode::hello_ok, 1).payload);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->max_frame_bytes, 5000000U);
  EXPECT_EQ(ok->max_body_bytes, 1048576U);
  EXPECT_EQ(ok->max_batch_messages, 4096U);
  EXPECT_EQ(ok->server_name, "outrider-broker");

  w.clear();
  encode_pong(w, 9);
  EXPECT_TRUE(decode_empty(one_frame(w, wire::opcode::pong, 9).payload, "PONG").ok());

  w.clear();
  encode_error(w, 4, error(errc::queue_not_found, "queue 'x' not found"));
  error e;
  ASSERT_TRUE(decode_error(one_frame(w, wire::opcode::error, 4).payload, e).ok());
  EXPECT_EQ(e.code, errc::queue_not_found);
  EXPECT_EQ(e.message, "queue 'x' not found");

  w.clear();
  encode_ok(w, 5, 77);
  auto v = decode_ok(one_frame(w, wire::opcode::ok, 5).payload);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 77U);
}

TEST(broker_codec, publish_and_confirm_round_trip) {
  std::vector<outgoing_message> batch(3);
  batch[0] = {"orders", id128{1, 2}, {{"traceparent", "00-abc"}, {"k", ""}}, "body-0", {}};
  batch[1] = {"topic.x", id128{}, {}, std::string(100000, 'z'), at_ns(1'700'000'000'123'456'789)};
  batch[2] = {"q", id128{3, 4}, {{"a", "b"}}, "", {}};
  std::string w;
  encode_publish(w, 42, batch);
  auto decoded = decode_publish(one_frame(w, wire::opcode::publish, 42).payload);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const auto& b = **decoded;
  ASSERT_EQ(b.messages.size(), 3U);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(b.messages[i].destination, batch[i].destination);
    EXPECT_EQ(b.messages[i].id, batch[i].id);
    EXPECT_EQ(b.messages[i].body, batch[i].body);
    EXPECT_EQ(b.messages[i].deliver_at, batch[i].deliver_at);
    auto hs = b.headers_of(b.messages[i]);
    ASSERT_EQ(hs.size(), batch[i].headers.size());
    for (std::size_t h = 0; h < hs.size(); ++h) {
      EXPECT_EQ(hs[h].name, batch[i].headers[h].first);
      EXPECT_EQ(hs[h].value, batch[i].headers[h].second);
    }
  }
  // The batch owns its bytes: the receive buffer may go away.
  w.assign(w.size(), '\0');
  EXPECT_EQ(b.messages[0].body, "body-0");

  std::vector<publish_result> results(2);
  results[0] = {id128{5, 6}, {}};
  results[1] = {id128{7, 8}, error(errc::message_too_large, "body of 2000000 bytes")};
  w.clear();
  encode_confirm(w, 42, results);
  auto c = decode_confirm(one_frame(w, wire::opcode::confirm, 42).payload);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 2U);
  EXPECT_TRUE((*c)[0].outcome.ok());
  EXPECT_EQ((*c)[0].id, (id128{5, 6}));
  ASSERT_FALSE((*c)[1].outcome.ok());
  EXPECT_EQ((*c)[1].outcome.error().code, errc::message_too_large);
  EXPECT_EQ((*c)[1].outcome.error().message, "body of 2000000 bytes");
}

// encode_publish sizes the frame before writing it: the string is allocated
// once, to exactly the frame (libstdc++ grows an empty string to the size
// reserved; a short count would grow it again, to about twice that).
TEST(broker_codec, a_publish_frame_is_allocated_once_to_its_size) {
  std::vector<outgoing_message> batch(2);
  batch[0] = {"orders",
              id128{1, 2},
              {{"content-type", "application/cloudevents+json"}},
              std::string(1200, 'x'),
              {}};
  batch[1] = {"topic.y",
              id128{3, 4},
              {{"a", "b"}, {"traceparent", std::string(55, '0')}},
              std::string(300, 'y'),
              at_ns(1'700'000'000'000'000'000)};
  std::string w;
  encode_publish(w, 7, batch);
  EXPECT_EQ(w.capacity(), w.size());
  ASSERT_TRUE(decode_publish(one_frame(w, wire::opcode::publish, 7).payload).ok());
}

TEST(broker_codec, consume_frames_round_trip) {
  std::string w;
  encode_subscribe(w, 3, subscribe_request{"orders", 128, 45s});
  auto s = decode_subscribe(one_frame(w, wire::opcode::subscribe, 3).payload);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->queue, "orders");
  EXPECT_EQ(s->credit, 128U);
  EXPECT_EQ(s->lease, 45s);

  w.clear();
  encode_unsubscribe(w, 4, 99);
  EXPECT_EQ(*decode_unsubscribe(one_frame(w, wire::opcode::unsubscribe, 4).payload), 99U);

  std::vector<delivery> ds(2);
  ds[0] = {7, 1001, id128{1, 1}, 1, {{"h", "v"}}, "hello", at_ns(5), at_ns(3)};
  ds[1] = {7, 1002, id128{2, 2}, 4, {}, "", at_ns(0), at_ns(9)};
  w.clear();
  encode_deliver(w, 7, ds);
  auto d = decode_deliver(one_frame(w, wire::opcode::deliver, 0).payload);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2U);
  EXPECT_EQ((*d)[0].subscription, 7U);
  EXPECT_EQ((*d)[0].tag, 1001U);
  EXPECT_EQ((*d)[0].headers, ds[0].headers);
  EXPECT_EQ((*d)[0].body, "hello");
  EXPECT_EQ((*d)[0].deliver_at, at_ns(5));
  EXPECT_EQ((*d)[0].published_at, at_ns(3));
  EXPECT_EQ((*d)[1].attempt, 4U);
  EXPECT_EQ((*d)[1].id, (id128{2, 2}));

  w.clear();
  encode_credit(w, 5, 7, 64);
  auto cr = decode_credit(one_frame(w, wire::opcode::credit, 5).payload);
  ASSERT_TRUE(cr.ok());
  EXPECT_EQ(cr->first, 7U);
  EXPECT_EQ(cr->second, 64U);

  std::vector<delivery_tag> tags{1, 2, 1ULL << 60};
  w.clear();
  encode_ack(w, 6, tags);
  EXPECT_EQ(*decode_ack(one_frame(w, wire::opcode::ack, 6).payload), tags);

  std::vector<nack_entry> nacks{{5, 2s, false}, {6, {}, true}};
  w.clear();
  encode_nack(w, 7, nacks);
  auto n = decode_nack(one_frame(w, wire::opcode::nack, 7).payload);
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->size(), 2U);
  EXPECT_EQ((*n)[0].redeliver_after, 2s);
  EXPECT_FALSE((*n)[0].dead_letter);
  EXPECT_TRUE((*n)[1].dead_letter);

  // Release: a flag bit of its own; both flags together or unknown bits are refused.
  std::vector<nack_entry> released{{8, {}, false, true}};
  w.clear();
  encode_nack(w, 7, released);
  auto rel = decode_nack(one_frame(w, wire::opcode::nack, 7).payload);
  ASSERT_TRUE(rel.ok());
  ASSERT_EQ(rel->size(), 1U);
  EXPECT_TRUE((*rel)[0].release);
  EXPECT_FALSE((*rel)[0].dead_letter);
  std::vector<nack_entry> both{{9, {}, true, true}};
  w.clear();
  encode_nack(w, 7, both);
  EXPECT_EQ(decode_nack(one_frame(w, wire::opcode::nack, 7).payload).error().code,
            errc::protocol_error);
  w.clear();
  encode_nack(w, 7, released);
  std::string payload(one_frame(w, wire::opcode::nack, 7).payload);
  payload.back() = '\x04';  // an unknown flag bit
  EXPECT_EQ(decode_nack(payload).error().code, errc::protocol_error);

  w.clear();
  encode_subscription_closed(w, 7, error(errc::shutting_down, "bye"));
  error reason;
  auto sc = decode_subscription_closed(one_frame(w, wire::opcode::subscription_closed, 0).payload,
                                       reason);
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(*sc, 7U);
  EXPECT_EQ(reason.code, errc::shutting_down);

  std::vector<settle_failure> fails{{6, error(errc::delivery_not_found, "tag 6 expired")}};
  w.clear();
  encode_settle_result(w, 7, fails);
  auto f = decode_settle_result(one_frame(w, wire::opcode::settle_result, 7).payload);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1U);
  EXPECT_EQ((*f)[0].tag, 6U);
  EXPECT_EQ((*f)[0].err.code, errc::delivery_not_found);
}

TEST(broker_codec, topology_and_admin_frames_round_trip) {
  std::string w;
  encode_cancel_scheduled(w, 1, id128{11, 12});
  EXPECT_EQ(*decode_cancel_scheduled(one_frame(w, wire::opcode::cancel_scheduled, 1).payload),
            (id128{11, 12}));

  declare_request q{wire::declare_kind::queue, "orders", {3, "orders.dead", 10s}, {}};
  w.clear();
  encode_declare(w, 2, q);
  auto dq = decode_declare(one_frame(w, wire::opcode::declare, 2).payload);
  ASSERT_TRUE(dq.ok());
  EXPECT_EQ(dq->kind, wire::declare_kind::queue);
  EXPECT_EQ(dq->queue.max_attempts, 3U);
  EXPECT_EQ(dq->queue.dead_letter_queue, "orders.dead");
  EXPECT_EQ(dq->queue.lease, 10s);

  w.clear();
  encode_declare(w, 3, declare_request{wire::declare_kind::topic, "events", {}, {}});
  EXPECT_EQ(decode_declare(one_frame(w, wire::opcode::declare, 3).payload)->kind,
            wire::declare_kind::topic);
  w.clear();
  encode_declare(w, 4, declare_request{wire::declare_kind::binding, "events", {}, "events.app"});
  auto db = decode_declare(one_frame(w, wire::opcode::declare, 4).payload);
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db->bound_queue, "events.app");

  w.clear();
  encode_list_queues(w, 5);
  EXPECT_TRUE(decode_empty(one_frame(w, wire::opcode::list_queues, 5).payload, "x").ok());
  std::vector<queue_info> qs{{"a", 1, 2, 3, 4, 5}, {"b", 0, 0, 0, 0, 0}};
  w.clear();
  encode_queue_list(w, 5, qs);
  auto ql = decode_queue_list(one_frame(w, wire::opcode::queue_list, 5).payload);
  ASSERT_TRUE(ql.ok());
  ASSERT_EQ(ql->size(), 2U);
  EXPECT_EQ((*ql)[0].scheduled, 3U);
  EXPECT_EQ((*ql)[0].dead_letters, 4U);
  EXPECT_EQ((*ql)[0].consumers, 5U);

  w.clear();
  encode_peek(w, 6, peek_request{"a.dlq", 10});
  auto pk = decode_peek(one_frame(w, wire::opcode::peek, 6).payload);
  ASSERT_TRUE(pk.ok());
  EXPECT_EQ(pk->queue, "a.dlq");
  EXPECT_EQ(pk->max, 10U);
  w.clear();
  encode_peek_id(w, 7, peek_request{"jobs.app", 0, id128{3, 4}});
  auto pi = decode_peek_id(one_frame(w, wire::opcode::peek_id, 7).payload);
  ASSERT_TRUE(pi.ok());
  EXPECT_EQ(pi->queue, "jobs.app");
  EXPECT_EQ(pi->id, (id128{3, 4}));
  w.clear();
  encode_peek_id(w, 7, peek_request{"jobs.app", 0, id128{}});
  EXPECT_FALSE(decode_peek_id(one_frame(w, wire::opcode::peek_id, 7).payload).ok());
  std::vector<peeked_message> pm(1);
  pm[0] = {id128{1, 9}, peeked_state::retry_wait, 2, {{"x", "y"}}, "b", at_ns(8), at_ns(4)};
  w.clear();
  encode_peek_result(w, 6, pm);
  auto pr = decode_peek_result(one_frame(w, wire::opcode::peek_result, 6).payload);
  ASSERT_TRUE(pr.ok());
  ASSERT_EQ(pr->size(), 1U);
  EXPECT_EQ((*pr)[0].state, peeked_state::retry_wait);
  EXPECT_EQ((*pr)[0].failed_attempts, 2U);
  EXPECT_EQ((*pr)[0].headers, pm[0].headers);

  w.clear();
  encode_replay_dead_letters(w, 7, replay_request{"a.dlq", 0});
  auto rp = decode_replay_dead_letters(one_frame(w, wire::opcode::replay_dead_letters, 7).payload);
  ASSERT_TRUE(rp.ok());
  EXPECT_EQ(rp->dead_letter_queue, "a.dlq");

  w.clear();
  encode_stats(w, 8);
  EXPECT_TRUE(decode_empty(one_frame(w, wire::opcode::stats, 8).payload, "STATS").ok());
  stat_list st{{"published", 10}, {"delivered", 9}};
  w.clear();
  encode_stats_result(w, 8, st);
  EXPECT_EQ(*decode_stats_result(one_frame(w, wire::opcode::stats_result, 8).payload), st);
}

TEST(broker_codec, frames_parse_incrementally_and_back_to_back) {
  std::string w;
  encode_ping(w, 1);
  encode_ok(w, 2, 3);
  encode_cancel_scheduled(w, 3, id128{1, 2});
  // Every strict prefix of the first frame asks for more bytes.
  std::string first_size_probe;
  encode_ping(first_size_probe, 1);
  for (std::size_t n = 0; n < first_size_probe.size(); ++n) {
    std::size_t used = 7;
    auto f = parse_frame(std::string_view(w).substr(0, n), wire::default_max_frame_bytes, used);
    ASSERT_TRUE(f.ok()) << n;
    EXPECT_FALSE(f->has_value()) << n;
    EXPECT_EQ(used, 0U);
  }
  std::string_view rest = w;
  std::vector<wire::opcode> ops;
  while (!rest.empty()) {
    std::size_t used = 0;
    auto f = parse_frame(rest, wire::default_max_frame_bytes, used);
    ASSERT_TRUE(f.ok() && f->has_value());
    ops.push_back((*f)->op);
    rest.remove_prefix(used);
  }
  EXPECT_EQ(ops,
            (std::vector{wire::opcode::ping, wire::opcode::ok, wire::opcode::cancel_scheduled}));
}

void expect_protocol_error(std::string_view bytes, std::string_view fragment,
                           std::size_t max_frame = wire::default_max_frame_bytes) {
  std::size_t used = 0;
  auto f = parse_frame(bytes, max_frame, used);
  ASSERT_FALSE(f.ok()) << "accepted: " << fragment;
  EXPECT_EQ(f.error().code, errc::protocol_error);
  EXPECT_NE(f.error().message.find(fragment), std::string::npos) << f.error().message;
}

TEST(broker_codec, bad_frames_are_rejected_with_a_clear_error) {
  std::string good;
  encode_subscribe(good, 1, subscribe_request{"q", 1, {}});

  auto flipped = good;
  flipped[12] = static_cast<char>(flipped[12] ^ 0x40);  // a payload bit
  expect_protocol_error(flipped, "checksum");

  auto bad_op = good;
  bad_op[wire::opcode_offset] = static_cast<char>(0x7f);
  expect_protocol_error(bad_op, "unknown opcode 0x7f");
  // The opcode is checked as soon as the header is in, before the payload.
  expect_protocol_error(std::string_view(bad_op).substr(0, wire::header_size), "unknown opcode");

  auto bad_version = good;
  bad_version[wire::version_offset] = 9;
  expect_protocol_error(bad_version, "unsupported frame version 9");

  std::string tiny(4, '\0');
  tiny[0] = 3;  // length 3 < minimum
  expect_protocol_error(tiny, "below the minimum");

  std::string huge(4, '\0');
  const std::uint32_t big = 0xfffffff0U;
  std::memcpy(huge.data(), &big, 4);
  expect_protocol_error(huge, "exceeds the limit");
  expect_protocol_error(good, "exceeds the limit", good.size() - 1);
}

TEST(broker_codec, bad_payloads_are_rejected_never_crash) {
  // Truncations of a valid payload and trailing garbage.
  std::vector<outgoing_message> batch{{"q", id128{1, 1}, {{"a", "b"}}, "body", {}}};
  std::string w;
  encode_publish(w, 1, batch);
  auto f = one_frame(w, wire::opcode::publish, 1);
  for (std::size_t n = 0; n < f.payload.size(); ++n) {
    auto r = decode_publish(f.payload.substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code, errc::protocol_error);
  }
  std::string trailing(f.payload);
  trailing.push_back('x');
  auto t = decode_publish(trailing);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("trailing"), std::string::npos);

  // A forged count cannot drive a huge allocation.
  std::string forged(4, '\xff');
  auto fc = decode_ack(forged);
  ASSERT_FALSE(fc.ok());
  auto fp = decode_publish(forged);
  ASSERT_FALSE(fp.ok());

  // An empty batch is malformed; an unknown declare kind too.
  std::string empty_batch(4, '\0');
  EXPECT_FALSE(decode_publish(empty_batch).ok());
  std::string bad_kind{"\x09\x00\x00\x00\x00", 5};
  auto dk = decode_declare(bad_kind);
  ASSERT_FALSE(dk.ok());
  EXPECT_NE(dk.error().message.find("kind 9"), std::string::npos);

  // Unknown error numbers from a newer peer map to internal.
  EXPECT_EQ(errc_from_wire(65000), errc::internal);
  EXPECT_EQ(errc_from_wire(500), errc::queue_not_found);

  // Random garbage through every decoder.
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 64, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    std::size_t used = 0;
    (void)parse_frame(junk, wire::default_max_frame_bytes, used);
    (void)decode_publish(junk);
    (void)decode_deliver(junk);
    (void)decode_confirm(junk);
    (void)decode_nack(junk);
    (void)decode_peek_result(junk);
    (void)decode_declare(junk);
  }
}

}  // namespace
}  // namespace outrider::broker_client
