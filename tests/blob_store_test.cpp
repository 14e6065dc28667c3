// Unit tests: the content-addressed blob store.

#include "actors/blob_store.hpp"
#include "actors/error.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

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
  auto again = put_text(s, t.path / "b", "abc");
  CHECK(again.sha256 == a.sha256);
  CHECK(s.verify(a.sha256, 3));
  // Corrupt the stored file: verification and export refuse it.
  fs::permissions(s.path_of(a.sha256), fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(s.path_of(a.sha256)) << "abd";
  CHECK_FALSE(s.verify(a.sha256, 3));
  CHECK_FALSE(s.export_to(a.sha256, -1));
}

TEST_CASE("blobs: collection removes only unreferenced files") {
  temp_dir t;
  blob_store s{(t.path / "blobs").string()};
  auto keep = put_text(s, t.path / "a", "keep me");
  auto drop = put_text(s, t.path / "b", "drop me");
  std::ofstream(t.path / "blobs" / "tmp" / "leftover") << "x";
  // Young files survive the default age.
  CHECK(s.collect({keep.sha256}) == 0);
  CHECK(s.collect({keep.sha256}, std::chrono::seconds{0}) == 2);
  CHECK(fs::exists(s.path_of(keep.sha256)));
  CHECK_FALSE(fs::exists(s.path_of(drop.sha256)));
  CHECK_FALSE(fs::exists(t.path / "blobs" / "tmp" / "leftover"));
}
