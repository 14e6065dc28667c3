#include "daemon/ctl/client.hpp"

#include "daemon/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace projlink::ctl {

client::client(const std::string& socket_path) : path_(socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path))
    throw unreachable("socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    throw unreachable(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    auto err = errno;
    ::close(fd_);
    fd_ = -1;
    throw unreachable("cannot connect to " + socket_path + ": " + std::strerror(err)
                      + (err == ENOENT ? " (is projlinkd running? set --socket or PROJLINK_SOCKET)"
                                       : ""));
  }
}

client::~client() {
  if (fd_ >= 0)
    ::close(fd_);
}

void client::send_all(const std::string& bytes, const std::vector<int>& fds) {
  if (int err = send_with_fds(fd_, bytes, fds); err != 0)
    throw unreachable("send to " + path_ + ": " + std::strerror(err));
}

reply client::receive() {
  for (;;) {
    if (auto text = reader_.next()) {
      auto j = json::parse(*text, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw unreachable("the daemon sent a reply that is not JSON");
      reply r;
      if (auto e = j.find("error"); e != j.end() && e->is_string())
        r.error = e->get<std::string>();
      if (auto p = j.find("parameters"); p != j.end() && p->is_object())
        r.parameters = *p;
      if (auto c = j.find("continues"); c != j.end() && c->is_boolean())
        r.continues = c->get<bool>();
      return r;
    }
    char buf[65536];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      throw unreachable("receive from " + path_ + ": " + std::strerror(errno));
    if (n == 0)
      throw unreachable("the daemon closed the connection");
    reader_.feed(buf, static_cast<size_t>(n));
  }
}

reply client::call(const std::string& method, const json& parameters,
                   const std::vector<int>& fds) {
  send_all(varlink::encode_call(method, parameters), fds);
  return receive();
}

void client::stream(const std::string& method, const json& parameters,
                    const std::function<bool(const reply&)>& on_reply) {
  send_all(varlink::encode_call(method, parameters, true), {});
  for (;;) {
    auto r = receive();
    if (!on_reply(r) || !r.continues)
      return;
  }
}

namespace {

std::string field(const json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end())
    return "?";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

} // namespace

std::string explain(const reply& r) {
  const auto& p = r.parameters;
  auto name = r.error.substr(r.error.rfind('.') + 1);
  if (name == "NotFound")
    return "no " + field(p, "kind") + " '" + field(p, "id") + "'";
  if (name == "AlreadyExists")
    return field(p, "kind") + " '" + field(p, "id") + "' already exists";
  if (name == "PermissionDenied" && p.contains("action"))
    return "not allowed to " + field(p, "action") + " in project '" + field(p, "project") + "'";
  if (name == "PermissionDenied")
    return "your uid may not make that call, or not as that user (see control.operators, "
           "control.clients, control.delegates, control.identities)";
  if (name == "InvalidParameter" && field(p, "parameter") == "as")
    return "say on whose behalf with --as USER or PROJLINK_AS";
  if (name == "FileTooLarge")
    return "the file is larger than storage.max_upload_bytes (" + field(p, "limit") + " bytes)";
  if (name == "InvalidParameter")
    return "bad value for parameter '" + field(p, "parameter") + "'";
  if (name == "InvalidDocument")
    return "line " + field(p, "line") + ", column " + field(p, "column") + ": "
           + field(p, "message");
  if (name == "MethodNotFound" || name == "MethodNotImplemented")
    return "the daemon does not implement " + field(p, "method");
  if (name == "InterfaceNotFound")
    return "the daemon has no interface " + field(p, "interface");
  if (name == "ProtocolError")
    return field(p, "reason");
  if (name == "InvalidConfiguration" || name == "InternalError")
    return field(p, "message");
  if (name == "ProjectInactive")
    return "project '" + field(p, "project") + "' is not active (R1)";
  if (name == "SelfConnection")
    return "project '" + field(p, "project") + "' cannot connect to itself (R1)";
  if (name == "AlreadyConnected")
    return "project '" + field(p, "project") + "' already has an upstream: connection "
           + field(p, "connection") + " (R3)";
  if (name == "RoleConflict")
    return "project '" + field(p, "project") + "' is " + field(p, "role")
           + " and cannot take the other role (R5/R6)";
  if (name == "PermanentlyDisconnected")
    return "project '" + field(p, "project")
           + "' was disconnected once and can never connect again (R11)";
  if (name == "InvalidState")
    return "connection " + field(p, "connection") + " is " + field(p, "state");
  if (name == "UndoWindowExpired")
    return "the undo window of connection " + field(p, "connection") + " has passed (R9)";
  if (name == "ReasonRequired")
    return "a disconnect needs a reason (--reason)";
  if (name == "TermsNotAccepted")
    return "a disconnect is permanent; accept the terms with --accept-terms";
  if (name == "TooManyRevisions")
    return "project '" + field(p, "project") + "' has " + field(p, "count")
           + " drawing revisions, more than the limit of " + field(p, "limit") + " (R13)";
  if (name == "ConnectedReadOnly")
    return "'" + field(p, "revision")
           + "' was copied from the upstream project and is read-only here";
  if (name == "PathNotAllowed")
    return "'" + field(p, "path") + "' is not a regular file inside storage.import_dirs";
  if (name == "ExpectedMore")
    return "this method streams; call it with \"more\"";
  if (p.empty())
    return name;
  std::string out;
  for (const auto& [k, v] : p.items())
    out += (out.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  return out;
}

} // namespace projlink::ctl
