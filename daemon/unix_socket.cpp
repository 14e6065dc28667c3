#include "daemon/unix_socket.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace projlink {

int send_with_fds(int fd, std::string_view bytes, const std::vector<int>& fds) {
  size_t off = 0;
  bool fds_sent = fds.empty();
  std::vector<char> ctrl;
  while (off < bytes.size()) {
    iovec iov{const_cast<char*>(bytes.data() + off), bytes.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds_sent) {
      ctrl.assign(CMSG_SPACE(sizeof(int) * fds.size()), 0);
      msg.msg_control = ctrl.data();
      msg.msg_controllen = ctrl.size();
      auto* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_SOCKET;
      cm->cmsg_type = SCM_RIGHTS;
      cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
    }
    auto n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    fds_sent = true;
    off += static_cast<size_t>(n);
  }
  return 0;
}

} // namespace projlink
