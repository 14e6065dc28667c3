#include "daemon/control_server.hpp"

#include "daemon/metrics_registry.hpp"

#include "daemon/interfaces.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <set>
#include <stdexcept>

namespace projlink {

namespace {

using clock = std::chrono::steady_clock;

// epoll data: the top byte says what a descriptor is.
constexpr uint64_t tag_listen = uint64_t{1} << 56;
constexpr uint64_t tag_queue = uint64_t{2} << 56;
constexpr uint64_t tag_watch = uint64_t{3} << 56;
constexpr uint64_t tag_mask = uint64_t{0xff} << 56;

/// Most descriptors accepted with one call (SCM_RIGHTS).
constexpr size_t max_fds_per_call = 16;

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

} // namespace

control_limits control_limits::from(const config& cfg) {
  control_limits l;
  l.max_clients = cfg.control.max_clients;
  l.max_clients_per_uid = cfg.control.max_clients_per_uid;
  l.operator_slots = cfg.control.operator_slots;
  l.max_calls_in_flight = cfg.control.max_calls_in_flight;
  l.max_unread_reply_bytes = cfg.control.max_unread_reply_bytes;
  l.reply_memory = cfg.control.reply_memory;
  l.max_message_bytes = cfg.control.max_message_bytes;
  l.idle_timeout = cfg.control.idle_timeout;
  l.operators = cfg.control.operators;
  l.clients = cfg.control.clients;
  l.delegates = cfg.control.delegates;
  l.identities = cfg.control.identities;
  return l;
}

/// One connected client: its buffers, its reply order and its session actor.
struct control_server::client {
  struct slot {
    std::deque<std::string> chunks;
    bool done = false;
  };

  /// A complete message read but not yet handed on (the connection is at
  /// control.max_calls_in_flight), with the descriptors its bytes carried.
  struct pending {
    std::string text;
    std::vector<int> fds;
  };

  client(int fd, uint64_t id, peer_info p, size_t max_message)
    : fd(fd), id(id), peer(std::move(p)), shared_peer(std::make_shared<const peer_info>(peer)),
      reader(max_message) {
  }

  int fd;
  uint64_t id;
  peer_info peer;
  std::shared_ptr<const peer_info> shared_peer; ///< handed to each call
  std::shared_ptr<std::atomic<bool>> gone = std::make_shared<std::atomic<bool>>(false);
  std::deque<pending> queue;
  caf::actor session;
  varlink::frame_reader reader;
  std::vector<int> fds; ///< descriptors carried by the message still being received
  uint64_t unread = 0;  ///< reply bytes queued or unsent (control.max_unread_reply_bytes)
  std::string out;
  size_t out_pos = 0;
  uint64_t next_seq = 0;   ///< seq of the next call that expects a reply
  uint64_t next_write = 0; ///< seq whose reply is written next
  std::map<uint64_t, slot> slots;
  size_t in_flight = 0;       ///< calls handed to the session, not yet done (oneway too)
  bool sent_oneway = false;   ///< a oneway call was handed to the session
  std::set<uint64_t> more_calls; ///< in flight and made with "more"
  clock::time_point last_activity = clock::now();
  bool read_closed = false; ///< peer shut down its side, or we stopped reading
  bool closing = false;     ///< close once `out` is written
  bool dead = false;        ///< closed; erased after the current loop turn
  bool hung_up = false;     ///< the peer closed both directions (EPOLLHUP); not watched
  uint32_t interest = 0;

  ~client() {
    for (int f : fds)
      ::close(f);
    for (auto& m : queue)
      for (int f : m.fds)
        ::close(f);
  }
};

control_server::control_server(caf::actor_system& sys, const services* svc,
                               control_limits limits)
  : sys_(sys), svc_(svc), limits_(std::move(limits)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0)
    throw std::runtime_error(errno_text("epoll_create1"));
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag_queue;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, svc_->replies->fd(), &ev) < 0)
    throw std::runtime_error(errno_text("epoll_ctl"));
}

