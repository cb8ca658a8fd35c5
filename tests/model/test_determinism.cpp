// Determinism: the same command with the same seed and thread count writes byte-identical model
// files, GGUF and HF (every file of the directory): prune with every method (magnitude, wanda,
// sparsegpt, OWL, N:M, llm-pruner, minitron, slicegpt), finetune (LoRA merged, the adapter alone,
// full) and distill. Runs use two threads (the threaded code paths) and write to the same file
// name in two directories (GGUF general.name is the file's stem). The prune report may differ
// only in its timing ("seconds").
// ctest-label: slow
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file.h"
#include "testing/testing.h"

namespace sec {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

const char* kModel = "models/stories260K/stories260K.bin";
const char* kCalib = "data/tinystories/calib.txt";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Files of a directory (or the file itself), by relative name.
std::map<std::string, std::string> contents(const std::string& path) {
  std::map<std::string, std::string> m;
  if (!is_directory(path)) {
    m[""] = slurp(path);
    return m;
  }
  for (const auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) m[fs::relative(e.path(), path).string()] = slurp(e.path().string());
  return m;
}

void expect_identical(const std::string& a, const std::string& b) {
  auto ca = contents(a), cb = contents(b);
  ASSERT_FALSE(ca.empty()) << a;
  ASSERT_EQ(ca.size(), cb.size());
  for (const auto& [name, bytes] : ca) {
    ASSERT_TRUE(cb.count(name)) << name;
    EXPECT_TRUE(bytes == cb.at(name)) << b << "/" << name << " differs between the two runs";
  }
}

// Removes every key ending in "seconds", at any depth.
void drop_timings(nlohmann::json& j) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end();) {
      const std::string& k = it.key();
      if (k.size() >= 7 && k.compare(k.size() - 7, 7, "seconds") == 0)
        it = j.erase(it);
      else
        drop_timings(*it++);
    }
  } else if (j.is_array()) {
    for (auto& e : j) drop_timings(e);
  }
}

// Runs the command twice (`out_name` in two fresh directories) and compares what it wrote.
void expect_deterministic(const std::string& what, const std::vector<std::string>& args, const std::string& out_name) {
  SCOPED_TRACE(what + " -> " + out_name);
  testing::TempDir a, b;
  for (const testing::TempDir* d : {&a, &b}) {
    std::vector<std::string> full = {"-t", "2"};
    full.insert(full.end(), args.begin(), args.end());
    full.insert(full.end(), {"-o", d->file(out_name)});
    auto r = run_cli(full);
    ASSERT_EQ(r.exit_code, 0) << what << ": " << r.err;
  }
  expect_identical(a.file(out_name), b.file(out_name));
  if (args[0] == "prune") {  // the report: the same but for the times ("seconds", "block_seconds", ...)
    auto ra = nlohmann::json::parse(slurp(a.file(out_name + ".report.json")));
    auto rb = nlohmann::json::parse(slurp(b.file(out_name + ".report.json")));
    drop_timings(ra), drop_timings(rb);
    ra.erase("output"), rb.erase("output");  // names the output path
    EXPECT_EQ(ra, rb);
  }
}

std::vector<std::string> calib(int nsamples, int seqlen) {
  return {"--calib",  testing::shared_path(kCalib), "--nsamples", std::to_string(nsamples),
          "--seqlen", std::to_string(seqlen),       "--seed",     "7"};
}

std::vector<std::string> cat_args(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(Determinism, PruneEveryMethod) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  const std::string m = testing::shared_path(kModel);
  const std::vector<std::pair<std::string, std::vector<std::string>>> runs = {
      {"magnitude", {"prune", m, "--method", "magnitude", "--sparsity", "0.5"}},
      {"wanda", cat_args({"prune", m, "--method", "wanda", "--sparsity", "0.5"}, calib(16, 128))},
      {"wanda 2:4", cat_args({"prune", m, "--method", "wanda", "--nm", "2:4"}, calib(16, 128))},
      {"sparsegpt", cat_args({"prune", m, "--method", "sparsegpt", "--sparsity", "0.5"}, calib(16, 128))},
      {"sparsegpt owl", cat_args({"prune", m, "--method", "sparsegpt", "--sparsity", "0.7", "--owl"}, calib(16, 128))},
      {"llm-pruner",
       cat_args({"prune", m, "--method", "llm-pruner", "--attn-ratio", "0.25", "--mlp-ratio", "0.2", "--batch", "4"},
                calib(8, 64))},
      {"minitron",
       cat_args({"prune", m, "--method", "minitron", "--ffn", "128", "--heads", "4", "--kv-heads", "2", "--batch", "4"},
                calib(8, 64))},
      {"slicegpt",
       cat_args({"prune", m, "--method", "slicegpt", "--sparsity", "0.25", "--batch", "4"}, calib(16, 128))},
      {"slicegpt uniform",
       cat_args({"prune", m, "--method", "slicegpt", "--sparsity", "0.25", "--uniform", "--batch", "4"},
                calib(16, 128))},
  };
  for (const auto& [what, args] : runs) {
    expect_deterministic(what, args, "p.gguf");
    expect_deterministic(what, args, "p");
  }
}

TEST(Determinism, FinetuneAndDistill) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  const std::string m = testing::shared_path(kModel);
  const std::vector<std::string> training = {"--data",         testing::shared_path(kCalib),
                                             "--max-steps",    "4",
                                             "--batch",        "8",
                                             "--micro-batch",  "4",
                                             "--seqlen",       "64",
                                             "--lr",           "1e-3",
                                             "--lora-dropout", "0.1",
                                             "--seed",         "5"};
  expect_deterministic("finetune --merge", cat_args({"finetune", m, "--merge"}, training), "f.gguf");
  expect_deterministic("finetune --merge", cat_args({"finetune", m, "--merge"}, training), "f");
  expect_deterministic("finetune adapter", cat_args({"finetune", m}, training), "adapter");
  expect_deterministic("finetune --full", cat_args({"finetune", m, "--full"}, training), "full.gguf");
  const std::vector<std::string> distill = {"distill", "--teacher", m, "--student", m};
  expect_deterministic("distill", cat_args(distill, training), "d.gguf");
  expect_deterministic("distill", cat_args(cat_args(distill, {"--hidden-loss", "cosine"}), training), "d");
  expect_deterministic("distill --lora --merge", cat_args(cat_args(distill, {"--lora", "--merge"}), training),
                       "dl.gguf");
}

}  // namespace
}  // namespace sec
