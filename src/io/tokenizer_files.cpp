// Tokenizer files: Hugging Face tokenizer.json (read/write) and llama2.c tokenizer.bin (read).
#include "io/tokenizer_files.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "io/json.h"

namespace sec {

namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

const char* kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁"

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string r;
  size_t i = 0;
  while (true) {
    size_t j = s.find(from, i);
    if (j == std::string::npos) break;
    r.append(s, i, j - i);
    r += to;
    i = j + from.size();
  }
  r.append(s, i);
  return r;
}

bool is_byte_piece(const std::string& p) {
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>' && std::isxdigit(uint8_t(p[3])) &&
         std::isxdigit(uint8_t(p[4]));
}

int find_token(const TokenizerData& d, const std::string& piece) {
  auto it = std::find(d.tokens.begin(), d.tokens.end(), piece);
  return it == d.tokens.end() ? -1 : int(it - d.tokens.begin());
}

// A special token given as "<s>" or {"content": "<s>", ...} (tokenizer_config.json).
std::string token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// llama2.c tokenizer.bin (little-endian):
//   int32 max_token_length
//   then, for each token until the end of the file: float32 score, int32 length, `length` bytes.
// The vocabulary size is not stored (it comes from the model). llama2.c's exporter writes spaces
// as ' ' rather than '▁' and BOS/EOS as "\n<s>\n" / "\n</s>\n"; we restore the SentencePiece
// spelling so the pieces are the standard ones (GGUF / tokenizer.json export). Ids: <unk> 0,
// BOS 1, EOS 2; byte tokens "<0xNN>" are recognised by name.
TokenizerData read_llama2c_tokenizer(const std::string& path) {
  MappedFile f(path);
  const uint8_t* p = f.data();
  const size_t size = f.size();
  auto read_i32 = [&](size_t off) {
    int32_t v;
    std::memcpy(&v, p + off, 4);
    return v;
  };
  SEC_CHECK(size >= 4, path, ": not a llama2.c tokenizer (file is ", size, " bytes, too short for its header)");
  int32_t max_len = read_i32(0);
  SEC_CHECK(max_len > 0 && max_len < (1 << 20), path, ": not a llama2.c tokenizer (max_token_length ", max_len, ")");

  TokenizerData d;
  d.kind = TokenizerKind::SentencePiece;
  size_t off = 4;
  while (off < size) {
    size_t index = d.tokens.size();
    SEC_CHECK(index < kMaxVocab, path, ": llama2.c tokenizer has more than ", kMaxVocab, " tokens (the limit)");
    SEC_CHECK(size - off >= 8, path, ": truncated llama2.c tokenizer (token ", index, " header cut off at byte ", off,
              ")");
    float score;
    std::memcpy(&score, p + off, 4);
    int32_t len = read_i32(off + 4);
    off += 8;
    SEC_CHECK(len >= 0 && len <= max_len, path, ": corrupt llama2.c tokenizer (token ", index, " has length ", len,
              ", max_token_length is ", max_len, ")");
    SEC_CHECK(size - off >= size_t(len), path, ": truncated llama2.c tokenizer (token ", index, " needs ", len,
              " bytes at byte ", off, ", file has ", size, ")");
    std::string piece(reinterpret_cast<const char*>(p + off), size_t(len));
    off += size_t(len);
    d.tokens.push_back(std::move(piece));
    d.scores.push_back(score);
  }
  SEC_CHECK(d.tokens.size() >= 3, path, ": llama2.c tokenizer has only ", d.tokens.size(),
            " tokens (needs <unk>, BOS, EOS)");

  d.unk_id = 0;
  d.bos_id = 1;
  d.eos_id = 2;
  d.types.assign(d.tokens.size(), TokenType::Normal);
  d.types[0] = TokenType::Unknown;
  d.types[1] = d.types[2] = TokenType::Control;
  if (d.tokens[1] == "\n<s>\n") d.tokens[1] = "<s>";
  if (d.tokens[2] == "\n</s>\n") d.tokens[2] = "</s>";
  for (size_t i = 3; i < d.tokens.size(); i++) {
    if (is_byte_piece(d.tokens[i]))
      d.types[i] = TokenType::Byte;
    else
      d.tokens[i] = replace_all(d.tokens[i], " ", kSpaceMark);
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json (Hugging Face `tokenizers`). What we read:
//   model: {"type": "BPE", "vocab": {piece: id}, "merges": ["a b", ...] or [["a", "b"], ...],
//           "byte_fallback", "unk_token"}
//   SentencePiece-style (Llama-1/2): byte_fallback true, normalizer Prepend "▁" (the dummy prefix)
//     and Replace " " -> "▁", no pre_tokenizer (or Metaspace). Scores are derived from the merges
//     (score = -rank of the first merge that creates the piece).
//   byte-level (GPT-2 / Llama-3 / Qwen2): pre_tokenizer ByteLevel (GPT-2 regex) or a Sequence of a
//     Split with one of the known regexes + ByteLevel without regex.
//   added_tokens: [{"id", "content", "special"}]: special -> Control, otherwise UserDefined.
//   post_processor TemplateProcessing: a SpecialToken before $A -> add BOS, after $A -> add EOS.
// BOS/EOS come from the template and, if present, from tokenizer_config.json next to the file.
namespace {

// A string / bool member of a JSON object: `def` when j is not an object or the member is absent or
// null; a member of another type is an Error naming the file. (json::value() would throw a
// json::type_error, which is not a sec::Error and would reach main as an "internal error".)
std::string str_member(const json& j, const char* key, const std::string& def, const std::string& path) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return def;
  SEC_CHECK(j[key].is_string(), path, ": \"", key, "\" should be a string, not ", j[key].type_name());
  return j[key].get<std::string>();
}
bool bool_member(const json& j, const char* key, bool def, const std::string& path) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return def;
  SEC_CHECK(j[key].is_boolean(), path, ": \"", key, "\" should be true or false, not ", j[key].type_name());
  return j[key].get<bool>();
}
// A member that may be absent (null json then); a copy, as json::value() made.
json member(const json& j, const char* key) { return j.is_object() && j.contains(key) ? j[key] : json(); }

// Walks a normalizer / pre_tokenizer tree, calling fn on each leaf object (depth is bounded by
// parse_json's nesting limit).
template <class Fn>
void for_each_step(const json& j, const char* list_key, const std::string& path, Fn fn) {
  if (!j.is_object()) return;
  if (str_member(j, "type", "", path) == "Sequence" && j.contains(list_key)) {
    for (const auto& c : j[list_key]) for_each_step(c, list_key, path, fn);
  } else {
    fn(j);
  }
}

std::vector<std::string> read_merges(const json& merges, const std::string& path) {
  std::vector<std::string> out;
  SEC_CHECK(merges.is_array(), path, ": model.merges is not a list");
  SEC_CHECK(merges.size() <= kMaxMerges, path, ": model.merges has ", merges.size(),
            " entries, more than the limit of ", kMaxMerges);
  out.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string())
      out.push_back(m.get<std::string>());
    else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
      out.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    else
      fail(path, ": model.merges entry ", out.size(), " is neither \"a b\" nor [\"a\", \"b\"]");
  }
  return out;
}

}  // namespace