control_server::~control_server() {
  for (auto& [id, c] : clients_)
    close_client(*c, nullptr);
  clients_.clear();
  if (listen_fd_ >= 0)
    ::close(listen_fd_);
  if (!unlink_path_.empty())
    ::unlink(unlink_path_.c_str());
  if (spare_fd_ >= 0)
    ::close(spare_fd_);
  ::close(epoll_fd_);
}

int control_server::bind_unix(const std::string& path, mode_t mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    throw std::runtime_error("socket path too long (max " + std::to_string(sizeof(addr.sun_path) - 1)
                             + " bytes): " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error(errno_text("socket"));
  // A path that still answers belongs to a running daemon: never steal it.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      ::close(fd);
      throw std::runtime_error(path + " exists and is not a socket");
    }
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool alive = ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(probe);
    if (alive) {
      ::close(fd);
      throw std::runtime_error("another daemon is listening on " + path);
    }
    ::unlink(path.c_str());
  }
  // The mode is set by umask at bind time, so no client can connect through
  // a wider mode in between.
  auto old = ::umask(~mode & 0777);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::umask(old);
  if (rc < 0) {
    ::close(fd);
    errno = err;
    throw std::runtime_error(errno_text(("bind " + path).c_str()));
  }
  ::chmod(path.c_str(), mode);
  if (::listen(fd, SOMAXCONN) < 0) {
    ::close(fd);
    throw std::runtime_error(errno_text("listen"));
  }
  return fd;
}

void control_server::listen(int fd, std::string unlink_path) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  listen_fd_ = fd;
  unlink_path_ = std::move(unlink_path);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag_listen;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    throw std::runtime_error(errno_text("epoll_ctl"));
}

void control_server::set_limits(control_limits limits) {
  limits_ = std::move(limits);
  // Revocation (SPEC §6.3): a connection whose peer the new configuration
  // no longer admits is closed; the others take their new class.
  for (auto& [id, c] : clients_) {
    if (c->dead)
      continue;
    auto p = c->peer;
    bool was_client = p.is_client;
    classify(p);
    if (was_client && !p.is_client) {
      spdlog::warn("control: closing client {} (uid {}, pid {}): the reloaded configuration "
                   "no longer admits it",
                   c->id, p.uid, p.pid);
      close_client(*c, nullptr);
      continue;
    }
    c->peer = p;
    c->shared_peer = std::make_shared<const peer_info>(std::move(p));
  }
  for (auto& [id, c] : clients_)
    if (!c->dead)
      update_interest(*c);
}

void control_server::watch(int fd, std::function<void()> on_readable) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag_watch | watchers_.size();
  watchers_.push_back({fd, std::move(on_readable)});
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0)
    throw std::runtime_error(errno_text("epoll_ctl"));
}

peer_info control_server::identify(int fd) const {
  peer_info p;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
    return p; // unknown peer: neither operator nor client
  p.pid = cred.pid;
  p.uid = cred.uid;
  p.gid = cred.gid;
  std::vector<gid_t> groups(64);
  socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) < 0 && errno == ERANGE) {
    groups.resize(glen / sizeof(gid_t) + 1);
    glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) < 0)
      glen = 0;
  }
  groups.resize(glen / sizeof(gid_t));
  groups.push_back(cred.gid);
  p.groups = std::move(groups);
  classify(p);
  return p;
}

bool control_server::admitted(const peer_info& p, bool& is_operator) const {
  auto member = [&](const peer_set& s) {
    if (std::find(s.uids.begin(), s.uids.end(), p.uid) != s.uids.end())
      return true;
    return std::any_of(p.groups.begin(), p.groups.end(), [&](gid_t g) {
      return std::find(s.groups.begin(), s.groups.end(), g) != s.groups.end();
    });
  };
  if (p.pid == 0 && p.uid == 0 && p.groups.empty()) {
    is_operator = false; // credentials unknown
    return false;
  }
  is_operator = member(limits_.operators);
  return is_operator || member(limits_.clients);
}

