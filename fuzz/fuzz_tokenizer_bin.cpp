// llama2.c tokenizer.bin (read_llama2c_tokenizer), then the Tokenizer built and used.
#include <string>

#include "fuzz_common.h"
#include "io/tokenizer_files.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string path = fuzz::scratch_dir() + "/tokenizer.bin";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_error_or_success([&] {
    Tokenizer t(read_llama2c_tokenizer(path));
    fuzz::exercise_tokenizer(t);
  });
  return 0;
}
