// Fuzzing the loaders: thousands of inputs made from a valid file by seeded mutations (bit flips,
// byte insertions and deletions, truncation, splices of hostile tokens such as "nan", a NUL, a
// huge number, and crafted headers) are fed to the digits CSV reader, the IDX reader, the SMILES
// reader, the checkpoint reader and the edge-list reader. Each input must either load into something the loader's
// contract allows (finite pixels in [0, 1], labels below the class count, a permutation-free
// structure that matches its own header) or be refused with one IoError. Anything else — another
// exception type, a crash, a read out of bounds — fails; `make sanitize` runs this same test under
// AddressSanitizer and UndefinedBehaviorSanitizer, where an invalid read is a failure too.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "autodiff/random.hpp"
#include "datasets/images.hpp"
#include "datasets/qm9.hpp"
#include "io/checkpoint.hpp"
#include "io/edge_lists.hpp"
#include "io/files.hpp"

using namespace ebl;
namespace fs = std::filesystem;

namespace {

constexpr int kInputsPerLoader = 1500;

fs::path scratch() {
  const fs::path d = fs::temp_directory_path() / fmt::format("ebl-fuzz-{}", ::getpid());
  fs::create_directories(d);
  return d;
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  if (!bytes.empty())
    REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  gzclose(f);
}

// Tokens that have broken parsers before: non-numbers strtod accepts, a NUL, huge and negative
// numbers, separators, control bytes.
const std::vector<std::string> kTokens = {"nan",        "inf",
                                          "-inf",       "1e999",
                                          "-1",         "0x1f",
                                          " ",          std::string(1, '\0'),
                                          "\r",         ",",
                                          ",,",         "\n",
                                          "4294967295", "99999999999999999999",
                                          "1e-400",     ".",
                                          "",           "16.0000001"};

// One mutation of `s`, chosen and placed by `rng`.
std::string mutate(std::string s, Rng& rng) {
  const int kinds = 6;
  const int rounds = 1 + int(rng.below(3));
  for (int r = 0; r < rounds; ++r) {
    const std::size_t pos = s.empty() ? 0 : rng.below(s.size());
    switch (rng.below(kinds)) {
      case 0:  // flip a bit
        if (!s.empty()) s[pos] = char(s[pos] ^ char(1u << rng.below(8)));
        break;
      case 1:  // insert a random byte
        s.insert(s.begin() + std::ptrdiff_t(pos), char(rng.below(256)));
        break;
      case 2:  // delete a run of bytes
        if (!s.empty()) s.erase(pos, 1 + rng.below(8));
        break;
      case 3:  // truncate
        s.resize(pos);
        break;
      case 4: {  // replace a run with a hostile token
        const std::string& t = kTokens[rng.below(kTokens.size())];
        if (!s.empty()) s.replace(pos, 1 + rng.below(3), t);
        break;
      }
      default:  // duplicate a run (lines repeated, fields multiplied)
        s.insert(pos, s.substr(pos, 1 + rng.below(64)));
        break;
    }
  }
  return s;
}

void put_be32(std::string& b, std::size_t pos, std::uint32_t v) {
  for (int k = 0; k < 4; ++k) b[pos + std::size_t(k)] = char((v >> (24 - 8 * k)) & 0xff);
}

std::string digits_seed() {
  std::string s;
  Rng rng(1);
  for (int line = 0; line < 6; ++line) {
    for (int k = 0; k < 64; ++k) s += fmt::format("{},", rng.below(17));
    s += fmt::format("{}\n", rng.below(10));
  }
  return s;
}

void check_labeled(const LabeledData& d) {
  REQUIRE(d.x.shape()[0] == d.y.size());
  for (float v : d.x) REQUIRE((std::isfinite(v) && v >= 0 && v <= 1));
  for (std::size_t y : d.y) REQUIRE(y < d.classes);
}

// Writes kInputsPerLoader mutations of `seed` (gzip) to `path` and loads each with `load`, which
// checks what it loaded; each must load or throw IoError. Both outcomes must occur, so the
// mutations reach past the first check and the test can fail.
template <class Load>
void fuzz_gzip_file(const std::string& seed, const fs::path& path, Rng& rng, Load load) {
  int loaded = 0, refused = 0;
  for (int i = 0; i < kInputsPerLoader; ++i) {
    write_gzip(path, mutate(seed, rng));
    try {
      load(path);
      ++loaded;
    } catch (const IoError&) {
      ++refused;
    }
  }
  CHECK(loaded > 0);
  CHECK(refused > 0);
}

}  // namespace

