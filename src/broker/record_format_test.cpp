#include "broker/record_format.h"

#include <gtest/gtest.h>

#include "base/random.h"

namespace outrider::broker {
namespace {

publish_record sample_publish() {
  publish_record r;
  r.id = id128{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  r.published_at_ns = 1'767'225'600'000'000'000;
  r.deliver_at_ns = r.published_at_ns + 7LL * 24 * 3600 * 1'000'000'000;
  r.source = "orders";
  r.destinations = {"orders.billing", "orders.shipping"};
  r.headers = {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
               {"content-type", "application/json"}};
  r.body = std::string("{\"order\":42}\0binary", 19);
  return r;
}

TEST(broker_record_format, every_record_round_trips) {
  const publish_record p = sample_publish();
  EXPECT_EQ(*decode_publish(encode(p)), p);
  EXPECT_EQ(encode(p).size(), encoded_size(p));
  const queue_declare_record q{"orders", 5, 30'000'000'000, "orders.dlq", false};
  EXPECT_EQ(*decode_queue_declare(encode(q)), q);
  const topic_declare_record t{"orders"};
  EXPECT_EQ(*decode_topic_declare(encode(t)), t);
  const bind_record b{"orders", "orders.billing"};
  EXPECT_EQ(*decode_bind(encode(b)), b);
  const ack_record a{"orders", p.id};
  EXPECT_EQ(*decode_ack(encode(a)), a);
  const nack_record n{"orders", p.id, 3, 123456789, nack_reason::lease_expired};
  EXPECT_EQ(*decode_nack(encode(n)), n);
  const nack_record released{"orders", p.id, 1, 0, nack_reason::released};
  EXPECT_EQ(*decode_nack(encode(released)), released);
  const dead_letter_record d{"orders", p.id, "orders.dlq", 5, nack_reason::consumer_gone};
  EXPECT_EQ(*decode_dead_letter(encode(d)), d);
  const dlq_replay_record r{"orders.dlq", p.id, "orders"};
  EXPECT_EQ(*decode_dlq_replay(encode(r)), r);
  const cancel_record c{p.id, 987654321};
  EXPECT_EQ(*decode_cancel(encode(c)), c);
}

TEST(broker_record_format, payload_starts_with_the_version_byte) {
  EXPECT_EQ(static_cast<std::uint8_t>(encode(topic_declare_record{"t"})[0]),
            record_format::current_version);
}

TEST(broker_record_format, every_truncation_is_data_corruption) {
  const std::string full = encode(sample_publish());
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto r = decode_publish(std::string_view(full).substr(0, n));
    ASSERT_FALSE(r) << "prefix " << n;
    EXPECT_EQ(r.error().code, errc::data_corruption);
  }
  const std::string nack = encode(nack_record{"q", id128{1, 2}, 1, 0, nack_reason::nack});
  for (std::size_t n = 0; n < nack.size(); ++n) {
    EXPECT_FALSE(decode_nack(std::string_view(nack).substr(0, n)));
  }
}

TEST(broker_record_format, rejects_unknown_version_trailing_bytes_and_bad_values) {
  std::string bytes = encode(ack_record{"q", id128{1, 2}});
  bytes[0] = 2;
  auto wrong_version = decode_ack(bytes);
  ASSERT_FALSE(wrong_version);
  EXPECT_NE(wrong_version.error().message.find("version"), std::string::npos);

  EXPECT_FALSE(decode_ack(encode(ack_record{"q", id128{1, 2}}) + "x"));

  std::string nack = encode(nack_record{"q", id128{1, 2}, 1, 0, nack_reason::nack});
  nack.back() = 9;  // reason
  EXPECT_EQ(decode_nack(nack).error().code, errc::data_corruption);

  std::string queue = encode(queue_declare_record{"q", 1, 1000, "q.dlq", false});
  queue.back() = 2;  // is_dead_letter_queue
  EXPECT_FALSE(decode_queue_declare(queue));
  EXPECT_FALSE(decode_queue_declare(encode(queue_declare_record{"q", 1, 0, "q.dlq", false})));
}

TEST(broker_record_format, huge_lengths_do_not_allocate) {
  std::string bytes(1, static_cast<char>(record_format::current_version));
  bytes += std::string("\xff\xff\xff\xff", 4);  // name length 4 GiB
  auto r = decode_topic_declare(bytes);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos);
}

TEST(broker_record_format, publish_envelope_skips_headers_and_body_but_validates_them) {
  const publish_record full = sample_publish();
  const std::string bytes = encode(full);
  auto envelope = decode_publish_envelope(bytes);
  ASSERT_TRUE(envelope);
  EXPECT_EQ(envelope->id, full.id);
  EXPECT_EQ(envelope->published_at_ns, full.published_at_ns);
  EXPECT_EQ(envelope->deliver_at_ns, full.deliver_at_ns);
  EXPECT_EQ(envelope->source, full.source);
  EXPECT_EQ(envelope->destinations, full.destinations);
  EXPECT_TRUE(envelope->headers.empty());
  EXPECT_TRUE(envelope->body.empty());
  EXPECT_FALSE(decode_publish_envelope(bytes.substr(0, bytes.size() - 1)));
  EXPECT_FALSE(decode_publish_envelope(bytes + "x"));
}

TEST(broker_record_format, random_bytes_never_crash) {
  xoshiro_random rng(7);
  const std::string valid = encode(sample_publish());
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = valid;
    const int flips = 1 + static_cast<int>(rng.uniform(4));
    for (int f = 0; f < flips; ++f) {
      bytes[rng.uniform(bytes.size())] = static_cast<char>(rng.next_u64());
    }
    (void)decode_publish(bytes);
    (void)decode_publish_envelope(bytes);
    (void)decode_nack(bytes);
    (void)decode_queue_declare(bytes);
  }
  SUCCEED();
}

}  // namespace
}  // namespace outrider::broker
