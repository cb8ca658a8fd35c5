// safetensors: one file (header, every tensor read and loaded), or, when the input starts with '{',
// a sharded checkpoint's model.safetensors.index.json next to a fixed valid shard
// "model-00001-of-00001.safetensors" (tensors "a" [2, 3] f32 and "b" [4] bf16) and a truncated one
// "model-00002-of-00002.safetensors".
#include <cstring>
#include <string>

#include "fuzz_common.h"
#include "io/safetensors.h"

namespace {

std::string safetensors_bytes(const std::string& header, size_t data_bytes) {
  uint64_t n = header.size();
  std::string b(reinterpret_cast<const char*>(&n), 8);
  return b + header + std::string(data_bytes, '\x3f');
}

void exercise(const sec::SafetensorsCheckpoint& ck) {
  for (const auto& [name, e] : ck.tensors()) (void)e.file->read_f32(*e.tensor);
  (void)ck.metadata();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sec::fuzz::quiet_logs();
  const std::string dir = sec::fuzz::scratch_subdir("sharded");
  sec::fuzz::write_bytes(dir + "/model-00001-of-00001.safetensors",
                         safetensors_bytes(R"({"__metadata__":{"format":"pt"},)"
                                           R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                                           R"("b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})",
                                           32));
  sec::fuzz::write_bytes(dir + "/model-00002-of-00002.safetensors",
                         safetensors_bytes(R"({"c":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", 16));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sec;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (!in.empty() && in[0] == '{') {
    const std::string index = fuzz::scratch_subdir("sharded") + "/model.safetensors.index.json";
    fuzz::write_bytes(index, in);
    fuzz::expect_error_or_success([&] {
      SafetensorsCheckpoint ck(index, MappedFile::Mode::CopyOnWrite);
      exercise(ck);
    });
    return 0;
  }
  const std::string path = fuzz::scratch_dir() + "/model.safetensors";
  fuzz::write_bytes(path, in);
  fuzz::expect_error_or_success([&] {
    SafetensorsFile f(path, MappedFile::Mode::CopyOnWrite);
    for (const auto& t : f.tensors()) {
      (void)f.read_f32(t);
      (void)f.load_f32(t);
    }
    SafetensorsCheckpoint ck(path);
    exercise(ck);
  });
  return 0;
}
