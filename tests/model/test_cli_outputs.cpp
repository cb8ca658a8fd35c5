// The one output rule (src/cli/output.h), for every command that writes a model: init, convert,
// prune, finetune (--merge, --full, and the adapter alone) and distill (full, --lora --merge, and
// the adapter alone). A .gguf name is a GGUF file, another name an HF directory, --to overrides
// the name, --to hf with a .gguf name is an error, and the adapter alone is always a PEFT
// directory. Checked: what was written (GGUF magic / config.json + model.safetensors / the PEFT
// files), the exit code and message, and that a refused command writes nothing at all.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/file.h"
#include "testing/testing.h"

namespace sec {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

const char* kModel = "models/stories260K/stories260K.bin";
const char* kCalib = "data/tinystories/calib.txt";

const char* kTinyConfig = R"({"model_type":"llama","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
  "num_attention_heads":4,"num_key_value_heads":2,"vocab_size":64,"max_position_embeddings":128})";

bool is_gguf_file(const std::string& path) {
  if (!file_exists(path)) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  char m[4] = {};
  size_t n = std::fread(m, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(m, "GGUF", 4) == 0;
}

bool is_hf_dir(const std::string& path) {
  return is_directory(path) && file_exists(path + "/config.json") && file_exists(path + "/model.safetensors");
}

bool is_peft_dir(const std::string& path) {
  return is_directory(path) && file_exists(path + "/adapter_config.json") &&
         file_exists(path + "/adapter_model.safetensors") && !file_exists(path + "/config.json");
}

// Every path under dir (relative), to check that a refused command wrote nothing.
std::set<std::string> listing(const std::string& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir)) s.insert(fs::relative(e.path(), dir).string());
  return s;
}

// A command line writing a model to `out`, as `kind` says.
struct Kind {
  std::string name;
  bool needs_shared;
  std::vector<std::string> (*args)(const std::string& config, const std::string& out);
};

// The first 8 KB of the calibration text (one training step needs little, and tokenizing less is faster).
const std::string& small_data() {
  static testing::TempDir dir;
  static std::string path = [] {
    std::string text = read_text_file(testing::shared_path(kCalib)).substr(0, 8192);
    write_file_atomic(dir.file("data.txt"), text);
    return dir.file("data.txt");
  }();
  return path;
}

