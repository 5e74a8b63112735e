// Bounds on text given to recursive parsers, checked before parsing.
//
// Cap'n Proto's text parser (the schema lexer that scenario files and TextCodec arguments go
// through) recurses once per nested bracket, so a few thousand nested `(` overflow the stack.
// TOML (toml++) bounds its own nesting but not the size of what it reads. These scans walk the
// text once, without recursion, and say what is too big or too deep and where.
//
// Owns: the scan (brackets outside string literals and `#` comments, as both Cap'n Proto's
// lexer and TOML see them) and the limits shared by every place that parses such text.

#pragma once

#include <kj/string.h>

#include <cstddef>
#include <cstdint>

namespace nb {

// Scenario files: the deepest shipped one nests 12 brackets (a step inside two repeats is
// about 9); each nested repeat adds 3 or 4.
constexpr unsigned MAX_TEXT_DEPTH = 128;
constexpr size_t MAX_SCENARIO_BYTES = 1 << 20;   // the largest shipped scenario is 8 KiB
constexpr size_t MAX_ARGS_BYTES = 64 << 10;      // a call's argument text
constexpr size_t MAX_MANIFEST_BYTES = 1 << 20;   // the largest shipped manifest is 4 KiB

struct TextBoundsError {
  kj::String message;   // "brackets nested more than 128 deep", "... bytes is more than ..."
  uint32_t line = 0;    // 1-based where the limit is crossed; 0 for the text as a whole
  uint32_t column = 0;
};

// Why `text` must not be parsed: longer than `maxBytes`, or brackets ( [ { nested deeper than
// `maxDepth` (where the first one too deep is). Null when it is within both bounds. Brackets inside
// "..." strings (with backslash escapes, ending at the line's end at the latest, as the
// lexers end them) and inside `#` comments do not count. Unbalanced text is left to the parser.
inline kj::Maybe<TextBoundsError> textBoundsError(kj::ArrayPtr<const char> text, size_t maxBytes,
                                             unsigned maxDepth) {
  if (text.size() > maxBytes) {
    return TextBoundsError{
        kj::str(text.size(), " bytes is more than the limit of ", maxBytes, " bytes"), 0, 0};
  }
  unsigned depth = 0;
  uint32_t line = 1, column = 1;
  enum { CODE, STRING, COMMENT } state = CODE;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '\n') {
      line++;
      column = 1;
      state = CODE;
      continue;
    }
    column++;
    switch (state) {
      case STRING:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          i++;
          column++;
        } else if (c == '"') {
          state = CODE;
        }
        break;
      case COMMENT:
        break;
      case CODE:
        if (c == '"') {
          state = STRING;
        } else if (c == '#') {
          state = COMMENT;
        } else if (c == '(' || c == '[' || c == '{') {
          if (++depth > maxDepth) {
            return TextBoundsError{kj::str("brackets nested more than ", maxDepth, " deep"), line,
                                   column - 1};
          }
        } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
          depth--;
        }
        break;
    }
  }
  return nullptr;
}

}  // namespace nb
