// Hugging Face tokenizer.json (read_tokenizer_json, which also builds a Tokenizer to validate), then
// the Tokenizer used. The input may carry a tokenizer_config.json after "\n#tokenizer_config#\n".
#include <string>

#include "fuzz_common.h"
#include "io/tokenizer_files.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  bool has_config = false;
  auto [tok, config] = fuzz::split_once(in, "\n#tokenizer_config#\n", &has_config);
  const std::string dir = fuzz::scratch_subdir("tokenizer_json");
  fuzz::write_bytes(dir + "/tokenizer.json", tok);
  if (has_config)
    fuzz::write_bytes(dir + "/tokenizer_config.json", config);
  else
    fuzz::remove_file(dir + "/tokenizer_config.json");
  fuzz::expect_error_or_success([&] {
    Tokenizer t(read_tokenizer_json(dir + "/tokenizer.json"));
    fuzz::exercise_tokenizer(t);
  });
  return 0;
}
