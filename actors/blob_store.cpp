#include "actors/blob_store.hpp"

#include "actors/error.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/sendfile.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>

namespace fs = std::filesystem;

namespace projlink {

namespace {

constexpr size_t chunk = 1 << 20;

struct md_deleter {
  void operator()(EVP_MD_CTX* c) const {
    EVP_MD_CTX_free(c);
  }
};

struct fd_closer {
  int fd;
  ~fd_closer() {
    if (fd >= 0)
      ::close(fd);
  }
};

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

caf::error io_error(const std::string& what) {
  return make_error(ec::internal, what + ": " + std::strerror(errno));
}

/// What copy_hashed did: the content's hash and size, or where it failed.
struct copied {
  enum { ok, read_failed, write_failed, too_large, timed_out, cancelled } status = ok;
  std::string sha256;
  int64_t size = 0;
};

/// How to wait on a descriptor a client passed: it may be a pipe or a
/// socket that never delivers (or never drains), so each read or write
/// waits in poll(2) in short slices, giving up after `timeout` without
/// progress or once `cancelled` turns true. Regular files and block devices
/// are read and written directly.
struct waiter {
  bool enabled = false;
  std::chrono::milliseconds timeout{0};
  const std::atomic<bool>* cancelled = nullptr;
  enum { plain, fifo, socket } kind = plain;

  static waiter for_fd(int fd, bool enabled, std::chrono::milliseconds timeout,
                       const std::atomic<bool>* cancelled) {
    waiter w;
    w.timeout = timeout;
    w.cancelled = cancelled;
    struct stat st {};
    if (!enabled || fd < 0 || ::fstat(fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))
      return w;
    w.enabled = true;
    w.kind = S_ISFIFO(st.st_mode) ? fifo : S_ISSOCK(st.st_mode) ? socket : plain;
    return w;
  }

  /// Waits until `fd` is ready for `events`; the copied status on failure.
  std::optional<decltype(copied::ok)> wait(int fd, short events) const {
    if (!enabled)
      return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (cancelled != nullptr && cancelled->load())
        return copied::cancelled;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return copied::timed_out;
      pollfd p{fd, events, 0};
      auto rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 200)));
      if (rc > 0)
        return std::nullopt; // ready, hung up or in error: the operation tells
      if (rc < 0 && errno != EINTR)
        return events == POLLIN ? copied::read_failed : copied::write_failed;
    }
  }

  /// One read that does not block on a FIFO or socket (EAGAIN instead).
  ssize_t read(int fd, char* buf, size_t n) const {
    if (enabled && kind == socket)
      return ::recv(fd, buf, n, MSG_DONTWAIT);
    if (enabled && kind == fifo) {
      iovec iov{buf, n};
      auto r = ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
      if (r >= 0 || errno != EOPNOTSUPP)
        return r;
    }
    return ::read(fd, buf, n);
  }

  ssize_t write(int fd, const char* buf, size_t n) const {
    if (enabled && kind == socket)
      return ::send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (enabled && kind == fifo) {
      iovec iov{const_cast<char*>(buf), n};
      auto r = ::pwritev2(fd, &iov, 1, -1, RWF_NOWAIT);
      if (r >= 0 || errno != EOPNOTSUPP)
        return r;
      n = std::min<size_t>(n, PIPE_BUF); // POLLOUT promises this much
    } else if (enabled) {
      n = std::min<size_t>(n, PIPE_BUF);
    }
    return ::write(fd, buf, n);
  }
};

