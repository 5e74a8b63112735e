// The corpus replayer: the main of every fuzz target outside --config=fuzz. Runs
// LLVMFuzzerTestOneInput once on each file named on the command line (a directory: each file in
// it), as libFuzzer does with file arguments, so a seed corpus and every crashing input kept in
// it replay in the normal (and --config=asan) suite. A crash is the process's crash.

#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

void replay(const std::string& path, unsigned& count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    exit(2);
  }
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fprintf(stderr, "replay: %s (%zu bytes)\n", path.c_str(), bytes.size());
  // A copy of exactly the input's size, as libFuzzer passes it: reads past the end are caught.
  std::vector<uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.data(), data.size());
  count++;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  unsigned count = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      DIR* dir = opendir(argv[i]);
      std::vector<std::string> names;
      while (auto* e = readdir(dir)) {
        if (e->d_name[0] != '.') names.push_back(std::string(argv[i]) + "/" + e->d_name);
      }
      closedir(dir);
      for (auto& name : names) replay(name, count);
    } else {
      replay(argv[i], count);
    }
  }
  printf("replayed %u inputs\n", count);
  return count == 0 ? 1 : 0;   // an empty corpus is a mistake, not a pass
}