static TokenizerData read_tokenizer_json_object(const json& j, const std::string& path);

TokenizerData read_tokenizer_json(const std::string& path) {
  const json j = parse_json(read_text_file(path), path);
  try {
    return read_tokenizer_json_object(j, path);
  } catch (const json::exception& e) {  // a safety net: the reader checks types before using them
    fail(path, ": unexpected tokenizer.json structure: ", e.what());
  }
}

static TokenizerData read_tokenizer_json_object(const json& j, const std::string& path) {
  SEC_CHECK(j.is_object() && j.contains("model") && j["model"].is_object(), path,
            ": not a tokenizer.json (no \"model\" object)");
  const json& model = j["model"];
  std::string type = str_member(model, "type", "", path);
  SEC_CHECK(type == "BPE", path, ": unsupported tokenizer model type '", type, "' (only BPE is supported)");
  SEC_CHECK(model.contains("vocab") && model["vocab"].is_object(), path, ": model.vocab is missing");

  TokenizerData d;
  // Vocabulary: piece -> id, ids must be dense 0..n-1 once the added tokens are included.
  std::vector<std::pair<int64_t, std::string>> entries;
  for (const auto& [piece, id] : model["vocab"].items()) {
    SEC_CHECK(id.is_number_integer(), path, ": model.vocab entry '", piece, "' has a non-integer id");
    entries.emplace_back(id.get<int64_t>(), piece);
  }
  std::vector<std::pair<int64_t, bool>> added;  // id, special
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      SEC_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                    a["content"].is_string(),
                path, ": added_tokens entry without an integer id and a content string");
      entries.emplace_back(a["id"].get<int64_t>(), a["content"].get<std::string>());
      added.emplace_back(a["id"].get<int64_t>(), bool_member(a, "special", false, path));
    }
  }
  int64_t max_id = -1;
  for (const auto& e : entries) {
    SEC_CHECK(e.first >= 0 && e.first < (int64_t(1) << 31), path, ": token '", e.second, "' has invalid id ", e.first);
    max_id = std::max(max_id, e.first);
  }
  SEC_CHECK(max_id >= 0, path, ": empty vocabulary");
  // Ids are dense (0..n-1), so n <= the number of entries: check that before allocating n slots (one
  // entry with id 2000000000 must not allocate two billion strings).
  if (uint64_t(max_id) >= entries.size()) {
    std::vector<int64_t> ids;
    for (const auto& e : entries) ids.push_back(e.first);
    std::sort(ids.begin(), ids.end());
    int64_t missing = 0;
    for (int64_t id : ids)
      if (id == missing) missing++;
    fail(path, ": the vocabulary has no token with id ", missing, " (ids must be 0..n-1; the largest is ", max_id, ")");
  }
  SEC_CHECK(uint64_t(max_id) < kMaxVocab, path, ": vocabulary of ", max_id + 1, " tokens exceeds the limit of ",
            kMaxVocab);
  d.tokens.assign(size_t(max_id + 1), std::string());
  std::vector<bool> seen(size_t(max_id + 1), false);
  for (const auto& e : entries) {
    // An added token may repeat a vocab entry with the same id; a different piece is a conflict.
    SEC_CHECK(!seen[size_t(e.first)] || d.tokens[size_t(e.first)] == e.second, path, ": id ", e.first,
              " is used by both '", d.tokens[size_t(e.first)], "' and '", e.second, "'");
    seen[size_t(e.first)] = true;
    d.tokens[size_t(e.first)] = e.second;
  }
  for (size_t i = 0; i < seen.size(); i++) SEC_CHECK(seen[i], path, ": the vocabulary has no token with id ", i);

  d.types.assign(d.tokens.size(), TokenType::Normal);
  for (const auto& [id, special] : added) d.types[size_t(id)] = special ? TokenType::Control : TokenType::UserDefined;
  if (model.contains("merges")) d.merges = read_merges(model["merges"], path);

  const bool byte_fallback = bool_member(model, "byte_fallback", false, path);
  bool byte_level = false, prepend_space = false, replace_space = false, metaspace = false;
  std::string split_pattern;
  for_each_step(member(j, "normalizer"), "normalizers", path, [&](const json& s) {
    std::string t = str_member(s, "type", "", path);
    if (t == "Prepend" && str_member(s, "prepend", "", path) == kSpaceMark)
      prepend_space = true;
    else if (t == "Replace" && str_member(member(s, "pattern"), "String", "", path) == " " &&
             str_member(s, "content", "", path) == kSpaceMark)
      replace_space = true;
    else if (t == "NFC" || t == "NFKC" || t == "Lowercase" || t == "StripAccents" || t == "Strip")
      fail(path, ": unsupported normalizer '", t, "'");
  });
  for_each_step(member(j, "pre_tokenizer"), "pretokenizers", path, [&](const json& s) {
    std::string t = str_member(s, "type", "", path);
    if (t == "ByteLevel") {
      byte_level = true;
      SEC_CHECK(!bool_member(s, "add_prefix_space", false, path), path,
                ": unsupported ByteLevel pre_tokenizer with add_prefix_space");
      if (bool_member(s, "use_regex", true, path)) split_pattern = pre_tokenizer_pattern("gpt2");
    } else if (t == "Split" && member(s, "pattern").contains("Regex")) {
      split_pattern = str_member(s["pattern"], "Regex", "", path);
    } else if (t == "Metaspace") {
      metaspace = true;
      prepend_space =
          str_member(s, "prepend_scheme", "always", path) != "never" && bool_member(s, "add_prefix_space", true, path);
    } else if (!t.empty()) {
      fail(path, ": unsupported pre_tokenizer '", t, "'");
    }
  });

  if (byte_level) {
    d.kind = TokenizerKind::ByteLevelBpe;
    d.pre_tokenizer = pre_tokenizer_name(split_pattern);
    SEC_CHECK(!d.pre_tokenizer.empty(), path, ": unsupported byte-level pre-tokenizer regex '", split_pattern,
              "' (supported: the GPT-2, Llama-3 and Qwen2 patterns)");
    d.add_space_prefix = false;
  } else {
    SEC_CHECK(byte_fallback || replace_space || metaspace, path,
              ": unsupported BPE tokenizer (neither byte-level nor SentencePiece-style with byte_fallback)");
    d.kind = TokenizerKind::SentencePiece;
    d.add_space_prefix = prepend_space;
    for (size_t i = 0; i < d.tokens.size(); i++)
      if (d.types[i] == TokenType::Normal && is_byte_piece(d.tokens[i])) d.types[i] = TokenType::Byte;
  }

  if (model.contains("unk_token") && model["unk_token"].is_string())
    d.unk_id = find_token(d, model["unk_token"].get<std::string>());
  if (d.unk_id >= 0 && d.types[size_t(d.unk_id)] != TokenType::Normal) d.types[size_t(d.unk_id)] = TokenType::Unknown;

  // BOS/EOS from the post-processor template.
  d.add_bos = d.add_eos = false;
  const json post = member(j, "post_processor");
  std::vector<json> templates;
  for_each_step(post, "processors", path, [&](const json& s) {
    if (str_member(s, "type", "", path) == "TemplateProcessing" && s.contains("single")) templates.push_back(s);
  });
  for (const json& s : templates) {
    bool after_a = false;
    for (const auto& item : s["single"]) {
      if (item.contains("Sequence")) {
        after_a = true;
      } else if (item.contains("SpecialToken")) {
        int id = find_token(d, str_member(item["SpecialToken"], "id", "", path));
        SEC_CHECK(id >= 0, path, ": post_processor uses a special token that is not in the vocabulary");
        if (after_a)
          d.eos_id = id, d.add_eos = true;
        else
          d.bos_id = id, d.add_bos = true;
      }
    }
  }

  // Names of the usual special tokens, then tokenizer_config.json if it sits next to the file.
  if (d.bos_id < 0)
    for (const char* n : {"<s>", "<|begin_of_text|>"})
      if (d.bos_id < 0) d.bos_id = find_token(d, n);
  if (d.eos_id < 0)
    for (const char* n : {"</s>", "<|end_of_text|>", "<|endoftext|>"})
      if (d.eos_id < 0) d.eos_id = find_token(d, n);
  std::string config_path = (std::filesystem::path(path).parent_path() / "tokenizer_config.json").string();
  if (file_exists(config_path)) {
    const json c = parse_json(read_text_file(config_path), config_path);
    try {
      if (c.contains("bos_token"))
        if (int id = find_token(d, token_content(c["bos_token"])); id >= 0) d.bos_id = id;
      if (c.contains("eos_token"))
        if (int id = find_token(d, token_content(c["eos_token"])); id >= 0) d.eos_id = id;
      if (c.contains("pad_token"))
        if (int id = find_token(d, token_content(c["pad_token"])); id >= 0) d.pad_id = id;
      if (c.contains("add_bos_token") && c["add_bos_token"].is_boolean()) d.add_bos = c["add_bos_token"].get<bool>();
      if (c.contains("add_eos_token") && c["add_eos_token"].is_boolean()) d.add_eos = c["add_eos_token"].get<bool>();
    } catch (const json::exception& e) {
      fail(config_path, ": unexpected tokenizer_config.json structure: ", e.what());
    }
  }
  for (int id : {d.bos_id, d.eos_id})
    if (id >= 0 && d.types[size_t(id)] == TokenType::Normal) d.types[size_t(id)] = TokenType::Control;

  if (d.kind == TokenizerKind::SentencePiece)
    SEC_CHECK(!d.merges.empty(), path, ": SentencePiece-style BPE without merges");
  // Validate (merges refer to known tokens, ...) and, for SentencePiece, keep the scores Tokenizer
  // derives from the merges so GGUF export has them.
  try {
    d.scores = Tokenizer(d).data().scores;
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// Writing. A SentencePiece tokenizer without merges (from tokenizer.bin or GGUF scores) gets them
// the way Hugging Face's SentencePiece converter makes them: every mergeable piece, split in every
// way into two vocabulary pieces, ordered by the piece's score (highest first; stable by id).
namespace {

std::vector<std::string> merges_from_scores(const TokenizerData& d) {
  std::unordered_map<std::string, int> id_of;
  for (size_t i = 0; i < d.tokens.size(); i++) id_of.emplace(d.tokens[i], int(i));
  auto mergeable = [&](int id) {
    return d.types[size_t(id)] == TokenType::Normal || d.types[size_t(id)] == TokenType::UserDefined;
  };
  struct M {
    float score;
    int piece, left, right;
    std::string text;
  };
  std::vector<M> ms;
  for (size_t i = 0; i < d.tokens.size(); i++) {
    if (!mergeable(int(i))) continue;
    const std::string& p = d.tokens[i];
    for (size_t k = 1; k < p.size(); k++) {
      if ((uint8_t(p[k]) & 0xC0) == 0x80) continue;  // split between characters only
      auto l = id_of.find(p.substr(0, k)), r = id_of.find(p.substr(k));
      if (l == id_of.end() || r == id_of.end()) continue;
      ms.push_back({d.scores[i], int(i), l->second, r->second, p.substr(0, k) + " " + p.substr(k)});
    }
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& a, const M& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.piece != b.piece) return a.piece < b.piece;
    return std::make_pair(a.left, a.right) < std::make_pair(b.left, b.right);
  });
  std::vector<std::string> out;
  out.reserve(ms.size());
  for (auto& m : ms) out.push_back(std::move(m.text));
  return out;
}

