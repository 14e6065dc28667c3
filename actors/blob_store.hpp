#pragma once

// The content-addressed blob store (SPEC §5): one file per distinct content,
// named by its SHA-256, under `storage.blobs`:
//
//   blobs/ab/ab12…ef   the file whose SHA-256 is ab12…ef (read-only, 0440)
//   blobs/tmp/         files being written
//
// A blob is written to tmp/, hashed while it is copied (one pass), fsynced,
// and renamed to its name, then the directory is fsynced: a blob either
// exists whole under its name or not at all. Reads verify the hash.
//
// Thread-safe (no shared mutable state); every call blocks on disk I/O:
// call it from a detached actor or a worker thread only.

#include <caf/expected.hpp>

#include <sys/types.h>

#include <atomic>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace projlink {

struct blob_info {
  std::string sha256; ///< 64 lowercase hex digits
  int64_t size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, blob_info& x) {
  return f(x.sha256, x.size);
}

class blob_store {
public:
  /// `dir` must exist; `tmp/` is created.
  explicit blob_store(std::string dir);

  /// Copies everything readable from `fd` (from its current offset) into
  /// the store. The descriptor stays open.
  /// Stops with FileTooLarge past `max_bytes`; waits at most `timeout` for
  /// the descriptor to become readable (a pipe that never ends), and gives
  /// up when `cancelled` turns true (the client hung up).
  caf::expected<blob_info> put_fd(int fd, uint64_t max_bytes = UINT64_MAX,
                                  std::chrono::milliseconds timeout = std::chrono::hours{24},
                                  const std::atomic<bool>* cancelled = nullptr) const;

  /// Who asks for a path upload: the file must be one this uid (with these
  /// groups) could read itself.
  struct reader {
    uid_t uid = 0;
    std::vector<gid_t> groups; ///< primary and supplementary
  };

  /// Stores the regular file `path`, which must name a file beneath one of
  /// `import_dirs` without `.`, `..` or a symlink in any component below the
  /// root; it is opened component by component beneath the root's own
  /// descriptor (openat, O_NOFOLLOW), so no directory swapped in meanwhile
  /// can lead outside. `who` must be able to search every directory on the
  /// way and read the file. Anything else is PathNotAllowed; more than
  /// `max_bytes` is FileTooLarge.
  caf::expected<blob_info> put_path(const std::string& path,
                                    const std::vector<std::string>& import_dirs,
                                    const reader& who, uint64_t max_bytes = UINT64_MAX) const;

  /// Writes blob `sha256` into `fd`, verifying the hash on the way; an
  /// error when the stored bytes do not match their name.
  caf::expected<blob_info> export_to(const std::string& sha256, int fd,
                                     std::chrono::milliseconds timeout = std::chrono::hours{24},
                                     const std::atomic<bool>* cancelled = nullptr) const;

  /// Re-reads blob `sha256` and checks its hash and size.
  caf::expected<void> verify(const std::string& sha256, int64_t size) const;

  /// Removes blobs not in `referenced` (sorted) that are older than
  /// `min_age` (so a blob being stored for a revision not yet committed
  /// survives), and leftovers in tmp/ as old. Returns how many were removed.
  size_t collect(const std::vector<std::string>& referenced,
                 std::chrono::seconds min_age = std::chrono::minutes{10}) const;

  std::string path_of(const std::string& sha256) const;

private:
  struct limits {
    uint64_t max_bytes = UINT64_MAX;
    std::chrono::milliseconds timeout = std::chrono::hours{24};
    const std::atomic<bool>* cancelled = nullptr;
    bool poll = false; ///< wait with poll(2) before each read (passed descriptors)
  };
  caf::expected<blob_info> put(int fd, const std::string& what, const limits& lim) const;
  std::string dir_;
};

/// True for 64 lowercase hex digits.
bool valid_sha256(const std::string& s);

} // namespace projlink
