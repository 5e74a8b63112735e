// The component host for hardware-model tests: a registry of hw/smmuv3, hw/pci, hw/endpoint.

#include "system/host/host.h"
#include "tests/hw/hw-testing.h"

int main(int argc, char* argv[]) { return nb::hostMain(argc, argv, nb::hw::testing::hwRegistry()); }