void control_server::classify(peer_info& p) const {
  p.is_client = admitted(p, p.is_operator);
  p.is_delegate = false;
  p.identity.reset();
  if (!p.is_client || p.is_operator)
    return;
  auto member = [&](const peer_set& s) {
    if (std::find(s.uids.begin(), s.uids.end(), p.uid) != s.uids.end())
      return true;
    return std::any_of(p.groups.begin(), p.groups.end(), [&](gid_t g) {
      return std::find(s.groups.begin(), s.groups.end(), g) != s.groups.end();
    });
  };
  p.is_delegate = member(limits_.delegates);
  if (p.is_delegate)
    return;
  for (const auto& e : limits_.identities)
    if (e.uid == p.uid)
      p.identity = e.user;
}

void control_server::accept_clients() {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: free the spare one to accept and drop the
        // client, or the listening socket would stay readable forever.
        ::close(spare_fd_);
        fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
          ::close(fd);
        spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        svc_->metrics->clients_refused++;
        spdlog::warn("control: out of file descriptors, dropped a client");
        continue;
      }
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        spdlog::warn("control: accept: {}", std::strerror(errno));
      return;
    }
    auto peer = identify(fd);
    // Bounds (SPEC §6.3): per uid and in all, with control.operator_slots
    // more kept for operators, who are not bound per uid.
    auto live = clients_.size() - dead_.size();
    const char* full = nullptr;
    if (peer.is_operator) {
      if (live >= size_t{limits_.max_clients} + limits_.operator_slots)
        full = "control.max_clients + control.operator_slots";
    } else if (live >= limits_.max_clients) {
      full = "control.max_clients";
    } else if (per_uid_[peer.uid] >= limits_.max_clients_per_uid) {
      full = "control.max_clients_per_uid";
    }
    if (full != nullptr) {
      svc_->metrics->clients_refused++;
      spdlog::warn("control: refused a connection of uid {} (pid {}): {} connected, {} for "
                   "this uid ({})",
                   peer.uid, peer.pid, live, per_uid_[peer.uid], full);
      ::close(fd);
      continue;
    }
    if (!peer.is_client)
      spdlog::warn("control: uid {} gid {} (pid {}) is neither operator nor client; "
                   "its calls will be refused",
                   peer.uid, peer.gid, peer.pid);
    auto id = next_client_id_++;
    auto c = std::make_unique<client>(fd, id, peer, limits_.max_message_bytes);
    c->session = spawn_session(sys_, svc_, id, peer);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    c->interest = EPOLLIN;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      spdlog::warn("control: epoll_ctl: {}", std::strerror(errno));
      caf::anon_send_exit(c->session, caf::exit_reason::user_shutdown);
      ::close(fd);
      continue;
    }
    svc_->metrics->clients_accepted++;
    svc_->metrics->clients_connected++;
    per_uid_[peer.uid]++;
    spdlog::debug("control: client {} connected (uid {}, pid {})", id, peer.uid, peer.pid);
    clients_.emplace(id, std::move(c));
  }
}

