// Shared pieces of the JSON reports that eval, prune and finetune print with --json: where the data
// and the model came from (paths + sha256), the secateur version and a timestamp, so a number can
// be traced back to exactly what produced it.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "calib/dataset.h"
#include "model/model.h"

namespace sec {

// Reports keep their keys in insertion order (header first), unlike nlohmann::json which sorts them.
using ReportJson = nlohmann::ordered_json;

// {"path", "sha256", "format": "text"|"jsonl", "documents"} of a loaded corpus.
ReportJson dataset_record(const Corpus& corpus);
// {"path", "sha256"} of any file (hashes it).
ReportJson file_record(const std::string& path);
// {"path", "format", "file_dtype", "sha256", "config": {architecture, dim, layers, heads, kv_heads,
// head_dim, ffn_dim (per block when they differ), vocab_size, max_seq_len, tied_embeddings},
// "params"}.
ReportJson model_record(const Model& m);
// {"command", "secateur_version", "timestamp" (UTC, ISO 8601)}: the first keys of every report.
ReportJson report_header(const std::string& command);
// Current UTC time as "2024-05-01T12:34:56Z".
std::string utc_timestamp();

}  // namespace sec
