// SHA-256 (the provenance hash of every model, dataset and report): the FIPS 180-4 test vectors,
// the SHA-extensions path against the portable code on every length around the 64-byte block and
// its padding boundary, and sha256_file against coreutils' sha256sum.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/file.h"
#include "core/random.h"
#include "testing/testing.h"

namespace sec {
namespace {

TEST(Sha256, FipsTestVectors) {
  const std::string abc = "abc", two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  const std::string million(1000000, 'a');
  for (auto* f : {&sha256_hex, &sha256_hex_portable}) {
    EXPECT_EQ(f("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(f(abc.data(), abc.size()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(f(two_blocks.data(), two_blocks.size()),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    EXPECT_EQ(f(million.data(), million.size()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

TEST(Sha256, HardwarePathEqualsPortableCode) {
  if (!sha256_hardware()) GTEST_SKIP() << "this CPU has no SHA extensions: only the portable code runs";
  Rng rng(7);
  std::vector<uint8_t> data(70000);
  for (auto& b : data) b = uint8_t(rng.next_u64());
  for (size_t n = 0; n <= 200; n++) ASSERT_EQ(sha256_hex(data.data(), n), sha256_hex_portable(data.data(), n)) << n;
  for (size_t n : {1000, 4096, 65535, 65536, 70000})
    ASSERT_EQ(sha256_hex(data.data(), n), sha256_hex_portable(data.data(), n)) << n;
}

TEST(Sha256, FileHashEqualsSha256sum) {
  testing::TempDir dir;
  const std::string path = dir.file("data.bin");
  Rng rng(8);
  std::string data(3 * (1 << 20) + 77, '\0');  // several 1 MB reads and a partial block
  for (auto& c : data) c = char(rng.next_u64());
  std::ofstream(path, std::ios::binary) << data;
  const auto r = testing::run_command("sha256sum " + testing::shell_quote(path));
  if (r.exit_code != 0) GTEST_SKIP() << "sha256sum not available: " << r.err;
  EXPECT_EQ(sha256_file(path), r.out.substr(0, 64));
  EXPECT_EQ(sha256_hex(data.data(), data.size()), r.out.substr(0, 64));
}

}  // namespace
}  // namespace sec
