#pragma once

#include <string_view>
#include <vector>

namespace projlink {

/// Writes all of `bytes` to the stream socket `fd`, passing `fds` as
/// SCM_RIGHTS with the first chunk. Retries on EINTR and partial writes.
/// Returns 0, or the errno of the failure.
int send_with_fds(int fd, std::string_view bytes, const std::vector<int>& fds);

} // namespace projlink
