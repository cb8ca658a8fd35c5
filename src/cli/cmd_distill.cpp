// secateur distill --teacher DENSE --student PRUNED -o OUT --data FILE [--kd-temp 1]
//                  [--hidden-loss cosine|mse --hidden-weight W] [--lora ... | --full]
// Knowledge distillation (Minitron, methods.md §6.3): the student learns the teacher's next-token
// distributions (KL), optionally plus a loss on block outputs.
#include "cli/command.h"
#include "cli/output.h"
#include "cli/train_common.h"
#include "model/model_io.h"

namespace sec {
namespace {

struct DistillArgs {
  std::string teacher, student, hidden_loss = "none", hidden_layers;
  OutputArgs out;
  TrainArgs t;
  float kd_temp = 1.f, hidden_weight = 1.f;
  bool lora = false, full = false, merge = false, merge_fill = false, no_hidden_balance = false;
};

void run_distill(const DistillArgs& a) {
  SEC_CHECK(!(a.lora && a.full), "--lora and --full exclude each other");
  // Output mistakes fail now, not after the training.
  output_save_options(a.out, DType::F32);
  if (a.lora && !a.merge) check_adapter_output(a.out);
  LoadOptions lo;
  lo.require_tokenizer = true;
  Model student = load_model(a.student, lo);
  Model teacher = load_model(a.teacher);
  TrainArgs t = a.t;
  t.seqlen = resolve_train_seqlen(t, {&student, &teacher});
  TrainData d = load_train_data(t, *student.tokenizer);
  TrainerOptions o = trainer_options(t, "distill");
  o.teacher = &teacher;
  o.kd_temp = a.kd_temp;
  o.hidden = parse_hidden_loss(a.hidden_loss);
  o.hidden_weight = a.hidden_weight;
  o.hidden_balance = !a.no_hidden_balance;
  if (o.hidden != HiddenLoss::None)
    o.hidden_layers = a.hidden_layers.empty()
                          ? default_hidden_layers(student.config.n_layers(), teacher.config.n_layers())
                          : parse_hidden_layers(a.hidden_layers, student.config.n_layers(), teacher.config.n_layers());
  std::unique_ptr<LoraAdapters> lora;
  if (a.lora) lora = make_lora(a.t, student, a.merge_fill);
  log_info("distill: teacher ", teacher.config.n_layers(), " blocks -> student ", student.config.n_layers(),
           " blocks; KL at temperature ", a.kd_temp,
           o.hidden != HiddenLoss::None ? cat(" + ", a.hidden_weight, " x ", a.hidden_loss, " hidden-state loss") : "",
           "; ", lora ? lora_summary(*lora) : std::string("full-parameter student"));
  TrainResult r = train(student, lora.get(), d.train, d.eval, o);
  std::string written;
  if (lora && !a.merge) {
    CommitGroup outputs;  // the adapter's files appear together, or none (nor the directory)
    create_output_directory(a.out.path);
    lora->save_peft(a.out.path, student.source.path);
    outputs.commit();
    written = "adapter";
  } else {
    if (lora) lora->merge_into(student, a.merge_fill);
    student.config.provenance["recovery"] =
        cat("distillation from ", teacher.source.path, " (kd-temp ", a.kd_temp, ", hidden ", a.hidden_loss, ")");
    student.config.provenance["recovery_data_sha256"] = d.sha256;
    save_model(student, a.out.path, output_save_options(a.out, student.source.file_dtype));
    written = "model";
  }
  print_train_result(t, "distill", r, a.out.path, written);
}

CommandRegistration reg(
    {"distill", "Retrain a pruned student by knowledge distillation from the dense teacher", 61, [](CLI::App& app) {
       auto a = std::make_shared<DistillArgs>();
       app.add_option("--teacher", a->teacher, "Dense teacher model")->required();
       app.add_option("--student", a->student, "Pruned student model")->required();
       add_output_options(app, a->out, "Output: the student model, or with --lora (no --merge) the adapter directory");
       add_train_options(app, a->t);
       app.add_option("--kd-temp", a->kd_temp, "Softmax temperature of the KL loss")->capture_default_str();
       app.add_option("--hidden-loss", a->hidden_loss, "none, cosine or mse on block outputs")->capture_default_str();
       app.add_option("--hidden-weight", a->hidden_weight,
                      "Weight of the hidden-state loss (relative to the logit loss's magnitude, see "
                      "--no-hidden-balance)")
           ->capture_default_str();
       app.add_option("--hidden-layers", a->hidden_layers,
                      "Student:teacher block pairs of the hidden-state loss, e.g. 0:1,2:5 (default: every student "
                      "block with the evenly spaced teacher block); widths may differ (a learned projection)");
       app.add_flag("--no-hidden-balance", a->no_hidden_balance,
                    "Use --hidden-weight as is instead of rescaling the hidden term to the logit loss every batch");
       app.add_flag("--lora", a->lora, "Train LoRA adapters on the student (options --lora-*)");
       app.add_flag("--full", a->full, "Train every student weight (default)");
       app.add_flag("--merge", a->merge, "With --lora: merge and write the whole model");
       app.add_flag("--merge-fill", a->merge_fill, "With --lora: adapter may change pruned zeros");
       app.callback([a] { run_distill(*a); });
     }});

}  // namespace
}  // namespace sec