ordered_json added_token_json(int id, const std::string& content, bool special) {
  ordered_json a;
  a["id"] = id;
  a["content"] = content;
  a["single_word"] = false;
  a["lstrip"] = false;
  a["rstrip"] = false;
  a["normalized"] = false;
  a["special"] = special;
  return a;
}

ordered_json template_processing(const TokenizerData& d) {
  auto special = [](const std::string& t, int type_id) {
    return ordered_json{{"SpecialToken", {{"id", t}, {"type_id", type_id}}}};
  };
  auto seq = [](const char* which, int type_id) {
    return ordered_json{{"Sequence", {{"id", which}, {"type_id", type_id}}}};
  };
  ordered_json single = ordered_json::array(), pair = ordered_json::array(), specials = ordered_json::object();
  bool bos = d.add_bos && d.bos_id >= 0, eos = d.add_eos && d.eos_id >= 0;
  if (bos)
    single.push_back(special(d.tokens[size_t(d.bos_id)], 0)), pair.push_back(special(d.tokens[size_t(d.bos_id)], 0));
  single.push_back(seq("A", 0));
  pair.push_back(seq("A", 0));
  if (eos)
    single.push_back(special(d.tokens[size_t(d.eos_id)], 0)), pair.push_back(special(d.tokens[size_t(d.eos_id)], 0));
  if (bos) pair.push_back(special(d.tokens[size_t(d.bos_id)], 1));
  pair.push_back(seq("B", 1));
  if (eos) pair.push_back(special(d.tokens[size_t(d.eos_id)], 1));
  for (int id : {bos ? d.bos_id : -1, eos ? d.eos_id : -1}) {
    if (id < 0) continue;
    const std::string& t = d.tokens[size_t(id)];
    specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
  }
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

}  // namespace

