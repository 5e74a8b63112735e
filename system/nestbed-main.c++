// nestbed: the command line. See cli.h.

#include "system/cli/cli.h"
#include "system/registry.h"

int main(int argc, char* argv[]) {
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  return nb::nestbedMain(argc, argv, nb::CliConfig{registry, "nestbed-host"});
}
