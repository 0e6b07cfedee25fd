#include "http/handler.h"

namespace outrider::http {

void responder::state::finish(response&& r) {
  if (hook != nullptr) {
    auto* run = hook;
    hook = nullptr;
    run(hook_storage, &r);
  }
  deliver(std::move(r));
}

void responder::state::dropped() noexcept {
  if (!done.exchange(true)) {
    finish(response::from_error(error(errc::internal, "the handler dropped the request")));
  }
}

responder::responder(deliver_fn deliver)
    : responder(new state_of<deliver_fn>(std::move(deliver))) {}

void responder::send(response r) const {
  if (!state_->done.exchange(true)) {
    state_->finish(std::move(r));
  }
}

bool responder::sent() const noexcept {
  return state_->done.load();
}

handler sync_handler(std::function<response(const request&)> fn) {
  return [fn = std::move(fn)](request&& req, responder r) { r.send(fn(req)); };
}

}  // namespace outrider::http
