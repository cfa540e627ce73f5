// castgate: the SSH gateway that records every session.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "gateway/config.h"
#include "gateway/gateway.h"

namespace castgate {
std::string print_public_keys(const GatewayContext& ctx);
std::string print_ssh_config(const GatewayConfig& config);
}  // namespace castgate

int main(int argc, char** argv) {
  using namespace castgate;
  // Signals are taken through signalfd by the main loops; block them before any fork or thread.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGCHLD);  // worker processes ending: the parent's loop reaps them
  sigaddset(&mask, SIGHUP);   // reload the configuration (the parent; others leave it pending)
  sigaddset(&mask, SIGUSR1);  // a retired worker process: end your sessions (too many retired)
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    // `castgate ssh-config ...` is `castgate --print-ssh-config ...`.
    std::vector<const char*> args(argv, argv + argc);
    if (argc > 1 && std::string_view(argv[1]) == "ssh-config") args[1] = "--print-ssh-config";
    auto config = parse_config(static_cast<int>(args.size()), args.data());
    if (!config) return 0;
    if (config->print_ssh_config) {
      ssh_init();
      std::cout << print_ssh_config(*config);
      return 0;
    }
    log::set_level(config->log_level == "debug"   ? log::Level::kDebug
                   : config->log_level == "warn"  ? log::Level::kWarn
                   : config->log_level == "error" ? log::Level::kError
                                                  : log::Level::kInfo);
    ssh_init();
    auto context = load_context(*config);
    if (config->print_user_ca || config->print_recording_key) {
      std::cout << print_public_keys(*context);
      return 0;
    }
    Gateway gateway(std::move(context));
    int rc = gateway.run();
    ssh_finalize();
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "castgate: %s\n", e.what());
    return 2;
  }
}
