// `loom serve`: an OpenAI-compatible HTTP server on one engine (docs/server.md). The port is
// taken before the model loads, so a busy port is a quick, clear error; SIGINT or SIGTERM stops
// taking requests, lets the running ones finish (up to --shutdown-timeout) and exits 0.
#include <iostream>

#include "loom/error.h"
#include "tools/loom/cli_options.h"
#include "tools/loom/command.h"
#include "tools/loom/engine_setup.h"
#include "tools/loom/serve/engine_loop.h"
#include "tools/loom/serve/http_server.h"
#include "tools/loom/stop_signals.h"

namespace loom::cli {

namespace fs = std::filesystem;

namespace {

// The name clients give as "model": the folder's name, or the checkpoint file's without ".bin".
std::string default_model_name(const fs::path& path) {
  const fs::path p = path.filename().empty() ? path.parent_path() : path;
  return p.extension() == ".bin" ? p.stem().string() : p.filename().string();
}

std::optional<serve::ChatTemplate> chat_template(const std::string& choice, const Engine& engine) {
  const Tokenizer* tokenizer = engine.tokenizer() ? &*engine.tokenizer() : nullptr;
  if (choice == "auto") return serve::ChatTemplate::for_model(engine.model().config().architecture, tokenizer);
  if (choice == "none") return std::nullopt;
  auto named = serve::ChatTemplate::named(choice);
  if (!named)
    throw UsageError("--chat-template " + choice + " is not one Loom knows: auto, none, " +
                     serve::ChatTemplate::names());
  if (!tokenizer) throw UsageError("--chat-template " + choice + " needs the model's tokenizer, and it has none");
  if (const std::string missing = named->missing_tokens(*tokenizer); !missing.empty())
    throw UsageError("--chat-template " + choice + " writes tokens the tokenizer '" + tokenizer->path().string() +
                     "' does not have (" + missing + "): give the template of this model's family, or auto");
  return named;
}

}  // namespace

int run_serve(std::span<const std::string> args) {
  std::string config_file, model, chat = "auto", served_name;
  std::vector<std::string> overrides, plugin_dirs;
  serve::ServerOptions server_options;
  std::int64_t port = server_options.port, max_waiting = 0, max_connections = 1024;
  double shutdown_timeout = 30;
  po::options_description options("loom serve");
  options.add_options()("config,c", po::value(&config_file), "the engine's TOML config (default: the defaults)")(
      "model,m", po::value(&model), "the model: a Hugging Face folder or a llama2.c .bin ([model] path)")(
      "host", po::value(&server_options.host)->default_value(server_options.host),
      "the address to listen on (0.0.0.0: every interface)")("port", po::value(&port)->default_value(port),
                                                             "the TCP port (0: any free one, printed at start)")(
      "served-model-name", po::value(&served_name),
      "the model's name in the API (default: the model's folder or file)")(
      "chat-template", po::value(&chat)->default_value(chat),
      "auto (from the model's architecture) | none | llama-2 | mistral")(
      "max-waiting", po::value(&max_waiting)->default_value(max_waiting),
      "answer 429 while this many samples wait to run (0: no limit, requests wait)")(
      "max-connections", po::value(&max_connections)->default_value(max_connections),
      "open connections at most (a thread each); more get 503")(
      "shutdown-timeout", po::value(&shutdown_timeout)->default_value(shutdown_timeout),
      "seconds SIGTERM waits for running requests before aborting them");
  add_set_option(options, overrides);
  add_plugin_dir_option(options, plugin_dirs);
  po::variables_map vm;
  if (!parse_or_help("serve",
                     "loom serve (--config FILE | -m MODEL) [--host ADDR] [--port N] [--chat-template NAME] "
                     "[--max-waiting N] [--set key=value]...",
                     options, {}, args, vm))
    return 0;
  if (config_file.empty() && model.empty()) throw UsageError("give --config FILE or -m/--model PATH (or both)");
  if (port < 0 || port > 65535) throw UsageError("--port must be 0 .. 65535");
  if (max_waiting < 0) throw UsageError("--max-waiting must be >= 0");
  if (max_connections < 1) throw UsageError("--max-connections must be >= 1");
  if (!(shutdown_timeout >= 0)) throw UsageError("--shutdown-timeout must be >= 0 seconds");
  if (!model.empty()) overrides.push_back("model.path=" + fs::absolute(model).string());
  server_options.port = static_cast<std::uint16_t>(port);
  server_options.max_connections = static_cast<std::size_t>(max_connections);

  serve::HttpServer server(server_options);  // the port first: a busy one fails before the model loads
  EngineSetup setup = setup_engine(config_file, overrides, plugin_dirs, std::cerr);
  Engine& engine = *setup.engine;
  serve::ServedModel served;
  served.name = served_name.empty() ? default_model_name(model_path_of(setup.config)) : served_name;
  served.max_model_len = engine.max_model_len();
  served.vocab_size = static_cast<std::size_t>(engine.model().config().vocab_size);
  served.defaults = sampling_defaults(setup.config);
  served.tokenizer = engine.tokenizer() ? &*engine.tokenizer() : nullptr;
  served.chat = chat_template(chat, engine);
  serve::EngineLoop loop(engine, {static_cast<std::size_t>(max_waiting)});
  std::cerr << "loom serve: model " << served.name
            << " (chat template: " << (served.chat ? served.chat->name() : std::string("none")) << ")\n"
            << "loom serve: listening on http://" << server_options.host << ":" << server.port() << std::endl;
  server.run(served, loop, /*stop_on_signals=*/true);

  std::cerr << "loom serve: stopped by " << signal_name(server.stopped_by()) << ": no new requests; finishing the "
            << loop.unfinished() << " unfinished (up to " << shutdown_timeout << " s)" << std::endl;
  const bool finished = loop.drain(std::chrono::milliseconds(static_cast<std::int64_t>(shutdown_timeout * 1000)));
  server.close_connections(std::chrono::seconds(5));
  const EngineStats stats = engine.stats();
  std::cerr << "loom serve: " << (finished ? "every request finished" : "the unfinished requests were aborted") << "; "
            << stats.generated_tokens << " tokens generated in " << stats.steps << " steps" << std::endl;
  return 0;
}

}  // namespace loom::cli
