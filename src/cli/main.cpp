// secateur: prune, recover, evaluate and export Llama-family language models on CPU.
#include <algorithm>
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"
#include "core/file.h"
#include "core/log.h"
#include "core/threads.h"

namespace sec {
std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}
}  // namespace sec

int main(int argc, char** argv) {
  // SIGINT / SIGTERM / SIGHUP remove the temporary files of unfinished outputs and exit 128 + signal.
  sec::install_interrupt_cleanup();
  CLI::App app{"secateur " SECATEUR_VERSION
               " - make Llama-family language models smaller and faster by pruning them, and keep them good"};
  app.set_version_flag("--version", "secateur " SECATEUR_VERSION);
  app.require_subcommand(1);
  int threads = 0;
  bool quiet = false, verbose = false;
  app.add_option("-t,--threads", threads, "Number of threads (default: OMP_NUM_THREADS if set, else all cores)");
  app.add_flag("-q,--quiet", quiet, "Only print results and errors (no progress)");
  app.add_flag("-v,--verbose", verbose, "Print debugging information");
  app.parse_complete_callback([&] {
    sec::set_log_level(quiet ? sec::LogLevel::Warn : verbose ? sec::LogLevel::Debug : sec::LogLevel::Info);
    sec::set_num_threads(threads);
  });

  auto specs = sec::command_registry();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& spec : specs) spec.setup(*app.add_subcommand(spec.name, spec.description));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const sec::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "secateur: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::fprintf(stderr, "secateur: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {  // a bug: still a message and an exit status, not an abort
    std::fflush(stdout);
    std::fprintf(stderr, "secateur: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
