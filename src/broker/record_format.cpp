#include "broker/record_format.h"

#include <cstring>
#include <fmt/core.h>

namespace outrider::broker {
namespace {

namespace rf = record_format;

constexpr std::size_t id_bytes = 16;

class writer {
 public:
  explicit writer(std::size_t reserve = 0) {
    out_.reserve(reserve);
    u8(rf::current_version);
  }
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void id(const id128& v) {
    u64(v.high);
    u64(v.low);
  }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields in order; the first failure sticks and names the field.
class reader {
 public:
  reader(std::string_view bytes, const char* record) : in_(bytes), record_(record) {
    std::uint8_t version = 0;
    if (!u8(version, "version")) return;
    if (version != rf::current_version) {
      fail(fmt::format("unsupported version {}", version));
    }
  }
  bool u8(std::uint8_t& v, const char* field) {
    if (!need(1, field)) return false;
    v = static_cast<std::uint8_t>(in_[pos_++]);
    return true;
  }
  bool u32(std::uint32_t& v, const char* field) {
    if (!need(4, field)) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(in_[pos_++])) << (8 * i);
    }
    return true;
  }
  bool u64(std::uint64_t& v, const char* field) {
    if (!need(8, field)) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in_[pos_++])) << (8 * i);
    }
    return true;
  }
  bool i64(std::int64_t& v, const char* field) {
    std::uint64_t u = 0;
    if (!u64(u, field)) return false;
    v = static_cast<std::int64_t>(u);
    return true;
  }
  bool id(id128& v, const char* field) { return u64(v.high, field) && u64(v.low, field); }
  bool str(std::string& s, const char* field, std::uint32_t max) {
    std::uint32_t size = 0;
    if (!u32(size, field)) return false;
    if (size > max) {
      fail(fmt::format("{} length {} exceeds {}", field, size, max));
      return false;
    }
    if (!need(size, field)) return false;
    s.assign(in_.substr(pos_, size));
    pos_ += size;
    return true;
  }
  bool name(std::string& s, const char* field) { return str(s, field, rf::max_name_bytes); }
  // Validates a str field like str() without copying it.
  bool skip_str(const char* field, std::uint32_t max) {
    std::uint32_t size = 0;
    if (!u32(size, field)) return false;
    if (size > max) {
      fail(fmt::format("{} length {} exceeds {}", field, size, max));
      return false;
    }
    if (!need(size, field)) return false;
    pos_ += size;
    return true;
  }
  bool reason(nack_reason& r) {
    std::uint8_t v = 0;
    if (!u8(v, "reason")) return false;
    if (v < static_cast<std::uint8_t>(nack_reason::nack) ||
        v > static_cast<std::uint8_t>(nack_reason::released)) {
      fail(fmt::format("unknown nack reason {}", v));
      return false;
    }
    r = static_cast<nack_reason>(v);
    return true;
  }
  void fail(std::string what) {
    if (!failed_) {
      failed_ = true;
      what_ = std::move(what);
    }
  }
  // The decoded value, or data_corruption if anything failed or bytes remain.
  template <class T>
  result<T> finish(T&& value) {
    if (!failed_ && pos_ != in_.size()) {
      fail(fmt::format("{} trailing bytes", in_.size() - pos_));
    }
    if (failed_) {
      return error(errc::data_corruption, fmt::format("broker {} record: {}", record_, what_));
    }
    return std::forward<T>(value);
  }

 private:
  bool need(std::size_t n, const char* field) {
    if (failed_) return false;
    if (in_.size() - pos_ < n) {
      fail(fmt::format("truncated at {}", field));
      return false;
    }
    return true;
  }

  std::string_view in_;
  const char* record_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  std::string what_;
};

}  // namespace

std::string encode(const queue_declare_record& r) {
  writer w;
  w.str(r.name);
  w.u32(r.max_attempts);
  w.i64(r.lease_ns);
  w.str(r.dead_letter_queue);
  w.u8(r.is_dead_letter_queue ? 1 : 0);
  return w.take();
}

std::string encode(const topic_declare_record& r) {
  writer w;
  w.str(r.name);
  return w.take();
}

std::string encode(const bind_record& r) {
  writer w;
  w.str(r.topic);
  w.str(r.queue);
  return w.take();
}

std::size_t encoded_size(const publish_record& r) {
  std::size_t size = 1 + id_bytes + 8 + 8 + 4 + r.source.size() + 4 + 4 + 4 + r.body.size();
  for (const auto& d : r.destinations) size += 4 + d.size();
  for (const auto& [k, v] : r.headers) size += 8 + k.size() + v.size();
  return size;
}

std::string encode(const publish_record& r) {
  writer w(encoded_size(r));
  w.id(r.id);
  w.i64(r.published_at_ns);
  w.i64(r.deliver_at_ns);
  w.str(r.source);
  w.u32(static_cast<std::uint32_t>(r.destinations.size()));
  for (const auto& d : r.destinations) w.str(d);
  w.u32(static_cast<std::uint32_t>(r.headers.size()));
  for (const auto& [k, v] : r.headers) {
    w.str(k);
    w.str(v);
  }
  w.str(r.body);
  return w.take();
}

std::string encode(const ack_record& r) {
  writer w;
  w.str(r.queue);
  w.id(r.id);
  return w.take();
}

std::string encode(const nack_record& r) {
  writer w;
  w.str(r.queue);
  w.id(r.id);
  w.u32(r.failed_attempts);
  w.i64(r.redeliver_at_ns);
  w.u8(static_cast<std::uint8_t>(r.reason));
  return w.take();
}

std::string encode(const dead_letter_record& r) {
  writer w;
  w.str(r.queue);
  w.id(r.id);
  w.str(r.dead_letter_queue);
  w.u32(r.failed_attempts);
  w.u8(static_cast<std::uint8_t>(r.reason));
  return w.take();
}

