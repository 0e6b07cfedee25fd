#include "order_store.h"

#include <chrono>
#include <stdexcept>

namespace store_pickup {
namespace {

// RAII for one prepared statement.
class statement {
 public:
  statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
  }
  ~statement() { sqlite3_finalize(stmt_); }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  statement& bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  // SQLITE_ROW or SQLITE_DONE; throws on errors.
  int step() {
    const int rc = sqlite3_step(stmt_);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      throw std::runtime_error(std::string("sqlite step: ") + sqlite3_errmsg(db_));
    return rc;
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

constexpr const char* columns =
    "id, customer, email, item, amount_cents, status, charge_id, refund_id, expiry_message_id, "
    "created_ms, reserved_ms, expires_ms, updated_ms, traceparent, tracestate";

order read_row(const statement& s) {
  order o;
  o.id = s.text(0);
  o.customer = s.text(1);
  o.email = s.text(2);
  o.item = s.text(3);
  o.amount_cents = s.integer(4);
  o.status = s.text(5);
  o.charge_id = s.text(6);
  o.refund_id = s.text(7);
  o.expiry_message_id = s.text(8);
  o.created_ms = s.integer(9);
  o.reserved_ms = s.integer(10);
  o.expires_ms = s.integer(11);
  o.updated_ms = s.integer(12);
  o.traceparent = s.text(13);
  o.tracestate = s.text(14);
  return o;
}

}  // namespace

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

order_store::order_store(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + path + ": " + message);
  }
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(
      "CREATE TABLE IF NOT EXISTS orders ("
      " id TEXT PRIMARY KEY, customer TEXT NOT NULL, email TEXT NOT NULL, item TEXT NOT NULL,"
      " amount_cents INTEGER NOT NULL, status TEXT NOT NULL, charge_id TEXT NOT NULL DEFAULT '',"
      " refund_id TEXT NOT NULL DEFAULT '', expiry_message_id TEXT NOT NULL DEFAULT '',"
      " created_ms INTEGER NOT NULL, reserved_ms INTEGER NOT NULL DEFAULT 0,"
      " expires_ms INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL,"
      " traceparent TEXT NOT NULL DEFAULT '', tracestate TEXT NOT NULL DEFAULT '')");
}

order_store::~order_store() {
  sqlite3_close(db_);
}

void order_store::exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string message = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + message);
  }
}

bool order_store::insert(const order& o) {
  std::lock_guard lock(mutex_);
  statement s(db_,
              "INSERT OR IGNORE INTO orders (id, customer, email, item, amount_cents, status,"
              " created_ms, updated_ms, traceparent, tracestate) VALUES (?,?,?,?,?,?,?,?,?,?)");
  s.bind(1, o.id).bind(2, o.customer).bind(3, o.email).bind(4, o.item);
  s.bind(5, o.amount_cents).bind(6, o.status).bind(7, o.created_ms).bind(8, o.created_ms);
  s.bind(9, o.traceparent).bind(10, o.tracestate);
  s.step();
  return sqlite3_changes(db_) == 1;
}

std::optional<order> order_store::find(const std::string& id) {
  std::lock_guard lock(mutex_);
  statement s(db_, (std::string("SELECT ") + columns + " FROM orders WHERE id = ?").c_str());
  s.bind(1, id);
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

std::vector<order> order_store::list(std::size_t limit) {
  std::lock_guard lock(mutex_);
  statement s(
      db_, (std::string("SELECT ") + columns + " FROM orders ORDER BY created_ms DESC, id LIMIT ?")
               .c_str());
  s.bind(1, static_cast<std::int64_t>(limit));
  std::vector<order> out;
  while (s.step() == SQLITE_ROW) out.push_back(read_row(s));
  return out;
}

bool order_store::transition(const std::string& id, std::initializer_list<std::string_view> from,
                             std::string_view to) {
  std::lock_guard lock(mutex_);
  std::string sql = "UPDATE orders SET status = ?, updated_ms = ? WHERE id = ? AND status IN (";
  for (std::size_t i = 0; i < from.size(); ++i) sql += i == 0 ? "?" : ",?";
  sql += ")";
  statement s(db_, sql.c_str());
  s.bind(1, to).bind(2, now_ms()).bind(3, id);
  int i = 4;
  for (auto f : from) s.bind(i++, f);
  s.step();
  return sqlite3_changes(db_) == 1;
}

bool order_store::reserve(const std::string& id, const std::string& expiry_message_id,
                          std::int64_t reserved_ms, std::int64_t expires_ms) {
  std::lock_guard lock(mutex_);
  statement s(db_,
              "UPDATE orders SET status = 'reserved', expiry_message_id = ?, reserved_ms = ?,"
              " expires_ms = ?, updated_ms = ? WHERE id = ? AND status = 'paid'");
  s.bind(1, expiry_message_id).bind(2, reserved_ms).bind(3, expires_ms).bind(4, now_ms());
  s.bind(5, id);
  s.step();
  return sqlite3_changes(db_) == 1;
}

void order_store::set_charge(const std::string& id, const std::string& charge_id) {
  std::lock_guard lock(mutex_);
  statement s(db_, "UPDATE orders SET charge_id = ?, updated_ms = ? WHERE id = ?");
  s.bind(1, charge_id).bind(2, now_ms()).bind(3, id);
  s.step();
}

void order_store::set_refund(const std::string& id, const std::string& refund_id) {
  std::lock_guard lock(mutex_);
  statement s(db_, "UPDATE orders SET refund_id = ?, updated_ms = ? WHERE id = ?");
  s.bind(1, refund_id).bind(2, now_ms()).bind(3, id);
  s.step();
}

}  // namespace store_pickup
