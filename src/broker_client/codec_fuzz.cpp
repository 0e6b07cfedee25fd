// libFuzzer target for the broker protocol decoder: arbitrary bytes go through
// parse_frame and, for each complete frame, the payload decoder of its opcode
// (and of every other opcode, to exercise decoders on foreign payloads). A
// crash, sanitizer report or a re-encoded PUBLISH that does not parse back is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "broker_client/codec.h"

namespace bc = outrider::broker_client;

namespace {

void decode_all(std::string_view p) {
  (void)bc::decode_hello(p);
  (void)bc::decode_hello_ok(p);
  outrider::error e;
  (void)bc::decode_error(p, e);
  (void)bc::decode_subscription_closed(p, e);
  (void)bc::decode_ok(p);
  (void)bc::decode_confirm(p);
  (void)bc::decode_subscribe(p);
  (void)bc::decode_unsubscribe(p);
  (void)bc::decode_deliver(p);
  (void)bc::decode_credit(p);
  (void)bc::decode_ack(p);
  (void)bc::decode_nack(p);
  (void)bc::decode_settle_result(p);
  (void)bc::decode_cancel_scheduled(p);
  (void)bc::decode_declare(p);
  (void)bc::decode_queue_list(p);
  (void)bc::decode_peek(p);
  (void)bc::decode_peek_result(p);
  (void)bc::decode_peek_id(p);
  (void)bc::decode_replay_dead_letters(p);
  (void)bc::decode_stats_result(p);
  (void)bc::decode_empty(p, "fuzz");
  auto batch = bc::decode_publish(p);
  if (batch) {
    // Round trip: re-encode the decoded batch and parse it back.
    std::vector<bc::outgoing_message> messages;
    for (const auto& m : (*batch)->messages) {
      bc::outgoing_message out{
          std::string(m.destination), m.id, {}, std::string(m.body), m.deliver_at};
      for (const auto& h : (*batch)->headers_of(m)) out.headers.emplace_back(h.name, h.value);
      messages.push_back(std::move(out));
    }
    std::string wire;
    bc::encode_publish(wire, 1, messages);
    std::size_t used = 0;
    auto again = bc::parse_frame(wire, bc::wire::absolute_max_frame_bytes, used);
    if (!again || !*again || used != wire.size()) std::abort();
    auto decoded = bc::decode_publish((*again)->payload);
    if (!decoded || (*decoded)->messages.size() != messages.size()) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Raw payload decoders first (most inputs will not carry a valid CRC).
  decode_all(input);
  // Then as a stream of frames.
  while (!input.empty()) {
    std::size_t used = 0;
    auto f = bc::parse_frame(input, bc::wire::default_max_frame_bytes, used);
    if (!f || !*f) break;
    decode_all((*f)->payload);
    input.remove_prefix(used);
  }
  return 0;
}
