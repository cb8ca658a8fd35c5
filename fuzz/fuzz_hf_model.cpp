// A whole HF directory through load_model: the input is config.json, then the separator line
// "\n#safetensors#\n", then model.safetensors (and optionally "\n#tokenizer#\n" + tokenizer.json).
#include <string>

#include "fuzz_common.h"
#include "model/model_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  bool has_st = false, has_tok = false;
  auto [config, rest] = fuzz::split_once(in, "\n#safetensors#\n", &has_st);
  if (!has_st) return 0;
  auto [st, tok] = fuzz::split_once(rest, "\n#tokenizer#\n", &has_tok);
  const std::string dir = fuzz::scratch_subdir("hf");
  fuzz::write_bytes(dir + "/config.json", config);
  fuzz::write_bytes(dir + "/model.safetensors", st);
  if (has_tok)
    fuzz::write_bytes(dir + "/tokenizer.json", tok);
  else
    fuzz::remove_file(dir + "/tokenizer.json");
  fuzz::expect_error_or_success([&] {
    Model m = load_model(dir);
    if (m.tokenizer) fuzz::exercise_tokenizer(*m.tokenizer);
  });
  return 0;
}
