#include "daemon/session.hpp"

#include "actors/directory_db.hpp"
#include "actors/error.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics_registry.hpp"

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

void call_context::set_as(const std::string& user) {
  in_.call.parameters["as"] = user;
}

void call_context::log_change() const {
  // SPEC §6.3: every successful change is logged with the caller's uid and
  // pid. Reads are not changes.
  const auto& m = in_.call.method;
  auto name = m.substr(m.rfind('.') + 1);
  static const char* reads[] = {"History", "CompanyHistory", "SyncStatus", "Notifications",
                                "Watch", "DeletedRevisions", "Export"};
  if (name.rfind("Get", 0) == 0 || name.rfind("List", 0) == 0)
    return;
  for (const char* r : reads)
    if (name == r)
      return;
  if (!in_.peer)
    return;
  const auto& p = in_.call.parameters;
  auto as = p.is_object() && p.contains("as") && p["as"].is_string() ? p["as"].get<std::string>()
                                                                      : std::string{"-"};
  spdlog::info("change: {} by uid={} pid={} as {}", m, in_.peer->uid, in_.peer->pid, as);
}

std::string call_context::interface() const {
  auto dot = in_.call.method.rfind('.');
  return in_.call.method.substr(0, dot);
}

log_fields call_context::about() const {
  log_fields f;
  const auto& p = in_.call.parameters;
  if (!p.is_object())
    return f;
  auto text = [&](const char* k) {
    auto it = p.find(k);
    std::string v;
    if (it != p.end() && it->is_string())
      for (char ch : it->get_ref<const std::string&>())
        if (static_cast<unsigned char>(ch) >= 0x20 && v.size() < 200)
          v += ch;
    return v;
  };
  f.connection = text("connection");
  f.project = text("project");
  if (f.project.empty())
    f.project = text("downstream");
  return f;
}

void call_context::record(std::string_view outcome) const {
  if (recorded_)
    return;
  recorded_ = true;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
  telemetry::registry::global().call(in_.call.method, outcome, took.count());
}

call_context::~call_context() {
  // A oneway call counts as in flight until it is done (SPEC §6.3); its
  // handler may never answer, so the end of its context ends it.
  if (in_.call.oneway && !finished_.exchange(true))
    svc->replies->push({session_, 0, {}, false, true});
}

void call_context::reply(const varlink::json& parameters, bool continues) const {
  record("ok");
  if (in_.call.oneway) {
    if (!continues && !finished_.exchange(true)) {
      log_change();
      svc->replies->push({session_, 0, {}, false, true});
    }
    return;
  }
  if (!continues) {
    finished_ = true;
    log_change();
  }
  svc->replies->push({session_, in_.seq, varlink::encode_reply(parameters, continues), continues});
}

void call_context::fail(const std::string& qualified_name,
                        const varlink::json& parameters) const {
  svc->metrics->call_errors++;
  record(std::string_view(qualified_name).substr(qualified_name.rfind('.') + 1));
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
    log_about(spdlog::level::warn, about(), in_.call.method + ": " + caf::to_string(err));
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
    log_about(spdlog::level::err, about(), in_.call.method + ": " + describe(err));
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

/// Runs the handler of a call whose caller may make it.
void run_handler(const call_ptr& c) {
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
}

/// Every method of these interfaces takes `as` (SPEC §6.2).
bool takes_as(const std::string& method) {
  return method.rfind("io.projlink.Connections.", 0) == 0
         || method.rfind("io.projlink.Drawings.", 0) == 0;
}

caf::behavior session(caf::stateful_actor<session_state>* self, const services* svc,
                      uint64_t id, peer_info) {
  return {
    [=](incoming_call& in) {
      svc->metrics->calls++;
      const auto& method = in.call.method;
      const auto* peer = in.peer.get();
      auto& params = in.call.parameters;
      if (!takes_as(method) || peer == nullptr || !params.is_object()) {
        run_handler(std::make_shared<const call_context>(self, svc, id, std::move(in)));
        return;
      }
      // Who the call acts as (SPEC §6.3), decided here before any handler:
      // operator, then delegate, then identity, then plain client.
      auto given = params.find("as");
      bool has_as = given != params.end() && !given->is_null();
      auto refuse = [&](const char* why) {
        spdlog::warn("control: refused {} to uid {} (pid {}): {}", method, peer->uid, peer->pid,
                     why);
        auto c = std::make_shared<const call_context>(self, svc, id, std::move(in));
        c->fail("org.varlink.service.PermissionDenied", varlink::json::object());
      };
      if (peer->is_operator || peer->is_delegate) {
        if (!has_as) {
          auto c = std::make_shared<const call_context>(self, svc, id, std::move(in));
          c->fail("org.varlink.service.InvalidParameter", {{"parameter", "as"}});
          return;
        }
        run_handler(std::make_shared<const call_context>(self, svc, id, std::move(in)));
        return;
      }
      if (!peer->identity) {
        refuse("it may act as no user (control.delegates, control.identities)");
        return;
      }
      const auto& mine = *peer->identity;
      if (!has_as || (given->is_string() && given->get<std::string>() == mine)) {
        params["as"] = mine;
        run_handler(std::make_shared<const call_context>(self, svc, id, std::move(in)));
        return;
      }
      if (!given->is_string()) {
        auto c = std::make_shared<const call_context>(self, svc, id, std::move(in));
        c->fail("org.varlink.service.InvalidParameter", {{"parameter", "as"}});
        return;
      }
      // `as` names the identity's user by its other name (id or email)?
      auto other = given->get<std::string>();
      auto c = std::make_shared<call_context>(self, svc, id, std::move(in));
      auto target = svc->reader ? svc->reader : svc->store;
      self
        ->request(target, std::chrono::seconds{60}, atom::read_v,
                  make_store_fn([mine, other](SQLite::Database& d) -> caf::expected<int64_t> {
                    auto me = directory::find_user(d, mine);
                    if (!me)
                      return std::move(me.error());
                    auto them = directory::find_user(d, other);
                    return them && them->id == me->id ? 1 : 0;
                  }))
        .then(
          [c, mine](int64_t same) {
            if (same == 0) {
              const auto& p = *c->in().peer;
              spdlog::warn("control: refused {} to uid {} (pid {}): it acts only as {}",
                           c->in().call.method, p.uid, p.pid, mine);
              c->fail("org.varlink.service.PermissionDenied", varlink::json::object());
              return;
            }
            c->set_as(mine);
            run_handler(c);
          },
          [c](caf::error& e) { c->fail(e); });
    },
  };
}

} // namespace

caf::actor spawn_session(caf::actor_system& sys, const services* svc, uint64_t session,
                         peer_info peer) {
  return sys.spawn(projlink::session, svc, session, peer);
}

} // namespace projlink
