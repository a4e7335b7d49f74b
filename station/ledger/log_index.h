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

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/sqlite.h"

namespace steward::station::ledger {

inline constexpr char kTrigramTokenizer[] = "steward_trigram";

// The index is cut into parts by line (log_fts_parts: id, first_seq): part N is the FTS5
// table log_fts_N, holding the lines from its first_seq up to the next part's. A part
// takes kPartLines lines, then the next begins. So merging index segments never works
// on more than one part, and retention drops a whole part once its last line is gone,
// at no cost per line. Until then the part keeps the entries of its removed lines: a
// search looks every candidate up in log_lines and skips those (seq is never reused).
inline constexpr int64_t kPartLines = 500'000;
// The FTS5 options of every part (the schema's step makes part 1 with the same).
inline constexpr char kPartOptions[] =
    "message, content='log_lines', content_rowid='seq', tokenize='steward_trigram', detail='none', "
    "columnsize=0";

struct IndexPart {
  int64_t id = 0;
  int64_t first_seq = 0;
  std::string table() const;  // "log_fts_<id>"
};

// The parts, oldest first.
absl::StatusOr<std::vector<IndexPart>> IndexParts(sqlite::Database& db);
// Makes part `id` for the lines from `first_seq` on.
absl::StatusOr<IndexPart> AddIndexPart(sqlite::Database& db, int64_t id, int64_t first_seq);
// Drops part `id` (its lines are gone).
absl::Status DropIndexPart(sqlite::Database& db, const IndexPart& part);

// Registers the tokenizer on `db`.
absl::Status RegisterTrigramTokenizer(sqlite3* db);

// The FTS5 query for lines that may hold `text` (exactly or ignoring ASCII case): (its
// even-offset trigrams) OR (its odd-offset ones), each group at most `max_terms` spread
// over the text. "" when the index cannot help: under 4 bytes, or a NUL in it.
std::string TrigramQuery(absl::string_view text, size_t max_terms = 12);

}  // namespace steward::station::ledger