/// Copies everything from `in` to `out` (`out` < 0: only reads), hashing
/// the bytes on the way: one pass over the data. Stops with too_large past
/// `max_bytes`. `rd` and `wr` say how to wait on either descriptor.
copied copy_hashed(int in, int out, uint64_t max_bytes = UINT64_MAX, const waiter& rd = {},
                   const waiter& wr = {}) {
  copied r;
  std::unique_ptr<EVP_MD_CTX, md_deleter> md{EVP_MD_CTX_new()};
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::unique_ptr<char[]> buf{new char[chunk]};
  for (;;) {
    if (auto bad = rd.wait(in, POLLIN)) {
      r.status = *bad;
      return r;
    }
    auto n = rd.read(in, buf.get(), chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0) {
      r.status = copied::read_failed;
      return r;
    }
    if (n == 0)
      break;
    if (static_cast<uint64_t>(r.size) + static_cast<uint64_t>(n) > max_bytes) {
      r.status = copied::too_large;
      return r;
    }
    EVP_DigestUpdate(md.get(), buf.get(), static_cast<size_t>(n));
    if (out >= 0) {
      const char* p = buf.get();
      size_t left = static_cast<size_t>(n);
      while (left > 0) {
        if (auto bad = wr.wait(out, POLLOUT)) {
          r.status = *bad;
          return r;
        }
        auto w = wr.write(out, p, left);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
          continue;
        if (w <= 0) {
          r.status = copied::write_failed;
          return r;
        }
        p += w;
        left -= static_cast<size_t>(w);
      }
    }
    r.size += n;
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(md.get(), digest, &len);
  r.sha256 = hex(digest, len);
  return r;
}

/// A file-system timestamp can lag the instant of the change it records by
/// one clock tick (4 ms at HZ=250); a verification is trusted only for a
/// file whose ctime is older than the hash by more than this, so a change
/// made after the hash always shows as a different ctime.
constexpr int64_t racy_ns = 50'000'000;

int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

int64_t ns_of(const struct timespec& t) {
  return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

/// What a kernel copy did: everything, nothing (the target does not allow
/// it: use read/write), or failed part-way.
enum class kernel_copy { done, unsupported, failed };

/// Copies `size` bytes of `in` from offset 0 into `out` at its current
/// offset with copy_file_range, else sendfile.
kernel_copy copy_in_kernel(int in, int out, int64_t size) {
  off_t off = 0;
  bool cfr = true;
  while (off < size) {
    auto left = static_cast<size_t>(size - off);
    ssize_t n = cfr ? ::copy_file_range(in, &off, out, nullptr, left, 0)
                    : ::sendfile(out, in, &off, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && off == 0 && cfr
        && (errno == EXDEV || errno == EINVAL || errno == EBADF || errno == ENOSYS
            || errno == EOPNOTSUPP)) {
      cfr = false; // e.g. a pipe or socket, or another file system
      continue;
    }
    if (n < 0 && off == 0 && !cfr && (errno == EINVAL || errno == ENOSYS))
      return kernel_copy::unsupported; // e.g. a target opened O_APPEND
    if (n <= 0)
      return kernel_copy::failed;
  }
  return kernel_copy::done;
}

/// The error for a copy that did not finish.
caf::error copy_error(const copied& c, const std::string& what, uint64_t max_bytes) {
  switch (c.status) {
    case copied::too_large:
      return make_error(ec::file_too_large, static_cast<int64_t>(max_bytes));
    case copied::timed_out:
      // The client's descriptor stalled: its fault, named as its parameter.
      return make_error(ec::invalid_parameter, std::string{"file_fd"});
    case copied::cancelled:
      return make_error(ec::internal, what + ": the client hung up");
    default:
      return io_error("cannot read " + what);
  }
}

/// May `who` do `want` (4 read, 1 search) on a file with `st`, by the
/// owner, group and other bits as the kernel would check them (root: read
/// always, search where any x bit is set)?
bool may_access(const struct stat& st, const blob_store::reader& who, mode_t want) {
  if (who.uid == 0)
    return want != 1 || (st.st_mode & 0111) != 0 || S_ISDIR(st.st_mode);
  if (st.st_uid == who.uid)
    return (st.st_mode & (want << 6)) != 0;
  if (std::find(who.groups.begin(), who.groups.end(), st.st_gid) != who.groups.end())
    return (st.st_mode & (want << 3)) != 0;
  return (st.st_mode & want) != 0;
}

std::string unique_tmp_name() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::to_string(::getpid()) + "-" + std::to_string(gen());
}

} // namespace

