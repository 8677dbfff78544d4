// Data loaders: the digits CSV and IDX files load, and every kind of corrupt input is one clear
// error naming the file and the problem.
#include <filesystem>
#include <fstream>

#include "datasets/images.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
fs::path tmp(const std::string& name) {
  return fs::temp_directory_path() / ("ebl_test_" + name);
}

void write_gz(const fs::path& p, const std::string& bytes) {
  gzFile f = gzopen(p.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  gzclose(f);
}
std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 255), char((v >> 8) & 255), char(v & 255)};
}
std::string idx_images(std::uint32_t magic, std::uint32_t n, std::uint32_t r, std::uint32_t c,
                       std::size_t bytes) {
  return be32(magic) + be32(n) + be32(r) + be32(c) + std::string(bytes, char(128));
}
std::string idx_labels(std::uint32_t magic, std::uint32_t n, std::size_t bytes, char label = 3) {
  return be32(magic) + be32(n) + std::string(bytes, label);
}
}  // namespace

TEST_CASE("the digits load: 1797 images of 64 pixels in [0 1] and ten classes", "[data]") {
  LabeledData d = load_digits_csv(default_digits_path());
  REQUIRE(d.size() == 1797);
  CHECK(d.x.shape() == Shape{1797, 64});
  CHECK(xt::amin(d.x)() == 0.0f);
  CHECK(xt::amax(d.x)() == 1.0f);
  std::vector<int> count(10, 0);
  for (auto y : d.y) ++count.at(y);
  for (int c : count) CHECK(c > 150);
  auto [train, test] = split(d, 500, 7);
  CHECK(train.size() == 1297);
  CHECK(test.size() == 500);
  auto [train2, test2] = split(d, 500, 7);
  CHECK(test2.y == test.y);  // the split is fixed by its seed
  Array<float> b = binarize_threshold(d.x);
  CHECK(std::all_of(b.begin(), b.end(), [](float v) { return v == 0.0f || v == 1.0f; }));
}

TEST_CASE("the digits loader rejects malformed CSV with the line and the problem",
          "[data][errors]") {
  std::string good(64 * 2, '0');
  for (std::size_t k = 1; k < good.size(); k += 2) good[k] = ',';
  write_gz(tmp("d1.csv.gz"), good + "3\n" + good + "x\n");
  CHECK_THROWS_WITH(load_digits_csv(tmp("d1.csv.gz")),
                    Contains("line 2") && Contains("'x' is not a number"));
  write_gz(tmp("d2.csv.gz"), "1,2,3\n");
  CHECK_THROWS_WITH(load_digits_csv(tmp("d2.csv.gz")), Contains("3 fields"));
  write_gz(tmp("d3.csv.gz"), good + "12\n");
  CHECK_THROWS_WITH(load_digits_csv(tmp("d3.csv.gz")), Contains("label 12 is not a digit"));
  CHECK_THROWS_WITH(load_digits_csv(tmp("nope.csv.gz")), Contains("no such file"));
  // a gzip stream cut short
  std::string full;
  {
    std::ifstream in(default_digits_path(), std::ios::binary);
    full.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  write_file_atomic(tmp("d4.csv.gz"), full.substr(0, full.size() / 2));
  CHECK_THROWS_WITH(load_digits_csv(tmp("d4.csv.gz")), Contains("corrupt gzip"));
  for (auto n : {"d1.csv.gz", "d2.csv.gz", "d3.csv.gz", "d4.csv.gz"}) fs::remove(tmp(n));
}

TEST_CASE("IDX files load and corrupt ones are rejected clearly", "[data][errors]") {
  write_gz(tmp("im.gz"), idx_images(2051, 3, 2, 2, 12));
  write_gz(tmp("lb.gz"), idx_labels(2049, 3, 3));
  LabeledData d = load_idx(tmp("im.gz"), tmp("lb.gz"));
  CHECK(d.x.shape() == Shape{3, 4});
  CHECK(d.x(2, 3) == Approx(128.0f / 255));
  CHECK(d.y == std::vector<std::size_t>{3, 3, 3});

  write_gz(tmp("bad_magic.gz"), idx_images(2049, 3, 2, 2, 12));
  CHECK_THROWS_WITH(load_idx(tmp("bad_magic.gz"), tmp("lb.gz")),
                    Contains("magic number 2049 instead of 2051"));
  write_gz(tmp("trunc.gz"), idx_images(2051, 3, 2, 2, 11));
  CHECK_THROWS_WITH(load_idx(tmp("trunc.gz"), tmp("lb.gz")), Contains("truncated"));
  write_gz(tmp("lb4.gz"), idx_labels(2049, 4, 4));
  CHECK_THROWS_WITH(load_idx(tmp("im.gz"), tmp("lb4.gz")),
                    Contains("3 images but") && Contains("4 labels"));
  write_gz(tmp("lbbad.gz"), idx_labels(2049, 3, 3, 12));
  CHECK_THROWS_WITH(load_idx(tmp("im.gz"), tmp("lbbad.gz")), Contains("label 12"));
  write_gz(tmp("short.gz"), "ab");
  CHECK_THROWS_WITH(load_idx(tmp("short.gz"), tmp("lb.gz")), Contains("not an IDX image file"));
  for (auto n : {"im.gz", "lb.gz", "bad_magic.gz", "trunc.gz", "lb4.gz", "lbbad.gz", "short.gz"})
    fs::remove(tmp(n));
}