void write_tokenizer_json(const TokenizerData& in, const std::string& path) {
  // Normalise through Tokenizer: validates, fills types and (for merges-only data) scores.
  const TokenizerData d = Tokenizer(in).data();
  const bool spm = d.kind == TokenizerKind::SentencePiece;
  // JSON strings are UTF-8 (GGUF and tokenizer.bin pieces need not be); dump() would throw a
  // json::type_error, which is not a sec::Error.
  for (size_t i = 0; i < d.tokens.size(); i++)
    SEC_CHECK(valid_utf8(d.tokens[i]), path, ": cannot write tokenizer.json: token ", i,
              " is not valid UTF-8, which JSON requires");

  ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  ordered_json added = ordered_json::array();
  for (size_t i = 0; i < d.tokens.size(); i++) {
    TokenType t = d.types[i];
    if (t == TokenType::Control || t == TokenType::Unknown || t == TokenType::UserDefined)
      added.push_back(added_token_json(int(i), d.tokens[i], t != TokenType::UserDefined));
  }
  j["added_tokens"] = added;

  if (spm) {
    ordered_json replace = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpaceMark}};
    if (d.add_space_prefix)
      j["normalizer"] = {{"type", "Sequence"},
                         {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpaceMark}}, replace}}};
    else
      j["normalizer"] = replace;
    j["pre_tokenizer"] = nullptr;
  } else {
    j["normalizer"] = nullptr;
    ordered_json split = {{"type", "Split"},
                          {"pattern", {{"Regex", pre_tokenizer_pattern(d.pre_tokenizer)}}},
                          {"behavior", "Isolated"},
                          {"invert", false}};
    ordered_json bl = {
        {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}};
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {split, bl}}};
  }
  j["post_processor"] =
      (d.add_bos && d.bos_id >= 0) || (d.add_eos && d.eos_id >= 0) ? template_processing(d) : ordered_json(nullptr);
  if (spm) {
    ordered_json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpaceMark}}}, {"content", " "}},
                             {{"type", "ByteFallback"}},
                             {{"type", "Fuse"}}};
    if (d.add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
    j["decoder"] = {{"type", "Sequence"}, {"decoders", decoders}};
  } else {
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  }

  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = d.unk_id >= 0 ? ordered_json(d.tokens[size_t(d.unk_id)]) : ordered_json(nullptr);
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = spm;
  model["byte_fallback"] = spm;
  model["ignore_merges"] = false;
  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < d.tokens.size(); i++) {
    if (vocab.contains(d.tokens[i])) {
      log_warn(path, ": token ", i, " '", d.tokens[i], "' repeats an earlier piece; tokenizer.json keeps the first");
      continue;
    }
    vocab[d.tokens[i]] = int(i);
  }
  model["vocab"] = vocab;
  std::vector<std::string> merges = spm && d.merges.empty() ? merges_from_scores(d) : d.merges;
  model["merges"] = merges;
  j["model"] = model;
  write_file_atomic(path, j.dump(2));
}

