// Dumps a model for the PyTorch reference (tools/reference/llama_ref.py): DIR/manifest.json with
// the config and tensor table, DIR/weights.f32 with the raw tensors. Deliberately independent of
// secateur's own file formats so that the oracle cannot share a bug with them.
#pragma once
#include <string>

#include "model/model.h"

namespace sec::testing {
void write_reference_model(const Model& m, const std::string& dir);
}
