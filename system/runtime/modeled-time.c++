// Modeled time: cost classes, profile parsing, the shared clock page.

#include "system/runtime/modeled-time.h"

#include <kj/debug.h>
#include <sys/mman.h>
#include <unistd.h>
#include <toml++/toml.h>

#include <string_view>

namespace nb {

namespace {

struct ClassInfo {
  kj::StringPtr key;
  kj::StringPtr doc;
};

const ClassInfo CLASSES[] = {
#define NB_COST_INFO(name, key, doc) {key, doc},
    NB_COST_CLASSES(NB_COST_INFO)
#undef NB_COST_INFO
};

constexpr uint64_t PAGE_MAGIC = 0x6e62636c6f636b31;  // "nbclock1"

const kj::StringPtr STATUSES[] = {"verified", "derived", "unverified", "estimate"};
const kj::StringPtr BOUNDARIES[] = {"none", "call", "ipc", "hypercall", "process"};

size_t editDistance(kj::StringPtr a, kj::StringPtr b) {
  kj::Vector<size_t> row;
  for (size_t j = 0; j <= b.size(); j++) row.add(j);
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      size_t up = row[j];
      row[j] = kj::min(kj::min(row[j] + 1, row[j - 1] + 1), diag + (a[i - 1] == b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.size()];
}

kj::String didYouMean(kj::StringPtr key) {
  kj::StringPtr best;
  size_t bestDistance = 3;
  for (auto& c : CLASSES) {
    size_t d = editDistance(key, c.key);
    if (d < bestDistance) {
      bestDistance = d;
      best = c.key;
    }
  }
  if (best == nullptr) return kj::str();
  return kj::str(" (did you mean '", best, "'?)");
}

}  // namespace

kj::StringPtr costKey(Cost c) { return CLASSES[uint(c)].key; }
kj::StringPtr costDoc(Cost c) { return CLASSES[uint(c)].doc; }
kj::Maybe<Cost> costFromKey(kj::StringPtr key) {
  for (size_t i = 0; i < COST_CLASSES; i++) {
    if (CLASSES[i].key == key) return Cost(i);
  }
  return nullptr;
}

kj::StringPtr boundaryName(Boundary b) { return BOUNDARIES[uint(b)]; }
kj::Maybe<Boundary> boundaryFromName(kj::StringPtr name) {
  for (size_t i = 0; i < kj::size(BOUNDARIES); i++) {
    if (BOUNDARIES[i] == name) return Boundary(i);
  }
  return nullptr;
}
kj::Maybe<Cost> crossingCost(Boundary b) {
  switch (b) {
    case Boundary::NONE: return nullptr;
    case Boundary::CALL: return Cost::CROSSING_CALL;
    case Boundary::IPC: return Cost::CROSSING_IPC;
    case Boundary::HYPERCALL: return Cost::CROSSING_HYPERCALL;
    case Boundary::PROCESS: return Cost::CROSSING_PROCESS;
  }
  KJ_UNREACHABLE;
}

kj::String KJ_STRINGIFY(const ProfileError& e) {
  return kj::str(e.file, ":", e.line, ":", e.column, ": ", e.key, ": ", e.message);
}

ProfileResult parseCostProfile(kj::StringPtr text, kj::StringPtr file) {
  kj::Vector<ProfileError> errors;
  auto error = [&](const toml::source_region& at, kj::StringPtr key, kj::String message) {
    errors.add(ProfileError{kj::heapString(file), uint32_t(at.begin.line),
                            uint32_t(at.begin.column), kj::heapString(key), kj::mv(message)});
  };
  // A NUL byte would silently end the text for the parser: refuse it.
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == '\0') {
      errors.add(ProfileError{kj::heapString(file), 0, 0, kj::str("(text)"),
                              kj::str("contains a NUL byte at offset ", i)});
      return errors.releaseAsArray();
    }
  }
  toml::table root;
  try {
    root = toml::parse(std::string_view(text.begin(), text.size()),
                       std::string_view(file.begin(), file.size()));
  } catch (const toml::parse_error& e) {
    error(e.source(), "(syntax)", kj::str(e.description().data()));
    return errors.releaseAsArray();
  }

