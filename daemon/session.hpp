#pragma once

// The bridge between the control thread (epoll, daemon/control_server) and
// the actors. Each client connection gets one session actor; the control
// thread hands it decoded calls, it forwards each to the right actor and
// posts the encoded reply to a reply_queue that wakes the control thread.
// Replies may be posted out of order; the control thread restores call order.

#include "actors/actors.hpp"
#include "actors/blob_store.hpp"
#include "actors/notifier.hpp"
#include "actors/sync.hpp"
#include "actors/store.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics.hpp"
#include "daemon/varlink.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/event_based_actor.hpp>

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace projlink {

/// Who is on the other end of a client connection (SO_PEERCRED).
struct peer_info {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool is_operator = false; ///< may call everything
  bool is_client = false;   ///< may call all but Directory and Daemon.Reload
  std::vector<gid_t> groups; ///< primary and supplementary (SO_PEERGROUPS)
  /// Who its calls act as (SPEC §6.3), by precedence: an operator or a
  /// delegate acts as any user (and must give `as`); an identity only as
  /// `identity`; any other client calls nothing that takes `as`.
  bool is_delegate = false;
  std::optional<std::string> identity;
};

/// Descriptors received with a call (SCM_RIGHTS). Closed with the last copy.
struct fd_bundle {
  std::vector<int> fds;
  fd_bundle() = default;
  fd_bundle(const fd_bundle&) = delete;
  fd_bundle& operator=(const fd_bundle&) = delete;
  ~fd_bundle();
};

/// A decoded call on its way to a session actor.
struct incoming_call {
  uint64_t seq = 0; ///< the call's place in its connection's reply order
  /// No earlier call of this connection was still unanswered when this one
  /// arrived: its reads may go to the reader (nothing of its own to see).
  bool alone = false;
  varlink::call call;
  std::shared_ptr<fd_bundle> fds;
  /// Who called (credentials taken when the connection was accepted).
  std::shared_ptr<const peer_info> peer;
  /// Turns true when the client hangs up: work on its descriptors stops.
  std::shared_ptr<const std::atomic<bool>> gone;
};

/// One encoded reply (NUL included) for the control thread to write.
struct outgoing_reply {
  uint64_t session = 0; ///< 0: internal (watchdog pong)
  uint64_t seq = 0;
  std::string bytes;
  bool continues = false; ///< more replies follow for this call
  /// A oneway call finished (no bytes): it no longer counts as in flight.
  bool oneway_done = false;
};

/// Multi-producer queue read by the control thread; wakes it through an
/// eventfd. Thread-safe.
class reply_queue {
public:
  reply_queue();
  ~reply_queue();
  void push(outgoing_reply r);
  std::vector<outgoing_reply> drain();
  int fd() const {
    return fd_;
  }

private:
  int fd_;
  std::mutex mtx_;
  std::vector<outgoing_reply> items_;
};

/// What a session actor needs to serve calls. Owned by main; outlives every
/// session actor.
/// Settings the Drawings calls read; a reload replaces them. Thread-safe.
class file_settings {
public:
  /// storage.max_upload_bytes and control.fd_timeout; a reload replaces them.
  std::atomic<uint64_t> max_upload_bytes{uint64_t{2} << 30};
  std::atomic<int64_t> fd_timeout_ms{30'000};

  std::vector<std::string> import_dirs() const {
    std::lock_guard<std::mutex> g{mtx_};
    return import_dirs_;
  }
  void set_import_dirs(std::vector<std::string> dirs) {
    std::lock_guard<std::mutex> g{mtx_};
    import_dirs_ = std::move(dirs);
  }

private:
  mutable std::mutex mtx_;
  std::vector<std::string> import_dirs_;
};

struct services {
  caf::actor store;
  caf::actor reader; ///< reads of committed state; may be null (tests)
  caf::actor registry;
  hub_actor hub;
  registry_metrics* registry_stats = nullptr;
  notifier_metrics* notifier_stats = nullptr;
  const blob_store* blobs = nullptr;
  caf::actor sync;
  sync_metrics* sync_stats = nullptr;
  file_settings* files = nullptr;
  class file_pool* file_workers = nullptr; ///< bounded file I/O (daemon/file_pool)
  reply_queue* replies = nullptr;
  daemon_metrics* metrics = nullptr;
  store_metrics* store_stats = nullptr;
  std::chrono::steady_clock::time_point started;
};

/// One call being served: where its reply goes and how to encode errors.
/// Shared by the callbacks of the requests a handler makes.
class call_context {
public:
  call_context(caf::event_based_actor* self, const services* svc, uint64_t session,
               incoming_call in);

  caf::event_based_actor* self;
  const services* svc;
  const incoming_call& in() const {
    return in_;
  }
  /// Where this call's reads go: the reader when the call came alone (so it
  /// cannot depend on a write of its own still in flight), else the store,
  /// where a read queued behind writes sees them.
  const caf::actor& read_target() const {
    return in_.alone && svc->reader ? svc->reader : svc->store;
  }
  /// `io.projlink.Directory` for `io.projlink.Directory.GetProject`.
  std::string interface() const;
  /// Sets `as` before the handler runs (the session's identity check).
  void set_as(const std::string& user);

  /// Sends the final reply (or one of a stream, with `continues`).
  void reply(const varlink::json& parameters, bool continues = false) const;
  /// Sends `err` as the varlink error of the called interface.
  void fail(const caf::error& err) const;
  void fail(const std::string& qualified_name, const varlink::json& parameters) const;

  /// The project and connection the call names (for logs).
  log_fields about() const;

private:
  /// Counts the call in the metrics registry once, at its first answer.
  void record(std::string_view outcome) const;

  uint64_t session_;
  incoming_call in_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  mutable bool recorded_ = false; ///< only the session actor answers
  mutable std::atomic<bool> finished_{false}; ///< a final reply (or oneway end) was posted
  void log_change() const;
public:
  ~call_context();
};

using call_ptr = std::shared_ptr<const call_context>;

/// A method's implementation: reads parameters (throwing
/// varlink::invalid_parameter), then starts requests whose callbacks answer.
using handler = std::function<void(const call_ptr&, varlink::params&)>;
using handler_map = std::unordered_map<std::string, handler>;

/// Registration of each interface's handlers (daemon/api_*.cpp).
void add_directory_api(handler_map& map);
void add_daemon_api(handler_map& map);
void add_connections_api(handler_map& map);
void add_drawings_api(handler_map& map);

/// Runs a typed store closure as a write (group-committed) or read, and
/// replies with `render(result)` or the closure's error.
template <class T, class F, class R>
void store_call(const call_ptr& c, bool write, F&& fn, R render) {
  auto msg_fn = make_store_fn(std::forward<F>(fn));
  auto on_error = [c](caf::error& e) { c->fail(e); };
  auto timeout = std::chrono::seconds{60};
  if constexpr (std::is_void_v<T>) {
    auto on_ok = [c, render]() { c->reply(render()); };
    if (write)
      c->self->request(c->svc->store, timeout, atom::write_v, std::move(msg_fn)).then(on_ok, on_error);
    else
      c->self->request(c->read_target(), timeout, atom::read_v, std::move(msg_fn)).then(on_ok, on_error);
  } else {
    auto on_ok = [c, render](T& x) { c->reply(render(x)); };
    if (write)
      c->self->request(c->svc->store, timeout, atom::write_v, std::move(msg_fn)).then(on_ok, on_error);
    else
      c->self->request(c->read_target(), timeout, atom::read_v, std::move(msg_fn)).then(on_ok, on_error);
  }
}

/// Spawns the session actor of connection `session` for `peer`.
caf::actor spawn_session(caf::actor_system& sys, const services* svc, uint64_t session,
                         peer_info peer);

} // namespace projlink

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::incoming_call)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::call_ptr)
