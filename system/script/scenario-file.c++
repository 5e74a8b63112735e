// Scenario file loading. See scenario-file.h.

#include "system/script/scenario-file.h"

#include "util/suggest.h"
#include "util/text-bounds.h"

#include <capnp/dynamic.h>
#include <kj/debug.h>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdlib.h>
#include <unistd.h>

namespace nb {

kj::String KJ_STRINGIFY(const ScenarioError& e) {
  if (e.line == 0) return kj::str(e.file, ": ", e.message);
  return kj::str(e.file, ":", e.line, ":", e.column, ": ", e.message);
}

namespace {

// Replaces `${name}` and `${name:-default}` by the parameters' values, outside comments (a
// `#` outside a string literal runs to the end of its line). A value may not span lines, so
// every line keeps its number. Unknown names without a default are errors. Every name referred
// to is added to `used`.
kj::Array<const char> substituteParams(kj::ArrayPtr<const char> text,
                                       kj::ArrayPtr<const ScenarioParam> params,
                                       kj::StringPtr file, kj::Vector<ScenarioError>& errors,
                                       kj::Vector<kj::String>& used) {
  kj::Vector<char> out(text.size());
  uint32_t line = 1, column = 1;
  bool inString = false, inComment = false;
  for (size_t i = 0; i < text.size(); i++) {
    if (!inComment && text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = i + 2;
      while (end < text.size() && text[end] != '}' && text[end] != '\n') end++;
      if (end < text.size() && text[end] == '}') {
        kj::StringPtr inner(text.begin() + i + 2, end - i - 2);
        kj::String name = kj::heapString(inner), fallback;
        bool hasDefault = false;
        for (size_t k = 0; k + 1 < inner.size(); k++) {
          if (inner[k] == ':' && inner[k + 1] == '-') {
            name = kj::heapString(inner.slice(0, k));
            fallback = kj::heapString(inner.slice(k + 2));
            hasDefault = true;
            break;
          }
        }
        if (std::none_of(used.begin(), used.end(), [&](auto& u) { return u == name; })) {
          used.add(kj::heapString(name));
        }
        kj::Maybe<kj::StringPtr> value;
        for (auto& p : params) {
          if (p.name == name) value = p.value;
        }
        KJ_IF_MAYBE(v, value) {
          out.addAll(*v);
        } else if (hasDefault) {
          out.addAll(fallback);
        } else {
          errors.add(ScenarioError{kj::heapString(file), line, column,
                                   kj::str("scenario parameter '", name,
                                           "' has no value (--define ", name, "=... or ${", name,
                                           ":-default})")});
        }
        column += end + 1 - i;
        i = end;
        continue;
      }
    }
    char c = text[i];
    out.add(c);
    if (inString) {
      if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
        out.add(text[++i]);
        column++;
      } else if (c == '"') {
        inString = false;
      }
    } else if (!inComment) {
      if (c == '"') inString = true;
      if (c == '#') inComment = true;
    }
    if (c == '\n') {
      line++;
      column = 1;
      inComment = false;
      inString = false;
    } else {
      column++;
    }
  }
  return out.releaseAsArray();
}

// Delegates to the disk file but collects errors instead of throwing at the first, so every
// parse error is reported together.
class CollectingFile final : public capnp::SchemaFile {
public:
  CollectingFile(kj::Own<capnp::SchemaFile> inner, kj::Vector<ScenarioError>& errors,
                 kj::ArrayPtr<const ScenarioParam> params, kj::Vector<kj::String>& used,
                 size_t& refusedAt)
      : inner_(kj::mv(inner)), errors_(errors), params_(params), used_(used),
        refusedAt_(refusedAt) {}
  kj::StringPtr getDisplayName() const override { return inner_->getDisplayName(); }
  kj::Array<const char> readContent() const override {
    auto text = substituteParams(inner_->readContent(), params_, getDisplayName(), errors_, used_);
    // The parser recurses per nested bracket: bound the text (parameters substituted) first.
    KJ_IF_MAYBE(e, textBoundsError(text, MAX_SCENARIO_BYTES, MAX_TEXT_DEPTH)) {
      errors_.add(ScenarioError{kj::heapString(getDisplayName()), e->line, e->column,
                                kj::str("scenario text too large to parse: ", e->message)});
      refusedAt_ = errors_.size();   // what the parser says of the empty text is noise
      return kj::heapArray<const char>(0);
    }
    return text;
  }
  kj::Maybe<kj::Own<capnp::SchemaFile>> import(kj::StringPtr path) const override {
    return inner_->import(path);
  }
  bool operator==(const capnp::SchemaFile& other) const override { return &other == this; }
  bool operator!=(const capnp::SchemaFile& other) const override { return &other != this; }
  size_t hashCode() const override { return reinterpret_cast<uintptr_t>(this); }
  void reportError(SourcePos start, SourcePos end, kj::StringPtr message) const override {
    errors_.add(ScenarioError{kj::heapString(getDisplayName()), start.line + 1, start.column + 1,
                              kj::heapString(message)});
  }

private:
  kj::Own<capnp::SchemaFile> inner_;
  kj::Vector<ScenarioError>& errors_;
  kj::ArrayPtr<const ScenarioParam> params_;
  kj::Vector<kj::String>& used_;
  size_t& refusedAt_;
};

}  // namespace