  CostProfile profile;
  bool seen[COST_CLASSES] = {};
  for (auto&& [k, v] : root) {
    std::string_view key = k.str();
    if (key == "profile") {
      auto t = v.as_table();
      if (t == nullptr) {
        error(v.source(), "profile", kj::str("must be a table"));
        continue;
      }
      for (auto&& [pk, pv] : *t) {
        if (pk.str() == "name") {
          if (auto s = pv.value<std::string>()) profile.name = kj::str(s->c_str());
          else error(pv.source(), "profile.name", kj::str("must be a string"));
        } else if (pk.str() == "about") {
          if (auto s = pv.value<std::string>()) profile.about = kj::str(s->c_str());
          else error(pv.source(), "profile.about", kj::str("must be a string"));
        } else {
          error(pk.source(), kj::str("profile.", pk.str().data()),
                kj::str("unknown key (known: name, about)"));
        }
      }
    } else if (key == "costs") {
      auto t = v.as_table();
      if (t == nullptr) {
        error(v.source(), "costs", kj::str("must be a table"));
        continue;
      }
      for (auto&& [ck, cv] : *t) {
        auto name = kj::str(std::string(ck.str()).c_str());
        auto full = kj::str("costs.", name);
        KJ_IF_MAYBE(c, costFromKey(name)) {
          seen[uint(*c)] = true;
          auto& out = profile.costs[uint(*c)];
          auto entry = cv.as_table();
          if (entry == nullptr) {
            error(cv.source(), full,
                  kj::str("must be a table: { ns = ..., status = \"...\", source = \"...\" }"));
            continue;
          }
          bool haveNs = false, haveStatus = false, haveSource = false;
          for (auto&& [ek, ev] : *entry) {
            auto field = kj::str(full, ".", std::string(ek.str()).c_str());
            if (ek.str() == "ns") {
              auto n = ev.value<int64_t>();
              if (!ev.is_integer() || !n) {
                error(ev.source(), field, kj::str("must be an integer number of nanoseconds"));
              } else if (*n < 0) {
                error(ev.source(), field, kj::str("must not be negative (", *n, ")"));
              } else {
                out.ns = uint64_t(*n);
                haveNs = true;
              }
            } else if (ek.str() == "status") {
              auto s = ev.value<std::string>();
              bool known = false;
              if (s) for (auto st : STATUSES) known = known || st == s->c_str();
              if (!known) {
                error(ev.source(), field,
                      kj::str("must be one of ", kj::strArray(STATUSES, ", ")));
              } else {
                out.status = kj::str(s->c_str());
                haveStatus = true;
              }
            } else if (ek.str() == "source") {
              auto s = ev.value<std::string>();
              if (!s || s->empty()) {
                error(ev.source(), field, kj::str("must name where the value comes from"));
              } else {
                out.source = kj::str(s->c_str());
                haveSource = true;
              }
            } else {
              error(ek.source(), field, kj::str("unknown key (known: ns, status, source)"));
            }
          }
          if (!haveNs) error(cv.source(), full, kj::str("missing 'ns'"));
          if (!haveStatus) error(cv.source(), full, kj::str("missing 'status'"));
          if (!haveSource) error(cv.source(), full, kj::str("missing 'source'"));
        } else {
          error(ck.source(), full, kj::str("unknown cost", didYouMean(name)));
        }
      }
    } else {
      error(k.source(), kj::str(std::string(key).c_str()),
            kj::str("unknown top-level table (known: profile, costs)"));
    }
  }
  for (size_t i = 0; i < COST_CLASSES; i++) {
    if (!seen[i]) {
      errors.add(ProfileError{kj::heapString(file), 1, 1, kj::str("costs.", CLASSES[i].key),
                              kj::str("missing cost: ", CLASSES[i].doc)});
    }
  }
  if (!errors.empty()) return errors.releaseAsArray();
  return kj::mv(profile);
}

// ======================================================================================
// The clock

kj::Own<ModeledClock> ModeledClock::create(const CostProfile& profile) {
  int fd = memfd_create("nestbed-clock", MFD_CLOEXEC);
  KJ_SYSCALL(fd);
  KJ_SYSCALL(ftruncate(fd, 4096));
  auto own = attach(fd);
  own->page_->magic = PAGE_MAGIC;
  for (size_t i = 0; i < COST_CLASSES; i++) own->page_->costs[i] = profile.costs[i].ns;
  return own;
}

kj::Own<ModeledClock> ModeledClock::attach(int fd) {
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  KJ_REQUIRE(p != MAP_FAILED, "cannot map the modeled clock", strerror(errno));
  auto page = static_cast<Page*>(p);
  KJ_REQUIRE(page->magic == 0 || page->magic == PAGE_MAGIC, "not a nestbed clock page");
  return kj::Own<ModeledClock>(new ModeledClock(fd, page), kj::_::HeapDisposer<ModeledClock>::instance);
}

ModeledClock& ModeledClock::off() {
  static ModeledClock clock(-1, nullptr);
  return clock;
}

ModeledClock::~ModeledClock() noexcept(false) {
  if (page_ != nullptr) munmap(page_, 4096);
  if (fd_ >= 0) close(fd_);
}

void ModeledClock::chargeCopy(uint64_t bytes) {
  if (page_ == nullptr || bytes == 0) return;
  uint64_t per4k = page_->costs[uint(Cost::COPY_4K)];
  uint64_t ns = (bytes * per4k + 4095) / 4096;
  page_->units[uint(Cost::COPY_4K)].fetch_add((bytes + 4095) / 4096, std::memory_order_relaxed);
  page_->charged[uint(Cost::COPY_4K)].fetch_add(ns, std::memory_order_relaxed);
  page_->now.fetch_add(ns, std::memory_order_relaxed);
}

void ModeledClock::joinAt(uint64_t t) {
  if (page_ == nullptr) return;
  uint64_t now = page_->now.load(std::memory_order_relaxed);
  while (now < t) {
    if (page_->now.compare_exchange_weak(now, t, std::memory_order_relaxed)) {
      page_->wait.fetch_add(t - now, std::memory_order_relaxed);
      return;
    }
  }
}

ModeledClock::Totals ModeledClock::totals() const {
  Totals t;
  if (page_ == nullptr) return t;
  t.now = page_->now.load(std::memory_order_relaxed);
  t.wait = page_->wait.load(std::memory_order_relaxed);
  for (size_t i = 0; i < COST_CLASSES; i++) {
    t.ns[i] = page_->charged[i].load(std::memory_order_relaxed);
    t.units[i] = page_->units[i].load(std::memory_order_relaxed);
  }
  return t;
}

ModeledClock::Totals operator-(const ModeledClock::Totals& a, const ModeledClock::Totals& b) {
  ModeledClock::Totals d;
  d.now = a.now - b.now;
  d.wait = a.wait - b.wait;
  for (size_t i = 0; i < COST_CLASSES; i++) {
    d.ns[i] = a.ns[i] - b.ns[i];
    d.units[i] = a.units[i] - b.units[i];
  }
  return d;
}

}  // namespace nb
