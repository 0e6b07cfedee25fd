// orders: the store-pickup demo's order service (C++). Talks only to its
// sidecar (Dapr v1.0 HTTP API); see README.md for the workflow.
//
// Environment: APP_PORT (default 6001), DAPR_HTTP_PORT (3500), DAPR_API_TOKEN,
// RESERVATION_WINDOW (how long a reserved item waits for pickup; default 7d),
// DATA_DIR (where orders.db lives; default .data/orders), PUBSUB_NAME (pubsub).
#include <httplib.h>

#include <boost/json.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "dapr_client.h"
#include "order_store.h"

namespace json = boost::json;
using namespace store_pickup;

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

// "90s", "20m", "1h30m", "7d", "2w", "500ms" -> milliseconds; nullopt if malformed.
std::optional<std::int64_t> parse_duration_ms(const std::string& text) {
  std::int64_t total = 0;
  std::size_t i = 0;
  if (text.empty()) return std::nullopt;
  while (i < text.size()) {
    std::size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) ++i;
    if (start == i) return std::nullopt;
    const std::int64_t n = std::stoll(text.substr(start, i - start));
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])) != 0)
      unit += text[i++];
    std::int64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else if (unit == "w")
      scale = 7 * 86'400'000LL;
    else
      return std::nullopt;
    total += n * scale;
  }
  return total;
}

std::string new_order_id() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[24];
  std::snprintf(buf, sizeof buf, "o-%012llx",
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return buf;
}

json::object to_json(const order& o) {
  return {{"orderId", o.id},
          {"customer", o.customer},
          {"email", o.email},
          {"item", o.item},
          {"amountCents", o.amount_cents},
          {"status", o.status},
          {"chargeId", o.charge_id},
          {"refundId", o.refund_id},
          {"expiryMessageId", o.expiry_message_id},
          {"createdMs", o.created_ms},
          {"reservedMs", o.reserved_ms},
          {"expiresMs", o.expires_ms},
          {"updatedMs", o.updated_ms}};
}

// The event other services get: what they need to email the customer or
// handle the item, keyed by orderId (their idempotency key).
std::string event_json(const order& o) {
  json::object e = {
      {"orderId", o.id},          {"customer", o.customer},        {"email", o.email},
      {"item", o.item},           {"amountCents", o.amount_cents}, {"status", o.status},
      {"expiresMs", o.expires_ms}};
  if (!o.refund_id.empty()) e["refundId"] = o.refund_id;
  return json::serialize(e);
}

