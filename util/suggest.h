// "Did you mean ...?": the nearest of a set of known names to a misspelled one.
#pragma once

#include <kj/string.h>
#include <kj/vector.h>

#include <utility>

namespace nb {

inline size_t editDistance(kj::StringPtr a, kj::StringPtr b) {
  kj::Vector<size_t> prev, cur;
  for (size_t j = 0; j <= b.size(); j++) prev.add(j);
  for (size_t i = 1; i <= a.size(); i++) {
    cur.clear();
    cur.add(i);
    for (size_t j = 1; j <= b.size(); j++) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur.add(kj::min(sub, kj::min(prev[j] + 1, cur[j - 1] + 1)));
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// " (did you mean 'x'?)" for the known name within edit distance 2 of `name`, else "".
template <typename Names>
kj::String didYouMean(kj::StringPtr name, const Names& known) {
  kj::Maybe<kj::StringPtr> best;
  size_t bestDist = 3;
  for (auto& k : known) {
    size_t d = editDistance(name, k);
    if (d < bestDist) {
      bestDist = d;
      best = kj::StringPtr(k);
    }
  }
  KJ_IF_MAYBE(b, best) { return kj::str(" (did you mean '", *b, "'?)"); }
  return kj::str();
}

}  // namespace nb