bool valid_sha256(const std::string& s) {
  return s.size() == 64
         && std::all_of(s.begin(), s.end(),
                        [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

blob_store::blob_store(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_ + "/tmp", ec);
}

std::string blob_store::path_of(const std::string& sha256) const {
  return dir_ + "/" + sha256.substr(0, 2) + "/" + sha256;
}

caf::expected<blob_info> blob_store::put(int in, const std::string& what,
                                         const limits& lim) const {
  auto tmp = dir_ + "/tmp/" + unique_tmp_name();
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0440);
  if (out < 0)
    return io_error("cannot create " + tmp);
  fd_closer out_guard{out};
  auto c = copy_hashed(in, out, lim.max_bytes,
                       waiter::for_fd(in, lim.poll, lim.timeout, lim.cancelled));
  if (c.status != copied::ok) {
    auto err = c.status == copied::write_failed ? io_error("cannot write " + tmp)
                                                : copy_error(c, what, lim.max_bytes);
    ::unlink(tmp.c_str());
    return err;
  }
  const auto& sha = c.sha256;
  auto size = c.size;
  if (::fsync(out) != 0) {
    auto err = io_error("cannot sync " + tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  ::close(out);
  out_guard.fd = -1;
  auto dst = path_of(sha);
  std::error_code ec;
  // A new prefix directory must reach the disk too, or a crash could lose
  // the blob's name with it: fsync the directory and its parent.
  if (fs::create_directories(fs::path{dst}.parent_path(), ec)) {
    for (const auto& d : {fs::path{dst}.parent_path(), fs::path{dir_}}) {
      int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
  }
  {
    // The same content may be stored already: replace it anyway. The new
    // file is young (collection's age rule) and known whole, and the pin
    // and the cleared mark tell a collection under way to keep it.
    std::lock_guard<std::mutex> lock{mu_};
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      auto err = io_error("cannot store " + dst);
      ::unlink(tmp.c_str());
      return err;
    }
    pins_[sha]++;
    marked_.erase(sha);
    verified_.erase(sha);
  }
  int d = ::open(fs::path{dst}.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);
    ::close(d);
  }
  return blob_info{sha, size};
}

void blob_store::unpin(const std::string& sha256) const {
  std::lock_guard<std::mutex> lock{mu_};
  auto it = pins_.find(sha256);
  if (it != pins_.end() && --it->second <= 0)
    pins_.erase(it);
}

bool blob_store::trusted(const std::string& sha256, const struct stat& st) const {
  std::lock_guard<std::mutex> lock{mu_};
  auto it = verified_.find(sha256);
  if (it == verified_.end())
    return false;
  const auto& v = it->second;
  auto window = std::chrono::duration_cast<std::chrono::nanoseconds>(trust_window).count();
  return v.dev == st.st_dev && v.ino == st.st_ino && v.size == st.st_size
         && v.mtime_ns == ns_of(st.st_mtim) && v.ctime_ns == ns_of(st.st_ctim)
         && v.ctime_ns < v.hashed_at_ns - racy_ns && wall_ns() - v.hashed_at_ns < window;
}

void blob_store::remember(const std::string& sha256, const struct stat& st,
                          int64_t hashed_at_ns) const {
  constexpr size_t max_remembered = 1'000'000; // ~150 MB at most; then start over
  std::lock_guard<std::mutex> lock{mu_};
  if (ns_of(st.st_ctim) >= hashed_at_ns - racy_ns) {
    verified_.erase(sha256); // changed too recently to tell a later change apart
    return;
  }
  if (verified_.size() >= max_remembered)
    verified_.clear();
  verified_[sha256] = seen{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                           static_cast<int64_t>(st.st_size), ns_of(st.st_mtim),
                           ns_of(st.st_ctim), hashed_at_ns};
}

caf::expected<blob_info> blob_store::put_fd(int fd, uint64_t max_bytes,
                                            std::chrono::milliseconds timeout,
                                            const std::atomic<bool>* cancelled) const {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return io_error("cannot stat the passed descriptor");
  if (S_ISDIR(st.st_mode))
    return make_error(ec::invalid_parameter, std::string{"file_fd"});
  // A regular file larger than the bound is refused before a byte is copied.
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes)
    return make_error(ec::file_too_large, static_cast<int64_t>(max_bytes));
  return put(fd, "the passed descriptor", {max_bytes, timeout, cancelled, true});
}

caf::expected<blob_info> blob_store::put_path(const std::string& path,
                                              const std::vector<std::string>& import_dirs,
                                              const reader& who, uint64_t max_bytes) const {
  auto refuse = [&] { return make_error(ec::path_not_allowed, path); };
  if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos)
    return refuse();
  // The components below a root, as written: no ".", "..", or empty ones
  // (a doubled slash is harmless and skipped).
  auto below = [](const std::string& p, std::string root) -> std::optional<std::vector<std::string>> {
    while (root.size() > 1 && root.back() == '/')
      root.pop_back();
    if (root == "/")
      root.clear();
    if (p.size() <= root.size() + 1 || p.compare(0, root.size(), root) != 0
        || p[root.size()] != '/')
      return std::nullopt;
    std::vector<std::string> parts;
    size_t i = root.size();
    while (i < p.size()) {
      auto j = p.find('/', i + 1);
      if (j == std::string::npos)
        j = p.size();
      auto part = p.substr(i + 1, j - i - 1);
      if (part == "." || part == "..")
        return std::nullopt;
      if (!part.empty())
        parts.push_back(std::move(part));
      i = j;
    }
    if (parts.empty() || p.back() == '/')
      return std::nullopt;
    return parts;
  };
  for (const auto& dir : import_dirs) {
    std::error_code ec;
    auto parts = below(path, dir);
    if (!parts) {
      // Also accept the root by its resolved name (the operator's own
      // symlinks in the root's path are trusted; nothing below it is).
      auto real = fs::canonical(dir, ec);
      if (ec || !(parts = below(path, real.string())))
        continue;
    }
    int cur = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0)
      continue;
    fd_closer cur_guard{cur};
    bool ok = true;
    for (size_t k = 0; ok && k + 1 < parts->size(); ++k) {
      struct stat st {};
      // The caller must be able to search each directory it walks through.
      if (::fstat(cur, &st) != 0 || !S_ISDIR(st.st_mode) || !may_access(st, who, 1)) {
        ok = false;
        break;
      }
      int next = ::openat(cur, (*parts)[k].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0) {
        ok = false;
        break;
      }
      ::close(cur);
      cur = cur_guard.fd = next;
    }
    struct stat dst {};
    if (!ok || ::fstat(cur, &dst) != 0 || !may_access(dst, who, 1))
      return refuse();
    int fd = ::openat(cur, parts->back().c_str(),
                      O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
      return refuse();
    fd_closer guard{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !may_access(st, who, 4))
      return refuse();
    if (static_cast<uint64_t>(st.st_size) > max_bytes)
      return make_error(ec::file_too_large, static_cast<int64_t>(max_bytes));
    ::fcntl(fd, F_SETFL, 0);
    return put(fd, path, {max_bytes, {}, nullptr, false});
  }
  return refuse();
}

