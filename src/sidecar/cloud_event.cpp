#include "sidecar/cloud_event.h"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <span>

#include "base/assert.h"
#include "base/json_text.h"
#include "base/json_values.h"
#include "base/time_format.h"

namespace outrider::sidecar {
namespace json = boost::json;
namespace {

constexpr std::string_view metadata_prefix = "metadata.";
constexpr std::string_view cloudevent_prefix = "cloudevent.";
constexpr std::string_view default_content_type = "text/plain";

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

// A handler of Boost.JSON's basic_parser that builds nothing: the parse only checks the
// text (grammar, UTF-8, depth as json::parse's defaults) and fails on a number no double
// holds (1e400, which json::parse reads as infinity).
struct json_check_handler {
  using error_code = boost::system::error_code;
  using string_view = json::string_view;
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }
  bool on_array_begin(error_code&) { return true; }
  bool on_array_end(std::size_t, error_code&) { return true; }
  bool on_object_begin(error_code&) { return true; }
  bool on_object_end(std::size_t, error_code&) { return true; }
  bool on_string_part(string_view, std::size_t, error_code&) { return true; }
  bool on_string(string_view, std::size_t, error_code&) { return true; }
  bool on_key_part(string_view, std::size_t, error_code&) { return true; }
  bool on_key(string_view, std::size_t, error_code&) { return true; }
  bool on_number_part(string_view, error_code&) { return true; }
  bool on_int64(std::int64_t, string_view, error_code&) { return true; }
  bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
  bool on_double(double d, string_view, error_code& ec) {
    if (std::isfinite(d)) return true;
    ec = json::error::exponent_overflow;
    return false;
  }
  bool on_bool(bool, error_code&) { return true; }
  bool on_null(error_code&) { return true; }
  bool on_comment_part(string_view, error_code&) { return true; }
  bool on_comment(string_view, error_code&) { return true; }
};

// Whether `text` is one JSON value whose numbers a double holds: what
// `!ec && !has_non_finite_number(json::parse(text, ec))` says, without building the value
// (json::parse of a body allocates and copies its whole tree, to be thrown away here).
bool is_json_with_finite_numbers(std::string_view text) {
  json::basic_parser<json_check_handler> parser{json::parse_options{}};
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  return !ec && used == text.size();
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequal(s.substr(0, prefix.size()), prefix);
}

error bad_metadata(std::string_view key, std::string_view value, std::string_view expected) {
  return error(errc::pubsub_request_metadata, "metadata." + std::string(key) + "='" +
                                                  std::string(value) + "': expected " +
                                                  std::string(expected));
}

// Go's strconv.ParseBool, which Dapr uses.
std::optional<bool> parse_bool(std::string_view v) {
  for (auto t : {"1", "t", "T", "TRUE", "true", "True"}) {
    if (v == t) return true;
  }
  for (auto f : {"0", "f", "F", "FALSE", "false", "False"}) {
    if (v == f) return false;
  }
  return std::nullopt;
}

std::string base64(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(in[k]); };
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const unsigned v = byte(i) << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string_view media_type(std::string_view content_type) {
  auto semi = content_type.find(';');
  auto t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

bool is_text_content_type(std::string_view content_type) {
  auto t = media_type(content_type);
  return starts_with_ci(t, "text/") || iequal(t, "application/xml") ||
         (t.size() > 4 && iequal(t.substr(t.size() - 4), "+xml"));
}

// A member written after the serialized object (see build_message).
struct trace_member {
  std::string_view key;  // a fixed name, nothing to escape
  std::string_view value;
  std::size_t escapes = 0;  // characters of `value` JSON escapes
};

// JSON's escapes for a string value (tracestate values may hold '"' and '\\').
bool needs_escape(char c) {
  return static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\';
}

std::size_t count_escapes(std::string_view v) {
  std::size_t n = 0;
  for (char c : v) n += needs_escape(c) ? 1 : 0;
  return n;
}

// The bytes `,"key":"value"` takes (an escaped character takes up to 6).
std::size_t trace_member_size(const trace_member& t) {
  return t.key.size() + t.value.size() + 6 + 5 * t.escapes;
}

char* write_trace_member(char* out, const trace_member& t) {
  auto put = [&out](std::string_view s) {
    std::memcpy(out, s.data(), s.size());
    out += s.size();
  };
  put(",\"");
  put(t.key);
  put("\":\"");
  if (t.escapes == 0) {
    put(t.value);
  } else {
    static constexpr char hex[] = "0123456789abcdef";
    for (char c : t.value) {
      if (!needs_escape(c)) {
        *out++ = c;
      } else if (c == '"' || c == '\\') {
        *out++ = '\\';
        *out++ = c;
      } else {
        const auto u = static_cast<unsigned char>(c);
        put("\\u00");
        *out++ = hex[u >> 4];
        *out++ = hex[u & 15];
      }
    }
  }
  *out++ = '"';
  return out;
}

// json::serialize of `ce` with the `trace` members (those with a value) written
// after its last member, into one string (one allocation when the guess,
// `body_size` (base64 included) plus the envelope, holds the object).
std::string serialize_with_trace(const json::object& ce, std::size_t body_size,
                                 std::span<const trace_member> trace) {
  std::size_t extra = 0;
  for (const auto& t : trace) {
    if (!t.value.empty()) extra += trace_member_size(t);
  }
  json::serializer sr;
  sr.reset(&ce);
  constexpr std::size_t envelope_guess = 384;
  std::string out;
  out.resize(envelope_guess + body_size / 3 * 4 + extra);
  std::size_t len = 0;
  for (;;) {
    len += sr.read(out.data() + len, out.size() - len - extra).size();
    if (sr.done()) break;
    out.resize(out.size() * 2);
  }
  if (extra != 0) {
    OUTRIDER_ASSERT(len > 2 && out[len - 1] == '}', "ce has topic: never empty");
    char* p = out.data() + len - 1;  // over the closing brace
    for (const auto& t : trace) {
      if (!t.value.empty()) p = write_trace_member(p, t);
    }
    *p++ = '}';
    len = static_cast<std::size_t>(p - out.data());
  }
  out.resize(len);
  return out;
}

}  // namespace

bool is_json_content_type(std::string_view content_type) {
  auto t = media_type(content_type);
  return iequal(t, "application/json") || iequal(t, "text/json") ||
         (t.size() > 5 && iequal(t.substr(t.size() - 5), "+json"));
}

result<publish_metadata> parse_metadata_entries(
    const std::vector<std::pair<std::string, std::string>>& entries, wall_time now) {
  publish_metadata out;
  std::string when_key;
  for (const auto& [key, value] : entries) {
    if (starts_with_ci(key, cloudevent_prefix)) {
      out.overrides.emplace_back(key.substr(cloudevent_prefix.size()), value);
      continue;
    }
    out.entries.emplace_back(key, value);
    if (iequal(key, "rawPayload")) {
      auto b = parse_bool(value);
      if (!b) {
        return bad_metadata(key, value, "true or false");
      }
      out.raw_payload = *b;
    } else if (iequal(key, "ttlInSeconds")) {
      std::int64_t seconds = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
      constexpr std::int64_t max_ttl_seconds = 100LL * 365 * 24 * 3600;
      if (ec != std::errc{} || ptr != value.data() + value.size() || seconds < 0 ||
          seconds > max_ttl_seconds) {
        return bad_metadata(key, value, "a whole number of seconds, 0 or more");
      }
      out.ttl = std::chrono::seconds(seconds);
    } else if (iequal(key, "deliverAt") || iequal(key, "scheduledSendTime") ||
               iequal(key, "ScheduledEnqueueTimeUtc") || iequal(key, "deliverAfter")) {
      if (!when_key.empty()) {
        return error(errc::pubsub_request_metadata, "metadata." + when_key + " and metadata." +
                                                        key +
                                                        " both set a delivery time; give only one");
      }
      when_key = key;
      wall_time at;
      if (iequal(key, "deliverAfter")) {
        auto d = parse_duration(value);
        if (!d) {
          return bad_metadata(key, value,
                              "a duration such as 90s, 15m, 7d (" + d.error().message + ")");
        }
        at = now + std::chrono::duration_cast<wall_time::duration>(*d);
      } else {
        auto t = parse_rfc3339(value);
        if (!t) {
          return bad_metadata(
              key, value,
              "an RFC 3339 time such as 2026-05-01T09:00:00Z (" + t.error().message + ")");
        }
        at = *t;
      }
      if (at > now) {
        out.deliver_at = at;  // a time in the past means "deliver now", never "later"
      }
    }
  }
  return out;
}

result<publish_metadata> parse_publish_metadata(
    const std::vector<std::pair<std::string, std::string>>& query, wall_time now) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (const auto& [key, value] : query) {
    if (starts_with_ci(key, metadata_prefix)) {
      entries.emplace_back(key.substr(metadata_prefix.size()), value);
    } else if (starts_with_ci(key, cloudevent_prefix)) {
      entries.emplace_back(key, value);
    }
  }
  return parse_metadata_entries(entries, now);
}