// ---------------------------------------------------------------------------------------------
// tokenizer_config.json / special_tokens_map.json, as transformers' save_pretrained writes them.
namespace {

// The text of a special token, or null when the tokenizer has none.
ordered_json special_token(const TokenizerData& d, int id) {
  return id >= 0 ? ordered_json(d.tokens[size_t(id)]) : ordered_json(nullptr);
}

ordered_json added_token_object(const std::string& content) {
  return {{"content", content}, {"lstrip", false}, {"normalized", false}, {"rstrip", false}, {"single_word", false}};
}

}  // namespace

ordered_json hf_tokenizer_config(const TokenizerData& d, int64_t model_max_length) {
  const bool spm = d.kind == TokenizerKind::SentencePiece;
  ordered_json added = ordered_json::object();
  for (size_t i = 0; i < d.tokens.size(); i++) {
    TokenType t = d.types[i];
    if (t != TokenType::Control && t != TokenType::Unknown && t != TokenType::UserDefined) continue;
    ordered_json a = added_token_object(d.tokens[i]);
    a["special"] = t != TokenType::UserDefined;
    added[std::to_string(i)] = a;
  }
  ordered_json j;
  // LlamaTokenizerFast rebuilds its post-processor from these two flags and refuses add_bos without
  // a BOS token, so they say what tokenizer.json's template does.
  j["add_bos_token"] = d.add_bos && d.bos_id >= 0;
  j["add_eos_token"] = d.add_eos && d.eos_id >= 0;
  j["added_tokens_decoder"] = added;
  j["bos_token"] = special_token(d, d.bos_id);
  j["clean_up_tokenization_spaces"] = false;
  j["eos_token"] = special_token(d, d.eos_id);
  // tokenizer.json carries the legacy layout (Prepend / Replace normalizer, as transformers'
  // converter writes with legacy=true); the flag only matters when rebuilding from tokenizer.model.
  if (spm) j["legacy"] = true;
  j["model_max_length"] = model_max_length;
  j["pad_token"] = special_token(d, d.pad_id);
  j["tokenizer_class"] = spm ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast";
  j["unk_token"] = special_token(d, d.unk_id);
  return j;
}

