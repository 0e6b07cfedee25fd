#include "backends/embedded/embedded_backend.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <future>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>

#include "base/log.h"
#include "base/time_format.h"
#include "broker_client/client.h"
#include "io/runtime.h"

namespace outrider::backends {
namespace {

namespace asio = boost::asio;
namespace bc = broker_client;

const log::logger logger{"embedded"};

// A settle handle's `subscription` packs the connection generation (high 32
// bits) with the local subscription handle (low 32 bits), so a delivery of a
// lost connection is recognised and never settles a new connection's tag.
constexpr unsigned generation_shift = 32;
constexpr std::uint64_t local_handle_mask = 0xffffffffULL;

// Rough per-message overhead of the PUBLISH encoding (destination length, id,
// time, header count, body length) used to split large batches by size.
constexpr std::size_t message_overhead_bytes = 64;
constexpr std::size_t header_overhead_bytes = 8;
// Time a close() waits for the backend thread to finish on its own before
// stopping the io_context (a hung broker must not hang shutdown).
constexpr auto close_wait = std::chrono::seconds(5);
constexpr std::uint32_t max_local_handle = 0xffffffffU;

error shutting_down_error() {
  return error(errc::shutting_down, "the embedded pub/sub backend is closed");
}

status settle_status(const result<std::vector<bc::settle_failure>>& r) {
  if (!r) return r.error();
  if (!r->empty()) return r->front().err;
  return ok_status();
}

}  // namespace

struct embedded_backend::impl : std::enable_shared_from_this<impl> {
  enum class conn_state { connecting, ready, waiting, closed };

  struct subscription {
    subscription_spec spec;
    delivery_fn on_delivery;
    bc::subscription_id broker_id = 0;
    bool established = false;
    std::unordered_set<bc::delivery_tag> unsettled;
  };

  // `shared` null: a private io_context (run by `thread`).
  impl(embedded_backend_options o, asio::io_context* shared)
      : opts(std::move(o)),
        own(shared == nullptr ? std::make_unique<asio::io_context>(1) : nullptr),
        ctx(shared == nullptr ? *own : *shared),
        reconnect_timer(ctx) {
    if (own) guard.emplace(ctx.get_executor());
  }

  embedded_backend_options opts;
  std::unique_ptr<asio::io_context> own;
  asio::io_context& ctx;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::future<void> finished;
  std::atomic<bool> closed{false};

  // ---- io thread only ----
  conn_state state = conn_state::connecting;
  std::shared_ptr<bc::client> client;
  std::uint32_t generation = 0;
  nanoseconds backoff{};
  asio::steady_timer reconnect_timer;
  // Calls waiting for the connect attempt in progress: true once connected.
  std::vector<std::function<void(bool)>> waiting_for_connect;
  std::set<std::string, std::less<>> declared_topics;
  std::map<subscription_handle, subscription> subs;
  subscription_handle next_handle = 1;

  template <class Fn>
  void post(Fn fn) {
    asio::post(ctx, [self = shared_from_this(), fn = std::move(fn)]() mutable { fn(*self); });
  }

  // Runs `fn(connected)` now or once the connect attempt in progress ends.
  void when_connected(std::function<void(bool)> fn) {
    if (state == conn_state::connecting) {
      waiting_for_connect.push_back(std::move(fn));
      return;
    }
    fn(state == conn_state::ready);
  }

  error not_connected() const {
    return error(errc::unavailable, "not connected to the broker at " + opts.address);
  }

  // ---------------- connection ----------------

  void connect() {
    if (state == conn_state::closed) return;
    state = conn_state::connecting;
    bc::client_options co;
    co.address = opts.address;
    co.client_name = opts.client_name;
    co.connect_timeout = opts.connect_timeout;
    client = bc::client::create(ctx, co);
    auto attempt = client;
    client->on_disconnect([this, attempt](error e) {
      if (client != attempt || state == conn_state::closed) return;
      logger.warn("lost the broker connection ({}); reconnecting", e.message);
      lost();
      schedule_reconnect();
    });
    client->connect([this, attempt](status s) {
      if (client != attempt || state == conn_state::closed) return;
      if (!s) {
        if (backoff == nanoseconds{} || backoff >= opts.max_reconnect_interval) {
          logger.warn("cannot connect to the broker at {}: {}; retrying", opts.address,
                      s.error().message);
        }
        state = conn_state::waiting;
        run_waiting(false);
        schedule_reconnect();
        return;
      }
      state = conn_state::ready;
      ++generation;
      backoff = nanoseconds{};
      logger.info("connected to the broker at {}", opts.address);
      for (auto& [handle, sub] : subs) establish(handle, nullptr);
      run_waiting(true);
    });
  }