void control_server::read_from(client& c) {
  char buf[65536];
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int) * max_fds_per_call)];
  // A bounded number of reads per wake-up keeps one busy client from
  // starving the others; epoll is level-triggered and calls us again.
  // Messages that wait for a call slot stop the reading.
  for (int round = 0;
       round < 4 && !c.read_closed && !c.closing && !c.dead && c.queue.empty(); ++round) {
    iovec iov{buf, sizeof(buf)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    auto n = ::recvmsg(c.fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      close_client(c, std::strerror(errno));
      return;
    }
    std::vector<int> got;
    for (auto* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
        continue;
      auto count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      auto* fds = reinterpret_cast<int*>(CMSG_DATA(cm));
      for (size_t i = 0; i < count; ++i) {
        int f;
        std::memcpy(&f, fds + i, sizeof(int));
        got.push_back(f);
      }
    }
    if (n == 0) {
      // The peer shut down its side. Answer what it already sent, then close.
      for (int f : got)
        ::close(f);
      c.read_closed = true;
      break;
    }
    c.last_activity = clock::now();
    // Which message do the descriptors belong to? The kernel ends a read
    // right after the data that carried descriptors, and attaches them to
    // the start of that data: the last message that begins in this read
    // (or, if none begins in it, the one it continues). See
    // docs/protocol.md: send a call and its descriptors with one sendmsg.
    bool partial_before = c.reader.partial();
    c.reader.feed(buf, static_cast<size_t>(n));
    std::vector<client::pending> msgs;
    while (auto text = c.reader.next())
      msgs.push_back({std::move(*text), {}});
    bool partial_after = c.reader.partial();
    auto give = [&](std::vector<int>& to, std::vector<int>& from) {
      for (int f : from) {
        if (to.size() < max_fds_per_call)
          to.push_back(f);
        else
          ::close(f);
      }
      from.clear();
    };
    if (!msgs.empty())
      give(msgs.front().fds, c.fds); // carried by the message that ends here
    if (!got.empty()) {
      bool trailing_begins = partial_after && (!msgs.empty() || !partial_before);
      if (trailing_begins || msgs.empty())
        give(c.fds, got);
      else
        give(msgs.back().fds, got);
    }
    for (auto& m : msgs)
      c.queue.push_back(std::move(m));
    dispatch(c);
    if (c.closing || c.dead)
      return;
    if (c.reader.overflowed()) {
      svc_->metrics->protocol_errors++;
      spdlog::warn("control: client {} sent a message over {} bytes; closing", c.id,
                   limits_.max_message_bytes);
      put(c, c.next_seq++,
          varlink::encode_error("io.projlink.Daemon.ProtocolError",
                                {{"reason", "message exceeds control.max_message_bytes ("
                                              + std::to_string(limits_.max_message_bytes)
                                              + " bytes)"}}),
          true);
      c.closing = true;
      flush(c);
      return;
    }
  }
}

void control_server::dispatch(client& c) {
  // At control.max_calls_in_flight (oneway calls included) the rest waits,
  // and nothing more is read until replies drain (SPEC §6.3).
  while (!c.queue.empty() && !c.dead && !c.closing && !stopping_
         && c.in_flight < limits_.max_calls_in_flight) {
    auto m = std::move(c.queue.front());
    c.queue.pop_front();
    handle_message(c, m.text, std::move(m.fds));
  }
  if (c.hung_up && c.queue.empty() && !c.read_closed && !c.dead
      && c.in_flight < limits_.max_calls_in_flight)
    read_from(c); // no longer watched: read the rest now
  if (!c.dead)
    update_interest(c);
}

