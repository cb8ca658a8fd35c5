#include "eval/report.h"

#include <ctime>

#include "core/file.h"

namespace sec {

ReportJson dataset_record(const Corpus& corpus) {
  return ReportJson{{"path", corpus.path},
                    {"sha256", corpus.sha256},
                    {"format", corpus.jsonl ? "jsonl" : "text"},
                    {"documents", corpus.documents.size()}};
}

ReportJson file_record(const std::string& path) { return ReportJson{{"path", path}, {"sha256", sha256_file(path)}}; }

ReportJson model_record(const Model& m) {
  const Config& c = m.config;
  ReportJson cfg = {{"architecture", c.architecture},
                    {"dim", c.dim},
                    {"layers", c.n_layers()},
                    {"head_dim", c.head_dim},
                    {"vocab_size", c.vocab_size},
                    {"max_seq_len", c.max_seq_len},
                    {"tied_embeddings", c.tied_embeddings}};
  if (c.uniform_blocks() && c.n_layers() > 0) {
    cfg["n_heads"] = c.blocks[0].n_heads;
    cfg["n_kv_heads"] = c.blocks[0].n_kv_heads;
    cfg["ffn_dim"] = c.blocks[0].ffn_dim;
  } else {  // structurally pruned: dims per block
    ReportJson heads = ReportJson::array(), kv = ReportJson::array(), ffn = ReportJson::array();
    for (const auto& b : c.blocks) {
      heads.push_back(b.n_heads);
      kv.push_back(b.n_kv_heads);
      ffn.push_back(b.ffn_dim);
    }
    cfg["n_heads"] = heads;
    cfg["n_kv_heads"] = kv;
    cfg["ffn_dim"] = ffn;
  }
  return ReportJson{
      {"path", m.source.path},     {"format", m.source.format}, {"file_dtype", dtype_name(m.source.file_dtype)},
      {"sha256", m.source.sha256}, {"params", param_count(c)},  {"config", cfg}};
}

std::string utc_timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

ReportJson report_header(const std::string& command) {
  return ReportJson{{"command", command}, {"secateur_version", SECATEUR_VERSION}, {"timestamp", utc_timestamp()}};
}

}  // namespace sec