void reply_json(httplib::Response& res, int status, const json::value& body) {
  res.status = status;
  res.set_content(json::serialize(body), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& code,
                 const std::string& message) {
  reply_json(res, status, json::object{{"errorCode", code}, {"message", message}});
}

trace_context incoming_trace(const httplib::Request& req) {
  return {req.get_header_value("traceparent"), req.get_header_value("tracestate")};
}

trace_context order_trace(const order& o) {
  return {o.traceparent, o.tracestate};
}

void log_line(const std::string& text) {
  std::fprintf(stdout, "orders: %s\n", text.c_str());
  std::fflush(stdout);
}

class orders_service {
 public:
  orders_service(order_store& store, dapr_client& dapr, std::string window, std::int64_t window_ms)
      : store_(store), dapr_(dapr), window_(std::move(window)), window_ms_(window_ms) {}

  void routes(httplib::Server& server) {
    server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    // Programmatic subscription (Dapr): the sidecar asks once at start.
    server.Get("/dapr/subscribe", [](const httplib::Request&, httplib::Response& res) {
      reply_json(res, 200,
                 json::array{json::object{{"pubsubname", env_or("PUBSUB_NAME", "pubsub")},
                                          {"topic", "expire-reservation"},
                                          {"route", "/events/expire-reservation"}}});
    });
    server.Get("/orders", [this](const httplib::Request&, httplib::Response& res) {
      json::array out;
      for (const auto& o : store_.list(500)) out.push_back(to_json(o));
      reply_json(res, 200, json::object{{"orders", out}});
    });
    server.Get(R"(/orders/([A-Za-z0-9._-]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 auto o = store_.find(req.matches[1]);
                 if (!o) return reply_error(res, 404, "ORDER_NOT_FOUND", "no such order");
                 reply_json(res, 200, to_json(*o));
               });
    server.Post("/orders",
                [this](const httplib::Request& req, httplib::Response& res) { place(req, res); });
    server.Post(R"(/orders/([A-Za-z0-9._-]+)/reserve)",
                [this](const httplib::Request& req, httplib::Response& res) { reserve(req, res); });
    server.Post(R"(/orders/([A-Za-z0-9._-]+)/pickup)",
                [this](const httplib::Request& req, httplib::Response& res) { pickup(req, res); });
    server.Post("/events/expire-reservation",
                [this](const httplib::Request& req, httplib::Response& res) { expire(req, res); });
  }

 private:
  // POST /orders {orderId?, customer, email, item, amountCents}: store, charge
  // through payments (invocation), publish order-placed. Repeating it with the
  // same orderId is safe: it answers the existing order (or retries the charge).
  void place(const httplib::Request& req, httplib::Response& res) {
    json::value body;
    boost::system::error_code ec;
    body = json::parse(req.body, ec);
    if (ec || !body.is_object())
      return reply_error(res, 400, "BAD_REQUEST", "expected a JSON object");
    const auto& b = body.as_object();
    auto text = [&](const char* key) -> std::string {
      const auto* v = b.if_contains(key);
      return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
    };
    order o;
    o.id = text("orderId").empty() ? new_order_id() : text("orderId");
    o.customer = text("customer");
    o.email = text("email");
    o.item = text("item");
    const auto* amount = b.if_contains("amountCents");
    o.amount_cents = amount != nullptr && amount->is_int64() ? amount->as_int64() : 0;
    if (o.customer.empty() || o.email.empty() || o.item.empty() || o.amount_cents <= 0)
      return reply_error(res, 400, "BAD_REQUEST",
                         "customer, email, item and a positive amountCents are required");
    o.status = "new";
    o.created_ms = now_ms();
    const trace_context trace = incoming_trace(req);
    o.traceparent = trace.traceparent;
    o.tracestate = trace.tracestate;
    if (!store_.insert(o)) {
      auto existing = store_.find(o.id);
      if (!existing) return reply_error(res, 500, "STATE", "order vanished");
      if (existing->status != "new" && existing->status != "payment_failed")
        return reply_json(res, 200, to_json(*existing));
      o = *existing;
    }
    log_line("order " + o.id + " placed: " + o.item + " for " + o.customer);

    const auto charge = dapr_.invoke(
        "payments", "charge",
        json::serialize(json::object{
            {"orderId", o.id}, {"amountCents", o.amount_cents}, {"customer", o.customer}}),
        trace);
    if (!charge.ok()) {
      store_.transition(o.id, {"new"}, "payment_failed");
      log_line("order " + o.id + ": charge failed (" + std::to_string(charge.status) +
               "): " + charge.body);
      return reply_error(res, 502, "PAYMENT_FAILED",
                         "the charge failed; placing the order again retries it: " + charge.body);
    }
    boost::system::error_code pec;
    const json::value paid = json::parse(charge.body, pec);
    if (!pec && paid.is_object() && paid.as_object().contains("chargeId") &&
        paid.at("chargeId").is_string())
      store_.set_charge(o.id, std::string(paid.at("chargeId").as_string()));
    store_.transition(o.id, {"new", "payment_failed"}, "paid");
    auto now = store_.find(o.id);
    const auto published = dapr_.publish("order-placed", event_json(*now), trace);
    if (!published.ok())
      log_line("order " + o.id + ": publish order-placed failed: " + published.body);
    reply_json(res, 201, to_json(*now));
  }

  // POST /orders/{id}/reserve (the store employee took the item off the
  // shelf): schedules ExpireReservation after the reservation window.
  void reserve(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    auto o = store_.find(id);
    if (!o) return reply_error(res, 404, "ORDER_NOT_FOUND", "no such order");
    if (o->status == "reserved") return reply_json(res, 200, to_json(*o));
    if (o->status != "paid")
      return reply_error(res, 409, "ORDER_STATE", "cannot reserve an order that is " + o->status);
    // The delayed message joins the order's (placement) trace.
    const trace_context trace = order_trace(*o);
    const auto expiry = dapr_.publish(
        "expire-reservation", json::serialize(json::object{{"orderId", id}}), trace, window_);
    if (!expiry.ok())
      return reply_error(res, 502, "PUBLISH_FAILED",
                         "could not schedule the expiry: " + expiry.body);
    const std::int64_t now = now_ms();
    if (!store_.reserve(id, expiry.message_id, now, now + window_ms_)) {
      // Someone else moved the order meanwhile: withdraw our message.
      dapr_.cancel_scheduled(expiry.message_id, trace);
      auto current = store_.find(id);
      return reply_json(res, 409, to_json(*current));
    }
    o = store_.find(id);
    log_line("order " + id + " reserved; expires in " + window_ + " (message " + expiry.message_id +
             ")");
    const auto published = dapr_.publish("order-reserved", event_json(*o), trace);
    if (!published.ok()) log_line("order " + id + ": publish order-reserved failed");
    reply_json(res, 200, to_json(*o));
  }

  // POST /orders/{id}/pickup: completes the order and cancels the scheduled
  // expiry. If the cancel comes too late (already due), the expiry exits early.
  void pickup(const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    auto o = store_.find(id);
    if (!o) return reply_error(res, 404, "ORDER_NOT_FOUND", "no such order");
    const trace_context trace = order_trace(*o);
    if (o->status != "completed") {
      if (!store_.transition(id, {"reserved"}, "completed")) {
        o = store_.find(id);
        return reply_error(res, 409, "ORDER_STATE", "cannot pick up an order that is " + o->status);
      }
      o = store_.find(id);
      const auto cancel = dapr_.cancel_scheduled(o->expiry_message_id, trace);
      log_line("order " + id + " picked up; scheduled expiry " +
               (cancel.status == 204
                    ? std::string("cancelled")
                    : "not cancelled (" + std::to_string(cancel.status) + "): it will exit early"));
    }
    // Published again when repeated: subscribers are idempotent per orderId.
    const auto published = dapr_.publish("order-completed", event_json(*o), trace);
    if (!published.ok()) log_line("order " + id + ": publish order-completed failed");
    reply_json(res, 200, to_json(*o));
  }

  // The delayed ExpireReservation, delivered by the sidecar (at least once).
  // Answers SUCCESS when done or nothing to do, RETRY to be delivered again.
  void expire(const httplib::Request& req, httplib::Response& res) {
    auto answer = [&res](const char* status) {
      reply_json(res, 200, json::object{{"status", status}});
    };
    boost::system::error_code ec;
    const json::value event = json::parse(req.body, ec);
    const json::value* data =
        !ec && event.is_object() ? event.as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_object() || !data->as_object().contains("orderId") ||
        !data->at("orderId").is_string()) {
      log_line("expire-reservation: malformed event, dropped");
      return answer("DROP");
    }
    const std::string id(data->at("orderId").as_string());
    const trace_context trace = incoming_trace(req);
    auto o = store_.find(id);
    if (!o) {
      log_line("expire " + id + ": unknown order, nothing to do");
      return answer("SUCCESS");
    }
    if (o->status == "completed") {
      log_line("expire " + id + ": already picked up, early exit");
      return answer("SUCCESS");
    }
    if (o->status == "new" || o->status == "paid" || o->status == "payment_failed") {
      log_line("expire " + id + ": reservation not recorded yet, retry later");
      return answer("RETRY");
    }
    if (o->status == "reserved" && !store_.transition(id, {"reserved"}, "expiring")) {
      o = store_.find(id);  // a pickup won the race
      log_line("expire " + id + ": order is now " + o->status + ", early exit");
      return answer(o->status == "completed" ? "SUCCESS" : "RETRY");
    }
    o = store_.find(id);
    if (o->status == "expiring") {
      // Payments is idempotent per order: a refund repeated after a crash or
      // a duplicate delivery is not paid out twice.
      const auto refund = dapr_.invoke(
          "payments", "refund",
          json::serialize(json::object{{"orderId", id}, {"amountCents", o->amount_cents}}), trace);
      if (!refund.ok()) {
        log_line("expire " + id + ": refund failed (" + std::to_string(refund.status) +
                 "), will retry: " + refund.body);
        return answer("RETRY");
      }
      boost::system::error_code rec;
      const json::value r = json::parse(refund.body, rec);
      if (!rec && r.is_object() && r.as_object().contains("refundId") &&
          r.at("refundId").is_string())
        store_.set_refund(id, std::string(r.at("refundId").as_string()));
      store_.transition(id, {"expiring"}, "cancelled");
      o = store_.find(id);
      log_line("order " + id + " expired: refunded and cancelled");
    }
    // cancelled (now or by an earlier delivery that died before publishing):
    // publish again; notifications and warehouse are idempotent per orderId.
    const auto published = dapr_.publish("reservation-expired", event_json(*o), trace);
    if (!published.ok()) {
      log_line("expire " + id + ": publish reservation-expired failed, will retry");
      return answer("RETRY");
    }
    answer("SUCCESS");
  }

  order_store& store_;
  dapr_client& dapr_;
  std::string window_;
  std::int64_t window_ms_;
};

}  // namespace

