// order_store: the orders service's own state, one SQLite file.
//
// An order moves through these states; every move is one conditional UPDATE
// ("... WHERE status IN (...)"), so two requests racing for the same order
// (a duplicate delivery, a pickup during the expiry) cannot both win:
//
//   new --charge ok--> paid --reserve--> reserved --pickup--> completed
//    |                                       |
//    +--charge failed--> payment_failed      +--expiry due--> expiring --refunded--> cancelled
//
// Thread-safe: one connection behind a mutex (the HTTP server's threads share it).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace store_pickup {

struct order {
  std::string id;
  std::string customer;
  std::string email;
  std::string item;
  std::int64_t amount_cents = 0;
  std::string status;
  std::string charge_id;
  std::string refund_id;
  std::string expiry_message_id;  // the delayed ExpireReservation message (for cancel)
  std::int64_t created_ms = 0;
  std::int64_t reserved_ms = 0;
  std::int64_t expires_ms = 0;
  std::int64_t updated_ms = 0;
  // W3C trace context of the placement: every later message about this order
  // continues that trace, so placement, expiry and refund are one trace.
  std::string traceparent;
  std::string tracestate;
};

class order_store {
 public:
  // Opens (creates) the database file. Throws std::runtime_error on failure:
  // the service cannot run without its state.
  explicit order_store(const std::string& path);
  ~order_store();
  order_store(const order_store&) = delete;
  order_store& operator=(const order_store&) = delete;

  // Inserts a new order; false if the id exists (the caller reads it instead).
  bool insert(const order& o);
  std::optional<order> find(const std::string& id);
  std::vector<order> list(std::size_t limit);

  // Moves `id` from one of `from` to `to`; false if it was in none of them.
  bool transition(const std::string& id, std::initializer_list<std::string_view> from,
                  std::string_view to);
  // paid -> reserved, recording the expiry message and deadline.
  bool reserve(const std::string& id, const std::string& expiry_message_id,
               std::int64_t reserved_ms, std::int64_t expires_ms);
  void set_charge(const std::string& id, const std::string& charge_id);
  void set_refund(const std::string& id, const std::string& refund_id);

 private:
  void exec(const char* sql);
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
};

std::int64_t now_ms();

}  // namespace store_pickup