namespace {

// build_message's work; `owned` not null: `in` is *owned, whose strings may be
// moved into the message once they are read.
result<backends::message> build_message_from(const envelope_input& in, const publish_metadata& meta,
                                             message_id_text* id_text, envelope_input* owned) {
  backends::message m;
  m.topic = in.topic;
  m.id = in.message_id;
  if (meta.deliver_at) {
    m.deliver_at = *meta.deliver_at;
  }
  const std::string content_type =
      in.content_type.empty() ? std::string(default_content_type) : in.content_type;
  std::optional<wall_time> expires;
  if (meta.ttl) {
    // A delayed message lives its TTL from the time it comes due.
    expires = (meta.deliver_at ? *meta.deliver_at : in.now) +
              std::chrono::duration_cast<wall_time::duration>(*meta.ttl);
  }
  // Every header below in one allocation (the trace context's two would
  // otherwise grow the vector on a traced publish).
  m.headers.reserve(2 + 2 + (expires ? 1 : 0) + meta.entries.size());

  const bool passthrough =
      !meta.raw_payload && iequal(media_type(content_type), cloudevents_content_type);
  if (meta.raw_payload) {
    if (owned != nullptr) {
      m.body = std::move(owned->body);
    } else {
      m.body = in.body;
    }
    m.headers.emplace_back(header_content_type, content_type);
    m.headers.emplace_back(header_raw_payload, "true");
    if (id_text != nullptr) *id_text = in.message_id.to_chars();
  } else if (!passthrough && meta.overrides.empty()) {
    // The usual publish: the envelope written as text, the same members in the
    // same order as below, a JSON body in `data` as the app wrote it (parsed
    // only to check it, building nothing). Building a json::object and serializing it cost ~11k
    // instructions per 1 KiB publish, a fifth of the sidecar's I/O thread.
    std::string& out = m.body;
    // A body that is not UTF-8 cannot be a JSON string: it goes as data_base64, like
    // binary (nothing lost; Go's encoding/json, and so Dapr, would replace the bytes).
    const bool json_body = is_json_content_type(content_type);
    const bool text_body = !json_body && is_text_content_type(content_type);
    out.reserve(in.body.size() +
                (text_body || json_body ? in.body.size() / 8 : in.body.size() / 2) +
                in.traceparent.size() * 2 + in.tracestate.size() + in.topic.size() +
                in.pubsub_name.size() + in.app_id.size() + content_type.size() + 256);
    out += R"({"datacontenttype":)";
    append_json_string(out, content_type);
    bool verbatim = false;  // a JSON body that parses (the parser also checks its UTF-8)
    if (json_body) verbatim = is_json_with_finite_numbers(in.body);
    if (verbatim) {
      out += R"(,"data":)";
      out += in.body;
    } else if ((json_body || text_body) && is_valid_utf8(in.body)) {
      out += R"(,"data":)";
      append_json_string(out, in.body);  // as Dapr: invalid JSON travels as a string
    } else {
      out += R"(,"data_base64":")";
      out += base64(in.body);
      out += '"';
    }
    auto member = [&out](std::string_view key, std::string_view value, bool even_empty) {
      if (value.empty() && !even_empty) return;
      out += ",\"";
      out += key;
      out += "\":";
      append_json_string(out, value);
    };
    const message_id_text id = in.message_id.to_chars();
    if (id_text != nullptr) *id_text = id;
    member("id", std::string_view(id.data(), id.size()), false);
    member("source", in.app_id, false);
    member("type", default_event_type, false);
    member("specversion", cloudevents_spec_version, false);
    member("time", format_rfc3339(in.now), false);
    member("topic", in.topic, true);
    member("pubsubname", in.pubsub_name, true);
    if (expires) member("expiration", format_rfc3339(*expires), true);
    if (!in.traceparent.empty() && is_plain_json_text(in.traceparent)) {
      // The usual traceparent (hex digits and dashes): both members in a few appends.
      out += R"(,"traceparent":")";
      out += in.traceparent;
      out += R"(","traceid":")";
      out += in.traceparent;
      out += '"';
    } else {
      member("traceparent", in.traceparent, false);
      member("traceid", in.traceparent, false);
    }
    member("tracestate", in.tracestate, false);
    out += '}';
    m.headers.emplace_back(header_content_type, cloudevents_content_type);
  } else {
    // Room for the envelope's usual members at once (no rehash as they are added).
    constexpr std::size_t envelope_members = 16;
    json::object ce(envelope_members);
    if (passthrough) {
      boost::system::error_code ec;
      json::value v = json::parse(in.body, ec);
      if (ec || !v.is_object()) {
        return error(errc::pubsub_cloud_events_ser,
                     "the application/cloudevents+json body is not a JSON object" +
                         (ec ? ": " + ec.message() : std::string()));
      }
      if (has_non_finite_number(v)) {
        return error(errc::pubsub_cloud_events_ser,
                     "the application/cloudevents+json body has a number out of the range of "
                     "a double (it could not be forwarded as valid JSON)");
      }
      ce = std::move(v.as_object());
    } else {
      ce["datacontenttype"] = content_type;
      const bool utf8 = is_valid_utf8(in.body);
      if (is_json_content_type(content_type) && utf8) {
        boost::system::error_code ec;
        json::value v = json::parse(in.body, ec);
        // As Dapr: a body that is not valid JSON (or has a number no double holds)
        // travels as a string.
        ce["data"] = ec || has_non_finite_number(v) ? json::value(in.body) : std::move(v);
      } else if (is_text_content_type(content_type) && utf8) {
        ce["data"] = in.body;
      } else {
        ce["data_base64"] = base64(in.body);
      }
    }
    auto set_default = [&](std::string_view k, std::string_view v) {
      if (!ce.contains(k) && !v.empty()) {
        ce[k] = v;
      }
    };
    const message_id_text id = in.message_id.to_chars();
    if (id_text != nullptr) *id_text = id;
    set_default("id", std::string_view(id.data(), id.size()));
    set_default("source", in.app_id);
    set_default("type", default_event_type);
    set_default("specversion", cloudevents_spec_version);
    set_default("time", format_rfc3339(in.now));
    ce["topic"] = in.topic;
    ce["pubsubname"] = in.pubsub_name;
    if (expires) {
      ce["expiration"] = format_rfc3339(*expires);
    }
    for (const auto& [attr, value] : meta.overrides) {
      ce[attr] = value;
    }
    // The trace members are written after the object rather than held in it:
    // as json::object members they cost five allocations per traced publish.
    // A member the app's event or an override already has stays as it is.
    const std::size_t parent_escapes = count_escapes(in.traceparent);
    auto unless_present = [&](std::string_view k, std::string_view v) {
      return ce.contains(k) ? std::string_view() : v;
    };
    const trace_member trace[] = {
        {"traceparent", unless_present("traceparent", in.traceparent), parent_escapes},
        {"traceid", unless_present("traceid", in.traceparent), parent_escapes},
        {"tracestate", unless_present("tracestate", in.tracestate), count_escapes(in.tracestate)}};
    m.body = serialize_with_trace(ce, in.body.size(), trace);
    m.headers.emplace_back(header_content_type, cloudevents_content_type);
  }

  // Trace context travels as message headers too, so every backend can carry
  // it without parsing the body (and raw payloads keep it).
  const std::string* traceparent = &in.traceparent;
  const std::string* tracestate = &in.tracestate;
  for (const auto& [attr, value] : meta.overrides) {
    if (attr == "traceparent") traceparent = &value;
    if (attr == "tracestate") tracestate = &value;
  }
  // The body is written: the input's own strings can go into the headers.
  if (!traceparent->empty()) {
    if (owned != nullptr && traceparent == &in.traceparent) {
      m.headers.emplace_back(header_traceparent, std::move(owned->traceparent));
    } else {
      m.headers.emplace_back(header_traceparent, *traceparent);
    }
  }
  if (!tracestate->empty()) {
    if (owned != nullptr && tracestate == &in.tracestate) {
      m.headers.emplace_back(header_tracestate, std::move(owned->tracestate));
    } else {
      m.headers.emplace_back(header_tracestate, *tracestate);
    }
  }
  if (expires) {
    m.headers.emplace_back(header_expires_at,
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              expires->time_since_epoch())
                                              .count()));
  }
  for (const auto& [key, value] : meta.entries) {
    m.headers.emplace_back(std::string(header_metadata_prefix) + key, value);
  }
  return m;
}

}  // namespace

result<backends::message> build_message(const envelope_input& in, const publish_metadata& meta,
                                        message_id_text* id_text) {
  return build_message_from(in, meta, id_text, nullptr);
}

result<backends::message> build_message(envelope_input&& in, const publish_metadata& meta,
                                        message_id_text* id_text) {
  return build_message_from(in, meta, id_text, &in);
}

}  // namespace outrider::sidecar
