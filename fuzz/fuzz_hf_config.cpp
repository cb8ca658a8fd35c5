// HF config.json -> Config (read_hf_config: JSON parse, field types and ranges, secateur_layers,
// rope_scaling, Config::validate, check_config_from_file), then what callers do with a Config: its
// tensor list and sizes, and writing it back.
#include <string>

#include "fuzz_common.h"
#include "model/hf_config.h"
#include "model/weights.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string path = fuzz::scratch_dir() + "/config.json";
  fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_error_or_success([&] {
    Config c = read_hf_config(path);
    (void)param_count(c);
    Weights w;
    w.blocks.resize(size_t(c.n_layers()));
    int64_t numel = 0;
    for_each_tensor(c, w, [&](TensorRef& r) { numel += shape_numel(r.shape); });
    (void)config_to_hf_json(c).dump();
  });
  return 0;
}
