// Tokenizer: one BPE merge loop (a priority queue over a linked list of symbols, as sentencepiece
// and llama.cpp do it) shared by the two kinds:
//  - SentencePiece: symbols are UTF-8 characters of the normalised text; two adjacent symbols merge
//    when their concatenation is a vocabulary piece, highest piece score first, left-most on ties.
//    Symbols left outside the vocabulary become their UTF-8 bytes as <0xNN> tokens (or <unk>).
//  - Byte-level BPE: text is split by the pre-tokenizer regex, each word's bytes are mapped to
//    GPT-2's printable alphabet, and adjacent tokens merge by the rank of their "left right" merge.
#include "io/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <queue>

#include "core/error.h"

namespace sec {

namespace {

const char* kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Length of the UTF-8 character starting at s[i]; invalid sequences count as single bytes.
size_t utf8_len(std::string_view s, size_t i) {
  unsigned char c = s[i];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (i + n > s.size()) return 1;
  for (size_t k = 1; k < n; k++)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 1;
  return n;
}

uint32_t utf8_decode(std::string_view s, size_t i, size_t n) {
  unsigned char c = s[i];
  if (n == 1) return c;
  uint32_t cp = c & (0x7F >> n);
  for (size_t k = 1; k < n; k++) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

std::string utf8_encode(uint32_t cp) {
  std::string r;
  if (cp < 0x80) {
    r += char(cp);
  } else if (cp < 0x800) {
    r += char(0xC0 | (cp >> 6));
    r += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    r += char(0xE0 | (cp >> 12));
    r += char(0x80 | ((cp >> 6) & 0x3F));
    r += char(0x80 | (cp & 0x3F));
  } else {
    r += char(0xF0 | (cp >> 18));
    r += char(0x80 | ((cp >> 12) & 0x3F));
    r += char(0x80 | ((cp >> 6) & 0x3F));
    r += char(0x80 | (cp & 0x3F));
  }
  return r;
}

// "<0xNN>" -> NN, or -1.
int parse_byte_piece(const std::string& p) {
  if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
  unsigned v = 0;
  for (int i = 3; i < 5; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                   : -1;
    if (d < 0) return -1;
    v = v * 16 + unsigned(d);
  }
  return int(v);
}

std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string r;
  r.reserve(s.size());
  size_t i = 0;
  while (true) {
    size_t j = s.find(from, i);
    if (j == std::string_view::npos) break;
    r.append(s.substr(i, j - i));
    r.append(to);
    i = j + from.size();
  }
  r.append(s.substr(i));
  return r;
}

// A symbol of the BPE working list: bytes [start, start+len) of the text, linked to its neighbours.
// len == 0 marks a symbol merged into its left neighbour. id is the token (or -1 if not yet known).
struct Symbol {
  int start, len, prev, next, id;
  bool frozen;  // a literally matched token: never merged
};

// Merges adjacent symbols while `pair(a, b, &priority, &id)` says they can merge, highest priority
// first and left-most on ties — sentencepiece's BPE. Stale queue entries are skipped when popped.
template <class PairFn>
void bpe_merge(std::vector<Symbol>& syms, PairFn pair) {
  struct Candidate {
    double priority;
    int left, right, len, id;
  };
  auto worse = [](const Candidate& a, const Candidate& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> queue(worse);
  auto consider = [&](int l, int r) {
    if (l < 0 || r < 0 || syms[l].frozen || syms[r].frozen) return;
    double priority;
    int id;
    if (pair(syms[l], syms[r], &priority, &id)) queue.push({priority, l, r, syms[l].len + syms[r].len, id});
  };
  for (size_t i = 0; i + 1 < syms.size(); i++) consider(int(i), int(i + 1));
  while (!queue.empty()) {
    Candidate c = queue.top();
    queue.pop();
    Symbol& l = syms[c.left];
    Symbol& r = syms[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    l.id = c.id;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.left;
    r.len = 0;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
}

std::vector<Symbol> symbols_of_chars(std::string_view s) {
  std::vector<Symbol> syms;
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_len(s, i);
    syms.push_back({int(i), int(n), int(syms.size()) - 1, int(syms.size()) + 1, -1, false});
    i += n;
  }
  if (!syms.empty()) syms.back().next = -1;
  return syms;
}

uint64_t pair_key(int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

std::string pre_tokenizer_pattern(std::string_view name) {
  if (name == "gpt2") return kGpt2Pattern;
  if (name == "llama3" || name == "llama-bpe") return kLlama3Pattern;
  if (name == "qwen2") return kQwen2Pattern;
  return "";
}

std::string pre_tokenizer_name(std::string_view pattern) {
  if (pattern == kGpt2Pattern) return "gpt2";
  if (pattern == kLlama3Pattern) return "llama3";
  if (pattern == kQwen2Pattern) return "qwen2";
  return "";
}

// A piece of the input: either text to tokenize or one literally matched token.
struct Tokenizer::Segment {
  std::string_view text;
  int literal_id;  // -1 for text
};

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  const size_t n = data_.tokens.size();
  SEC_CHECK(n > 0, "tokenizer has an empty vocabulary");
  SEC_CHECK(n <= kMaxVocab, "tokenizer vocabulary of ", n, " tokens exceeds the limit of ", kMaxVocab);
  SEC_CHECK(data_.merges.size() <= kMaxMerges, "tokenizer has ", data_.merges.size(),
            " merges, more than the limit of ", kMaxMerges);
  auto check_id = [&](int id, const char* what) {
    SEC_CHECK(id >= -1 && id < int(n), "tokenizer ", what, " id ", id, " is outside the vocabulary of ", n, " tokens");
  };
  check_id(data_.bos_id, "BOS");
  check_id(data_.eos_id, "EOS");
  check_id(data_.unk_id, "unknown-token");
  check_id(data_.pad_id, "padding");
  if (data_.types.empty()) {  // formats without types: infer them from the names and special ids
    data_.types.assign(n, TokenType::Normal);
    for (size_t i = 0; i < n; i++)
      if (data_.kind == TokenizerKind::SentencePiece && parse_byte_piece(data_.tokens[i]) >= 0)
        data_.types[i] = TokenType::Byte;
    for (int id : {data_.bos_id, data_.eos_id})
      if (id >= 0) data_.types[id] = TokenType::Control;
    if (data_.unk_id >= 0) data_.types[data_.unk_id] = TokenType::Unknown;
  }
  SEC_CHECK(data_.types.size() == n, "tokenizer has ", data_.types.size(), " token types for ", n, " tokens");
  SEC_CHECK(data_.scores.empty() || data_.scores.size() == n, "tokenizer has ", data_.scores.size(), " scores for ", n,
            " tokens");
  // Merge priorities are compared; a NaN would break the ordering the merge queue relies on.
  for (size_t i = 0; i < data_.scores.size(); i++)
    SEC_CHECK(std::isfinite(data_.scores[i]), "tokenizer score of token ", i, " ('", data_.tokens[i], "') is ",
              data_.scores[i], "; scores must be finite");

  piece_to_id_.reserve(n);
  for (size_t i = 0; i < n; i++) piece_to_id_.emplace(data_.tokens[i], int(i));  // first id wins

  // Merges "left right" (in rank order): byte-level BPE merges by them; SentencePiece data that came
  // with merges but no scores (tokenizer.json) gets score = -rank of the first merge creating a piece.
  std::vector<int> first_rank(n, -1);
  for (size_t rank = 0; rank < data_.merges.size(); rank++) {
    const std::string& m = data_.merges[rank];
    size_t sp = m.find(' ');
    SEC_CHECK(sp != std::string::npos, "tokenizer merge ", rank, " '", m, "' is not of the form 'left right'");
    int a = token_id(std::string_view(m).substr(0, sp)), b = token_id(std::string_view(m).substr(sp + 1));
    int c = token_id(m.substr(0, sp) + m.substr(sp + 1));
    SEC_CHECK(a >= 0 && b >= 0 && c >= 0, "tokenizer merge ", rank, " '", m,
              "' refers to a token not in the vocabulary");
    if (first_rank[c] < 0) first_rank[c] = int(rank);
    if (data_.kind == TokenizerKind::ByteLevelBpe) merges_.emplace(pair_key(a, b), std::make_pair(int(rank), c));
  }
  if (data_.kind == TokenizerKind::SentencePiece && data_.scores.empty()) {
    SEC_CHECK(!data_.merges.empty(), "SentencePiece tokenizer has neither scores nor merges");
    data_.scores.resize(n);
    // Pieces no merge creates (single characters, specials) rank below every merge.
    for (size_t i = 0; i < n; i++)
      data_.scores[i] = first_rank[i] >= 0 ? -float(first_rank[i]) : -float(data_.merges.size() + i);
  }

  std::fill(byte_token_, byte_token_ + 256, -1);
  if (data_.kind == TokenizerKind::SentencePiece) {
    for (size_t i = 0; i < n; i++) {
      int b = data_.types[i] == TokenType::Byte ? parse_byte_piece(data_.tokens[i]) : -1;
      if (b >= 0 && byte_token_[b] < 0) byte_token_[b] = int(i);
    }
    // Every pair of adjacent characters inside a mergeable piece. A boundary between two characters
    // that form no such pair can never be merged across, so encode splits the text there and runs
    // BPE on small independent chunks (same result, far less work than one huge queue).
    for (size_t i = 0; i < n; i++) {
      if (data_.types[i] != TokenType::Normal && data_.types[i] != TokenType::UserDefined) continue;
      std::string_view p = data_.tokens[i];
      uint32_t prev = 0;
      for (size_t k = 0; k < p.size();) {
        size_t len = utf8_len(p, k);
        uint32_t cp = utf8_decode(p, k, len);
        if (k > 0) piece_bigrams_.insert(pair_key(int(prev), int(cp)));
        prev = cp;
        k += len;
      }
    }
  } else {
    // GPT-2's byte -> unicode table: printable Latin-1 bytes map to themselves, the rest to 256+k.
    int next = 256;
    for (int b = 0; b < 256; b++) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? uint32_t(b) : uint32_t(next++);
      byte_to_unicode_[b] = utf8_encode(cp);
      unicode_to_byte_[cp] = uint8_t(b);
    }
    std::string pattern = pre_tokenizer_pattern(data_.pre_tokenizer);
    SEC_CHECK(!pattern.empty(), "unsupported byte-level pre-tokenizer '", data_.pre_tokenizer,
              "' (supported: gpt2, llama3/llama-bpe, qwen2)");
    int err = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    SEC_ASSERT(re != nullptr);                  // the patterns are ours
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without it
    pre_regex_ = std::shared_ptr<void>(re, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
  }

  // Literal tokens: sentencepiece matches only user-defined pieces; HF matches every added token.
  literals_by_first_byte_.assign(256, {});
  for (size_t i = 0; i < n; i++) {
    TokenType t = data_.types[i];
    bool literal =
        t == TokenType::UserDefined || (data_.kind == TokenizerKind::ByteLevelBpe && t == TokenType::Control);
    if (literal && !data_.tokens[i].empty()) literals_by_first_byte_[uint8_t(data_.tokens[i][0])].push_back(int(i));
  }
  for (auto& v : literals_by_first_byte_)
    std::stable_sort(v.begin(), v.end(), [&](int a, int b) { return data_.tokens[a].size() > data_.tokens[b].size(); });
}

int Tokenizer::token_id(std::string_view piece) const {
  auto it = piece_to_id_.find(piece);
  return it == piece_to_id_.end() ? -1 : it->second;
}

std::vector<Tokenizer::Segment> Tokenizer::split_literals(std::string_view text) const {
  std::vector<Segment> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    int match = -1;
    for (int id : literals_by_first_byte_[uint8_t(text[i])]) {
      if (text.compare(i, data_.tokens[id].size(), data_.tokens[id]) == 0) {
        match = id;
        break;  // longest first
      }
    }
    if (match < 0) {
      i++;
      continue;
    }
    if (i > start) out.push_back({text.substr(start, i - start), -1});
    out.push_back({text.substr(i, data_.tokens[match].size()), match});
    i += data_.tokens[match].size();
    start = i;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
  return out;
}

std::vector<int> Tokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> ids;
  if (add_bos && data_.bos_id >= 0) ids.push_back(data_.bos_id);
  std::vector<int> body =
      data_.kind == TokenizerKind::SentencePiece ? encode_sentencepiece(text) : encode_byte_level(text);
  ids.insert(ids.end(), body.begin(), body.end());
  return ids;
}

std::vector<int> Tokenizer::encode_sentencepiece(std::string_view text) const {
  if (text.empty()) return {};
  // Normalise as sentencepiece's identity normaliser with add_dummy_prefix: spaces -> "▁".
  std::string norm = replace_all(text, " ", kSpaceMark);
  if (data_.add_space_prefix) norm.insert(0, kSpaceMark);
  const std::string_view s = norm;

  // Initial symbols: user-defined pieces matched literally (frozen), otherwise single characters.
  std::vector<Symbol> syms;
  for (const Segment& seg : split_literals(s)) {
    int base = int(seg.text.data() - s.data());
    if (seg.literal_id >= 0) {
      syms.push_back({base, int(seg.text.size()), 0, 0, seg.literal_id, true});
    } else {
      for (Symbol sym : symbols_of_chars(seg.text)) {
        sym.start += base;
        syms.push_back(sym);
      }
    }
  }

  auto pair = [&](const Symbol& a, const Symbol& b, double* priority, int* id) {
    int t = token_id(s.substr(size_t(a.start), size_t(a.len + b.len)));
    if (t < 0) return false;
    TokenType type = data_.types[t];
    if (type != TokenType::Normal && type != TokenType::UserDefined) return false;
    *priority = data_.scores[t];
    *id = t;
    return true;
  };
  auto joinable = [&](const Symbol& a, const Symbol& b) {
    if (a.frozen || b.frozen) return false;
    uint32_t ca = utf8_decode(s, size_t(a.start), size_t(a.len)), cb = utf8_decode(s, size_t(b.start), size_t(b.len));
    return piece_bigrams_.count(pair_key(int(ca), int(cb))) > 0;
  };

  std::vector<int> ids;
  std::vector<Symbol> chunk;
  for (size_t begin = 0; begin < syms.size();) {
    size_t end = begin + 1;
    while (end < syms.size() && joinable(syms[end - 1], syms[end])) end++;
    chunk.assign(syms.begin() + long(begin), syms.begin() + long(end));
    for (size_t i = 0; i < chunk.size(); i++) {
      chunk[i].prev = int(i) - 1;
      chunk[i].next = i + 1 < chunk.size() ? int(i) + 1 : -1;
    }
    bpe_merge(chunk, pair);
    for (int i = 0; i >= 0; i = chunk[i].next) {
      const Symbol& sym = chunk[i];
      int id = sym.id >= 0 ? sym.id : token_id(s.substr(size_t(sym.start), size_t(sym.len)));
      if (id >= 0 && data_.types[id] != TokenType::Byte && data_.types[id] != TokenType::Unused) {
        ids.push_back(id);
        continue;
      }
      // Byte fallback; bytes without a token become <unk> (a run of them a single <unk>).
      for (int k = 0; k < sym.len; k++) {
        int b = byte_token_[uint8_t(s[size_t(sym.start + k)])];
        if (b >= 0) {
          ids.push_back(b);
          continue;
        }
        SEC_CHECK(data_.unk_id >= 0, "cannot encode the text: character '",
                  s.substr(size_t(sym.start), size_t(sym.len)),
                  "' is not in the vocabulary, which has no byte tokens and no unknown token");
        if (ids.empty() || ids.back() != data_.unk_id) ids.push_back(data_.unk_id);
      }
    }
    begin = end;
  }
  return ids;
}

std::vector<int> Tokenizer::encode_byte_level(std::string_view text) const {
  std::vector<int> ids;
  std::unordered_map<std::string, std::vector<int>> cache;  // words repeat a lot in real text
  auto encode_word = [&](std::string_view word) {
    auto it = cache.find(std::string(word));
    if (it != cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
    std::string mapped;
    for (char c : word) mapped += byte_to_unicode_[uint8_t(c)];
    std::vector<Symbol> syms = symbols_of_chars(mapped);
    for (Symbol& sym : syms) sym.id = token_id(std::string_view(mapped).substr(size_t(sym.start), size_t(sym.len)));
    bpe_merge(syms, [&](const Symbol& a, const Symbol& b, double* priority, int* id) {
      if (a.id < 0 || b.id < 0) return false;
      auto m = merges_.find(pair_key(a.id, b.id));
      if (m == merges_.end()) return false;
      *priority = -double(m->second.first);
      *id = m->second.second;
      return true;
    });
    std::vector<int> word_ids;
    for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[i].next) {
      int id = syms[i].id;
      if (id < 0) {
        SEC_CHECK(data_.unk_id >= 0, "cannot encode the text: byte-level vocabulary lacks the byte piece '",
                  std::string_view(mapped).substr(size_t(syms[i].start), size_t(syms[i].len)), "'");
        id = data_.unk_id;
      }
      word_ids.push_back(id);
    }
    ids.insert(ids.end(), word_ids.begin(), word_ids.end());
    cache.emplace(std::string(word), std::move(word_ids));
  };

  for (const Segment& seg : split_literals(text)) {
    if (seg.literal_id >= 0)
      ids.push_back(seg.literal_id);
    else
      for (std::string_view word : split_words(seg.text)) encode_word(word);
  }
  return ids;
}

// Every regex match is a word; text between matches (none with our patterns) is a word too.
std::vector<std::string_view> Tokenizer::split_words(std::string_view text) const {
  std::vector<std::string_view> words;
  auto* re = static_cast<pcre2_code*>(pre_regex_.get());
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(pcre2_match_data_create_from_pattern(re, nullptr),
                                                                    pcre2_match_data_free);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int rc = pcre2_match(re, subject, text.size(), pos, 0, md.get(), nullptr);
    if (rc < 0) {
      SEC_CHECK(rc == PCRE2_ERROR_NOMATCH, "pre-tokenizer regex failed on the text (pcre2 error ", rc, ")");
      words.push_back(text.substr(pos));
      break;
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    size_t b = ov[0], e = ov[1];
    if (b > pos) words.push_back(text.substr(pos, b - pos));
    if (e == b) e = b + utf8_len(text, b);  // an empty match cannot happen with our patterns; step on anyway
    words.push_back(text.substr(b, e - b));
    pos = e;
  }
  return words;
}

std::vector<std::string> Tokenizer::pre_tokenize(std::string_view text) const {
  if (data_.kind == TokenizerKind::SentencePiece) return {std::string(text)};
  std::vector<std::string> out;
  for (const Segment& seg : split_literals(text)) {
    if (seg.literal_id >= 0)
      out.emplace_back(seg.text);
    else
      for (std::string_view w : split_words(seg.text)) out.emplace_back(w);
  }
  return out;
}

std::string Tokenizer::token_text(int prev_id, int id) const {
  SEC_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary of ", vocab_size(), " tokens");
  const std::string& p = data_.tokens[size_t(id)];
  TokenType type = data_.types[size_t(id)];
  if (type == TokenType::Control) return "";
  if (data_.kind == TokenizerKind::SentencePiece) {
    if (type == TokenType::Byte) return std::string(1, char(parse_byte_piece(p)));
    if (type == TokenType::Unknown) return " \xE2\x81\x87 ";  // sentencepiece shows <unk> as " ⁇ "
    std::string t = replace_all(p, kSpaceMark, " ");
    bool at_start = prev_id < 0 || prev_id == data_.bos_id;
    if (data_.add_space_prefix && at_start && !t.empty() && t[0] == ' ') t.erase(0, 1);
    return t;
  }
  if (type == TokenType::UserDefined) return p;  // added tokens are stored as plain text
  std::string out;
  for (size_t i = 0; i < p.size();) {
    size_t n = utf8_len(p, i);
    auto it = unicode_to_byte_.find(utf8_decode(p, i, n));
    if (it != unicode_to_byte_.end())
      out += char(it->second);
    else
      out.append(p, i, n);
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int> ids) const {
  std::string out;
  int prev = -1;
  for (int id : ids) {
    SEC_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is outside the vocabulary of ", vocab_size(), " tokens");
    if (data_.types[size_t(id)] == TokenType::Control) continue;
    // Only the first piece loses the dummy-prefix space (prev stays -1 across skipped BOS/controls).
    out += token_text(prev, id);
    prev = id;
  }
  return out;
}

}  // namespace sec
