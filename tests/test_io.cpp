// File I/O: checkpoints round-trip exactly and bad files are clear errors; atomic writes leave no
// temporary behind.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>
#include <zlib.h>

#include "io/checkpoint.hpp"
#include "io/edge_lists.hpp"
#include "tests/helpers.hpp"

using namespace ebl;
using namespace ebl::test;
using Catch::Matchers::Contains;

TEST_CASE("checkpoint files: round trip and clear errors for bad files", "[io]") {
  const auto dir = std::filesystem::temp_directory_path();
  Checkpoint c;
  c.put("a", randn({3, 2}, 1));
  c.put("f", Array<float>(Shape{4}, 0.1f));
  c.integers["n"] = 7;
  c.strings["config"] = R"({"lr": 0.001})";
  c.save(dir / "ebl_ck.bin");
  Checkpoint d = Checkpoint::load(dir / "ebl_ck.bin");
  CHECK(same(d.arrays.at("a"), c.arrays.at("a")));
  Array<float> f(Shape{4});
  d.get("f", f);
  CHECK(f(2) == 0.1f);
  CHECK(d.integer("n") == 7);
  REQUIRE(d.text("config"));
  CHECK(*d.text("config") == R"({"lr": 0.001})");
  CHECK(d.text("other") == nullptr);
  CHECK_FALSE(std::filesystem::exists(dir / "ebl_ck.bin.tmp"));
  Array<float> wrong(Shape{5});
  CHECK_THROWS_WITH(d.get("f", wrong), Contains("shape [4], expected [5]"));

  CHECK_THROWS_WITH(Checkpoint::load(dir / "ebl_no_such_file"), Contains("cannot read checkpoint"));
  CHECK_THROWS_WITH(Checkpoint::load(dir), Contains("it is a directory"));
  write_file_atomic(dir / "ebl_bad.bin", "NOTACKPTxxxxxxxx");
  CHECK_THROWS_WITH(Checkpoint::load(dir / "ebl_bad.bin"), Contains("not an ebl checkpoint"));
  std::string full;
  {
    std::ifstream in(dir / "ebl_ck.bin", std::ios::binary);
    full.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  write_file_atomic(dir / "ebl_trunc.bin", full.substr(0, full.size() - 5));
  CHECK_THROWS_WITH(Checkpoint::load(dir / "ebl_trunc.bin"), Contains("truncated"));
  for (auto n : {"ebl_ck.bin", "ebl_bad.bin", "ebl_trunc.bin"}) std::filesystem::remove(dir / n);
}

namespace {
// A small checkpoint with an entry of every kind, as bytes.
std::string sample_bytes() {
  Checkpoint c;
  c.put("param/W", randn({3, 2}, 2));
  c.put("chains", randn({4, 2}, 3));
  c.integers["rng/s0"] = 0x0123456789abcdefULL;
  c.integers["step"] = 12;
  c.strings["config"] = R"({"dataset": "8gaussians"})";
  return c.bytes();
}
std::uint32_t crc_of(const std::string& b) {
  return std::uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(b.data()), uInt(b.size())));
}
}  // namespace

TEST_CASE("a checkpoint with any single byte changed is refused as corrupt, naming the file",
          "[io][errors]") {
  const std::string good = sample_bytes();
  REQUIRE_NOTHROW(Checkpoint::parse(good, "good.bin"));
  // CRC-32 detects every change confined to 32 consecutive bits, so every position and every
  // value must be caught. Each byte of the header takes all 255 other values; the rest one each.
  std::size_t refused = 0, tried = 0;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (int delta = 1; delta < (i < 20 ? 256 : 2); ++delta) {
      std::string bad = good;
      bad[i] = char(std::uint8_t(bad[i]) + delta);
      ++tried;
      try {
        Checkpoint::parse(bad, "ck.bin");
        FAIL_CHECK("byte " << i << " changed by " << delta << " was not noticed");
      } catch (const IoError& e) {
        const std::string what = e.what();
        INFO("byte " << i << " + " << delta << ": " << what);
        CHECK(what.find("ck.bin") != std::string::npos);
        // the one exception: byte 7 spelling the magic number of format 1, refused as such
        if (i == 7 && bad[i] == '1')
          CHECK(what.find("format 1") != std::string::npos);
        else
          CHECK(what.find("corrupt") != std::string::npos);
        ++refused;
      }
    }
  }
  CHECK(refused == tried);
  CHECK(tried == good.size() - 20 + 20 * 255);
}