  void run_waiting(bool connected) {
    auto calls = std::move(waiting_for_connect);
    waiting_for_connect.clear();
    for (auto& c : calls) c(connected);
  }

  // The connection ended: its deliveries and topic declarations are gone.
  void lost() {
    state = conn_state::waiting;
    ++generation;
    declared_topics.clear();
    for (auto& [handle, sub] : subs) {
      sub.established = false;
      sub.broker_id = 0;
      sub.unsettled.clear();
    }
  }

  void schedule_reconnect() {
    if (state == conn_state::closed) return;
    backoff = backoff == nanoseconds{} ? opts.min_reconnect_interval
                                       : std::min(backoff * 2, opts.max_reconnect_interval);
    reconnect_timer.expires_after(backoff);
    reconnect_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec && state == conn_state::waiting) connect();
    });
  }

  void shut() {
    state = conn_state::closed;
    reconnect_timer.cancel();
    if (client) client->close();
    run_waiting(false);
    flush_publishes();  // not sent yet: they fail with shutting_down
    flush_acks();
    subs.clear();
  }

  // ---------------- subscriptions ----------------

  // Declares topic, queue and binding and subscribes, pipelined (the broker
  // handles a connection's frames in order). `done` may be null (re-establish).
  void establish(subscription_handle handle, callback<result<subscription_handle>> done) {
    auto it = subs.find(handle);
    if (it == subs.end()) return;
    const subscription_spec spec = it->second.spec;
    const std::string queue = queue_name(spec.topic, spec.app_id);
    struct progress {
      std::size_t remaining = 4;
      status topic, bind;
      result<bc::subscription_id> subscribed = error(errc::internal, "no answer");
    };
    auto p = std::make_shared<progress>();
    const std::uint32_t gen = generation;
    auto finish = [this, p, handle, gen, done = std::move(done)]() mutable {
      if (--p->remaining != 0) return;
      auto failed = [&](const error& e) {
        if (done) {
          subs.erase(handle);
          done(state == conn_state::closed ? shutting_down_error() : e);
        } else if (state == conn_state::ready && gen == generation && subs.contains(handle)) {
          logger.warn("re-subscribing to '{}' failed: {}; retrying", subs.at(handle).spec.topic,
                      e.message);
          retry_establish(handle, gen);
        }
      };
      if (!p->subscribed) return failed(p->subscribed.error());
      if (!p->topic || !p->bind || gen != generation) {
        if (gen == generation && client) client->unsubscribe(*p->subscribed, nullptr);
        return failed(!p->topic ? p->topic.error() : !p->bind ? p->bind.error() : not_connected());
      }
      auto s = subs.find(handle);
      if (s == subs.end()) {  // unsubscribed meanwhile
        client->unsubscribe(*p->subscribed, nullptr);
        if (done) done(error(errc::cancelled, "unsubscribed while subscribing"));
        return;
      }
      s->second.broker_id = *p->subscribed;
      s->second.established = true;
      if (done) done(handle);
    };
    client->declare_topic(spec.topic, [this, p, finish, topic = spec.topic](status s) mutable {
      if (s) declared_topics.insert(topic);
      p->topic = std::move(s);
      finish();
    });
    bc::queue_settings qs;
    qs.max_attempts = spec.max_attempts;
    qs.lease = spec.lease;
    client->declare_queue(queue, qs, [p, finish, queue](status s) mutable {
      // A queue declared earlier with other settings keeps them (the broker
      // refuses to change them); consuming from it is still right.
      if (!s && s.error().code == errc::already_exists) {
        logger.warn("queue '{}' exists with other settings; keeping them ({})", queue,
                    s.error().message);
      } else if (!s) {
        logger.warn("declaring queue '{}': {}", queue, s.error().message);
      }
      finish();
    });
    client->bind(spec.topic, queue, [p, finish](status s) mutable {
      p->bind = std::move(s);
      finish();
    });
    bc::subscribe_request req;
    req.queue = queue;
    req.credit = spec.prefetch;
    req.lease = spec.lease;
    client->subscribe(
        req,
        [this, handle, gen](bc::delivery d) {
          auto s = subs.find(handle);
          if (s == subs.end() || gen != generation) return;  // its lease expires at the broker
          s->second.unsettled.insert(d.tag);
          delivery out;
          out.handle.subscription =
              (static_cast<std::uint64_t>(gen) << generation_shift) | (handle & local_handle_mask);
          out.handle.token = d.tag;
          out.topic = s->second.spec.topic;
          out.id = d.id;
          out.attempt = d.attempt;
          out.headers = std::move(d.headers);
          out.body = std::move(d.body);
          out.published_at = d.published_at;
          s->second.on_delivery(std::move(out));
        },
        [p, finish](result<bc::subscription_id> r) mutable {
          p->subscribed = std::move(r);
          finish();
        });
  }

  void retry_establish(subscription_handle handle, std::uint32_t gen) {
    auto timer = std::make_shared<asio::steady_timer>(ctx, opts.min_reconnect_interval * 10);
    // Holds the impl: on a shared context the timer may fire after close().
    timer->async_wait(
        [this, self = shared_from_this(), timer, handle, gen](boost::system::error_code ec) {
          if (ec || state != conn_state::ready || gen != generation) return;
          auto it = subs.find(handle);
          if (it != subs.end() && !it->second.established) establish(handle, nullptr);
        });
  }

  // ---------------- publishing ----------------

  // Publishes that arrive in one turn of the io_context go to the broker as one
  // PUBLISH batch (split only by the broker's limits), and acks as one ACK:
  // fewer frames, confirms and broker engine calls per message, and the
  // client's bound on batches awaiting confirms no longer bounds messages.
  struct publish_waiter {
    std::size_t count = 0;
    callback<result<std::vector<publish_outcome>>> done;
  };
  struct ack_waiter {
    bc::delivery_tag tag = 0;
    std::uint32_t generation = 0;
    callback<status> done;  // may be null
  };
  std::vector<message> coalesced;
  std::vector<publish_waiter> publish_waiters;
  bool publish_flush_posted = false;
  // PUBLISH frames sent and not answered yet (this connection's or a lost one's).
  std::size_t publishes_awaiting_confirm = 0;
  std::vector<ack_waiter> coalesced_acks;
  bool ack_flush_posted = false;

  void publish(std::vector<message> batch, callback<result<std::vector<publish_outcome>>> done) {
    if (state != conn_state::ready) return done(not_connected());
    // Nothing awaits a confirm and nothing is being merged: there is nothing
    // to merge this publish with (the ones made later in this turn still
    // merge), so it goes out now instead of one queue round later.
    if (!publish_flush_posted && publishes_awaiting_confirm == 0) {
      return send_batch(std::move(batch), std::move(done));
    }
    publish_waiters.push_back(publish_waiter{batch.size(), std::move(done)});
    for (auto& m : batch) coalesced.push_back(std::move(m));
    if (publish_flush_posted) return;
    publish_flush_posted = true;
    asio::post(ctx, [self = shared_from_this()] { self->flush_publishes(); });
  }

  void flush_publishes() {
    publish_flush_posted = false;
    auto batch = std::move(coalesced);
    auto waiters = std::move(publish_waiters);
    coalesced.clear();
    publish_waiters.clear();
    if (waiters.empty()) return;
    if (state != conn_state::ready) {
      const error e = state == conn_state::closed ? shutting_down_error() : not_connected();
      for (auto& w : waiters) w.done(e);
      return;
    }
    if (waiters.size() == 1) return send_batch(std::move(batch), std::move(waiters.front().done));
    send_batch(std::move(batch),
               [waiters = std::move(waiters)](result<std::vector<publish_outcome>> r) mutable {
                 std::size_t at = 0;
                 for (auto& w : waiters) {
                   if (!r) {
                     w.done(r.error());
                     continue;
                   }
                   if (at + w.count > r->size()) {
                     w.done(error(errc::internal, "the broker confirmed fewer messages than sent"));
                     continue;
                   }
                   const auto first = r->begin() + static_cast<std::ptrdiff_t>(at);
                   w.done(std::vector<publish_outcome>(
                       std::make_move_iterator(first),
                       std::make_move_iterator(first + static_cast<std::ptrdiff_t>(w.count))));
                   at += w.count;
                 }
               });
  }

  void queue_ack(bc::delivery_tag tag, callback<status> done) {
    coalesced_acks.push_back(ack_waiter{tag, generation, std::move(done)});
    if (ack_flush_posted) return;
    ack_flush_posted = true;
    asio::post(ctx, [self = shared_from_this()] { self->flush_acks(); });
  }

  // Also called before any other settle or unsubscribe, so that the broker sees
  // a connection's settlements in the order they were made.
  void flush_acks() {
    ack_flush_posted = false;
    if (coalesced_acks.empty()) return;
    auto acks = std::move(coalesced_acks);
    coalesced_acks.clear();
    std::vector<bc::delivery_tag> tags;
    std::vector<ack_waiter> sent;
    tags.reserve(acks.size());
    sent.reserve(acks.size());
    for (auto& a : acks) {
      if (state != conn_state::ready || a.generation != generation) {
        if (a.done) {
          a.done(state == conn_state::closed
                     ? shutting_down_error()
                     : error(errc::delivery_not_found,
                             "the delivery's broker connection was lost (the broker redelivers "
                             "it)"));
        }
        continue;
      }
      tags.push_back(a.tag);
      sent.push_back(std::move(a));
    }
    if (tags.empty()) return;
    client->ack(std::move(tags), [this, sent = std::move(sent)](
                                     result<std::vector<bc::settle_failure>> r) mutable {
      for (auto& a : sent) {
        if (!a.done) continue;
        if (!r) {
          a.done(state == conn_state::closed ? shutting_down_error() : status(r.error()));
          continue;
        }
        status st = ok_status();
        for (const auto& f : *r) {
          if (f.tag == a.tag) {
            st = f.err;
            break;
          }
        }
        a.done(std::move(st));
      }
    });
  }

  void send_batch(std::vector<message> batch, callback<result<std::vector<publish_outcome>>> done) {
    if (state != conn_state::ready) return done(not_connected());
    for (const auto& m : batch) {
      if (declared_topics.contains(m.topic)) continue;
      // Pipelined before the PUBLISH (processed in order by the broker).
      client->declare_topic(m.topic, [this, topic = m.topic](status s) {
        if (s) {
          declared_topics.insert(topic);
        } else {
          logger.debug("declaring topic '{}': {}", topic, s.error().message);
        }
      });
      declared_topics.insert(m.topic);  // once per connection; a failure shows in the publish
    }
    // Split by the broker's batch and frame limits.
    const std::size_t max_count =
        std::max<std::uint32_t>(1, client->server_info().max_batch_messages);
    const std::size_t max_bytes = client->server_info().max_frame_bytes / 2;
    auto size_of = [](const message& m) {
      std::size_t size = message_overhead_bytes + m.topic.size() + m.body.size();
      for (const auto& [k, v] : m.headers) size += header_overhead_bytes + k.size() + v.size();
      return size;
    };
    auto outgoing = [](message& m) {
      return bc::outgoing_message{std::move(m.topic), m.id, std::move(m.headers), std::move(m.body),
                                  m.deliver_at};
    };
    if (batch.size() == 1) {
      // The usual publish (one message, as the sidecar's API makes them): one PUBLISH and
      // its outcome, without the chunks' bookkeeping (4 allocations instead of 8).
      std::vector<bc::outgoing_message> one;
      one.reserve(1);
      one.push_back(outgoing(batch.front()));
      const id128 id = one.front().id;
      ++publishes_awaiting_confirm;
      client->publish(std::move(one), [this, id, done = std::move(done)](
                                          result<std::vector<bc::publish_result>> r) mutable {
        --publishes_awaiting_confirm;
        std::vector<publish_outcome> outcome;
        if (r) {
          outcome.reserve(r->size());
          for (auto& pr : *r) outcome.push_back(publish_outcome{pr.id, std::move(pr.outcome)});
          return done(std::move(outcome));
        }
        // As below for a batch whose every chunk failed: a whole-batch error, except a
        // message too large, which is that message's own outcome.
        const error e = state == conn_state::closed ? shutting_down_error() : r.error();
        if (e.code != errc::message_too_large) return done(e);
        outcome.push_back(publish_outcome{id, e});
        done(std::move(outcome));
      });
      return;
    }
    std::vector<std::vector<bc::outgoing_message>> chunks(1);
    std::size_t bytes = 0;
    for (auto& m : batch) {
      const std::size_t size = size_of(m);
      if (!chunks.back().empty() &&
          (chunks.back().size() >= max_count || bytes + size > max_bytes)) {
        chunks.emplace_back();
        bytes = 0;
      }
      bytes += size;
      chunks.back().push_back(outgoing(m));
    }
    struct progress {
      std::vector<std::vector<publish_outcome>> parts;
      std::size_t remaining = 0;
      std::size_t failed_chunks = 0;
      std::optional<error> first_error;
      callback<result<std::vector<publish_outcome>>> done;
    };
    auto p = std::make_shared<progress>();
    p->parts.resize(chunks.size());
    p->remaining = chunks.size();
    p->done = std::move(done);
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      const std::size_t n = chunks[i].size();
      std::vector<id128> ids;
      ids.reserve(n);
      for (const auto& m : chunks[i]) ids.push_back(m.id);
      ++publishes_awaiting_confirm;
      client->publish(std::move(chunks[i]), [this, p, i, ids = std::move(ids)](
                                                result<std::vector<bc::publish_result>> r) {
        --publishes_awaiting_confirm;
        auto& part = p->parts[i];
        if (r) {
          for (auto& pr : *r) part.push_back(publish_outcome{pr.id, std::move(pr.outcome)});
        } else {
          // The whole chunk failed (connection lost, queue full, too large):
          // each message fails with that error; none was confirmed.
          const error e = state == conn_state::closed ? shutting_down_error() : r.error();
          for (const auto& id : ids) part.push_back(publish_outcome{id, e});
          ++p->failed_chunks;
          if (!p->first_error) p->first_error = e;
        }
        if (--p->remaining != 0) return;
        if (p->failed_chunks == p->parts.size() &&
            p->first_error->code != errc::message_too_large) {
          return p->done(*p->first_error);  // the backend is down: a whole-batch error
        }
        std::vector<publish_outcome> all;
        for (auto& q : p->parts) {
          for (auto& o : q) all.push_back(std::move(o));
        }
        p->done(std::move(all));
      });
    }
  }

  // ---------------- settling ----------------

  void settle(const settle_handle& h, settle_action action, callback<status> done) {
    const auto gen = static_cast<std::uint32_t>(h.subscription >> generation_shift);
    const subscription_handle local = h.subscription & local_handle_mask;
    auto it = subs.find(local);
    if (state != conn_state::ready || gen != generation || it == subs.end() ||
        it->second.unsettled.erase(h.token) == 0) {
      if (done) {
        done(error(errc::delivery_not_found,
                   "delivery unknown, already settled, or its broker connection was lost (the "
                   "broker redelivers it)"));
      }
      return;
    }
    if (action.type == settle_action::kind::ack) return queue_ack(h.token, std::move(done));
    flush_acks();
    auto finish = [this, done = std::move(done)](result<std::vector<bc::settle_failure>> r) {
      if (!done) return;
      if (!r && state == conn_state::closed) return done(shutting_down_error());
      done(settle_status(r));
    };
    switch (action.type) {
      case settle_action::kind::ack: return;  // queued above
      case settle_action::kind::retry:
        client->nack({bc::nack_entry{h.token, std::max(action.delay, nanoseconds{}), false, false}},
                     std::move(finish));
        return;
      case settle_action::kind::dead_letter:
        client->nack({bc::nack_entry{h.token, {}, true, false}}, std::move(finish));
        return;
      case settle_action::kind::release:
        client->nack({bc::nack_entry{h.token, {}, false, true}}, std::move(finish));
        return;
    }
  }

  void unsubscribe(subscription_handle handle, callback<status> done) {
    auto it = subs.find(handle);
    if (it == subs.end()) {
      if (done) done(error(errc::consumer_not_found, "no subscription " + std::to_string(handle)));
      return;
    }
    flush_acks();  // acks made before the unsubscribe reach the broker before it
    subscription sub = std::move(it->second);
    subs.erase(it);
    if (state != conn_state::ready || !sub.established) {
      if (done) done(ok_status());  // nothing held at the broker any more
      return;
    }
    // UNSUBSCRIBE is a graceful stop: the broker gives the unsettled
    // deliveries back without counting an attempt.
    client->unsubscribe(sub.broker_id, [this, done = std::move(done)](status s) {
      if (!done) return;
      if (!s && state != conn_state::ready) return done(ok_status());  // gone with the connection
      done(std::move(s));
    });
  }

  void health(callback<status> done) {
    if (state != conn_state::ready) return done(not_connected());
    auto answered = std::make_shared<bool>(false);
    auto shared_done = std::make_shared<callback<status>>(std::move(done));
    auto timer = std::make_shared<asio::steady_timer>(ctx, opts.health_timeout);
    timer->async_wait(
        [this, self = shared_from_this(), answered, shared_done](boost::system::error_code ec) {
          if (ec || *answered) return;
          *answered = true;
          (*shared_done)(error(errc::unavailable,
                               "the broker at " + opts.address + " did not answer a ping in time"));
        });
    client->ping([this, answered, shared_done, timer](status s) {
      timer->cancel();
      if (*answered) return;
      *answered = true;
      if (!s) {
        return (*shared_done)(state == conn_state::closed
                                  ? shutting_down_error()
                                  : error(errc::unavailable, "broker ping: " + s.error().message));
      }
      (*shared_done)(ok_status());
    });
  }
};