void control_server::handle_message(client& c, const std::string& text, std::vector<int> carried) {
  std::string why;
  auto call = varlink::parse_call(text, why);
  // The descriptors this message's bytes carried belong to this call alone.
  auto fds = std::make_shared<fd_bundle>();
  fds->fds = std::move(carried);
  if (!call) {
    svc_->metrics->protocol_errors++;
    spdlog::debug("control: client {}: {}", c.id, why);
    put(c, c.next_seq++,
        varlink::encode_error("io.projlink.Daemon.ProtocolError", {{"reason", why}}), true);
    return;
  }
  uint64_t seq = call->oneway ? 0 : c.next_seq++;
  bool declared = false; // a method of an interface we serve: safe as a metrics label
  auto reject = [&](std::string_view name, varlink::json params) {
    svc_->metrics->calls++;
    svc_->metrics->call_errors++;
    telemetry::registry::global().call(declared ? std::string_view(call->method) : "unknown",
                                       name.substr(name.rfind('.') + 1), 0);
    if (!call->oneway)
      put(c, seq, varlink::encode_error(name, params), true);
  };
  std::string_view iface_name, method;
  if (!split_method(call->method, iface_name, method)) {
    reject("org.varlink.service.MethodNotFound", {{"method", call->method}});
    return;
  }
  const auto* iface = find_interface(iface_name);
  if (iface == nullptr) {
    reject("org.varlink.service.InterfaceNotFound", {{"interface", std::string(iface_name)}});
    return;
  }
  if (!declares_method(*iface, method)) {
    reject("org.varlink.service.MethodNotFound", {{"method", call->method}});
    return;
  }
  declared = true;
  bool operator_only = iface_name == "io.projlink.Directory"
                       || call->method == "io.projlink.Daemon.Reload";
  bool allowed = iface_name == "org.varlink.service" ? c.peer.is_client
                 : operator_only                     ? c.peer.is_operator
                                                     : c.peer.is_client;
  if (!allowed) {
    spdlog::warn("control: refused {} to uid {} (pid {}): not in control.{}", call->method,
                 c.peer.uid, c.peer.pid, operator_only ? "operators" : "clients");
    reject("org.varlink.service.PermissionDenied", varlink::json::object());
    return;
  }
  if (iface_name == "org.varlink.service" || call->method == "io.projlink.Daemon.Reload") {
    svc_->metrics->calls++;
    answer_locally(c, seq, *call);
    return;
  }
  // A oneway call is never answered, so nobody knows when it is done: after
  // one, this connection's reads always queue behind the writes.
  bool alone = c.in_flight == 0 && !c.sent_oneway;
  if (call->oneway)
    c.sent_oneway = true;
  // A oneway call is in flight too, until its handler is done.
  ++c.in_flight;
  if (c.in_flight > svc_->metrics->calls_in_flight_peak.load())
    svc_->metrics->calls_in_flight_peak = c.in_flight;
  if (call->more && !call->oneway)
    c.more_calls.insert(seq);
  caf::anon_send(c.session, incoming_call{seq, alone, std::move(*call), std::move(fds),
                                          c.shared_peer, c.gone});
}

void control_server::answer_locally(client& c, uint64_t seq, const varlink::call& call) {
  auto started = std::chrono::steady_clock::now();
  std::string reply;
  std::string error_name;
  bool failed = true;
  auto fail = [&](std::string_view name, const varlink::json& params) {
    error_name = std::string(name.substr(name.rfind('.') + 1));
    reply = varlink::encode_error(name, params);
  };
  try {
    varlink::params p{call.parameters};
    if (call.method == "org.varlink.service.GetInfo") {
      p.finish();
      auto names = varlink::json::array();
      for (const auto& i : embedded_interfaces())
        names.push_back(i.name);
      reply = varlink::encode_reply({{"vendor", "projlink"},
                                     {"product", "projlinkd"},
                                     {"version", PROJLINK_VERSION},
                                     {"url", "man:projlinkd(8)"},
                                     {"interfaces", names}});
      failed = false;
    } else if (call.method == "org.varlink.service.GetInterfaceDescription") {
      auto name = p.str("interface");
      p.finish();
      if (const auto* i = find_interface(name)) {
        reply = varlink::encode_reply({{"description", i->text}});
        failed = false;
      } else {
        fail("org.varlink.service.InterfaceNotFound", {{"interface", name}});
      }
    } else if (call.method == "io.projlink.Daemon.Reload") {
      p.finish();
      auto r = on_reload ? on_reload() : reload_result{"reload is not available", {}};
      if (r.error.empty()) {
        reply = varlink::encode_reply({{"restart_needed", r.restart_needed}});
        failed = false;
      } else {
        fail("io.projlink.Daemon.InvalidConfiguration", {{"message", r.error}});
      }
    } else {
      fail("org.varlink.service.MethodNotImplemented", {{"method", call.method}});
    }
  } catch (const varlink::invalid_parameter& e) {
    fail("org.varlink.service.InvalidParameter", {{"parameter", e.parameter}});
  }
  if (failed)
    svc_->metrics->call_errors++;
  std::chrono::duration<double> took = std::chrono::steady_clock::now() - started;
  telemetry::registry::global().call(
    call.method,
    failed ? std::string_view(error_name) : std::string_view("ok"), took.count());
  if (!call.oneway)
    put(c, seq, std::move(reply), true);
}

