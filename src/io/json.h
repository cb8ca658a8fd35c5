// JSON text -> nlohmann::json for every reader of JSON files (safetensors headers and indexes,
// config.json, tokenizer.json, task and corpus JSONL lines): one place that turns every failure
// into a sec::Error naming the file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sec {

// Arrays/objects nested deeper than this are rejected. Real files nest a handful of levels;
// nlohmann's copy, comparison and dump recurse once per level, so a small file of a million '['
// would otherwise overflow the stack in code far from the parser.
constexpr int kMaxJsonDepth = 100;

// Parses `text`. Throws Error "<where>: <what>: <parser message>" on a syntax error, and
// "<where>: JSON nested more than 100 levels deep ..." before parsing a too deeply nested text.
nlohmann::json parse_json(std::string_view text, const std::string& where, const char* what = "not valid JSON");

// Whether s is well-formed UTF-8 (what a JSON string must be; nlohmann's dump throws otherwise).
bool valid_utf8(std::string_view s);

}  // namespace sec