std::string embedded_backend::queue_name(std::string_view topic, std::string_view app_id) {
  std::string name(topic);
  name += '.';
  name += app_id;
  return name;
}

std::string embedded_backend::delivery_client_name(std::string_view client_name) {
  std::string name(client_name);
  name += " (deliveries)";
  return name;
}

embedded_backend::embedded_backend(embedded_backend_options options,
                                   boost::asio::io_context& shared_context,
                                   boost::asio::io_context* delivery_context) {
  if (delivery_context != nullptr) {
    embedded_backend_options d = options;
    d.client_name = delivery_client_name(options.client_name);
    subs_ = std::make_shared<impl>(std::move(d), delivery_context);
    subs_->post([](impl& m) { m.connect(); });
  }
  impl_ = std::make_shared<impl>(std::move(options), &shared_context);
  if (!subs_) subs_ = impl_;
  impl_->post([](impl& m) { m.connect(); });
}

embedded_backend::embedded_backend(embedded_backend_options options)
    : impl_(std::make_shared<impl>(std::move(options), nullptr)) {
  std::promise<void> finished;
  impl_->finished = finished.get_future();
  impl_->thread = std::thread([im = impl_.get(), finished = std::move(finished)]() mutable {
    im->ctx.run();
    finished.set_value();
  });
  impl_->post([](impl& m) { m.connect(); });
  subs_ = impl_;
}