void control_server::put(client& c, uint64_t seq, std::string bytes, bool done) {
  if (c.dead)
    return;
  account(c, static_cast<int64_t>(bytes.size()));
  auto& s = c.slots[seq];
  s.chunks.push_back(std::move(bytes));
  s.done = done;
  // Move every reply that is next in call order to the output buffer.
  while (!c.slots.empty() && c.slots.begin()->first == c.next_write) {
    auto& head = c.slots.begin()->second;
    while (!head.chunks.empty()) {
      c.out += head.chunks.front();
      head.chunks.pop_front();
    }
    if (!head.done)
      break;
    c.slots.erase(c.slots.begin());
    ++c.next_write;
  }
  if (c.unread > limits_.max_unread_reply_bytes) {
    // Events are never dropped silently: the connection goes instead.
    svc_->metrics->clients_closed_unread++;
    spdlog::warn("control: closing client {} (uid {}, pid {}): {} bytes of replies unread "
                 "(control.max_unread_reply_bytes {})",
                 c.id, c.peer.uid, c.peer.pid, c.unread, limits_.max_unread_reply_bytes);
    close_client(c, nullptr);
    return;
  }
  if (reply_bytes_ > limits_.reply_memory)
    enforce_reply_memory();
  flush(c);
}

void control_server::account(client& c, int64_t delta) {
  c.unread = static_cast<uint64_t>(static_cast<int64_t>(c.unread) + delta);
  reply_bytes_ = static_cast<uint64_t>(static_cast<int64_t>(reply_bytes_) + delta);
  svc_->metrics->reply_bytes = reply_bytes_;
}

void control_server::enforce_reply_memory() {
  // All connections together hold at most control.reply_memory: the ones
  // holding the most unread replies go first.
  while (reply_bytes_ > limits_.reply_memory) {
    client* worst = nullptr;
    for (auto& [id, c] : clients_)
      if (!c->dead && (worst == nullptr || c->unread > worst->unread))
        worst = c.get();
    if (worst == nullptr || worst->unread == 0)
      return;
    svc_->metrics->clients_closed_unread++;
    spdlog::warn("control: closing client {} (uid {}, pid {}): {} bytes of replies unread, "
                 "{} in all (control.reply_memory {})",
                 worst->id, worst->peer.uid, worst->peer.pid, worst->unread, reply_bytes_,
                 limits_.reply_memory);
    close_client(*worst, nullptr);
  }
}

void control_server::deliver(const outgoing_reply& r) {
  if (r.session == 0) {
    if (on_internal_reply)
      on_internal_reply(r);
    return;
  }
  auto it = clients_.find(r.session);
  if (it == clients_.end())
    return; // the client hung up; its reply has nowhere to go
  auto& c = *it->second;
  if (c.dead)
    return;
  c.last_activity = clock::now();
  if (r.oneway_done) {
    if (c.in_flight > 0)
      --c.in_flight;
    dispatch(c);
    flush(c);
    return;
  }
  if (!r.continues) {
    --c.in_flight;
    c.more_calls.erase(r.seq);
  }
  put(c, r.seq, r.bytes, !r.continues);
  if (!r.continues)
    dispatch(c);
}

void control_server::flush(client& c) {
  if (c.dead)
    return;
  while (c.out_pos < c.out.size()) {
    auto n = ::send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        break;
      close_client(c, std::strerror(errno));
      return;
    }
    c.out_pos += static_cast<size_t>(n);
    account(c, -n);
  }
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  }
  bool finished = c.out.empty()
                  && (c.closing || (c.read_closed && c.in_flight == 0 && c.queue.empty()));
  if (finished) {
    close_client(c, nullptr);
    return;
  }
  update_interest(c);
}

void control_server::update_interest(client& c) {
  if (c.dead || c.hung_up)
    return;
  uint32_t want = 0;
  if (!c.read_closed && !c.closing && !stopping_ && c.queue.empty()
      && c.in_flight < limits_.max_calls_in_flight)
    want |= EPOLLIN;
  if (!c.out.empty())
    want |= EPOLLOUT;
  if (want == c.interest)
    return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = want;
}

