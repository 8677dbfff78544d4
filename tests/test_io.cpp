// File I/O: checkpoints round-trip exactly and bad files are clear errors; atomic writes leave no
// temporary behind.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "io/checkpoint.hpp"
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
  c.save(dir / "ebl_ck.bin");
  Checkpoint d = Checkpoint::load(dir / "ebl_ck.bin");
  CHECK(same(d.arrays.at("a"), c.arrays.at("a")));
  Array<float> f(Shape{4});
  d.get("f", f);
  CHECK(f(2) == 0.1f);
  CHECK(d.integer("n") == 7);
  CHECK_FALSE(std::filesystem::exists(dir / "ebl_ck.bin.tmp"));
  Array<float> wrong(Shape{5});
  CHECK_THROWS_WITH(d.get("f", wrong), Contains("shape [4], expected [5]"));

  CHECK_THROWS_WITH(Checkpoint::load(dir / "ebl_no_such_file"), Contains("cannot read checkpoint"));
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
