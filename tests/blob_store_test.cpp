// Unit tests: the content-addressed blob store.

#include "actors/blob_store.hpp"
#include "actors/error.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

using namespace projlink;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("projlink-blobs-" + std::to_string(::getpid()));
  temp_dir() {
    fs::remove_all(path);
    fs::create_directories(path / "blobs");
  }
  ~temp_dir() {
    fs::remove_all(path);
  }
};

blob_info put_text(const blob_store& s, const fs::path& file, const std::string& text) {
  std::ofstream(file) << text;
  int fd = ::open(file.c_str(), O_RDONLY);
  auto r = s.put_fd(fd);
  ::close(fd);
  REQUIRE(r);
  return *r;
}

} // namespace

TEST_CASE("blobs: named by SHA-256, stored once, verified, corruption detected") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  auto a = put_text(s, t.path / "a", "abc");
  CHECK(a.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(a.size == 3);
  CHECK(fs::exists(s.path_of(a.sha256)));
  auto again = put_text(s, t.path / "b", "abc"); // replaces the file: same bytes
  CHECK(again.sha256 == a.sha256);
  CHECK(s.verify(a.sha256, 3));
  // Corrupt the stored file: verification and export refuse it.
  fs::permissions(s.path_of(a.sha256), fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(s.path_of(a.sha256)) << "abd";
  CHECK_FALSE(s.verify(a.sha256, 3));
  CHECK_FALSE(s.export_to(a.sha256, -1));
}

namespace {

/// A stand-in for the database: the blobs committed revisions refer to.
struct references {
  std::mutex mu;
  std::set<std::string> committed;
  blob_store::reference_check check() {
    return [this](const std::vector<std::string>& chosen)
             -> caf::expected<std::vector<std::string>> {
      std::lock_guard<std::mutex> lock{mu};
      std::vector<std::string> out;
      for (const auto& c : chosen)
        if (committed.count(c) == 0)
          out.push_back(c);
      return out;
    };
  }
};

} // namespace

TEST_CASE("blobs: verification re-reads a file that changed or vanished since it was hashed") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  auto a = put_text(s, t.path / "a", "abc");
  s.unpin(a.sha256);
  // Old enough that this verification may be trusted later.
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  CHECK(s.verify(a.sha256, 3));
  CHECK(s.verify(a.sha256, 3));
  CHECK_FALSE(s.verify(a.sha256, 4));
  fs::permissions(s.path_of(a.sha256), fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(s.path_of(a.sha256)) << "abd"; // same size, new ctime
  CHECK_FALSE(s.verify(a.sha256, 3));
  CHECK_FALSE(s.export_to(a.sha256, -1));
  fs::remove(s.path_of(a.sha256));
  CHECK_FALSE(s.verify(a.sha256, 3));
}

TEST_CASE("blobs: export writes the bytes, through the kernel's copy once verified") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  std::string text(300'000, 'x');
  auto a = put_text(s, t.path / "a", text);
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  for (int round = 0; round < 2; ++round) { // hashed, then trusted
    auto out = t.path / ("out" + std::to_string(round));
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    auto r = s.export_to(a.sha256, fd);
    ::close(fd);
    REQUIRE(r);
    CHECK(r->size == static_cast<int64_t>(text.size()));
    std::ifstream in(out);
    std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(got == text);
  }
  // A pipe: no copy_file_range; sendfile or read/write.
  int p[2];
  REQUIRE(::pipe(p) == 0);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
      got.append(buf, static_cast<size_t>(n));
  });
  auto r = s.export_to(a.sha256, p[1]);
  ::close(p[1]);
  reader.join();
  ::close(p[0]);
  CHECK(r);
  CHECK(got == text);
}