embedded_backend::~embedded_backend() {
  close();
}

void embedded_backend::publish(std::vector<message> batch,
                               callback<result<std::vector<publish_outcome>>> done) {
  if (impl_->closed) return done(shutting_down_error());
  if (batch.empty()) return done(error(errc::invalid_argument, "publish of an empty batch"));
  auto run = [batch = std::move(batch), done = std::move(done)](impl& m) mutable {
    m.when_connected([&m, batch = std::move(batch), done = std::move(done)](bool) mutable {
      if (m.state == impl::conn_state::closed) return done(shutting_down_error());
      m.publish(std::move(batch), std::move(done));
    });
  };
  // Called on the backend's context (the sidecar's handlers on its I/O
  // thread): no post, so no queue round before the frame is encoded.
  if (impl_->ctx.get_executor().running_in_this_thread()) return run(*impl_);
  impl_->post(std::move(run));
}

void embedded_backend::cancel_scheduled(const id128& id, callback<status> done) {
  if (impl_->closed) return done(shutting_down_error());
  impl_->post([id, done = std::move(done)](impl& m) mutable {
    m.when_connected([&m, id, done = std::move(done)](bool connected) mutable {
      if (m.state == impl::conn_state::closed) return done(shutting_down_error());
      if (!connected) return done(m.not_connected());
      m.client->cancel_scheduled(id, [&m, done = std::move(done)](status s) {
        if (!s && m.state == impl::conn_state::closed) return done(shutting_down_error());
        done(std::move(s));
      });
    });
  });
}

