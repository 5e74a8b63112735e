// hw/vm: parsing and validating a VM's manifest settings. See settings.h.

#include "hw/vm/settings.h"

#include "hw/vm/memslots.h"
#include "system/runtime/sizes.h"
#include "util/bits.h"

#include <toml++/toml.h>

namespace nb::vm {

namespace {

const kj::StringPtr KEYS[] = {"slot", "gpa", "size", "pa", "readonly"};
constexpr kj::StringPtr EXAMPLE = "{ slot = 0, gpa = 0, size = \"64MiB\", pa = \"allocate\" }"_kj;

kj::String str(std::string_view s) { return kj::heapString(s.data(), s.size()); }
kj::String hex(uint64_t v) { return kj::str("0x", kj::hex(v)); }
kj::String range(uint64_t start, uint64_t size) {
  return kj::str("[", hex(start), ", ", hex(start + size), ")");
}

// An address or size: a non-negative integer or a byte size string ("1GiB").
kj::Maybe<uint64_t> bytesOf(const toml::node& node) {
  if (auto i = node.value<int64_t>()) {
    if (*i >= 0) return uint64_t(*i);
    return nullptr;
  }
  if (auto s = node.value<std::string>()) return parseSize(s->c_str());
  return nullptr;
}

struct Entry {
  size_t index;
  const toml::node* slotNode = nullptr;
  const toml::node* gpaNode = nullptr;
  const toml::node* paNode = nullptr;
  kj::Maybe<uint32_t> id;
  kj::Maybe<uint64_t> gpa, size;
  kj::Maybe<kj::Maybe<uint64_t>> pa;  // outer null: missing or bad; inner null: "allocate"
  bool readonly = false;
  bool ok = true;
};

}  // namespace

kj::Maybe<kj::Array<SlotSpec>> parseMemslots(const toml::node& memslots, SettingErrors& errors) {
  bool failed = false;
  auto error = [&](const toml::node& at, kj::StringPtr suffix, kj::String message) {
    errors.error(at, suffix, kj::mv(message));
    failed = true;
  };
  auto array = memslots.as_array();
  if (array == nullptr) {
    error(memslots, "", kj::str("must be an array of tables, one per memslot: [", EXAMPLE, "]"));
    return nullptr;
  }
  auto memory = errors.memory();

  // ---- pass 1: each entry on its own
  kj::Vector<Entry> entries;
  for (size_t i = 0; i < array->size(); i++) {
    const toml::node& node = *array->get(i);
    auto at = [&](kj::StringPtr key) { return kj::str(".", i, key.size() ? "." : "", key); };
    auto table = node.as_table();
    if (table == nullptr) {
      error(node, at(""), kj::str("must be a table: ", EXAMPLE));
      continue;
    }
    Entry e{i};
    auto bad = [&](const toml::node& n, kj::StringPtr key, kj::String message) {
      error(n, at(key), kj::mv(message));
      e.ok = false;
    };
    for (auto&& [k, v] : *table) {
      auto key = str(k.str());
      bool known = false;
      for (auto name : KEYS) known = known || name == key;
      if (!known) {
        bad(v, key,
            kj::str("unknown key '", key, "'; a memslot has ",
                    kj::strArray(kj::arrayPtr(KEYS, kj::size(KEYS)), ", ")));
      }
    }
    auto required = [&](kj::StringPtr key, kj::StringPtr what) -> const toml::node* {
      auto n = table->get(std::string_view(key.begin(), key.size()));
      if (n == nullptr) bad(node, key, kj::str("missing required key '", key, "' (", what, ")"));
      return n;
    };

    if (auto n = required("slot", "the slot id, 0..32767")) {
      e.slotNode = n;
      auto v = n->value<int64_t>();
      if (n->is_integer() && v && *v >= 0 && *v <= MAX_SLOT_ID) {
        e.id = uint32_t(*v);
      } else {
        bad(*n, "slot", kj::str("must be a slot id, 0..", MAX_SLOT_ID));
      }
    }
    if (auto n = required("gpa", "the guest-physical base")) {
      e.gpaNode = n;
      KJ_IF_MAYBE (v, bytesOf(*n)) {
        if (isAligned(*v, PAGE_SIZE)) {
          e.gpa = *v;
        } else {
          bad(*n, "gpa", kj::str(hex(*v), " is not 4 KiB aligned"));
        }
      } else {
        bad(*n, "gpa",
            kj::str("must be a guest-physical address: an integer or a byte size like "
                    "\"1GiB\""));
      }
    }
    if (auto n = required("size", "bytes, a multiple of 4 KiB")) {
      KJ_IF_MAYBE (v, bytesOf(*n)) {
        if (*v != 0 && isAligned(*v, PAGE_SIZE)) {
          e.size = *v;
        } else {
          bad(*n, "size", kj::str("must be a non-zero multiple of 4 KiB"));
        }
      } else {
        bad(*n, "size", kj::str("must be a byte size: an integer or a string like \"64MiB\""));
      }
    }
    KJ_IF_MAYBE (g, e.gpa) {
      KJ_IF_MAYBE (s, e.size) {
        if (*s > (uint64_t(1) << MAX_IPA_BITS) || *g > (uint64_t(1) << MAX_IPA_BITS) - *s) {
          bad(*e.gpaNode, "gpa",
              kj::str("the slot ", range(*g, *s),
                      " reaches past the largest guest-physical space (2^", MAX_IPA_BITS, ")"));
          e.gpa = nullptr;
        }
      }
    }
    if (auto n = required("pa", "a physical address inside [memory], or \"allocate\"")) {
      e.paNode = n;
      auto s = n->value<std::string>();
      auto i = n->value<int64_t>();
      if (n->is_string() && s && *s == "allocate") {
        e.pa = kj::Maybe<uint64_t>(nullptr);
      } else if (n->is_integer() && i && *i >= 0) {
        uint64_t pa = uint64_t(*i);
        if (!isAligned(pa, PAGE_SIZE)) {
          bad(*n, "pa", kj::str(hex(pa), " is not 4 KiB aligned"));
        } else {
          e.pa = kj::Maybe<uint64_t>(pa);
          KJ_IF_MAYBE (m, memory) {
            KJ_IF_MAYBE (size, e.size) {
              bool inside = pa >= m->base && *size <= m->size && pa - m->base <= m->size - *size;
              if (!inside) {
                bad(*n, "pa",
                    kj::str("the backing ", range(pa, *size), " is outside physical memory ",
                            range(m->base, m->size)));
                e.pa = nullptr;
              }
            }
          }
        }
      } else {
        bad(*n, "pa", kj::str("must be a physical address or \"allocate\""));
      }
    }
    if (auto n = table->get("readonly")) {
      if (auto b = n->value<bool>(); b && n->is_boolean()) {
        e.readonly = *b;
      } else {
        bad(*n, "readonly", kj::str("must be true or false"));
      }
    }
    entries.add(kj::mv(e));
  }

  // ---- pass 2: between entries (each against those before it)
  for (auto i : kj::indices(entries)) {
    auto& e = entries[i];
    auto at = [&](kj::StringPtr key) { return kj::str(".", e.index, ".", key); };
    for (size_t j = 0; j < i; j++) {
      auto& prev = entries[j];
      if (e.id != nullptr && e.id == prev.id) {
        error(*e.slotNode, at("slot"),
              kj::str("duplicate slot ", KJ_ASSERT_NONNULL(e.id), " (also memslots.", prev.index,
                      ")"));
      }
      if (e.gpa != nullptr && e.size != nullptr && prev.gpa != nullptr && prev.size != nullptr) {
        uint64_t g = KJ_ASSERT_NONNULL(e.gpa), s = KJ_ASSERT_NONNULL(e.size);
        uint64_t pg = KJ_ASSERT_NONNULL(prev.gpa), ps = KJ_ASSERT_NONNULL(prev.size);
        if (overlaps(g, s, pg, ps)) {
          error(*e.gpaNode, at("gpa"),
                kj::str("the GPA range ", range(g, s), " overlaps ", range(pg, ps), " of memslots.",
                        prev.index));
        }
      }
      auto fixedPa = [](const Entry& x) -> kj::Maybe<uint64_t> {
        KJ_IF_MAYBE (pa, x.pa) { return *pa; }
        return nullptr;
      };
      KJ_IF_MAYBE (a, fixedPa(e)) {
        KJ_IF_MAYBE (pa, fixedPa(prev)) {
          if (e.size != nullptr && prev.size != nullptr) {
            uint64_t s = KJ_ASSERT_NONNULL(e.size), ps = KJ_ASSERT_NONNULL(prev.size);
            if (overlaps(*a, s, *pa, ps)) {
              error(*e.paNode, at("pa"),
                    kj::str("the backing ", range(*a, s), " overlaps the backing ", range(*pa, ps),
                            " of memslots.", prev.index));
            }
          }
        }
      }
    }
  }
  if (failed) return nullptr;
  return KJ_MAP(e, entries) {
    return SlotSpec{KJ_ASSERT_NONNULL(e.id), KJ_ASSERT_NONNULL(e.gpa), KJ_ASSERT_NONNULL(e.size),
                    KJ_ASSERT_NONNULL(e.pa), e.readonly};
  };
}

void checkIpaBits(const toml::node& value, SettingErrors& errors) {
  auto v = value.value<int64_t>();
  if (v && (*v < MIN_IPA_BITS || *v > MAX_IPA_BITS)) {
    errors.error(value, "", kj::str("must be between ", MIN_IPA_BITS, " and ", MAX_IPA_BITS));
  }
}

}  // namespace nb::vm
