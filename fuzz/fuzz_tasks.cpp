// Zero-shot task files (<task>.jsonl; load_task -> parse_task_item per line), then each choice
// split into context/continuation tokens (encode_choice) with a small tokenizer. The first input
// byte picks the task (winogrande's format differs from the other six); the rest is the file.
#include <string>

#include "eval/zeroshot.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  (void)sec::fuzz::tiny_tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  if (size == 0) return 0;
  const auto& names = zeroshot_task_names();
  const std::string& task = names[data[0] % names.size()];
  const std::string dir = fuzz::scratch_subdir("tasks");
  fuzz::write_bytes(dir + "/" + task + ".jsonl", std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  fuzz::expect_error_or_success([&] {
    std::vector<McItem> items = load_task(task, dir, data[0] & 0x80 ? 3 : -1);
    for (const auto& item : items)
      for (const auto& c : item.choices)
        fuzz::expect_error_or_success([&] {
          (void)encode_choice(fuzz::tiny_tokenizer(), c, false);
          (void)encode_choice(fuzz::tiny_tokenizer(), c, true);
        });
    std::vector<double> lls;
    for (const auto& item : items) lls.resize(lls.size() + item.choices.size(), -1.0);
    (void)score_items(task, items, lls);
  });
  return 0;
}
