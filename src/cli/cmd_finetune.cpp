// secateur finetune MODEL -o OUT --data FILE [--format text|alpaca] [--lora-rank 8 ...] [--merge]
// LoRA recovery (or --full fine-tuning) of a (pruned) model; writes the PEFT adapter or the model.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "cli/output.h"
#include "cli/train_common.h"
#include "core/log.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct FinetuneArgs {
  std::string model;
  OutputArgs out;
  TrainArgs t;
  bool merge = false, merge_fill = false, full = false;
};

void run_finetune(const FinetuneArgs& a) {
  // Output mistakes fail now, not after the training.
  output_save_options(a.out, DType::F32);
  if (!a.full && !a.merge) check_adapter_output(a.out);
  LoadOptions lo;
  lo.require_tokenizer = true;
  Model m = load_model(a.model, lo);
  TrainArgs t = a.t;
  t.seqlen = resolve_train_seqlen(t, {&m});
  TrainData d = load_train_data(t, *m.tokenizer);
  TrainerOptions o = trainer_options(t, "finetune");
  std::unique_ptr<LoraAdapters> lora;
  if (!a.full) lora = make_lora(a.t, m, a.merge_fill);
  log_info("finetune: ", a.full ? "full fine-tuning" : lora_summary(*lora), "; ", d.train.size(), " samples of ",
           t.seqlen, " tokens, batch ", a.t.batch, " (micro ", a.t.micro_batch, "), lr ", a.t.lr, ", ", a.t.epochs,
           " epochs");
  TrainResult r = train(m, lora.get(), d.train, d.eval, o);
  std::string written;
  if (lora && !a.merge) {
    CommitGroup outputs;  // the adapter's files appear together, or none (nor the directory)
    create_output_directory(a.out.path);
    lora->save_peft(a.out.path, m.source.path);
    outputs.commit();
    written = "adapter";
  } else {
    if (lora) lora->merge_into(m, a.merge_fill);
    m.config.provenance["recovery"] = a.full ? "full fine-tuning" : lora_summary(*lora) + " (merged)";
    m.config.provenance["recovery_data_sha256"] = d.sha256;
    save_model(m, a.out.path, output_save_options(a.out, m.source.file_dtype));
    written = "model";
  }
  print_train_result(t, "finetune", r, a.out.path, written);
}

CommandRegistration reg(
    {"finetune", "Recover a pruned model with LoRA (or full fine-tuning) on text or alpaca data", 60,
     [](CLI::App& app) {
       auto a = std::make_shared<FinetuneArgs>();
       app.add_option("model", a->model, "Model: HF directory, GGUF file or llama2.c .bin")->required();
       add_output_options(app, a->out, "Output: the adapter directory (PEFT layout), or with --merge the model");
       add_train_options(app, a->t);
       app.add_flag("--merge", a->merge, "Merge the adapter and write the whole model");
       app.add_flag("--merge-fill", a->merge_fill,
                    "Let the adapter change pruned (zero) weights too (plain LoRA, dense merge)");
       app.add_flag("--full", a->full, "Full fine-tuning instead of LoRA (pruned zeros stay zero)");
       app.callback([a] { run_finetune(*a); });
     }});

}  // namespace
}  // namespace sec