void control_server::close_client(client& c, const char* why) {
  if (c.dead)
    return;
  c.dead = true;
  if (why != nullptr)
    spdlog::info("control: closing client {} (uid {}): {}", c.id, c.peer.uid, why);
  if (!c.hung_up)
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  ::close(c.fd);
  c.gone->store(true); // work on its descriptors stops (SPEC §6.3)
  account(c, -static_cast<int64_t>(c.unread));
  if (auto it = per_uid_.find(c.peer.uid); it != per_uid_.end() && --it->second == 0)
    per_uid_.erase(it);
  caf::anon_send_exit(c.session, caf::exit_reason::user_shutdown);
  svc_->metrics->clients_connected--;
  dead_.push_back(c.id); // erased after this loop turn: callers may still hold c
}

void control_server::on_client_event(client& c, uint32_t events) {
  if (events & EPOLLERR) {
    close_client(c, "socket error");
    return;
  }
  if (events & EPOLLOUT)
    flush(c);
  if ((events & (EPOLLIN | EPOLLHUP)) && !c.dead) {
    read_from(c);
    if (c.read_closed && !c.dead)
      flush(c); // may close it now that nothing is pending
  }
  if ((events & EPOLLHUP) && !c.dead && !c.hung_up) {
    // The peer is gone for good: work on its descriptors stops (SPEC §6.3);
    // calls it made still finish. HUP is level-triggered, so stop watching
    // the socket; what is still unread is read when the queue drains.
    c.gone->store(true);
    c.hung_up = true;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    c.interest = 0;
    if (c.in_flight == 0 && c.queue.empty() && c.read_closed)
      close_client(c, nullptr);
  }
}

void control_server::sweep_idle() {
  auto now = clock::now();
  std::vector<client*> idle;
  for (auto& [id, c] : clients_)
    if (!c->dead && c->in_flight == 0 && now - c->last_activity > limits_.idle_timeout)
      idle.push_back(c.get());
  for (auto* c : idle) {
    svc_->metrics->clients_timed_out++;
    close_client(*c, c->reader.partial() ? "idle with half a message (control.idle_timeout)"
                                         : "idle (control.idle_timeout)");
  }
}

bool control_server::drained() const {
  for (const auto& [id, c] : clients_)
    if (!c->dead && (c->in_flight > c->more_calls.size() || !c->out.empty()))
      return false;
  return true;
}

void control_server::stop(duration grace) {
  if (stopping_)
    return;
  stopping_ = true;
  deadline_ = clock::now() + grace;
  if (listen_fd_ >= 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
    ::close(listen_fd_);
    listen_fd_ = -1;
  }
  for (auto& [id, c] : clients_)
    update_interest(*c);
}

void control_server::run() {
  epoll_event events[64];
  auto last_sweep = clock::now();
  for (;;) {
    if (stopping_ && (drained() || clock::now() >= deadline_))
      break;
    int timeout_ms = stopping_ ? 50 : 250;
    int n = ::epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0 && errno != EINTR)
      throw std::runtime_error(errno_text("epoll_wait"));
    for (int i = 0; i < n; ++i) {
      auto data = events[i].data.u64;
      switch (data & tag_mask) {
        case tag_listen:
          if (listen_fd_ >= 0)
            accept_clients();
          break;
        case tag_queue:
          for (auto& r : svc_->replies->drain())
            deliver(r);
          break;
        case tag_watch:
          watchers_[data & ~tag_mask].fn();
          break;
        default:
          if (auto it = clients_.find(data); it != clients_.end())
            on_client_event(*it->second, events[i].events);
      }
    }
    if (clock::now() - last_sweep > std::chrono::milliseconds{100}) {
      sweep_idle();
      last_sweep = clock::now();
    }
    for (auto id : dead_)
      clients_.erase(id);
    dead_.clear();
  }
  if (!drained())
    spdlog::warn("control: drain deadline passed with calls still in flight");
}

} // namespace projlink