std::string encode(const dlq_replay_record& r) {
  writer w;
  w.str(r.dead_letter_queue);
  w.id(r.id);
  w.str(r.target);
  return w.take();
}

std::string encode(const cancel_record& r) {
  writer w;
  w.id(r.id);
  w.u64(r.publish_position);
  return w.take();
}

result<queue_declare_record> decode_queue_declare(std::string_view bytes) {
  reader in(bytes, "queue_declare");
  queue_declare_record r;
  std::uint8_t is_dlq = 0;
  in.name(r.name, "name") && in.u32(r.max_attempts, "max_attempts") &&
      in.i64(r.lease_ns, "lease_ns") && in.name(r.dead_letter_queue, "dead_letter_queue") &&
      in.u8(is_dlq, "is_dead_letter_queue");
  if (is_dlq > 1) in.fail("is_dead_letter_queue is not 0 or 1");
  if (r.lease_ns <= 0) in.fail("lease_ns is not positive");
  r.is_dead_letter_queue = is_dlq == 1;
  return in.finish(std::move(r));
}

result<topic_declare_record> decode_topic_declare(std::string_view bytes) {
  reader in(bytes, "topic_declare");
  topic_declare_record r;
  in.name(r.name, "name");
  return in.finish(std::move(r));
}

result<bind_record> decode_bind(std::string_view bytes) {
  reader in(bytes, "bind");
  bind_record r;
  in.name(r.topic, "topic") && in.name(r.queue, "queue");
  return in.finish(std::move(r));
}

namespace {
result<publish_record> decode_publish_impl(std::string_view bytes, bool content) {
  reader in(bytes, "publish");
  publish_record r;
  std::uint32_t count = 0;
  bool ok = in.id(r.id, "id") && in.i64(r.published_at_ns, "published_at") &&
            in.i64(r.deliver_at_ns, "deliver_at") && in.name(r.source, "source") &&
            in.u32(count, "destination count");
  if (ok && count > rf::max_destinations) {
    in.fail(fmt::format("destination count {} exceeds {}", count, rf::max_destinations));
    ok = false;
  }
  for (std::uint32_t i = 0; ok && i < count; ++i) {
    ok = in.name(r.destinations.emplace_back(), "destination");
  }
  ok = ok && in.u32(count, "header count");
  if (ok && count > rf::max_headers) {
    in.fail(fmt::format("header count {} exceeds {}", count, rf::max_headers));
    ok = false;
  }
  for (std::uint32_t i = 0; ok && i < count; ++i) {
    if (!content) {
      ok = in.skip_str("header name", rf::max_blob_bytes) &&
           in.skip_str("header value", rf::max_blob_bytes);
      continue;
    }
    std::string key;
    std::string value;
    ok = in.str(key, "header name", rf::max_blob_bytes) &&
         in.str(value, "header value", rf::max_blob_bytes);
    if (ok) r.headers.insert_or_assign(std::move(key), std::move(value));
  }
  if (ok && content) in.str(r.body, "body", rf::max_blob_bytes);
  if (ok && !content) in.skip_str("body", rf::max_blob_bytes);
  return in.finish(std::move(r));
}
}  // namespace

result<publish_record> decode_publish(std::string_view bytes) {
  return decode_publish_impl(bytes, true);
}

result<publish_record> decode_publish_envelope(std::string_view bytes) {
  return decode_publish_impl(bytes, false);
}

bool is_scheduled_publish(std::string_view payload) noexcept {
  constexpr std::size_t published_at_offset = 1 + 16;  // version, id
  constexpr std::size_t deliver_at_offset = published_at_offset + 8;
  if (payload.size() < deliver_at_offset + 8) return false;
  if (static_cast<std::uint8_t>(payload[0]) != rf::current_version) return false;
  auto i64_at = [payload](std::size_t offset) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(payload[offset + i])) << (8 * i);
    }
    return static_cast<std::int64_t>(v);
  };
  return i64_at(deliver_at_offset) > i64_at(published_at_offset);
}

result<ack_record> decode_ack(std::string_view bytes) {
  reader in(bytes, "ack");
  ack_record r;
  in.name(r.queue, "queue") && in.id(r.id, "id");
  return in.finish(std::move(r));
}

result<nack_record> decode_nack(std::string_view bytes) {
  reader in(bytes, "nack");
  nack_record r;
  in.name(r.queue, "queue") && in.id(r.id, "id") && in.u32(r.failed_attempts, "failed_attempts") &&
      in.i64(r.redeliver_at_ns, "redeliver_at") && in.reason(r.reason);
  return in.finish(std::move(r));
}

result<dead_letter_record> decode_dead_letter(std::string_view bytes) {
  reader in(bytes, "dead_letter");
  dead_letter_record r;
  in.name(r.queue, "queue") && in.id(r.id, "id") &&
      in.name(r.dead_letter_queue, "dead_letter_queue") &&
      in.u32(r.failed_attempts, "failed_attempts") && in.reason(r.reason);
  return in.finish(std::move(r));
}

result<dlq_replay_record> decode_dlq_replay(std::string_view bytes) {
  reader in(bytes, "dlq_replay");
  dlq_replay_record r;
  in.name(r.dead_letter_queue, "dead_letter_queue") && in.id(r.id, "id") &&
      in.name(r.target, "target");
  return in.finish(std::move(r));
}

result<cancel_record> decode_cancel(std::string_view bytes) {
  reader in(bytes, "cancel");
  cancel_record r;
  in.id(r.id, "id") && in.u64(r.publish_position, "publish_position");
  return in.finish(std::move(r));
}

}  // namespace outrider::broker