TEST_CASE("blobs: collection removes only unreferenced, unpinned files") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  references refs;
  auto keep = put_text(s, t.path / "a", "keep me");
  auto drop = put_text(s, t.path / "b", "drop me");
  auto pinned = put_text(s, t.path / "c", "pinned");
  refs.committed.insert(keep.sha256);
  s.unpin(keep.sha256);
  s.unpin(drop.sha256);
  std::ofstream(t.path / "blobs" / "tmp" / "leftover") << "x";
  std::ofstream(t.path / "blobs" / "tmp" / "writing") << "x";
  fs::last_write_time(t.path / "blobs" / "tmp" / "leftover",
                      fs::file_time_type::clock::now() - std::chrono::hours{1});
  // Young files survive the default age; an interrupted upload does not.
  CHECK(s.collect({}, refs.check()) == 1);
  CHECK_FALSE(fs::exists(t.path / "blobs" / "tmp" / "leftover"));
  // A stale snapshot (empty) does not matter: the re-check keeps `keep`;
  // `pinned` is an upload whose revision is not committed yet.
  CHECK(s.collect({}, refs.check(), std::chrono::seconds{0}) == 1);
  CHECK(fs::exists(s.path_of(keep.sha256)));
  CHECK(fs::exists(s.path_of(pinned.sha256)));
  CHECK_FALSE(fs::exists(s.path_of(drop.sha256)));
  CHECK(fs::exists(t.path / "blobs" / "tmp" / "writing")); // an upload under way
  // A failed re-check removes nothing.
  s.unpin(pinned.sha256);
  auto failing = [](const std::vector<std::string>&) -> caf::expected<std::vector<std::string>> {
    return make_error(ec::internal, "store down");
  };
  CHECK(s.collect({}, failing, std::chrono::seconds{0}) == 0);
  CHECK(fs::exists(s.path_of(pinned.sha256)));
  CHECK(s.collect({}, refs.check(), std::chrono::seconds{0}) == 1);
  CHECK_FALSE(fs::exists(s.path_of(pinned.sha256)));
}

TEST_CASE("blobs: collection racing uploads of the same bytes never loses an acknowledged blob") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  references refs;
  // Four contents; uploads of 0 and 2 are acknowledged (their revision is
  // committed), uploads of 1 and 3 refused (never referenced).
  std::vector<fs::path> files;
  for (int k = 0; k < 4; ++k) {
    files.push_back(t.path / ("f" + std::to_string(k)));
    std::ofstream(files.back()) << "content " << k;
  }
  std::atomic<bool> stop{false};
  std::atomic<size_t> removed{0};
  // The collector works from the stalest snapshot there is: none at all,
  // with no minimum age, as often as it can.
  std::thread collector([&] {
    while (!stop)
      removed += s.collect({}, refs.check(), std::chrono::seconds{0});
  });
  std::set<std::string> acknowledged;
  for (int i = 0; i < 400; ++i) {
    auto k = i % 4;
    int fd = ::open(files[static_cast<size_t>(k)].c_str(), O_RDONLY);
    auto b = s.put_fd(fd);
    ::close(fd);
    REQUIRE(b);
    if (k % 2 == 0) {
      std::lock_guard<std::mutex> lock{refs.mu};
      refs.committed.insert(b->sha256); // the revision commits, then the reply
    }
    s.unpin(b->sha256);
    if (k % 2 == 0)
      acknowledged.insert(b->sha256);
    // Everything acknowledged so far is still there, whole.
    for (const auto& sha : acknowledged)
      REQUIRE(s.verify(sha, 9));
  }
  stop = true;
  collector.join();
  CHECK(acknowledged.size() == 2);
  // Once quiet, a collection removes exactly the two refused contents
  // (unless the collector already did).
  removed += s.collect({}, refs.check(), std::chrono::seconds{0});
  for (const auto& sha : acknowledged)
    CHECK(s.verify(sha, 9));
  size_t files_left = 0;
  for (const auto& sub : fs::directory_iterator(t.path / "blobs"))
    if (sub.path().filename() != "tmp")
      for (const auto& f : fs::directory_iterator(sub.path()))
        files_left += valid_sha256(f.path().filename().string()) ? 1 : 0;
  CHECK(files_left == 2);
  CHECK(removed >= 2);
}
