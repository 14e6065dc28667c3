#pragma once

// The content-addressed blob store (SPEC §5): one file per distinct content,
// named by its SHA-256, under `storage.blobs`:
//
//   blobs/ab/ab12…ef   the file whose SHA-256 is ab12…ef (read-only, 0440)
//   blobs/tmp/         files being written
//
// A blob is written to tmp/, hashed while it is copied (one pass), fsynced,
// and renamed to its name, then the directory is fsynced: a blob either
// exists whole under its name or not at all. Reads verify the hash, or
// trust a recent verification of the very same inode (see `verify`).
//
// Collection is mark-and-sweep (docs/drawings.md): `choose` marks files no
// revision referred to in an earlier snapshot, the caller re-checks them
// against the database, and `sweep` deletes only the marked files that the
// re-check still found unreferenced and that no upload touched meanwhile.
// An upload pins its blob from the moment it is stored (or found already
// stored) until the caller has committed the revision referring to it.
//
// Thread-safe (pins, marks and verifications are under one mutex); every
// call blocks on disk I/O: call it from a detached actor or a worker thread
// only.

#include <caf/expected.hpp>

#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
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

  /// How long a verification of an unchanged file is trusted.
  static constexpr auto trust_window = std::chrono::minutes{10};

  /// Copies everything readable from `fd` (from its current offset) into
  /// the store. The descriptor stays open. On success the blob is pinned:
  /// call `unpin` once the revision referring to it is committed or refused.
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
  /// `max_bytes` is FileTooLarge. Pins like `put_fd`.
  caf::expected<blob_info> put_path(const std::string& path,
                                    const std::vector<std::string>& import_dirs,
                                    const reader& who, uint64_t max_bytes = UINT64_MAX) const;

  /// Ends one pin of `sha256` taken by a put.
  void unpin(const std::string& sha256) const;

  /// Writes blob `sha256` into `fd`: with the kernel's copy
  /// (copy_file_range, sendfile) when a verification is trusted (`verify`)
  /// and the target is a regular file, else hashing on the way (a pipe or
  /// socket with `timeout` and `cancelled` as for put_fd); an error when the
  /// stored bytes do not match their name.
  caf::expected<blob_info> export_to(const std::string& sha256, int fd,
                                     std::chrono::milliseconds timeout = std::chrono::hours{24},
                                     const std::atomic<bool>* cancelled = nullptr) const;

  /// Checks that blob `sha256` exists with `size` bytes and hashes to its
  /// name. Re-reads it unless it was hashed less than `trust_window` ago
  /// and the file is provably unchanged since (same inode, size, mtime and
  /// ctime, and that ctime older than the hash by more than a timestamp
  /// tick); a stat is made in every case.
  caf::expected<void> verify(const std::string& sha256, int64_t size) const;

  /// Given the still-unreferenced subset of `candidates`, by a reference
  /// check made after they were chosen (an error skips this collection).
  using reference_check
    = std::function<caf::expected<std::vector<std::string>>(const std::vector<std::string>&)>;

  /// One collection: chooses blobs not in `referenced` (a sorted snapshot,
  /// possibly stale), older than `min_age` and not pinned; asks `check`
  /// which of them still have no revision; deletes those that no upload
  /// touched since they were chosen; and removes leftovers in tmp/ older
  /// than `min_age`, and at least 10 minutes. Returns how many files were
  /// removed.
  size_t collect(const std::vector<std::string>& referenced, const reference_check& check,
                 std::chrono::seconds min_age = std::chrono::minutes{10}) const;

  std::string path_of(const std::string& sha256) const;

private:
  struct seen {
    uint64_t dev = 0, ino = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    int64_t hashed_at_ns = 0; ///< wall clock, when its bytes were hashed
  };
  /// True if a trusted verification covers the file `st` describes.
  bool trusted(const std::string& sha256, const struct stat& st) const;
  void remember(const std::string& sha256, const struct stat& st, int64_t hashed_at_ns) const;

  struct limits {
    uint64_t max_bytes = UINT64_MAX;
    std::chrono::milliseconds timeout = std::chrono::hours{24};
    const std::atomic<bool>* cancelled = nullptr;
    bool poll = false; ///< wait with poll(2) before each read (passed descriptors)
  };
  caf::expected<blob_info> put(int fd, const std::string& what, const limits& lim) const;
  std::string dir_;
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, int> pins_;      ///< GUARDED_BY(mu_)
  mutable std::unordered_set<std::string> marked_;         ///< GUARDED_BY(mu_)
  mutable std::unordered_map<std::string, seen> verified_; ///< GUARDED_BY(mu_)
};

/// True for 64 lowercase hex digits.
bool valid_sha256(const std::string& s);

} // namespace projlink