namespace {
kj::String programPath;

bool hasSchemas(kj::StringPtr dir) {
  return access(kj::str(dir, "/interfaces/scenario.capnp").cStr(), R_OK) == 0;
}

kj::String absolute(kj::String path) {
  if (path.startsWith("/")) return path;
  char cwd[4096];
  KJ_REQUIRE(getcwd(cwd, sizeof(cwd)) != nullptr, "cannot read the working directory");
  return kj::str(cwd, "/", path);
}

kj::String dirOf(kj::StringPtr path) {
  KJ_IF_MAYBE(slash, path.findLast('/')) { return kj::heapString(path.slice(0, *slash)); }
  return kj::str(".");
}
}  // namespace

void ScenarioLoader::setProgramPath(kj::StringPtr argv0) { programPath = kj::heapString(argv0); }

kj::String ScenarioLoader::defaultRoot() {
  if (const char* env = getenv("NESTBED_ROOT")) return absolute(kj::str(env));
  for (auto var : {"RUNFILES_DIR", "TEST_SRCDIR"}) {
    if (const char* dir = getenv(var)) {
      auto candidate = kj::str(dir, "/nestbed");
      if (hasSchemas(candidate)) return absolute(kj::mv(candidate));
    }
  }
  // Started directly (bazel-bin/system/nestbed from anywhere): the runfiles tree beside the
  // executable, as started or with symlinks resolved; or a runfiles tree it sits in.
  kj::Vector<kj::String> programs;
  if (programPath.size() > 0 && programPath.findFirst('/') != nullptr) {
    programs.add(kj::heapString(programPath));
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) programs.add(kj::heapString(self, n));
  for (auto& program : programs) {
    auto candidate = kj::str(program, ".runfiles/nestbed");
    if (hasSchemas(candidate)) return absolute(kj::mv(candidate));
    for (auto dir = dirOf(program); dir.size() > 1 && dir != "."; dir = dirOf(dir)) {
      if (hasSchemas(dir)) return absolute(kj::mv(dir));
    }
  }
  // A plain run from the workspace works too.
  char cwd[4096];
  KJ_REQUIRE(getcwd(cwd, sizeof(cwd)) != nullptr);
  return kj::str(cwd);
}

kj::Array<kj::String> unusedParams(kj::ArrayPtr<const LoadedScenario> scenarios,
                                   kj::ArrayPtr<const ScenarioParam> params) {
  kj::Vector<kj::StringPtr> used;
  for (auto& s : scenarios) {
    for (auto& p : s.parameters) {
      if (std::none_of(used.begin(), used.end(), [&](auto u) { return u == p; })) used.add(p);
    }
  }
  kj::Vector<kj::String> errors;
  for (auto& p : params) {
    if (std::any_of(used.begin(), used.end(), [&](auto u) { return u == p.name; })) continue;
    errors.add(kj::str("scenario parameter '", p.name, "' is not used by ",
                       scenarios.size() == 1 ? kj::str(scenarios[0].file)
                                             : kj::str("any of the scenarios"),
                       didYouMean(p.name, used),
                       used.empty() ? kj::str("; they take no parameters")
                                    : kj::str("; parameters: ", kj::strArray(used, ", "))));
  }
  return errors.releaseAsArray();
}

ScenarioLoader::ScenarioLoader(kj::StringPtr root) : fs_(kj::newDiskFilesystem()) {
  auto& rootDir = fs_->getRoot();
  root_ = rootDir.openSubdir(kj::Path::parse(root.startsWith("/") ? root.slice(1) : root));
  system_ = rootDir.openSubdir(kj::Path({"usr", "include"}));
  importPath_[0] = root_.get();
  importPath_[1] = system_.get();
}