void embedded_backend::peek_pending(const std::string& topic, const std::string& app_id,
                                    const id128& id,
                                    callback<result<std::optional<message>>> done) {
  if (impl_->closed) return done(shutting_down_error());
  impl_->post(
      [queue = queue_name(topic, app_id), topic, id, done = std::move(done)](impl& m) mutable {
        m.when_connected([&m, queue = std::move(queue), topic = std::move(topic), id,
                          done = std::move(done)](bool connected) mutable {
          if (m.state == impl::conn_state::closed) return done(shutting_down_error());
          if (!connected) return done(m.not_connected());
          m.client->peek_id(std::move(queue), id,
                            [topic = std::move(topic), done = std::move(done)](
                                result<std::vector<bc::peeked_message>> r) mutable {
                              if (!r) return done(std::move(r).error());
                              if (r->empty()) return done(std::optional<message>{});
                              auto& p = r->front();
                              message out;
                              out.topic = std::move(topic);
                              out.id = p.id;
                              out.headers = std::move(p.headers);
                              out.body = std::move(p.body);
                              out.deliver_at = p.deliver_at;
                              done(std::optional<message>(std::move(out)));
                            });
        });
      });
}

void embedded_backend::subscribe(subscription_spec spec, delivery_fn on_delivery,
                                 callback<result<subscription_handle>> done) {
  if (subs_->closed) return done(shutting_down_error());
  if (spec.topic.empty() || spec.app_id.empty()) {
    return done(error(errc::invalid_argument, "a subscription needs a topic and an app id"));
  }
  if (spec.prefetch == 0) return done(error(errc::invalid_argument, "prefetch must be at least 1"));
  if (!on_delivery) return done(error(errc::invalid_argument, "subscribe without a handler"));
  subs_->post([spec = std::move(spec), on_delivery = std::move(on_delivery),
               done = std::move(done)](impl& m) mutable {
    m.when_connected([&m, spec = std::move(spec), on_delivery = std::move(on_delivery),
                      done = std::move(done)](bool connected) mutable {
      if (m.state == impl::conn_state::closed) return done(shutting_down_error());
      if (!connected) return done(m.not_connected());
      if (m.next_handle >= max_local_handle) {
        return done(error(errc::resource_exhausted, "subscription handles exhausted"));
      }
      const subscription_handle h = m.next_handle++;
      m.subs.emplace(h, impl::subscription{std::move(spec), std::move(on_delivery), 0, false, {}});
      m.establish(h, std::move(done));
    });
  });
}