TEST_CASE("fuzz: the digits CSV reader loads valid data or throws one IoError", "[fuzz]") {
  const fs::path dir = scratch(), path = dir / "digits.csv.gz";
  Rng rng(2024);
  fuzz_gzip_file(digits_seed(), path, rng,
                 [](const fs::path& p) { check_labeled(load_digits_csv(p)); });
  fs::remove_all(dir);
}

TEST_CASE("fuzz: the digits CSV reader refuses what strtod alone would accept", "[fuzz]") {
  const fs::path dir = scratch(), path = dir / "digits.csv.gz";
  const std::string row =
      "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
      "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,";
  write_gzip(path, row + "5\n");
  REQUIRE(load_digits_csv(path).y[0] == 5);
  for (const std::string& bad : std::vector<std::string>{"nan,", "inf,", "0x1,", " 1,", "1e0,",
                                                         "-0,", std::string("5\0x,", 4)}) {
    write_gzip(path, bad + row.substr(row.find(',') + 1) + "5\n");
    CHECK_THROWS_AS(load_digits_csv(path), IoError);
  }
  write_gzip(path, row + std::string("5\0garbage\n", 10));
  CHECK_THROWS_AS(load_digits_csv(path), IoError);
  fs::remove_all(dir);
}

TEST_CASE("fuzz: the IDX reader loads consistent files or throws one IoError", "[fuzz]") {
  const fs::path dir = scratch(), images = dir / "im.gz", labels = dir / "lb.gz";
  std::string im(16 + 5 * 3 * 4, '\0'), lb(8 + 5, '\0');
  put_be32(im, 0, 2051), put_be32(im, 4, 5), put_be32(im, 8, 3), put_be32(im, 12, 4);
  put_be32(lb, 0, 2049), put_be32(lb, 4, 5);
  for (std::size_t k = 16; k < im.size(); ++k) im[k] = char(k * 7);
  for (std::size_t k = 8; k < lb.size(); ++k) lb[k] = char(k % 10);
  write_gzip(images, im), write_gzip(labels, lb);
  check_labeled(load_idx(images, labels));
  Rng rng(7);
  int loaded = 0, refused = 0;
  for (int i = 0; i < kInputsPerLoader; ++i) {
    std::string a = im, b = lb;
    switch (rng.below(3)) {
      case 0:  // crafted header: any 32-bit sizes, including ones whose product overflows
        put_be32(a, 4 + 4 * rng.below(3), std::uint32_t(rng.next_u64()));
        if (rng.below(2)) put_be32(a, 4 + 4 * rng.below(3), std::uint32_t(rng.below(3)));
        break;
      case 1:
        a = mutate(a, rng);
        break;
      default:
        b = mutate(b, rng);
        break;
    }
    write_gzip(images, a), write_gzip(labels, b);
    try {
      const LabeledData d = load_idx(images, labels);
      check_labeled(d);
      REQUIRE(d.x.size() == a.size() - 16);
      ++loaded;
    } catch (const IoError&) {
      ++refused;
    }
  }
  CHECK(loaded > 0);
  CHECK(refused > 0);
  // the reproduction of the overflow: 2^32-1 images of 2^32-1 x 2^32-1 pixels claimed
  std::string a = im;
  put_be32(a, 4, 0xffffffffu), put_be32(a, 8, 0xffffffffu), put_be32(a, 12, 0xffffffffu);
  write_gzip(images, a);
  CHECK_THROWS_AS(load_idx(images, labels), IoError);
  put_be32(a, 4, 5), put_be32(a, 8, 3), put_be32(a, 12, 0);  // 0-column images
  write_gzip(images, a);
  CHECK_THROWS_AS(load_idx(images, labels), IoError);
  fs::remove_all(dir);
}

TEST_CASE("fuzz: the SMILES reader returns clean SMILES or throws one IoError", "[fuzz]") {
  const fs::path dir = scratch(), path = dir / "qm9.csv.gz";
  const std::string seed = "smiles\nC\nCC(=O)O\nC1CC1\nN#CC#N\nOC1=CC=CC=C1\n";
  Rng rng(11);
  fuzz_gzip_file(seed, path, rng, [](const fs::path& p) {
    for (const std::string& s : read_smiles_csv(p)) {
      REQUIRE(!s.empty());
      for (char ch : s)
        REQUIRE((static_cast<unsigned char>(ch) > 0x20 && static_cast<unsigned char>(ch) < 0x7f &&
                 ch != ','));
    }
  });
  fs::remove_all(dir);
}

