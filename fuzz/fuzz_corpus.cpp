// Calibration / evaluation corpora (load_corpus: plain text, or JSONL with a "text" field), then the
// start of the joined text tokenized. The first input byte picks the file name (.txt or .jsonl)
// and a document limit; the rest is the file.
#include <string>

#include "calib/dataset.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  (void)sec::fuzz::tiny_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  if (size == 0) return 0;
  const std::string dir = fuzz::scratch_subdir("corpus");
  const std::string path = dir + (data[0] & 1 ? "/data.jsonl" : "/data.txt");
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  fuzz::expect_error_or_success([&] {
    CorpusOptions opts;
    opts.max_documents = data[0] & 2 ? int64_t(data[0] >> 2) : -1;
    Corpus c = load_corpus(path, opts);
    std::string text = c.joined(c.jsonl ? " " : "\n\n");
    if (text.size() > 2048) text.resize(2048);
    (void)tokenize_text(fuzz::tiny_tokenizer(), text, true);
  });
  return 0;
}
