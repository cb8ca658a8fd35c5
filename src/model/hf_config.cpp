#include "model/hf_config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "core/error.h"
#include "core/file.h"
#include "io/json.h"

namespace sec {

using json = nlohmann::json;

namespace {
// An integer in [-1, 2^31): config sizes and token ids (-1: none).
int int_value(const json& v, const char* key, const std::string& where) {
  SEC_CHECK(v.is_number_integer(), where, ": config.json \"", key, "\" should be an integer, got ", v.dump());
  // (get<int64_t> would turn 2^64 - 1 into -1, which is in range.)
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() < (uint64_t(1) << 31)
                                           : v.get<int64_t>() >= -1 && v.get<int64_t>() < (int64_t(1) << 31);
  SEC_CHECK(fits, where, ": config.json \"", key, "\" is out of range: ", v.dump());
  return int(v.get<int64_t>());
}
int get_int(const json& j, const char* key, const std::string& where, int def, bool required = false) {
  if (!j.contains(key) || j[key].is_null()) {
    SEC_CHECK(!required, where, ": config.json lacks \"", key, "\"");
    return def;
  }
  return int_value(j[key], key, where);
}
// A number stored as float: it must be finite and within float range (narrowing 1e300 to float is
// undefined behaviour).
float get_float(const json& j, const char* key, const std::string& where, double def) {
  if (!j.contains(key) || j[key].is_null()) return float(def);
  SEC_CHECK(j[key].is_number(), where, ": config.json \"", key, "\" should be a number, got ", j[key].dump());
  const double v = j[key].get<double>();
  SEC_CHECK(std::isfinite(v) && std::fabs(v) <= std::numeric_limits<float>::max(), where, ": config.json \"", key,
            "\" = ", v, " is out of range");
  return float(v);
}
bool get_bool(const json& j, const char* key, const std::string& where, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  SEC_CHECK(j[key].is_boolean(), where, ": config.json \"", key, "\" should be true or false, got ", j[key].dump());
  return j[key].get<bool>();
}
// The shortest decimal that reads back as the same float (1e-05, not 9.999999747378752e-06).
double tidy(float f) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  return std::stod(std::string(buf, r.ptr));
}
}  // namespace