TEST_CASE("fuzz: the edge-list reader returns consistent graphs or throws one IoError", "[fuzz]") {
  const fs::path dir = scratch(), path = dir / "graphs.txt";
  const std::string seed =
      "# graph 0 nodes 5 draw 0\n0 1\n1 2\n2 3\n3 4\n0 4\n# graph 1 nodes 3 draw 0\n0 2\n"
      "# graph 2 nodes 4 draw 1\n";
  Rng rng(12);
  for (int k = 0; k < kInputsPerLoader; ++k) {
    { std::ofstream(path, std::ios::binary) << mutate(seed, rng); }
    try {
      for (const EdgeListGraph& g : read_edge_lists(path))
        for (auto [u, v] : g.edges) REQUIRE((u < v && v < g.nodes));
    } catch (const IoError&) {
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("fuzz: the checkpoint reader, with and without a recomputed checksum", "[fuzz]") {
  Checkpoint c;
  Array<double> a(Shape{3, 2});
  for (std::size_t k = 0; k < a.size(); ++k) a.data()[k] = double(k);
  c.put("param/W", a);
  c.arrays["empty"] = Array<double>(Shape{0});
  c.integers["epoch"] = 3;
  c.strings["config"] = R"({"seed": 0})";
  const std::string good = c.bytes();
  REQUIRE(Checkpoint::parse(good, "good").integer("epoch") == 3);
  Rng rng(5);
  int loaded = 0, refused = 0;
  for (int i = 0; i < kInputsPerLoader; ++i) {
    std::string b = mutate(good, rng);
    // half the time, make the length and CRC agree with the mutated bytes, so the parser itself
    // meets the impossible contents (a CRC-valid file no writer made)
    if (rng.below(2) && b.size() >= 24) {
      const std::uint64_t length = b.size();
      std::memcpy(b.data() + 12, &length, 8);
      const std::uint32_t crc = std::uint32_t(crc32(
          crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(b.data()), uInt(b.size() - 4)));
      std::memcpy(b.data() + b.size() - 4, &crc, 4);
    }
    try {
      const Checkpoint r = Checkpoint::parse(b, "fuzzed");
      for (const auto& [name, arr] : r.arrays) REQUIRE(arr.size() <= b.size());
      ++loaded;
    } catch (const IoError&) {
      ++refused;
    }
  }
  CHECK(loaded > 0);
  CHECK(refused > 0);
}

TEST_CASE("checkpoint contents that no writer makes are refused where they are read", "[fuzz]") {
  Checkpoint c;
  Array<double> p(Shape{4});
  p(0) = 2, p(1) = 0, p(2) = 3, p(3) = 1;
  c.put("perm", p);
  CHECK(c.permutation("perm", 4) == std::vector<std::size_t>{2, 0, 3, 1});
  CHECK_THROWS_AS(c.permutation("perm", 5), IoError);
  for (double bad : {1e9, -1.0, 0.5, double(NAN), 2.0 /* a repeat */}) {
    Array<double> q = p;
    q(3) = bad;
    c.put("perm", q);
    CHECK_THROWS_AS(c.permutation("perm", 4), IoError);
  }
  c.integers["epoch"] = std::uint64_t(1) << 40;
  CHECK_THROWS_AS(c.integer_in("epoch", 0, 100), IoError);
  CHECK_THROWS_AS(c.required_text("curves"), IoError);
  Array<float> w(Shape{2});
  Array<double> nan_array(Shape{2});
  nan_array(0) = 1, nan_array(1) = NAN;
  c.put("w", nan_array);
  CHECK_THROWS_AS(c.get("w", w), IoError);
  nan_array(1) = 1e300;  // finite in double, +inf in float
  c.put("w", nan_array);
  CHECK_THROWS_AS(c.get("w", w), IoError);
  Array<double> wd(Shape{2});
  c.get("w", wd);  // a double array may hold it
  CHECK(wd(1) == 1e300);
  Rng rng(3);
  put_rng(c, rng);
  for (int k = 0; k < 4; ++k) c.integers[fmt::format("rng/s{}", k)] = 0;
  CHECK_THROWS_AS(get_rng(c, rng), IoError);
  CHECK_THROWS_AS(rng.set_state(Rng::State{{0, 0, 0, 0}}), std::invalid_argument);
}
