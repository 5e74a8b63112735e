// nestbed-host: the process that runs one process-placed component (see system/host/host.h).

#include "system/host/host.h"
#include "system/registry.h"

int main(int argc, char* argv[]) {
  nb::Registry registry;
  nb::addBuiltinTypes(registry);
  return nb::hostMain(argc, argv, registry);
}
