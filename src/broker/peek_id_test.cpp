// PEEK_ID through the host service: the sidecar's job table is a set of
// scheduled messages read back by id. It must find scheduled and ready
// messages, and survive a restart (recovery from the log), on the in-memory
// file system.
#include <chrono>
#include <future>
#include <gtest/gtest.h>

#include "broker/host.h"
#include "broker/host_service.h"
#include "io/mem_file_system.h"

namespace outrider::broker {
namespace {

using namespace std::chrono_literals;

class peek_id_test : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override { host_.reset(); }

  void open() {
    host_options o;
    o.data_dir = "/broker";
    auto h = host::open(fs_, o);
    ASSERT_TRUE(h) << h.error().message;
    host_ = std::move(*h);
    host_->start();
    service_ = std::make_unique<host_service>(*host_);
  }
  void restart() {
    service_.reset();
    host_.reset();
    open();
  }

  status declare(const std::string& q) {
    std::promise<status> p;
    host_->declare_queue(q, {}, [&](status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }
  status publish(const std::string& q, id128 id, std::string body, wall_time at) {
    publish_request r;
    r.destination = q;
    r.id = id;
    r.body = std::move(body);
    r.headers["outrider-job-kind"] = "definition";
    r.deliver_at = at;
    std::vector<publish_request> batch;
    batch.push_back(std::move(r));
    std::promise<status> p;
    host_->publish(std::move(batch), [&](auto results) {
      p.set_value(results.at(0) ? ok_status() : status(results.at(0).error()));
    });
    return p.get_future().get();
  }
  result<std::vector<bc::peeked_message>> peek(const std::string& q, id128 id) {
    std::promise<result<std::vector<bc::peeked_message>>> p;
    service_->peek(bc::peek_request{q, 0, id}, [&](auto r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  }
  status cancel(id128 id) {
    std::promise<status> p;
    host_->cancel(id, [&](status s) { p.set_value(std::move(s)); });
    return p.get_future().get();
  }

  io::mem_file_system fs_;
  std::unique_ptr<host> host_;
  std::unique_ptr<host_service> service_;
};

TEST_F(peek_id_test, job_definitions_are_read_by_id_across_a_restart) {
  const std::string q = "outrider.jobs.app.app";
  ASSERT_TRUE(declare(q));
  const auto now = std::chrono::system_clock::now();
  const id128 def{11, 1}, firing{11, 2}, ready{11, 4};
  ASSERT_TRUE(publish(q, def, R"({"name":"j"})", now + std::chrono::hours(24 * 365 * 200)));
  ASSERT_TRUE(publish(q, firing, "f", now + 1h));
  ASSERT_TRUE(publish(q, ready, "r", now));

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "before restart" : "after restart");
    auto d = peek(q, def);
    ASSERT_TRUE(d) << d.error().message;
    ASSERT_EQ(d->size(), 1U);
    EXPECT_EQ(d->front().id, def);
    EXPECT_EQ(d->front().state, bc::peeked_state::scheduled);
    EXPECT_EQ(d->front().body, R"({"name":"j"})");
    ASSERT_EQ(d->front().headers.size(), 1U);
    EXPECT_EQ(d->front().headers[0].second, "definition");
    auto f = peek(q, firing);
    ASSERT_TRUE(f);
    ASSERT_EQ(f->size(), 1U);
    EXPECT_EQ(f->front().body, "f");
    auto r = peek(q, ready);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->size(), 1U);
    EXPECT_EQ(r->front().state, bc::peeked_state::ready);
    if (round == 0) restart();
  }

  // Deleting a job cancels its definition: gone, also after a restart.
  ASSERT_TRUE(cancel(def));
  restart();
  auto gone = peek(q, def);
  ASSERT_TRUE(gone);
  EXPECT_TRUE(gone->empty());
  auto unknown = peek(q, id128{99, 99});
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->empty());
  auto no_queue = peek("nope", def);
  ASSERT_FALSE(no_queue);
  EXPECT_EQ(no_queue.error().code, errc::queue_not_found);
}

}  // namespace
}  // namespace outrider::broker
