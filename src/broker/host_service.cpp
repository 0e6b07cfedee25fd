#include "broker/host_service.h"

#include <chrono>
#include <fmt/core.h>

namespace outrider::broker {
namespace {

bc::header_list to_list(std::map<std::string, std::string>&& headers) {
  bc::header_list out;
  out.reserve(headers.size());
  for (auto& [k, v] : headers) out.emplace_back(k, std::move(v));
  return out;
}

// Adapts host deliveries to the protocol sink of one subscription.
host::delivery_sink make_sink(std::shared_ptr<delivery_sink> sink,
                              std::shared_ptr<bc::subscription_id> id) {
  return [sink = std::move(sink), id = std::move(id)](std::vector<delivery>&& batch) {
    std::vector<bc::delivery> out;
    out.reserve(batch.size());
    for (auto& d : batch) {
      out.push_back(bc::delivery{*id, d.tag, d.msg.id, d.attempt, to_list(std::move(d.msg.headers)),
                                 std::move(d.msg.body), d.msg.deliver_at, d.msg.published_at});
    }
    sink->deliver(std::move(out));
  };
}

}  // namespace

void host_service::publish(std::shared_ptr<const bc::publish_batch> batch,
                           completion<std::vector<bc::publish_result>> done) {
  std::vector<publish_request> requests;
  requests.reserve(batch->messages.size());
  for (const auto& m : batch->messages) {
    publish_request r;
    r.destination = std::string(m.destination);
    r.id = m.id;
    for (const auto& h : batch->headers_of(m))
      r.headers.emplace(std::string(h.name), std::string(h.value));
    r.body = std::string(m.body);
    if (m.deliver_at != wall_time{}) r.deliver_at = m.deliver_at;
    requests.push_back(std::move(r));
  }
  host_.publish(std::move(requests),
                [batch, done = std::move(done)](std::vector<result<publish_receipt>> results) {
                  std::vector<bc::publish_result> out;
                  out.reserve(results.size());
                  for (std::size_t i = 0; i < results.size(); ++i) {
                    if (results[i]) {
                      out.push_back(bc::publish_result{results[i]->id, {}});
                    } else {
                      out.push_back(bc::publish_result{batch->messages[i].id, results[i].error()});
                    }
                  }
                  done(std::move(out));
                });
}

void host_service::subscribe(const bc::subscribe_request& request,
                             std::shared_ptr<delivery_sink> sink,
                             completion<result<bc::subscription_id>> done) {
  if (request.credit == 0) {
    done(error(errc::invalid_argument, "subscribe needs a credit of at least 1"));
    return;
  }
  // The id is known only when subscribe completes; deliveries cannot precede
  // that completion (both run on the engine thread, completion first).
  auto id = std::make_shared<bc::subscription_id>(0);
  host_.subscribe(
      request.queue, request.credit, make_sink(std::move(sink), id),
      [id, done = std::move(done)](result<consumer_id> c) {
        if (c) *id = *c;
        done(c ? result<bc::subscription_id>(*c) : result<bc::subscription_id>(c.error()));
      });
}

void host_service::unsubscribe(bc::subscription_id subscription, completion<status> done) {
  host_.unsubscribe(subscription, std::move(done));
}

void host_service::unsubscribe_gracefully(bc::subscription_id subscription,
                                          completion<status> done) {
  host_.unsubscribe(subscription, std::move(done), true);
}

void host_service::add_credit(bc::subscription_id subscription, std::uint32_t credit,
                              completion<status> done) {
  host_.add_credit(subscription, credit, std::move(done));
}

void host_service::ack(std::vector<bc::delivery_tag> tags,
                       completion<std::vector<bc::settle_failure>> done) {
  auto copy = tags;
  host_.ack(std::move(tags),
            [tags = std::move(copy), done = std::move(done)](std::vector<status> results) {
              std::vector<bc::settle_failure> failures;
              for (std::size_t i = 0; i < results.size(); ++i) {
                if (!results[i])
                  failures.push_back(bc::settle_failure{tags[i], results[i].error()});
              }
              done(std::move(failures));
            });
}

void host_service::nack(std::vector<bc::nack_entry> entries,
                        completion<std::vector<bc::settle_failure>> done) {
  struct state {
    std::vector<bc::settle_failure> failures;
    std::size_t remaining;
    completion<std::vector<bc::settle_failure>> done;
  };
  if (entries.empty()) {
    done({});
    return;
  }
  // Completions of one caller's calls run in order on the engine thread: the last one finishes.
  auto st = std::make_shared<state>(state{{}, entries.size(), std::move(done)});
  for (const auto& e : entries) {
    auto finish = [st, tag = e.tag](status s) {
      if (!s) st->failures.push_back(bc::settle_failure{tag, s.error()});
      if (--st->remaining == 0) st->done(std::move(st->failures));
    };
    if (e.release) {
      host_.release(e.tag, std::move(finish));
    } else {
      host_.nack(e.tag, e.redeliver_after, e.dead_letter, std::move(finish));
    }
  }
}

void host_service::cancel_scheduled(const id128& id, completion<status> done) {
  host_.cancel(id, std::move(done));
}

void host_service::declare(const bc::declare_request& request, completion<status> done) {
  switch (request.kind) {
    case bc::wire::declare_kind::queue: {
      queue_options o;
      o.max_attempts = request.queue.max_attempts;
      o.dead_letter_queue = request.queue.dead_letter_queue;
      if (request.queue.lease > nanoseconds::zero()) o.lease = request.queue.lease;
      host_.declare_queue(request.name, o, std::move(done));
      return;
    }
    case bc::wire::declare_kind::topic: host_.declare_topic(request.name, std::move(done)); return;
    case bc::wire::declare_kind::binding:
      host_.bind(request.name, request.bound_queue, std::move(done));
      return;
  }
  done(error(errc::invalid_argument, "unknown declare kind"));
}

void host_service::list_queues(completion<result<std::vector<bc::queue_info>>> done) {
  host_.list_queues([done = std::move(done)](std::vector<queue_summary> queues) {
    std::map<std::string, std::uint64_t> ready_by_name;
    for (const auto& q : queues) ready_by_name[q.name] = q.stats.ready;
    std::vector<bc::queue_info> out;
    out.reserve(queues.size());
    for (const auto& q : queues) {
      bc::queue_info info;
      info.name = q.name;
      info.ready = q.stats.ready;
      info.in_flight = q.stats.leased + q.stats.retry_wait;
      info.scheduled = q.stats.scheduled;
      auto dlq = ready_by_name.find(q.stats.dead_letter_queue);
      info.dead_letters =
          q.stats.dead_letter_queue.empty() || dlq == ready_by_name.end() ? 0 : dlq->second;
      info.consumers = static_cast<std::uint32_t>(q.stats.consumers);
      out.push_back(std::move(info));
    }
    done(std::move(out));
  });
}

void host_service::peek(const bc::peek_request& request,
                        completion<result<std::vector<bc::peeked_message>>> done) {
  if (!request.id.is_zero()) {
    host_.peek(request.queue, request.id, [done = std::move(done)](result<message> r) {
      std::vector<bc::peeked_message> out;
      if (!r) {
        if (r.error().code == errc::message_not_found) return done(std::move(out));
        return done(std::move(r).error());
      }
      bc::peeked_message p;
      p.id = r->id;
      // The engine's peek does not report the state: a message due later is
      // scheduled; any other is reported ready (it may be leased).
      p.state = r->deliver_at > std::chrono::system_clock::now() ? bc::peeked_state::scheduled
                                                                 : bc::peeked_state::ready;
      p.headers = to_list(std::move(r->headers));
      p.body = std::move(r->body);
      p.deliver_at = r->deliver_at;
      p.published_at = r->published_at;
      out.push_back(std::move(p));
      done(std::move(out));
    });
    return;
  }
  host_.peek_messages(
      request.queue, request.max,
      [done = std::move(done)](result<std::vector<std::pair<message_info, message>>> r) {
        if (!r) return done(std::move(r).error());
        std::vector<bc::peeked_message> out;
        out.reserve(r->size());
        for (auto& [info, msg] : *r) {
          bc::peeked_message p;
          p.id = info.id;
          switch (info.state) {
            case message_state::ready: p.state = bc::peeked_state::ready; break;
            case message_state::leased: p.state = bc::peeked_state::leased; break;
            case message_state::retry_wait: p.state = bc::peeked_state::retry_wait; break;
          }
          p.failed_attempts = info.failed_attempts;
          p.headers = to_list(std::move(msg.headers));
          p.body = std::move(msg.body);
          p.deliver_at = msg.deliver_at;
          p.published_at = msg.published_at;
          out.push_back(std::move(p));
        }
        done(std::move(out));
      });
}

void host_service::replay_dead_letters(const bc::replay_request& request,
                                       completion<result<std::uint64_t>> done) {
  const std::size_t max = request.max == 0 ? SIZE_MAX : request.max;
  host_.replay_dead_letters(request.dead_letter_queue, max,
                            [done = std::move(done)](result<std::size_t> r) {
                              if (!r) return done(std::move(r).error());
                              done(static_cast<std::uint64_t>(*r));
                            });
}

void host_service::stats(completion<result<bc::stat_list>> done) {
  host_.stats([done = std::move(done)](std::vector<std::pair<std::string, std::uint64_t>> s) {
    done(std::move(s));
  });
}

}  // namespace outrider::broker