void embedded_backend::unsubscribe(subscription_handle handle, callback<status> done) {
  if (subs_->closed) {
    if (done) done(shutting_down_error());
    return;
  }
  subs_->post([handle, done = std::move(done)](impl& m) mutable {
    m.unsubscribe(handle, std::move(done));
  });
}

void embedded_backend::settle(const settle_handle& handle, settle_action action,
                              callback<status> done) {
  if (subs_->closed) {
    if (done) done(shutting_down_error());
    return;
  }
  // On the subscriptions' context (the sidecar's delivery thread, where the
  // app's answers arrive): no post; acks of one turn still merge.
  if (subs_->ctx.get_executor().running_in_this_thread()) {
    return subs_->settle(handle, action, std::move(done));
  }
  subs_->post([handle, action, done = std::move(done)](impl& m) mutable {
    m.settle(handle, action, std::move(done));
  });
}

void embedded_backend::health(callback<status> done) {
  if (impl_->closed) return done(shutting_down_error());
  auto check = [](const std::shared_ptr<impl>& on, callback<status> then) {
    on->post([then = std::move(then)](impl& m) mutable {
      m.when_connected([&m, then = std::move(then)](bool) mutable {
        if (m.state == impl::conn_state::closed) return then(shutting_down_error());
        m.health(std::move(then));
      });
    });
  };
  if (subs_ == impl_) return check(impl_, std::move(done));
  // Both connections: the publishing one, then the subscriptions' one.
  check(impl_, [subs = subs_, check, done = std::move(done)](status s) mutable {
    if (!s) return done(std::move(s));
    check(subs, std::move(done));
  });
}

