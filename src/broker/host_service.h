// host_service: the protocol server's `service` (service.h) implemented by the
// broker host: converts wire values to engine values and back.
//
// Threading: every call posts to the host's engine thread (host.h); the
// completions run there. Per-connection order is kept because the host runs
// calls in the order they were posted.
//
// Subscriptions use the queue's lease; a per-subscription lease in the
// request is not supported by the engine and is ignored (documented in
// docs/formats/broker-protocol.md).
#pragma once

#include "broker/host.h"
#include "broker/service.h"

namespace outrider::broker {

class host_service final : public service {
 public:
  // REQUIRES: `h` outlives this object.
  explicit host_service(host& h) : host_(h) {}

  void publish(std::shared_ptr<const bc::publish_batch> batch,
               completion<std::vector<bc::publish_result>> done) override;
  void subscribe(const bc::subscribe_request& request, std::shared_ptr<delivery_sink> sink,
                 completion<result<bc::subscription_id>> done) override;
  void unsubscribe(bc::subscription_id subscription, completion<status> done) override;
  void unsubscribe_gracefully(bc::subscription_id subscription, completion<status> done) override;
  void add_credit(bc::subscription_id subscription, std::uint32_t credit,
                  completion<status> done) override;
  void ack(std::vector<bc::delivery_tag> tags,
           completion<std::vector<bc::settle_failure>> done) override;
  void nack(std::vector<bc::nack_entry> entries,
            completion<std::vector<bc::settle_failure>> done) override;
  void cancel_scheduled(const id128& id, completion<status> done) override;
  void declare(const bc::declare_request& request, completion<status> done) override;
  void list_queues(completion<result<std::vector<bc::queue_info>>> done) override;
  void peek(const bc::peek_request& request,
            completion<result<std::vector<bc::peeked_message>>> done) override;
  void replay_dead_letters(const bc::replay_request& request,
                           completion<result<std::uint64_t>> done) override;
  void stats(completion<result<bc::stat_list>> done) override;

 private:
  host& host_;
};

}  // namespace outrider::broker