ordered_json hf_special_tokens_map(const TokenizerData& d) {
  ordered_json j = ordered_json::object();
  for (auto [key, id] : {std::pair<const char*, int>{"bos_token", d.bos_id},
                         {"eos_token", d.eos_id},
                         {"pad_token", d.pad_id},
                         {"unk_token", d.unk_id}})
    if (id >= 0) j[key] = added_token_object(d.tokens[size_t(id)]);
  return j;
}

}  // namespace sec

namespace sec {

// ---------------------------------------------------------------------------------------------
// SentencePiece tokenizer.model: a protobuf ModelProto. The fields we read (others are skipped):
//   1 pieces (repeated message): 1 piece (string), 2 score (float), 3 type (enum, default NORMAL=1;
//     the values are GGUF's TokenType: 2 UNKNOWN, 3 CONTROL, 4 USER_DEFINED, 5 UNUSED, 6 BYTE)
//   2 trainer_spec: 3 model_type (1 UNIGRAM (default), 2 BPE), 35 byte_fallback, 40 unk_id (0),
//     41 bos_id (1), 42 eos_id (2), 43 pad_id (-1)
//   3 normalizer_spec: 1 name, 3 add_dummy_prefix (true), 4 remove_extra_whitespaces (true)
// Wire format: key = varint (field << 3 | wire type); wire types 0 varint, 1 fixed64,
// 2 length-delimited, 5 fixed32.
namespace {

struct ProtoReader {
  const uint8_t* p;
  const uint8_t* end;
  const std::string& path;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      SEC_CHECK(p < end, path, ": truncated or corrupt SentencePiece model (varint runs past the end)");
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(path, ": corrupt SentencePiece model (varint too long)");
  }
  // Reads a key; returns the field number and sets `wire`.
  uint32_t key(int* wire) {
    uint64_t k = varint();
    *wire = int(k & 7);
    return uint32_t(k >> 3);
  }
  ProtoReader sub() {  // a length-delimited field's bytes
    uint64_t n = varint();
    SEC_CHECK(n <= uint64_t(end - p), path, ": truncated or corrupt SentencePiece model (field of ", n,
              " bytes runs past the end)");
    ProtoReader r{p, p + n, path};
    p += n;
    return r;
  }
  std::string bytes() {
    ProtoReader r = sub();
    return std::string(reinterpret_cast<const char*>(r.p), size_t(r.end - r.p));
  }
  uint32_t fixed32() {
    SEC_CHECK(end - p >= 4, path, ": truncated SentencePiece model");
    uint32_t v;
    std::memcpy(&v, p, 4);
    p += 4;
    return v;
  }
  void skip(int wire) {
    if (wire == 0) {
      varint();
    } else if (wire == 1) {
      SEC_CHECK(end - p >= 8, path, ": truncated SentencePiece model");
      p += 8;
    } else if (wire == 2)
      sub();
    else if (wire == 5)
      fixed32();
    else
      fail(path, ": not a SentencePiece model (unsupported protobuf wire type ", wire, ")");
  }
};

}  // namespace

