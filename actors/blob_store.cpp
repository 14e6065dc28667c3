#include "actors/blob_store.hpp"

#include "actors/error.hpp"

#include <openssl/evp.h>

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
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

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    auto w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// What copy_hashed did: the content's hash and size, or where it failed.
struct copied {
  enum { ok, read_failed, write_failed } status = ok;
  std::string sha256;
  int64_t size = 0;
};

/// Copies everything from `in` to `out` (`out` < 0: only reads), hashing
/// the bytes on the way: one pass over the data.
copied copy_hashed(int in, int out) {
  copied r;
  std::unique_ptr<EVP_MD_CTX, md_deleter> md{EVP_MD_CTX_new()};
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  std::unique_ptr<char[]> buf{new char[chunk]};
  for (;;) {
    auto n = ::read(in, buf.get(), chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      r.status = copied::read_failed;
      return r;
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(md.get(), buf.get(), static_cast<size_t>(n));
    if (out >= 0 && !write_all(out, buf.get(), static_cast<size_t>(n))) {
      r.status = copied::write_failed;
      return r;
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

caf::expected<blob_info> blob_store::put(int in, const std::string& what) const {
  auto tmp = dir_ + "/tmp/" + unique_tmp_name();
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0440);
  if (out < 0)
    return io_error("cannot create " + tmp);
  fd_closer out_guard{out};
  auto c = copy_hashed(in, out);
  if (c.status != copied::ok) {
    auto err = io_error(c.status == copied::read_failed ? "cannot read " + what
                                                        : "cannot write " + tmp);
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
  fs::create_directories(fs::path{dst}.parent_path(), ec);
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

caf::expected<blob_info> blob_store::put_fd(int fd) const {
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return io_error("cannot stat the passed descriptor");
  if (S_ISDIR(st.st_mode))
    return make_error(ec::invalid_parameter, std::string{"file_fd"});
  return put(fd, "the passed descriptor");
}

caf::expected<blob_info> blob_store::put_path(const std::string& path,
                                              const std::vector<std::string>& import_dirs) const {
  auto refuse = [&] { return make_error(ec::path_not_allowed, path); };
  if (path.empty() || path.front() != '/')
    return refuse();
  std::error_code ec;
  // Resolve symlinks and `..` fully; the result must lie inside a root.
  auto real = fs::canonical(path, ec);
  if (ec)
    return refuse();
  bool inside = false;
  for (const auto& dir : import_dirs) {
    auto root = fs::canonical(dir, ec);
    if (ec)
      continue;
    auto rel = real.lexically_relative(root);
    if (!rel.empty() && *rel.begin() != ".." && rel.native() != ".")
      inside = true;
  }
  if (!inside)
    return refuse();
  // O_NOFOLLOW on the resolved path: a symlink swapped in meanwhile fails.
  int fd = ::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return refuse();
  fd_closer guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    return refuse();
  ::fcntl(fd, F_SETFL, 0);
  return put(fd, path);
}

caf::expected<blob_info> blob_store::export_to(const std::string& sha256, int fd) const {
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
  if (fd >= 0 && trusted(sha256, st)) {
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
  auto c = copy_hashed(in, fd);
  if (c.status == copied::read_failed)
    return io_error("cannot read blob " + sha256);
  if (c.status == copied::write_failed)
    return make_error(ec::invalid_parameter, std::string{"file_fd"});
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
