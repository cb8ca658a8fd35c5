// Each CLI command lives in its own file and registers itself at static-initialisation time:
//
//   static sec::CommandRegistration reg({"info", "Show a model's architecture ...", 10,
//       [](CLI::App& app) { auto o = std::make_shared<Opts>(); app.add_option(...);
//                           app.callback([o] { run_info(*o); }); }});
//
// main() turns the registry into subcommands, sorted by `order`. Commands throw sec::Error for
// user errors; main prints "secateur: error: ..." and exits with status 1.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace sec {

struct CommandSpec {
  std::string name;
  std::string description;
  int order;  // position in --help
  std::function<void(CLI::App&)> setup;
};

std::vector<CommandSpec>& command_registry();

struct CommandRegistration {
  explicit CommandRegistration(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

}  // namespace sec