int main() {
  const int app_port = std::atoi(env_or("APP_PORT", "6001").c_str());
  const int dapr_port = std::atoi(env_or("DAPR_HTTP_PORT", "3500").c_str());
  const std::string window = env_or("RESERVATION_WINDOW", "7d");
  const auto window_ms = parse_duration_ms(window);
  if (!window_ms) {
    std::fprintf(stderr, "orders: RESERVATION_WINDOW '%s': expected a duration like 20s or 7d\n",
                 window.c_str());
    return 2;
  }
  const std::string data_dir = env_or("DATA_DIR", ".data/orders");
  try {
    std::filesystem::create_directories(data_dir);
    order_store store(data_dir + "/orders.db");
    dapr_client dapr(static_cast<std::uint16_t>(dapr_port), env_or("PUBSUB_NAME", "pubsub"),
                     env_or("DAPR_API_TOKEN", ""));
    orders_service service(store, dapr, window, *window_ms);
    httplib::Server server;
    service.routes(server);
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          log_line("internal error: " + what);
          reply_error(res, 500, "INTERNAL", what);
        });
    if (!server.bind_to_port("127.0.0.1", app_port)) {
      std::fprintf(stderr, "orders: cannot listen on 127.0.0.1:%d\n", app_port);
      return 1;
    }
    log_line("listening on 127.0.0.1:" + std::to_string(app_port) + " (sidecar " +
             std::to_string(dapr_port) + ", reservation window " + window + ", state " + data_dir +
             ")");
    server.listen_after_bind();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "orders: %s\n", e.what());
    return 1;
  }
  return 0;
}
