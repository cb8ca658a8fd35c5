// Interruption: SIGINT / SIGTERM while prune, finetune, distill or convert train or write removes
// the temporary files, writes no output (no model, no report, no directory) and exits with
// 128 + the signal number. A finetune killed with SIGKILL between checkpoints resumes with
// --resume and ends with the same model (byte for byte) and losses as an uninterrupted run.
// The signal is sent when the process is provably in the phase under test: after a progress /
// log line for training and calibration, and as soon as a "*.tmp.*" file exists for writing.
// ctest-label: slow
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/file.h"
#include "testing/testing.h"

namespace sec {
namespace {

namespace fs = std::filesystem;
using testing::run_cli;

const char* kModel = "models/stories260K/stories260K.bin";
const char* kTok = "models/stories260K/tok512.bin";
const char* kCalib = "data/tinystories/calib.txt";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A secateur process with stdout / stderr in files.
struct Child {
  pid_t pid = -1;
  std::string out, err;
  std::string stderr_text() const { return slurp(err); }
};

Child spawn_cli(const std::vector<std::string>& args, const testing::TempDir& logs) {
  Child c;
  c.out = logs.file("stdout.txt");
  c.err = logs.file("stderr.txt");
  std::vector<std::string> argv_s = {SECATEUR_CLI};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  c.pid = fork();
  if (c.pid == 0) {
    int o = ::open(c.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(c.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    dup2(o, 1), dup2(e, 2), dup2(in, 0);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return c;
}

// Waits for the process; returns the exit status as a shell reports it (128 + signal).
int wait_child(const Child& c) {
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool exited(const Child& c, int* code) {
  int status = 0;
  if (waitpid(c.pid, &status, WNOHANG) != c.pid) return false;
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

// Polls `ready` every millisecond (up to `timeout_s`); false if the process ended first or the
// time ran out (then it is killed).
bool wait_until(const Child& c, const std::function<bool()>& ready, int* early_exit, double timeout_s = 120) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_s) {
    if (ready()) return true;
    if (exited(c, early_exit)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(c.pid, SIGKILL);
  *early_exit = wait_child(c);
  return false;
}

// Every path under dir whose name has ".tmp." (a temporary output file).
std::vector<std::string> temp_files(const std::string& dir) {
  std::vector<std::string> t;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->path().filename().string().find(".tmp.") != std::string::npos) t.push_back(it->path().string());
  return t;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

// Runs `args`, sends `sig` once `ready` holds, and checks the interrupted run left nothing in
// `out_dir` but the entries listed in `keep`.
void expect_clean_interrupt(const std::vector<std::string>& args, int sig, const std::function<bool()>& ready,
                            const std::string& out_dir, const std::vector<std::string>& keep, const std::string& what) {
  SCOPED_TRACE(what);
  testing::TempDir logs;
  Child c = spawn_cli(args, logs);
  int early = 0;
  if (!wait_until(c, ready, &early)) {
    FAIL() << "the run ended (status " << early << ") before the phase under test:\n" << c.stderr_text();
  }
  kill(c.pid, sig);
  const int code = wait_child(c);
  const std::string err = c.stderr_text();
  EXPECT_EQ(code, 128 + sig) << err;
  EXPECT_NE(err.find(sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)"), std::string::npos) << err;
  EXPECT_TRUE(temp_files(out_dir).empty()) << temp_files(out_dir)[0];
  EXPECT_EQ(entries(out_dir), keep);
}

// The process is writing `prefix` ("<target>.tmp.NNN" exists).
std::function<bool()> writing(const std::string& dir, const std::string& prefix) {
  return [=] {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->path().string().rfind(prefix + ".tmp.", 0) == 0) return true;
    return false;
  };
}

// The child's stderr has `needle`; then `delay_ms` more.
std::function<bool()> logged(const Child& c, const std::string& needle, int delay_ms) {
  return [err = c.err, needle, delay_ms] {
    if (slurp(err).find(needle) == std::string::npos) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    return true;
  };
}

// A random model large enough that writing it takes a while (~100 MB as f32), with stories260K's
// tokenizer so that every command can run on it.
const std::string& big_model() {
  static testing::TempDir dir;
  static std::string path = [] {
    write_file_atomic(dir.file("config.json"),
                      R"({"model_type":"llama","hidden_size":512,"intermediate_size":1376,"num_hidden_layers":12,
                          "num_attention_heads":8,"num_key_value_heads":4,"vocab_size":512,
                          "max_position_embeddings":1024})");
    auto r = run_cli({"init", "--config", dir.file("config.json"), "-o", dir.file("init.gguf")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = run_cli(
        {"convert", dir.file("init.gguf"), "-o", dir.file("big.gguf"), "--tokenizer", testing::shared_path(kTok)});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return dir.file("big.gguf");
  }();
  return path;
}

TEST(Interrupt, ConvertWhileWriting) {
  SEC_REQUIRE_SHARED(kTok);
  const std::string& big = big_model();
  testing::TempDir out;
  // GGUF: SIGINT while out.gguf.tmp.* is being written.
  expect_clean_interrupt({"convert", big, "-o", out.file("out.gguf"), "--dtype", "bf16"}, SIGINT,
                         writing(out.path(), out.file("out.gguf")), out.path(), {}, "convert to GGUF");
  // HF: SIGTERM while model.safetensors is written; the directory convert created goes too.
  expect_clean_interrupt({"convert", big, "-o", out.file("hf/sub"), "--dtype", "f16"}, SIGTERM,
                         writing(out.path(), out.file("hf/sub/model.safetensors")), out.path(), {}, "convert to HF");
  // Over an existing model: the old file stays as it was.
  ASSERT_EQ(run_cli({"convert", testing::shared_path(kModel), "-o", out.file("old.gguf")}).exit_code, 0);
  const std::string old = slurp(out.file("old.gguf"));
  expect_clean_interrupt({"convert", big, "-o", out.file("old.gguf")}, SIGTERM,
                         writing(out.path(), out.file("old.gguf")), out.path(), {"old.gguf"}, "convert over a file");
  EXPECT_EQ(slurp(out.file("old.gguf")), old);
}

TEST(Interrupt, PruneWhileCalibratingAndWhileWriting) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir out, logs;
  // Calibrating: SparseGPT on many windows; SIGINT once calibration has begun.
  {
    testing::TempDir l;
    std::vector<std::string> args = {
        "-t",       "1",         "prune",   testing::shared_path(kModel), "-o",         out.file("p.gguf"),
        "--method", "sparsegpt", "--calib", testing::shared_path(kCalib), "--nsamples", "512",
        "--seqlen", "256"};
    Child c = spawn_cli(args, l);
    int early = 0;
    ASSERT_TRUE(wait_until(c, logged(c, "calibration:", 300), &early)) << early << c.stderr_text();
    kill(c.pid, SIGINT);
    EXPECT_EQ(wait_child(c), 128 + SIGINT) << c.stderr_text();
    EXPECT_TRUE(entries(out.path()).empty());
  }
  // Writing: magnitude pruning of the large model, SIGTERM while the HF directory is written;
  // neither the model nor its report appears.
  SEC_REQUIRE_SHARED(kTok);
  expect_clean_interrupt({"prune", big_model(), "-o", out.file("hf"), "--method", "magnitude"}, SIGTERM,
                         writing(out.path(), out.file("hf/model.safetensors")), out.path(), {}, "prune writing");
}

TEST(Interrupt, FinetuneAndDistillWhileTraining) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir out;
  const std::vector<std::string> training = {
      "--data", testing::shared_path(kCalib), "--epochs", "20", "--batch", "8", "--micro-batch", "8", "--seqlen",
      "128"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  {
    testing::TempDir l;
    Child c = spawn_cli(with({"-t", "1", "finetune", testing::shared_path(kModel), "-o", out.file("ft.gguf"), "--merge",
                              "--checkpoint", out.file("ck.safetensors"), "--checkpoint-every", "1000"},
                             training),
                        l);
    int early = 0;
    ASSERT_TRUE(wait_until(c, logged(c, "finetune: LoRA", 500), &early)) << early << c.stderr_text();
    kill(c.pid, SIGTERM);
    EXPECT_EQ(wait_child(c), 128 + SIGTERM) << c.stderr_text();
    EXPECT_TRUE(entries(out.path()).empty());  // neither the model nor a checkpoint
  }
  for (const char* mode : {"adapter", "full"}) {
    testing::TempDir l;
    std::vector<std::string> args = {"-t",
                                     "1",
                                     "distill",
                                     "--teacher",
                                     testing::shared_path(kModel),
                                     "--student",
                                     testing::shared_path(kModel),
                                     "-o",
                                     out.file("d")};
    if (std::string(mode) == "adapter") args.push_back("--lora");
    Child c = spawn_cli(with(args, training), l);
    int early = 0;
    ASSERT_TRUE(wait_until(c, logged(c, "distill: teacher", 500), &early)) << early << c.stderr_text();
    kill(c.pid, SIGINT);
    EXPECT_EQ(wait_child(c), 128 + SIGINT) << c.stderr_text();
    EXPECT_TRUE(entries(out.path()).empty()) << mode;
  }
}

TEST(Interrupt, WritingTheAdapterAndTheMergedModel) {
  SEC_REQUIRE_SHARED(kTok);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir out;
  const std::vector<std::string> one_step = {"--data",         testing::shared_path(kCalib),
                                             "--max-steps",    "1",
                                             "--batch",        "1",
                                             "--micro-batch",  "1",
                                             "--seqlen",       "8",
                                             "--eval-samples", "1"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  // finetune --full of the large model: SIGINT while the merged GGUF is written.
  expect_clean_interrupt(with({"finetune", big_model(), "-o", out.file("m.gguf"), "--full"}, one_step), SIGINT,
                         writing(out.path(), out.file("m.gguf")), out.path(), {}, "finetune writing");
  // distill: SIGTERM while the student is written as an HF directory.
  expect_clean_interrupt(
      with({"distill", "--teacher", big_model(), "--student", big_model(), "-o", out.file("s")}, one_step), SIGTERM,
      writing(out.path(), out.file("s/model.safetensors")), out.path(), {}, "distill writing");
}

// SIGKILL cannot be caught: what survives is the last checkpoint, and --resume continues from it.
TEST(Interrupt, KilledCheckpointedFinetuneResumesToTheSameModel) {
  SEC_REQUIRE_SHARED(kModel);
  SEC_REQUIRE_SHARED(kCalib);
  testing::TempDir ref, run;
  auto args = [&](const testing::TempDir& d) {
    return std::vector<std::string>{"-t",
                                    "1",
                                    "finetune",
                                    testing::shared_path(kModel),
                                    "-o",
                                    d.file("m.gguf"),
                                    "--merge",
                                    "--data",
                                    testing::shared_path(kCalib),
                                    "--max-steps",
                                    "12",
                                    "--batch",
                                    "16",
                                    "--micro-batch",
                                    "8",
                                    "--seqlen",
                                    "128",
                                    "--lr",
                                    "1e-3",
                                    "--lora-dropout",
                                    "0.1",
                                    "--checkpoint",
                                    d.file("ck.safetensors"),
                                    "--checkpoint-every",
                                    "1",
                                    "--resume",
                                    "--json"};
  };
  auto full = run_cli(args(ref));
  ASSERT_EQ(full.exit_code, 0) << full.err;

  testing::TempDir logs;
  Child c = spawn_cli(args(run), logs);
  int early = 0;
  ASSERT_TRUE(wait_until(c, logged(c, "finetune: step 5/12", 0), &early)) << early << c.stderr_text();
  kill(c.pid, SIGKILL);
  EXPECT_EQ(wait_child(c), 128 + SIGKILL);
  EXPECT_FALSE(file_exists(run.file("m.gguf")));
  ASSERT_TRUE(file_exists(run.file("ck.safetensors")));

  auto resumed = run_cli(args(run));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resumed from"), std::string::npos) << resumed.err;
  auto a = nlohmann::json::parse(full.out), b = nlohmann::json::parse(resumed.out);
  EXPECT_EQ(b["steps"], 12);
  EXPECT_LT(b["steps_this_run"].get<int>(), 12);
  EXPECT_EQ(a["losses"], b["losses"]);
  EXPECT_EQ(a["eval"], b["eval"]);
  EXPECT_TRUE(slurp(ref.file("m.gguf")) == slurp(run.file("m.gguf"))) << "the resumed model differs";
}

}  // namespace
}  // namespace sec
