#include "daemon/session.hpp"

#include "actors/error.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <system_error>

namespace projlink {

fd_bundle::~fd_bundle() {
  for (int fd : fds)
    ::close(fd);
}

reply_queue::reply_queue() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "eventfd");
}

reply_queue::~reply_queue() {
  ::close(fd_);
}

void reply_queue::push(outgoing_reply r) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    was_empty = items_.empty();
    items_.push_back(std::move(r));
  }
  // One wake-up per batch: the reader drains everything it finds.
  if (was_empty) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_, &one, sizeof(one));
  }
}

std::vector<outgoing_reply> reply_queue::drain() {
  uint64_t count;
  [[maybe_unused]] auto n = ::read(fd_, &count, sizeof(count));
  std::vector<outgoing_reply> out;
  std::lock_guard<std::mutex> guard{mtx_};
  out.swap(items_);
  return out;
}

call_context::call_context(caf::event_based_actor* self, const services* svc, uint64_t session,
                           incoming_call in)
  : self(self), svc(svc), session_(session), in_(std::move(in)) {
}

std::string call_context::interface() const {
  auto dot = in_.call.method.rfind('.');
  return in_.call.method.substr(0, dot);
}

call_context::~call_context() {
  // A oneway call counts as in flight until it is done (SPEC §6.3); its
  // handler may never answer, so the end of its context ends it.
  if (in_.call.oneway && !finished_.exchange(true))
    svc->replies->push({session_, 0, {}, false, true});
}

void call_context::reply(const varlink::json& parameters, bool continues) const {
  if (in_.call.oneway) {
    if (!continues && !finished_.exchange(true))
      svc->replies->push({session_, 0, {}, false, true});
    return;
  }
  if (!continues)
    finished_ = true;
  svc->replies->push({session_, in_.seq, varlink::encode_reply(parameters, continues), continues});
}

void call_context::fail(const std::string& qualified_name,
                        const varlink::json& parameters) const {
  svc->metrics->call_errors++;
  if (in_.call.oneway) {
    if (!finished_.exchange(true))
      svc->replies->push({session_, 0, {}, false, true});
    return;
  }
  finished_ = true;
  svc->replies->push({session_, in_.seq, varlink::encode_error(qualified_name, parameters), false});
}

void call_context::fail(const caf::error& err) const {
  auto code = code_of(err);
  if (err.category() != ec_category) {
    spdlog::warn("{}: {}", in_.call.method, caf::to_string(err));
    fail("io.projlink.Daemon.InternalError",
         {{"message", err == caf::sec::request_timeout ? "the daemon did not answer in time"
                                                        : caf::to_string(err)}});
    return;
  }
  const auto& shape = shape_of(code);
  varlink::json params = varlink::json::object();
  const auto& ctx = err.context();
  for (size_t i = 0; i < shape.params.size() && i < ctx.size(); ++i) {
    if (ctx.match_element<std::string>(i))
      params[shape.params[i]] = ctx.get_as<std::string>(i);
    else if (ctx.match_element<int64_t>(i))
      params[shape.params[i]] = ctx.get_as<int64_t>(i);
  }
  if (code == ec::internal)
    spdlog::error("{}: {}", in_.call.method, describe(err));
  std::string iface = shape.interface != nullptr ? shape.interface : interface();
  fail(iface + "." + shape.name, params);
}

namespace {

const handler_map& handlers() {
  static const handler_map map = [] {
    handler_map m;
    add_directory_api(m);
    add_daemon_api(m);
    add_connections_api(m);
    add_drawings_api(m);
    return m;
  }();
  return map;
}

struct session_state {
  static inline const char* name = "session";
};

caf::behavior session(caf::stateful_actor<session_state>* self, const services* svc,
                      uint64_t id, peer_info peer) {
  return {
    [=](incoming_call& in) {
      svc->metrics->calls++;
      auto c = std::make_shared<const call_context>(self, svc, id, std::move(in));
      const auto& method = c->in().call.method;
      auto it = handlers().find(method);
      if (it == handlers().end()) {
        // The control thread checked that the interface declares it.
        c->fail("org.varlink.service.MethodNotImplemented", {{"method", method}});
        return;
      }
      try {
        varlink::params p{c->in().call.parameters};
        it->second(c, p);
      } catch (const varlink::invalid_parameter& e) {
        c->fail("org.varlink.service.InvalidParameter", {{"parameter", e.parameter}});
      } catch (const std::exception& e) {
        spdlog::error("{}: {}", method, e.what());
        c->fail("io.projlink.Daemon.InternalError", {{"message", e.what()}});
      }
    },
  };
}

} // namespace

caf::actor spawn_session(caf::actor_system& sys, const services* svc, uint64_t session,
                         peer_info peer) {
  return sys.spawn(projlink::session, svc, session, peer);
}

} // namespace projlink