Config config_from_hf_json(const json& j, const std::string& where) {
  SEC_CHECK(j.is_object(), where, ": config.json is not a JSON object");
  Config c;
  std::string mt = j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  SEC_CHECK(mt != "opt" && mt != "phi" && mt != "gpt2", where, ": model_type '", mt,
            "' uses LayerNorm; secateur supports RMSNorm models (llama, mistral, qwen2) so far");
  SEC_CHECK(mt == "llama" || mt == "mistral" || mt == "qwen2" || mt == kSlicedModelType, where,
            ": unsupported model_type '", mt, "' (supported: llama, mistral, qwen2, ", kSlicedModelType, ")");
  const bool sliced = mt == kSlicedModelType;
  std::string base = mt;
  if (sliced) {
    base = j.contains("base_model_type") && j["base_model_type"].is_string() ? j["base_model_type"].get<std::string>()
                                                                             : "";
    SEC_CHECK(base == "llama" || base == "qwen2", where, ": \"base_model_type\" must be llama or qwen2");
  }
  c.architecture = base == "qwen2" ? "qwen2" : "llama";
  c.dim = get_int(j, "hidden_size", where, 0, true);
  c.vocab_size = get_int(j, "vocab_size", where, 0, true);
  int layers = get_int(j, "num_hidden_layers", where, 0, true);
  int heads = get_int(j, "num_attention_heads", where, 0, true);
  int kv = get_int(j, "num_key_value_heads", where, heads);
  int ffn = get_int(j, "intermediate_size", where, 0, true);
  SEC_CHECK(layers > 0 && heads > 0 && layers <= kMaxLayers, where,
            ": config.json needs positive num_hidden_layers and num_attention_heads");
  c.head_dim = get_int(j, "head_dim", where, c.dim / heads);
  c.max_seq_len = get_int(j, "max_position_embeddings", where, 2048);
  c.norm_eps = get_float(j, "rms_norm_eps", where, 1e-6);
  c.rope_theta = get_float(j, "rope_theta", where, 10000.0);
  c.tied_embeddings = get_bool(j, "tie_word_embeddings", where, false);
  c.attn_bias = get_bool(j, "attention_bias", where, base == "qwen2");
  SEC_CHECK(!get_bool(j, "mlp_bias", where, false), where, ": mlp_bias is not supported");
  c.bos_token_id = get_int(j, "bos_token_id", where, 1);
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
    SEC_CHECK(!j["eos_token_id"].empty() && j["eos_token_id"][0].is_number_integer(), where,
              ": config.json \"eos_token_id\" list is empty or not integers");
    c.eos_token_id = int_value(j["eos_token_id"][0], "eos_token_id", where);
  } else {
    c.eos_token_id = get_int(j, "eos_token_id", where, 2);
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    SEC_CHECK(rs.is_object(), where, ": config.json \"rope_scaling\" is not an object");
    std::string t = rs.contains("rope_type") && rs["rope_type"].is_string() ? rs["rope_type"].get<std::string>()
                    : rs.contains("type") && rs["type"].is_string()         ? rs["type"].get<std::string>()
                                                                            : "";
    if (t != "default" && !t.empty()) {
      SEC_CHECK(t == "linear" || t == "llama3", where, ": unsupported rope_scaling type '", t,
                "' (supported: linear, llama3)");
      c.rope_scaling.type = t;
      c.rope_scaling.factor = get_float(rs, "factor", where, 1.0);
      c.rope_scaling.low_freq_factor = get_float(rs, "low_freq_factor", where, 1.0);
      c.rope_scaling.high_freq_factor = get_float(rs, "high_freq_factor", where, 4.0);
      c.rope_scaling.original_max_position = get_int(rs, "original_max_position_embeddings", where, 8192);
    }
  }
  if (j.contains("secateur_layers")) {
    const json& sl = j["secateur_layers"];
    SEC_CHECK(sl.is_array() && int(sl.size()) == layers, where, ": \"secateur_layers\" must list ", layers,
              " blocks (num_hidden_layers)");
    for (const auto& b : sl) {
      SEC_CHECK(b.is_object(), where, ": \"secateur_layers\" entries must be objects");
      c.blocks.push_back(BlockDims{get_int(b, "num_attention_heads", where, 0, true),
                                   get_int(b, "num_key_value_heads", where, 0, true),
                                   get_int(b, "intermediate_size", where, 0, true)});
    }
  } else {
    c.blocks.assign(size_t(layers), BlockDims{heads, kv, ffn});
  }
  if (sliced) {
    SEC_CHECK(j.contains("secateur_residual") && j["secateur_residual"].is_object(), where, ": a ", kSlicedModelType,
              " config needs \"secateur_residual\"");
    const json& r = j["secateur_residual"];
    SEC_CHECK(r.contains("widths") && r["widths"].is_array() && int(r["widths"].size()) == 2 * layers + 1, where,
              ": \"secateur_residual\".widths must list 2 x num_hidden_layers + 1 widths");
    for (const auto& w : r["widths"]) {
      SEC_CHECK(w.is_number_integer() && w.get<int64_t>() > 0 && w.get<int64_t>() < (int64_t(1) << 31), where,
                ": \"secateur_residual\".widths must be positive integers");
      c.resid_dims.push_back(w.get<int>());
    }
    for (const char* key : {"attn_shortcut", "mlp_shortcut"}) {
      SEC_CHECK(r.contains(key) && r[key].is_array() && int(r[key].size()) == layers, where, ": \"secateur_residual\".",
                key, " must list one boolean per block");
      for (int l = 0; l < layers; l++) {
        SEC_CHECK(r[key][size_t(l)].is_boolean(), where, ": \"secateur_residual\".", key, " must be booleans");
        (std::string(key) == "attn_shortcut" ? c.blocks[size_t(l)].attn_shortcut : c.blocks[size_t(l)].mlp_shortcut) =
            r[key][size_t(l)].get<bool>();
      }
    }
    c.norm_mean_dim = get_int(r, "norm_mean_dim", where, 0);
  }
  if (j.contains("secateur_provenance")) {
    const json& p = j["secateur_provenance"];
    SEC_CHECK(p.is_object(), where, ": \"secateur_provenance\" is not an object");
    for (auto it = p.begin(); it != p.end(); ++it)
      c.provenance[it.key()] = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
  }
  check_config_from_file(c, where);
  return c;
}

