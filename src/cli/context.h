// --seqlen against the model's context (max_position_embeddings), for every command that has a
// --seqlen (eval --ppl, prune calibration, finetune / distill training). A --seqlen beyond the
// context is an error unless --allow-long-context: positions past it were never trained (RoPE
// extrapolates) and attention costs grow quadratically, so such a run is slow and meaningless by
// accident far more often than on purpose. A default --seqlen longer than the context is shortened
// to it. The option is declared here once.
#pragma once
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"

namespace sec {

inline void add_long_context_option(CLI::App& app, bool& allow) {
  app.add_flag("--allow-long-context", allow,
               "Accept a --seqlen beyond the model's context (max_position_embeddings): positions past it were "
               "never trained, and attention time grows quadratically");
}

// The sequence length to use: with `given` (the user wrote --seqlen), `value`, which must fit in the
// context of every model unless `allow`; otherwise `value`, the command's default, shortened to
// the context.
inline int64_t resolve_seqlen(bool given, int64_t value, bool allow, const std::vector<const Model*>& models) {
  int64_t context = INT64_MAX;
  std::string which;
  for (const Model* m : models) {
    if (int64_t(m->config.max_seq_len) < context) {
      context = m->config.max_seq_len;
      which = m->source.path;
    }
  }
  if (!given) {
    if (value > context) {
      log_info("--seqlen: using ", context, " tokens, the context of ", which, " (the default ", value, " is longer)");
      return context;
    }
    return value;
  }
  SEC_CHECK(allow || value <= context, "--seqlen ", value, " is longer than the context of ", which, " (", context,
            " tokens, max_position_embeddings): positions past it were never trained and attention time grows "
            "quadratically; use --seqlen ",
            context, " or less, or pass --allow-long-context to run it anyway");
  if (value > context)
    log_warn("--seqlen ", value, " is longer than the context of ", which, " (", context, " tokens)");
  return value;
}

}  // namespace sec