caf::expected<blob_info> blob_store::export_to(const std::string& sha256, int fd,
                                               std::chrono::milliseconds timeout,
                                               const std::atomic<bool>* cancelled) const {
  if (!valid_sha256(sha256))
    return make_error(ec::internal, "bad blob name " + sha256);
  auto src = path_of(sha256);
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0)
    return io_error("blob " + sha256 + " is missing");
  fd_closer guard{in};
  struct stat st {};
  if (::fstat(in, &st) != 0)
    return io_error("cannot stat blob " + sha256);
  // The kernel's copy only into a regular file: a pipe or socket may stall,
  // and is written below with the deadline and the hang-up check.
  struct stat target {};
  bool regular = fd >= 0 && ::fstat(fd, &target) == 0 && S_ISREG(target.st_mode);
  if (regular && trusted(sha256, st)) {
    switch (copy_in_kernel(in, fd, st.st_size)) {
      case kernel_copy::done:
        return blob_info{sha256, static_cast<int64_t>(st.st_size)};
      case kernel_copy::failed:
        return make_error(ec::invalid_parameter, std::string{"file_fd"});
      case kernel_copy::unsupported:
        break; // nothing written yet: read, hash and write below
    }
  }
  auto hashed_at = wall_ns();
  auto c = copy_hashed(in, fd, UINT64_MAX, {}, waiter::for_fd(fd, true, timeout, cancelled));
  if (c.status == copied::read_failed)
    return io_error("cannot read blob " + sha256);
  if (c.status == copied::write_failed)
    return make_error(ec::invalid_parameter, std::string{"file_fd"});
  if (c.status != copied::ok)
    return copy_error(c, "the passed descriptor", 0);
  auto size = c.size;
  if (c.sha256 != sha256) {
    std::lock_guard<std::mutex> lock{mu_};
    verified_.erase(sha256);
    return make_error(ec::internal, "blob " + sha256 + " is corrupt (hash mismatch)");
  }
  if (size == st.st_size)
    remember(sha256, st, hashed_at);
  return blob_info{sha256, size};
}