void check_config_from_file(const Config& c, const std::string& where) {
  try {
    c.validate();
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  SEC_CHECK(c.n_layers() <= kMaxLayers, where, ": ", c.n_layers(), " blocks exceed the limit of ", kMaxLayers);
  SEC_CHECK(c.max_seq_len >= 1, where, ": the maximum sequence length must be positive (got ", c.max_seq_len, ")");
  // q/kv widths are ints (Config::q_dim): heads x head_dim must not overflow.
  for (int l = 0; l < c.n_layers(); l++) {
    const BlockDims& b = c.blocks[size_t(l)];
    SEC_CHECK(
        int64_t(b.n_heads) * c.head_dim < (int64_t(1) << 31) && int64_t(b.n_kv_heads) * c.head_dim < (int64_t(1) << 31),
        where, ": block ", l, ": ", b.n_heads, " heads x head_dim ", c.head_dim, " exceeds 2^31 - 1");
  }
  const RopeScaling& rs = c.rope_scaling;
  if (!rs.type.empty()) {
    SEC_CHECK(rs.factor > 0, where, ": rope_scaling factor must be positive (got ", rs.factor, ")");
    if (rs.type == "llama3")
      SEC_CHECK(rs.low_freq_factor > 0 && rs.high_freq_factor > rs.low_freq_factor && rs.original_max_position >= 1,
                where, ": llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor and a positive ",
                "original_max_position_embeddings (got ", rs.low_freq_factor, ", ", rs.high_freq_factor, ", ",
                rs.original_max_position, ")");
  }
}

Config read_hf_config(const std::string& path) {
  std::string p = is_directory(path) ? path + "/config.json" : path;
  return config_from_hf_json(parse_json(read_text_file(p), p), p);
}

nlohmann::ordered_json config_to_hf_json(const Config& c) {
  nlohmann::ordered_json j;
  // The model type follows the biases: q/k/v biases are Qwen2's layout (a Transformers Llama with
  // attention_bias also has o_proj biases), and Transformers' Qwen2 always has them.
  const bool qwen = c.attn_bias;
  const bool sliced = !c.plain_residual();
  j["architectures"] = {sliced ? "SecateurSliceGptForCausalLM" : qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
  j["model_type"] = sliced ? kSlicedModelType : qwen ? "qwen2" : "llama";
  if (sliced) j["base_model_type"] = qwen ? "qwen2" : "llama";
  int max_heads = 0, max_kv = 0, max_ffn = 0;
  for (const auto& b : c.blocks) {
    max_heads = std::max(max_heads, b.n_heads);
    max_kv = std::max(max_kv, b.n_kv_heads);
    max_ffn = std::max(max_ffn, b.ffn_dim);
  }
  j["hidden_size"] = c.dim;
  j["intermediate_size"] = max_ffn;
  j["num_hidden_layers"] = c.n_layers();
  j["num_attention_heads"] = max_heads;
  j["num_key_value_heads"] = max_kv;
  j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = c.max_seq_len;
  j["rms_norm_eps"] = tidy(c.norm_eps);
  j["rope_theta"] = tidy(c.rope_theta);
  if (c.rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    nlohmann::ordered_json rs;
    rs["rope_type"] = c.rope_scaling.type;
    rs["factor"] = tidy(c.rope_scaling.factor);
    if (c.rope_scaling.type == "llama3") {
      rs["low_freq_factor"] = tidy(c.rope_scaling.low_freq_factor);
      rs["high_freq_factor"] = tidy(c.rope_scaling.high_freq_factor);
      rs["original_max_position_embeddings"] = c.rope_scaling.original_max_position;
    }
    j["rope_scaling"] = rs;
  }
  j["attention_bias"] = c.attn_bias;
  j["mlp_bias"] = false;
  j["tie_word_embeddings"] = c.tied_embeddings;
  j["vocab_size"] = c.vocab_size;
  j["bos_token_id"] = c.bos_token_id;
  j["eos_token_id"] = c.eos_token_id;
  j["torch_dtype"] = "float32";
  if (sliced) {
    nlohmann::ordered_json r, widths = nlohmann::ordered_json::array(), attn = nlohmann::ordered_json::array(),
                              mlp = nlohmann::ordered_json::array();
    for (int p = 0; p < c.n_resid_points(); p++) widths.push_back(c.resid_width(p));
    for (const auto& b : c.blocks) attn.push_back(b.attn_shortcut), mlp.push_back(b.mlp_shortcut);
    r["widths"] = widths;
    r["attn_shortcut"] = attn;
    r["mlp_shortcut"] = mlp;
    r["norm_mean_dim"] = c.norm_mean_dim;
    j["secateur_residual"] = r;
  }
  if (!c.uniform_blocks() || sliced) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::array();
    for (const auto& b : c.blocks)
      layers.push_back({{"num_attention_heads", b.n_heads},
                        {"num_key_value_heads", b.n_kv_heads},
                        {"intermediate_size", b.ffn_dim}});
    j["secateur_layers"] = layers;
  }
  if (!c.provenance.empty()) {
    nlohmann::ordered_json p = nlohmann::ordered_json::object();
    for (const auto& [k, v] : c.provenance) p[k] = v;
    j["secateur_provenance"] = p;
  }
  return j;
}

void write_hf_config(const Config& c, const std::string& path) {
  write_file_atomic(path, config_to_hf_json(c).dump(2) + "\n");
}

}  // namespace sec