TEST_CASE("truncated, padded, old-format and newer-format checkpoints are clear errors",
          "[io][errors]") {
  const std::string good = sample_bytes();
  CHECK_THROWS_WITH(Checkpoint::parse(good.substr(0, good.size() - 1), "t.bin"),
                    Contains("t.bin is corrupt") && Contains("truncated"));
  CHECK_THROWS_WITH(Checkpoint::parse(good.substr(0, 10), "t.bin"), Contains("truncated"));
  CHECK_THROWS_WITH(Checkpoint::parse(good + "x", "p.bin"),
                    Contains("p.bin is corrupt") && Contains("header records"));
  CHECK_THROWS_WITH(Checkpoint::parse("EBLCKPT1" + std::string(40, '\0'), "old.bin"),
                    Contains("old.bin has format 1"));
  // a well-formed file of a later format: the version is read only after the CRC checks out
  std::string later = good;
  const std::uint32_t v3 = 3;
  std::memcpy(later.data() + 8, &v3, 4);
  const std::uint32_t crc = crc_of(later.substr(0, later.size() - 4));
  std::memcpy(later.data() + later.size() - 4, &crc, 4);
  CHECK_THROWS_WITH(Checkpoint::parse(later, "new.bin"),
                    Contains("new.bin has format 3") && Contains("reads format 2"));
}

TEST_CASE("a write that fails leaves neither the file nor its temporary", "[io]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / fmt::format("ebl-atomic-{}", ::getpid());
  fs::remove_all(dir);
  // the target is a folder that is not empty: the temporary is written, the rename fails
  fs::create_directories(dir / "target" / "inside");
  CHECK_THROWS_AS(write_file_atomic(dir / "target", "data"), IoError);
  CHECK_FALSE(fs::exists(dir / "target.tmp"));
  CHECK(fs::is_directory(dir / "target" / "inside"));  // and the folder is untouched
  // a folder that does not exist: nothing can be written, nothing is left
  CHECK_THROWS_AS(write_file_atomic(dir / "missing" / "file", "data"), IoError);
  CHECK_FALSE(fs::exists(dir / "missing"));
  // an earlier file survives a failed write over it (its temporary cannot be made)
  write_file_atomic(dir / "kept", "earlier");
  fs::create_directories(dir / "kept.tmp" / "blocker");
  CHECK_THROWS_AS(write_file_atomic(dir / "kept", "later"), IoError);
  std::ifstream in(dir / "kept");
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "earlier");
  fs::remove_all(dir);
}

TEST_CASE("edge-list files: round trip, and every malformed line refused with file and line",
          "[io]") {
  const auto dir = std::filesystem::temp_directory_path() / "ebl-edge-lists";
  std::filesystem::create_directories(dir);
  const std::vector<EdgeListGraph> gs{{3, {{0, 1}, {1, 2}}, 0}, {4, {}, 0}, {2, {{0, 1}}, 1}};
  write_edge_lists(dir / "a.txt", gs);
  const auto back = read_edge_lists(dir / "a.txt");
  REQUIRE(back.size() == 3);
  for (std::size_t g = 0; g < 3; ++g) {
    CHECK(back[g].nodes == gs[g].nodes);
    CHECK(back[g].edges == gs[g].edges);
    CHECK(back[g].draw == gs[g].draw);
  }
  CHECK(edge_lists_text({{3, {{2, 0}}, -1}}) == "# graph 0 nodes 3\n0 2\n");
  auto bad = [&](const std::string& text, const std::string& why) {
    { std::ofstream(dir / "b.txt") << text; }
    CHECK_THROWS_WITH(read_edge_lists(dir / "b.txt"), Contains("b.txt:") && Contains(why));
  };
  bad("0 1\n", "an edge before the first '# graph' header");
  bad("# graph 0 nodes 3\n0 3\n", "node out of range");
  bad("# graph 0 nodes 3\n1 1\n", "a self-loop");
  bad("# graph 0 nodes 3\n0 1\n1 0\n", "a repeated edge");
  bad("# graph 0 nodes 3\n0 x\n", "is not a non-negative integer");
  bad("# graph 0 nodes 3\n0 -1\n", "is not a non-negative integer");
  bad("# graph 0 nodes 3\n0 1 2\n", "an edge is two node indices");
  bad("# graph 1 nodes 3\n", "graph 0 expected next");
  bad("# graph 0 nodes\n", "a header is");
  bad("# graph 0 nodes 99999999999999999999999\n", "is not a non-negative integer");
  CHECK_THROWS_WITH(read_edge_lists(dir / "missing.txt"), Contains("cannot read"));
  std::filesystem::remove_all(dir);
}