void embedded_backend::close() {
  if (subs_ != impl_) close_impl(subs_);
  close_impl(impl_);
}

void embedded_backend::close_impl(const std::shared_ptr<impl>& m) {
  if (m->closed.exchange(true)) return;
  if (!m->own) {
    // Shared context: shut down on its thread (client callbacks fail there,
    // inline); handlers still queued hold the impl and find it closed.
    if (m->ctx.get_executor().running_in_this_thread()) return m->shut();
    auto shut = std::make_shared<std::promise<void>>();
    auto done = shut->get_future();
    m->post([shut](impl& on) {
      on.shut();
      shut->set_value();
    });
    if (done.wait_for(close_wait) != std::future_status::ready) {
      logger.warn("the broker connection did not close in time (is the I/O thread stopped?)");
    }
    return;
  }
  m->post([](impl& on) { on.shut(); });
  m->guard.reset();
  if (m->finished.wait_for(close_wait) != std::future_status::ready) {
    logger.warn("the broker connection did not close in time; stopping");
    m->ctx.stop();
  }
  m->thread.join();
  // Handlers still queued on ctx hold shared_from_this() (ctx is a member of the
  // impl: a reference cycle). Run the ones that are ready (poll never blocks on
  // an operation that cannot finish) so the impl and its broker client can go.
  m->client.reset();
  m->ctx.restart();
  m->ctx.poll();
}

