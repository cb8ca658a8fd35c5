// Shared pieces of the libFuzzer harnesses (see docs/HACKING.md, "Fuzzing").
//
// Every reader takes a path, so a harness writes its input to a file in a private scratch folder
// on tmpfs (/dev/shm, else $TMPDIR or /tmp) and calls the production entry point on it: the code
// under test is exactly what `secateur` runs. sec::Error is the expected outcome for a bad input
// and is swallowed; anything else (another exception, an abort from SEC_ASSERT, a sanitizer
// report, a huge allocation, a hang) is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "io/tokenizer.h"

namespace sec::fuzz {

// The scratch folder, created on first use and removed at exit.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string base = "/dev/shm";
    if (!std::filesystem::is_directory(base)) {
      const char* t = std::getenv("TMPDIR");
      base = t && *t ? t : "/tmp";
    }
    std::string templ = base + "/secateur-fuzz-XXXXXX";
    if (!::mkdtemp(templ.data())) {
      std::perror("mkdtemp");
      std::abort();
    }
    static std::string removed_at_exit;
    removed_at_exit = templ;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(removed_at_exit, ec);
    });
    return templ;
  }();
  return dir;
}

// A folder inside the scratch folder (created if needed).
inline std::string scratch_subdir(const std::string& name) {
  std::string d = scratch_dir() + "/" + name;
  std::filesystem::create_directories(d);
  return d;
}

// Writes bytes to `path` (plain fopen/fwrite: the harness's own I/O must not be the code under test).
inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::perror(path.c_str());
    std::abort();
  }
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
}

inline void remove_file(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

// Splits the input at the first occurrence of `sep` (the fuzzer dictionaries contain it): [before,
// after]. Without it: [whole input, ""] and *found = false.
inline std::pair<std::string_view, std::string_view> split_once(std::string_view in, std::string_view sep,
                                                                bool* found) {
  size_t p = in.find(sep);
  *found = p != std::string_view::npos;
  if (!*found) return {in, {}};
  return {in.substr(0, p), in.substr(p + sep.size())};
}

// Runs fn; a sec::Error is the expected rejection of a bad input.
template <class Fn>
void expect_error_or_success(Fn&& fn) {
  try {
    fn();
  } catch (const sec::Error&) {
  }
}

// Exercises a tokenizer the way callers use it: encode/decode a short fixed text and every token's
// streaming text. Errors are allowed (e.g. a vocabulary that cannot encode the text).
inline void exercise_tokenizer(const Tokenizer& t) {
  static const char* kTexts[] = {"Hello world, 123!", " Once upon a time\n\tthere was <s> a caf\xC3\xA9 </s>.",
                                 "\xF0\x9F\x98\x80 \xE2\x96\x81\xE2\x96\x81  \xFF\xFE", ""};
  for (const char* text : kTexts) {
    expect_error_or_success([&] {
      std::vector<int> ids = t.encode(text, true);
      (void)t.decode(ids);
    });
  }
  expect_error_or_success([&] {
    int prev = -1;
    for (int id = 0; id < t.vocab_size() && id < 1024; id++) {
      (void)t.token_text(prev, id);
      prev = id;
    }
    (void)t.pre_tokenize("Hello world, it's 2024!\n");
  });
}

// Quiet logging (warnings about odd files are expected and would flood the fuzzer's output).
inline void quiet_logs() { set_log_level(LogLevel::Quiet); }

}  // namespace sec::fuzz

namespace sec::fuzz {

// A small SentencePiece-style tokenizer built in code (byte fallback, a few letters and merges),
// for harnesses of readers whose output is then tokenized (task files, corpora).
inline const Tokenizer& tiny_tokenizer() {
  static const Tokenizer t = [] {
    TokenizerData d;
    d.kind = TokenizerKind::SentencePiece;
    d.tokens = {"<unk>", "<s>", "</s>"};
    for (int b = 0; b < 256; b++) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      d.tokens.push_back(buf);
    }
    for (const char* p :
         {"\xE2\x96\x81", "e", "t", "h", "\xE2\x96\x81t", "th", "he", "\xE2\x96\x81th", "the", "\xE2\x96\x81the"})
      d.tokens.push_back(p);
    d.scores.assign(d.tokens.size(), 0.f);
    for (size_t i = 259; i < d.tokens.size(); i++) d.scores[i] = -float(d.tokens[i].size());
    d.unk_id = 0, d.bos_id = 1, d.eos_id = 2;
    return Tokenizer(std::move(d));
  }();
  return t;
}

}  // namespace sec::fuzz