caf::expected<void> blob_store::verify(const std::string& sha256, int64_t size) const {
  if (!valid_sha256(sha256))
    return make_error(ec::internal, "bad blob name " + sha256);
  struct stat st {};
  if (::stat(path_of(sha256).c_str(), &st) != 0)
    return io_error("blob " + sha256 + " is missing");
  if (st.st_size != size)
    return make_error(ec::internal, "blob " + sha256 + " has the wrong size");
  if (trusted(sha256, st))
    return {};
  auto r = export_to(sha256, -1);
  if (!r)
    return std::move(r.error());
  if (r->size != size)
    return make_error(ec::internal, "blob " + sha256 + " has the wrong size");
  return {};
}

size_t blob_store::collect(const std::vector<std::string>& referenced,
                           const reference_check& check, std::chrono::seconds min_age) const {
  size_t removed = 0;
  std::error_code ec;
  auto cutoff = fs::file_time_type::clock::now() - min_age;
  auto tmp_cutoff = fs::file_time_type::clock::now() - std::max<std::chrono::seconds>(
                                                          min_age, std::chrono::minutes{10});
  // Mark: files the snapshot does not name, old enough, not pinned.
  std::vector<std::string> chosen;
  for (const auto& sub : fs::directory_iterator(dir_, ec)) {
    if (!sub.is_directory())
      continue;
    if (sub.path().filename() == "tmp") {
      // Uploads a crash interrupted; never one still being written.
      for (const auto& f : fs::directory_iterator(sub.path(), ec))
        if (f.last_write_time(ec) <= tmp_cutoff && fs::remove(f.path(), ec))
          ++removed;
      continue;
    }
    for (const auto& f : fs::directory_iterator(sub.path(), ec)) {
      auto name = f.path().filename().string();
      if (!valid_sha256(name) || std::binary_search(referenced.begin(), referenced.end(), name))
        continue;
      if (f.last_write_time(ec) > cutoff || ec)
        continue;
      std::lock_guard<std::mutex> lock{mu_};
      if (pins_.count(name) == 0 && marked_.insert(name).second)
        chosen.push_back(name);
    }
  }
  if (chosen.empty())
    return removed;
  // Check: which of them does still no revision refer to, asked now.
  auto unreferenced = check(chosen);
  std::lock_guard<std::mutex> lock{mu_};
  if (unreferenced)
    std::sort(unreferenced->begin(), unreferenced->end());
  // Sweep: only files still marked (no upload since) and still unreferenced.
  for (const auto& name : chosen) {
    bool untouched = marked_.erase(name) > 0 && pins_.count(name) == 0;
    if (untouched && unreferenced
        && std::binary_search(unreferenced->begin(), unreferenced->end(), name)
        && ::unlink(path_of(name).c_str()) == 0) {
      verified_.erase(name);
      ++removed;
    }
  }
  return removed;
}

} // namespace projlink