kj::OneOf<LoadedScenario, kj::Array<ScenarioError>> ScenarioLoader::load(
    kj::StringPtr path, kj::ArrayPtr<const ScenarioParam> params) {
  kj::Vector<ScenarioError> errors;
  auto& cwd = fs_->getCurrent();
  auto fsPath = fs_->getCurrentPath().evalNative(path);
  auto fileError = [&](kj::StringPtr message) {
    errors.add(ScenarioError{kj::heapString(path), 0, 0, kj::heapString(message)});
    return errors.releaseAsArray();
  };
  KJ_IF_MAYBE(file, fs_->getRoot().tryOpenFile(fsPath)) {
    (void)cwd;
    auto bytes = (*file)->stat().size;
    if (bytes > MAX_SCENARIO_BYTES) {
      return fileError(kj::str("scenario file too large to parse: ", bytes,
                               " bytes is more than the limit of ", MAX_SCENARIO_BYTES, " bytes"));
    }
    auto text = (*file)->readAllText();
    auto parser = kj::heap<capnp::SchemaParser>();
    parser->loadCompiledTypeAndDependencies<rpc::Scenario>();
    auto inner = capnp::SchemaFile::newFromDirectory(fs_->getRoot(), kj::mv(fsPath), importPath_,
                                                     kj::heapString(path));
    capnp::ParsedSchema parsed;
    kj::Vector<kj::String> used;
    size_t refusedAt = 0;   // the text was refused unparsed: the errors up to here are all
    KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
      parsed = parser->parseFile(
          kj::heap<CollectingFile>(kj::mv(inner), errors, params, used, refusedAt));
    })) {
      if (errors.empty()) return fileError(e->getDescription());
    }
    if (refusedAt > 0) errors.resize(refusedAt);
    if (!errors.empty()) return errors.releaseAsArray();

    KJ_IF_MAYBE(c, parsed.findNested("scenario")) {
      if (c->getProto().which() != capnp::schema::Node::CONST) {
        return fileError("`scenario` must be a constant: const scenario :Scenario = (...)");
      }
      auto value = c->asConst();
      if (value.getType().which() != capnp::schema::Type::STRUCT ||
          value.getType().asStruct().getProto().getId() != capnp::typeId<rpc::Scenario>()) {
        return fileError("`scenario` must have type Scenario (import \"/interfaces/scenario.capnp\")");
      }
      auto scenario = value.as<rpc::Scenario>();
      return LoadedScenario{kj::heapString(path), kj::mv(parser), scenario, scanStepLines(text),
                            used.releaseAsArray()};
    }
    return fileError("no `const scenario :Scenario` in this file");
  }
  return fileError("cannot open scenario file");
}

kj::Array<uint32_t> scanStepLines(kj::StringPtr text) {
  enum Frame : uint8_t { STEPS_LIST, OTHER_LIST, PAREN };
  kj::Vector<Frame> stack;
  kj::Vector<uint32_t> lines;
  uint32_t line = 1;
  // State of "steps = [" recognition: 0 none, 1 saw `steps`, 2 saw `=`.
  int pending = 0;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '\n') { line++; continue; }
    if (c == ' ' || c == '\t' || c == '\r') continue;
    if (c == '#') {
      while (i + 1 < text.size() && text[i + 1] != '\n') i++;
      continue;
    }
    if (c == '"') {
      for (i++; i < text.size() && text[i] != '"'; i++) {
        if (text[i] == '\\') i++;
        else if (text[i] == '\n') line++;
      }
      pending = 0;
      continue;
    }
    if (isalpha(c) || c == '_') {
      size_t start = i;
      while (i + 1 < text.size() && (isalnum(text[i + 1]) || text[i + 1] == '_')) i++;
      pending = (i + 1 - start == 5 && memcmp(text.begin() + start, "steps", 5) == 0) ? 1 : 0;
      continue;
    }
    if (c == '=' && pending == 1) { pending = 2; continue; }
    if (c == '[') {
      stack.add(pending == 2 ? STEPS_LIST : OTHER_LIST);
    } else if (c == '(') {
      if (!stack.empty() && stack.back() == STEPS_LIST) lines.add(line);
      stack.add(PAREN);
    } else if ((c == ')' || c == ']') && !stack.empty()) {
      stack.removeLast();
    }
    pending = 0;
  }
  return lines.releaseAsArray();
}

}  // namespace nb
