// libFuzzer target: the varlink framing and dispatch, through the whole
// daemon. LLVMFuzzerInitialize starts the real projlinkd (daemon/main.cpp,
// built here with its main renamed) in a thread on a temporary directory,
// with the fuzzer's uid as operator. Each input is written as it is to a
// new connection of its control socket, the write side is shut, and every
// reply is read until the daemon closes (or stays quiet for 100 ms, e.g.
// after a Watch). A crash, sanitizer report or hang anywhere in framing,
// method lookup, parameter checks, handlers, actors or store is a finding.

#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

int projlinkd_main(int argc, char** argv);

namespace {

std::string socket_path;

int connect_once() {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/projlink-fuzz-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  socket_path = dir + "/projlink.sock";
  std::string cfg = dir + "/projlink.yaml";
  std::ofstream{cfg} << "control:\n  socket: projlink.sock\n  operators: { uids: [" << ::getuid()
                     << "], groups: [] }\n  clients: { uids: [], groups: [] }\n"
                        "  max_message_bytes: 64KiB\nstorage:\n  state_dir: "
                     << dir << "\nnotifications:\n  delivery: log\nlogging:\n  level: error\n"
                     << "actors:\n  scheduler_threads: 2\n";
  std::thread{[cfg] {
    std::string a0 = "projlinkd", a1 = "-c";
    std::string a2 = cfg;
    char* argv[] = {a0.data(), a1.data(), a2.data(), nullptr};
    int rc = projlinkd_main(3, argv);
    std::fprintf(stderr, "fuzz_control: projlinkd exited with %d\n", rc);
    std::abort();
  }}.detach();
  for (int i = 0; i < 3000; ++i) {
    int fd = connect_once();
    if (fd >= 0) {
      ::close(fd);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  std::fprintf(stderr, "fuzz_control: the daemon did not start\n");
  std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = connect_once();
  if (fd < 0) {
    std::fprintf(stderr, "fuzz_control: the daemon stopped accepting connections\n");
    std::abort();
  }
  for (size_t off = 0; off < size;) {
    auto n = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0)
      break; // it closed on us (e.g. an oversized message): fine
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0)
      break;
    if (::read(fd, buf, sizeof(buf)) <= 0)
      break;
  }
  ::close(fd);
  return 0;
}