result<embedded_backend_options> parse_embedded_backend_options(const config::node& metadata) {
  embedded_backend_options o;
  if (metadata.is_null()) return o;
  if (!metadata.is_map()) return metadata.fail("expected a map of metadata values");
  for (const auto& [key, value] : metadata.entries()) {
    if (!value.is_scalar()) return value.fail("expected a value");
    if (key == "address") {
      if (value.scalar().empty()) return value.fail("the broker address must not be empty");
      o.address = value.scalar();
    } else if (key == "connectTimeout" || key == "maxReconnectInterval") {
      auto d = parse_duration(value.scalar());
      if (!d || *d <= nanoseconds{}) return value.fail("expected a positive duration such as 2s");
      (key == "connectTimeout" ? o.connect_timeout : o.max_reconnect_interval) = *d;
    } else {
      return value.fail(
          "unknown metadata key of the embedded pub/sub (address, connectTimeout, "
          "maxReconnectInterval)");
    }
  }
  o.min_reconnect_interval = std::min(o.min_reconnect_interval, o.max_reconnect_interval);
  return o;
}

result<std::unique_ptr<backend>> make_embedded_backend(const config::node& metadata,
                                                       const backend_context& context) {
  auto o = parse_embedded_backend_options(metadata);
  if (!o) return o.error();
  if (!context.app_id.empty()) o->client_name = "outrider-sidecar:" + context.app_id;
  // On the runtime's context 0 (the sidecar's I/O thread) when there is one;
  // subscriptions on the delivery runtime's context 0 when there is one.
  if (context.runtime != nullptr) {
    return std::unique_ptr<backend>(std::make_unique<embedded_backend>(
        std::move(*o), context.runtime->context(0),
        context.delivery_runtime != nullptr ? &context.delivery_runtime->context(0) : nullptr));
  }
  return std::unique_ptr<backend>(std::make_unique<embedded_backend>(std::move(*o)));
}

}  // namespace outrider::backends
