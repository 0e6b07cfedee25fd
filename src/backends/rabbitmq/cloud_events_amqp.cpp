#include "backends/rabbitmq/cloud_events_amqp.h"

#include <algorithm>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>

#include "base/json_text.h"
#include "base/json_values.h"

namespace outrider::backends::cloud_events_amqp {
namespace {

namespace json = boost::json;
namespace base64 = boost::beast::detail::base64;

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](char x, char y) { return lower(x) == lower(y); });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// The media type without parameters, lower case ("application/json").
std::string media_type(std::string_view content_type) {
  const auto semi = content_type.find(';');
  std::string_view t = content_type.substr(0, semi);
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  std::string out(t);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool is_json(std::string_view content_type) {
  const std::string t = media_type(content_type);
  return t == "application/json" || t == "text/json" || t.ends_with("+json");
}

bool is_text(std::string_view content_type) {
  const std::string t = media_type(content_type);
  return t.starts_with("text/") || t == "application/xml" || t.ends_with("+xml");
}

std::string encode_base64(std::string_view bytes) {
  std::string out(base64::encoded_size(bytes.size()), '\0');
  out.resize(base64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

bool decode_base64(std::string_view text, std::string& out) {
  out.assign(base64::decoded_size(text.size()), '\0');
  const auto [written, read] = base64::decode(out.data(), text.data(), text.size());
  out.resize(written);
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);  // padding
  return read >= text.size();
}

// An attribute's string form (binary mode carries every attribute as a string).
std::string attribute_text(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  return json::serialize(v);
}

header_list::iterator find(header_list& headers, std::string_view name) {
  return std::find_if(headers.begin(), headers.end(),
                      [&](const auto& h) { return iequals(h.first, name); });
}

}  // namespace

bool to_binary(header_list& headers, std::string& body) {
  auto ct = find(headers, "content-type");
  if (ct == headers.end() || media_type(ct->second) != structured_content_type) return false;
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return false;
  const json::object& event = parsed.get_object();

  header_list out;
  out.reserve(headers.size() + event.size());
  for (auto& h : headers) {
    if (!iequals(h.first, "content-type")) out.push_back(std::move(h));
  }
  std::string content_type;
  if (const auto* dct = event.if_contains("datacontenttype"); dct != nullptr) {
    content_type = attribute_text(*dct);
  }
  std::string data;
  const json::value* d = event.if_contains("data");
  const json::value* d64 = event.if_contains("data_base64");
  if (d64 != nullptr && d64->is_string()) {
    if (!decode_base64(d64->get_string(), data)) return false;
  } else if (d != nullptr && !d->is_null()) {
    if (content_type.empty()) content_type = "application/json";
    if (d->is_string() && !is_json(content_type)) {
      data = std::string(d->get_string());
    } else {
      data = json::serialize(*d);
    }
  }
  for (const auto& [key, value] : event) {
    if (key == "data" || key == "data_base64" || key == "datacontenttype") continue;
    out.emplace_back(std::string(attribute_prefix) + std::string(key), attribute_text(value));
  }
  if (!content_type.empty()) out.emplace_back("content-type", std::move(content_type));
  headers = std::move(out);
  body = std::move(data);
  return true;
}

bool to_structured(header_list& headers, std::string& body) {
  auto attribute = [](std::string_view key) -> std::string_view {
    if (istarts_with(key, "cloudEvents:") || istarts_with(key, "cloudEvents_")) {
      return key.substr(attribute_prefix.size());
    }
    return {};
  };
  const bool binary = std::any_of(headers.begin(), headers.end(), [&](const auto& h) {
    return attribute(h.first) == "specversion";
  });
  if (!binary) return false;
  json::object event;
  header_list out;
  std::string content_type;
  for (auto& h : headers) {
    if (const auto name = attribute(h.first); !name.empty()) {
      event[name] = h.second;
    } else if (iequals(h.first, "content-type")) {
      content_type = std::move(h.second);
    } else {
      out.push_back(std::move(h));
    }
  }
  if (!content_type.empty()) event["datacontenttype"] = content_type;
  if (!body.empty()) {
    boost::system::error_code ec;
    if (content_type.empty() || is_json(content_type)) {
      // (Boost.JSON's parser rejects bytes that are not UTF-8.)
      json::value data = json::parse(body, ec);
      if (!ec && !has_non_finite_number(data)) {
        event["data"] = std::move(data);
      } else {
        event["data_base64"] = encode_base64(body);
      }
    } else if (is_text(content_type) && is_valid_utf8(body)) {
      event["data"] = body;
    } else {
      event["data_base64"] = encode_base64(body);
    }
  }
  out.emplace_back("content-type", std::string(structured_content_type));
  headers = std::move(out);
  body = json::serialize(event);
  return true;
}

}  // namespace outrider::backends::cloud_events_amqp
