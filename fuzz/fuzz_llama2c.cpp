// llama2.c .bin: read_llama2c (header checks, exact file size, views) and load_model on it (RoPE
// permutation of q/k). No tokenizer.bin sits next to it (fuzz_tokenizer_bin covers that reader).
#include <string>

#include "fuzz_common.h"
#include "io/llama2c.h"
#include "model/model_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string path = fuzz::scratch_subdir("llama2c") + "/model.bin";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_error_or_success([&] { (void)read_llama2c(path); });
  fuzz::expect_error_or_success([&] { (void)load_model(path); });
  return 0;
}
