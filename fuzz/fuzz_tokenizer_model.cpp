// SentencePiece tokenizer.model (protobuf; read_sentencepiece_model), then the Tokenizer built and used.
#include <string>

#include "fuzz_common.h"
#include "io/tokenizer_files.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string path = fuzz::scratch_dir() + "/tokenizer.model";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_error_or_success([&] {
    Tokenizer t(read_sentencepiece_model(path));
    fuzz::exercise_tokenizer(t);
  });
  return 0;
}