std::vector<std::string> training_args() {
  return {"--data", small_data(), "--max-steps", "1", "--batch", "2", "--micro-batch", "2", "--seqlen", "32"};
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

const std::vector<Kind>& model_kinds() {
  static const std::vector<Kind> kinds = {
      {"init", false,
       [](const std::string& cfg, const std::string& out) {
         return std::vector<std::string>{"init", "--config", cfg, "-o", out};
       }},
      {"convert", true,
       [](const std::string&, const std::string& out) {
         return std::vector<std::string>{"convert", testing::shared_path(kModel), "-o", out};
       }},
      {"prune", true,
       [](const std::string&, const std::string& out) {
         return std::vector<std::string>{"prune", testing::shared_path(kModel), "-o", out, "--method", "magnitude"};
       }},
      {"finetune --merge", true,
       [](const std::string&, const std::string& out) {
         return with({"finetune", testing::shared_path(kModel), "-o", out, "--merge"}, training_args());
       }},
      {"finetune --full", true,
       [](const std::string&, const std::string& out) {
         return with({"finetune", testing::shared_path(kModel), "-o", out, "--full"}, training_args());
       }},
      {"distill", true,
       [](const std::string&, const std::string& out) {
         return with({"distill", "--teacher", testing::shared_path(kModel), "--student", testing::shared_path(kModel),
                      "-o", out},
                     training_args());
       }},
      {"distill --lora --merge", true,
       [](const std::string&, const std::string& out) {
         return with({"distill", "--teacher", testing::shared_path(kModel), "--student", testing::shared_path(kModel),
                      "-o", out, "--lora", "--merge"},
                     training_args());
       }},
  };
  return kinds;
}

bool shared_ready() { return testing::shared_available(kModel) && testing::shared_available(kCalib); }

TEST(CliOutputs, EveryModelWritingCommandFollowsTheOutputRule) {
  const bool shared = shared_ready();
  for (const Kind& k : model_kinds()) {
    if (k.needs_shared && !shared) {
      std::printf("skipping %s: %s is absent\n", k.name.c_str(), testing::shared_path(kModel).c_str());
      continue;
    }
    SCOPED_TRACE(k.name);
    testing::TempDir d;
    write_file_atomic(d.file("config.json"), kTinyConfig);
    auto run = [&](const std::string& out, std::vector<std::string> extra) {
      return run_cli(with(k.args(d.file("config.json"), out), extra));
    };

    // A .gguf name: a GGUF file.
    auto r = run(d.file("m.gguf"), {});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_gguf_file(d.file("m.gguf")));
    // Another name: an HF directory.
    r = run(d.file("m"), {});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_hf_dir(d.file("m")));
    EXPECT_FALSE(is_gguf_file(d.file("m/model.safetensors")));
    // --to overrides the name: a GGUF file without the extension, an HF directory named explicitly.
    r = run(d.file("m.bin"), {"--to", "gguf"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_gguf_file(d.file("m.bin")));
    r = run(d.file("h"), {"--to", "hf"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_hf_dir(d.file("h")));
    r = run(d.file("g.gguf"), {"--to", "gguf"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_gguf_file(d.file("g.gguf")));
    // Missing directories are created, for GGUF files as for HF directories.
    r = run(d.file("new/dir/n.gguf"), {});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_gguf_file(d.file("new/dir/n.gguf")));
    if (k.name == "prune") {  // and its report next to the model
      EXPECT_TRUE(file_exists(d.file("m.gguf.report.json")));
      EXPECT_TRUE(file_exists(d.file("m.report.json")));
    }

    // --to hf contradicts a .gguf name: exit 1 with the reason, and nothing written.
    const auto before = listing(d.path());
    r = run(d.file("x.gguf"), {"--to", "hf"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--to hf contradicts the output name"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("x.gguf"), std::string::npos) << r.err;
    // An unknown format and dtype: the same.
    r = run(d.file("y"), {"--to", "onnx"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("onnx"), std::string::npos) << r.err;
    r = run(d.file("z.gguf"), {"--dtype", "q4"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("q4"), std::string::npos) << r.err;
    EXPECT_EQ(listing(d.path()), before);
  }
}

TEST(CliOutputs, AdapterAloneIsAlwaysAPeftDirectory) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"finetune", {"finetune", testing::shared_path(kModel)}},
      {"distill --lora",
       {"distill", "--teacher", testing::shared_path(kModel), "--student", testing::shared_path(kModel), "--lora"}},
  };
  for (const auto& [name, base] : commands) {
    SCOPED_TRACE(name);
    testing::TempDir d;
    auto r = run_cli(with(with(base, {"-o", d.file("a")}), training_args()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(is_peft_dir(d.file("a")));
    EXPECT_NE(r.out.find("wrote adapter"), std::string::npos) << r.out;

    const auto before = listing(d.path());
    r = run_cli(with(with(base, {"-o", d.file("a.gguf")}), training_args()));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("the adapter alone is written as a PEFT directory"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--merge"), std::string::npos) << r.err;
    for (const char* to : {"gguf", "hf"}) {
      r = run_cli(with(with(base, {"-o", d.file("b"), "--to", to}), training_args()));
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_NE(r.err.find("the adapter alone is always a PEFT directory"), std::string::npos) << r.err;
    }
    r = run_cli(with(with(base, {"-o", d.file("c"), "--dtype", "bf16"}), training_args()));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("--dtype applies to whole models"), std::string::npos) << r.err;
    EXPECT_EQ(listing(d.path()), before);
  }
}

// Output mistakes are found before the work: a refused prune / finetune / distill fails at once,
// even with settings that would take a long time.
TEST(CliOutputs, OutputMistakesFailBeforeTheWork) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir d;
  const std::vector<std::string> slow_training = {"--data", testing::shared_path(kCalib), "--epochs", "50"};
  const std::vector<std::vector<std::string>> commands = {
      with({"finetune", testing::shared_path(kModel), "-o", d.file("x.gguf"), "--merge", "--to", "hf"}, slow_training),
      with({"distill", "--teacher", testing::shared_path(kModel), "--student", testing::shared_path(kModel), "-o",
            d.file("x.gguf"), "--to", "hf"},
           slow_training),
      {"prune", testing::shared_path(kModel), "-o", d.file("x.gguf"), "--to", "hf", "--method", "sparsegpt", "--calib",
       testing::shared_path(kCalib), "--nsamples", "100000", "--seqlen", "256"},
  };
  for (const auto& c : commands) {
    SCOPED_TRACE(c[0]);
    auto r = run_cli(c);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("contradicts"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("step"), std::string::npos) << r.err;  // no training started
    EXPECT_TRUE(listing(d.path()).empty());
  }
}

}  // namespace
}  // namespace sec
