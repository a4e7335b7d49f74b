// The full-text index of the log store (log_fts): a tokenizer and the queries that
// match it. The index holds the 3-byte windows of each message that start at an even
// offset, ASCII letters in lower case ("steward_trigram", registered on each connection
// that opens the ledger), and no positions. A text of 4 bytes or more that occurs in a
// message has all its even-offset trigrams indexed, or all its odd-offset ones (as it
// starts at an even or an odd offset of the message), so "all trigrams of one parity"
// finds a superset of the lines holding the text, exact bytes or ignoring ASCII case;
// the search then checks each. Every other window halves what indexing costs (it is
// most of what storing a line costs). SQLite's own trigram tokenizer folds case too,
// but 5x slower (per character, through Unicode tables); bytes also make any message
// indexable, UTF-8 or not.
//
// Pure functions, thread-safe.
#pragma once

#include <sqlite3.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace steward::station::ledger {

inline constexpr char kTrigramTokenizer[] = "steward_trigram";

// Registers the tokenizer on `db`.
absl::Status RegisterTrigramTokenizer(sqlite3* db);

// The FTS5 query for lines that may hold `text` (exactly or ignoring ASCII case): (its
// even-offset trigrams) OR (its odd-offset ones), each group at most `max_terms` spread
// over the text. "" when the index cannot help: under 4 bytes, or a NUL in it.
std::string TrigramQuery(absl::string_view text, size_t max_terms = 12);

}  // namespace steward::station::ledger