TokenizerData read_sentencepiece_model(const std::string& path) {
  MappedFile f(path);
  ProtoReader r{f.data(), f.data() + f.size(), path};
  TokenizerData d;
  d.kind = TokenizerKind::SentencePiece;
  d.unk_id = 0, d.bos_id = 1, d.eos_id = 2, d.pad_id = -1;
  int64_t model_type = 1;
  bool remove_extra_whitespaces = true;
  std::string normalizer = "nmt_nfkc";
  while (!r.done()) {
    int wire;
    uint32_t field = r.key(&wire);
    if (field == 1 && wire == 2) {
      ProtoReader pr = r.sub();
      std::string piece;
      float score = 0;
      uint64_t type = 1;
      while (!pr.done()) {
        int w;
        uint32_t fld = pr.key(&w);
        if (fld == 1 && w == 2)
          piece = pr.bytes();
        else if (fld == 2 && w == 5) {
          uint32_t bits = pr.fixed32();
          std::memcpy(&score, &bits, 4);
        } else if (fld == 3 && w == 0)
          type = pr.varint();
        else
          pr.skip(w);
      }
      SEC_CHECK(type >= 1 && type <= 6, path, ": piece ", d.tokens.size(), " has unknown type ", type);
      SEC_CHECK(d.tokens.size() < kMaxVocab, path, ": SentencePiece model has more than ", kMaxVocab,
                " pieces (the limit)");
      d.tokens.push_back(std::move(piece));
      d.scores.push_back(score);
      d.types.push_back(TokenType(int(type)));
    } else if (field == 2 && wire == 2) {
      ProtoReader tr = r.sub();
      while (!tr.done()) {
        int w;
        uint32_t fld = tr.key(&w);
        if (w != 0) {
          tr.skip(w);
          continue;
        }
        int64_t v = int64_t(tr.varint());
        if (fld == 3)
          model_type = v;
        else if (fld == 40)
          d.unk_id = int32_t(v);
        else if (fld == 41)
          d.bos_id = int32_t(v);
        else if (fld == 42)
          d.eos_id = int32_t(v);
        else if (fld == 43)
          d.pad_id = int32_t(v);
      }
    } else if (field == 3 && wire == 2) {
      ProtoReader nr = r.sub();
      while (!nr.done()) {
        int w;
        uint32_t fld = nr.key(&w);
        if (fld == 1 && w == 2)
          normalizer = nr.bytes();
        else if (fld == 3 && w == 0)
          d.add_space_prefix = nr.varint() != 0;
        else if (fld == 4 && w == 0)
          remove_extra_whitespaces = nr.varint() != 0;
        else
          nr.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  SEC_CHECK(!d.tokens.empty(), path, ": not a SentencePiece model (no pieces)");
  SEC_CHECK(model_type == 2, path, ": unsupported SentencePiece model type ", model_type,
            " (only BPE, type 2, is supported)");
  SEC_CHECK(normalizer == "identity" && !remove_extra_whitespaces, path, ": unsupported SentencePiece normalizer '",
            normalizer, "'", remove_extra_whitespaces ? " with remove_extra_whitespaces" : "",
            " (only 'identity' is supported)");
  auto valid = [&](int id) { return id >= 0 && id < int(d.tokens.size()) ? id : -1; };
  d.unk_id = valid(d.unk_id), d.bos_id = valid(d.bos_id), d.eos_id = valid(d.eos_id), d.pad_id = valid(d.pad_id);
  return d;
}

}  // namespace sec
