// The log index's tokenizer (byte trigrams, ASCII folded) and its queries.
#include "station/ledger/log_index.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/sqlite.h"
#include "common/status_macros.h"

namespace steward::station::ledger {
namespace {

// The tokenizer keeps no state: every instance is this one.
int Create(void*, const char**, int, Fts5Tokenizer** out) {
  static int instance = 0;
  *out = reinterpret_cast<Fts5Tokenizer*>(&instance);
  return SQLITE_OK;
}

void Delete(Fts5Tokenizer*) {}

// A document's 3-byte windows at even offsets, a query's (one trigram each) at every
// offset; ASCII lower-cased. Repeats within one text are passed on too (the index keeps
// one entry per line and term either way).
int Tokenize(Fts5Tokenizer*, void* ctx, int flags, const char* text, int size,
             int (*token)(void*, int, const char*, int, int, int)) {
  const int step = (flags & FTS5_TOKENIZE_DOCUMENT) != 0 ? 2 : 1;
  char gram[3];
  for (int i = 0; i + 3 <= size; i += step) {
    for (int k = 0; k < 3; ++k) gram[k] = absl::ascii_tolower(static_cast<unsigned char>(text[i + k]));
    if (const int rc = token(ctx, 0, gram, 3, i, i + 3); rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

absl::StatusOr<fts5_api*> Fts5Api(sqlite3* db) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &raw, nullptr);
  std::unique_ptr<sqlite3_stmt, sqlite::FinalizeStmt> st(raw);
  if (rc != SQLITE_OK) return sqlite::ToStatus(db, rc, "fts5 api");
  fts5_api* api = nullptr;
  sqlite3_bind_pointer(raw, 1, &api, "fts5_api_ptr", nullptr);
  rc = sqlite3_step(raw);
  if (rc != SQLITE_ROW || api == nullptr) return sqlite::ToStatus(db, rc == SQLITE_ROW ? SQLITE_ERROR : rc, "fts5 api");
  return api;
}

}  // namespace

absl::Status RegisterTrigramTokenizer(sqlite3* db) {
  absl::StatusOr<fts5_api*> api = Fts5Api(db);
  if (!api.ok()) return api.status();
  fts5_tokenizer tokenizer{&Create, &Delete, &Tokenize};
  return sqlite::ToStatus(db, (*api)->xCreateTokenizer(*api, kTrigramTokenizer, nullptr, &tokenizer, nullptr),
                          "register the log index's tokenizer");
}

std::string IndexPart::table() const { return absl::StrCat("log_fts_", id); }

absl::StatusOr<std::vector<IndexPart>> IndexParts(sqlite::Database& db) {
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("SELECT id, first_seq FROM log_fts_parts ORDER BY id"));
  std::vector<IndexPart> parts;
  while (true) {
    STEWARD_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) return parts;
    parts.push_back(IndexPart{.id = st.ColumnInt(0), .first_seq = st.ColumnInt(1)});
  }
}

absl::StatusOr<IndexPart> AddIndexPart(sqlite::Database& db, int64_t id, int64_t first_seq) {
  const IndexPart part{.id = id, .first_seq = first_seq};
  STEWARD_RETURN_IF_ERROR(db.Exec(absl::StrCat("CREATE VIRTUAL TABLE ", part.table(), " USING fts5(", kPartOptions, ")")));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("INSERT INTO log_fts_parts(id, first_seq) VALUES (?1, ?2)"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, id));
  STEWARD_RETURN_IF_ERROR(st.Bind(2, first_seq));
  STEWARD_RETURN_IF_ERROR(st.Step().status());
  return part;
}

absl::Status DropIndexPart(sqlite::Database& db, const IndexPart& part) {
  STEWARD_RETURN_IF_ERROR(db.Exec(absl::StrCat("DROP TABLE ", part.table())));
  STEWARD_ASSIGN_OR_RETURN(sqlite::Statement st, db.Prepare("DELETE FROM log_fts_parts WHERE id = ?1"));
  STEWARD_RETURN_IF_ERROR(st.Bind(1, part.id));
  return st.Step().status();
}

std::string TrigramQuery(absl::string_view text, size_t max_terms) {
  if (text.size() < 4 || text.find('\0') != absl::string_view::npos) return "";
  const std::string folded = absl::AsciiStrToLower(text);
  std::vector<std::string> groups;
  for (size_t parity = 0; parity < 2; ++parity) {
    std::vector<std::string> grams;
    for (size_t i = parity; i + 3 <= folded.size(); i += 2) {
      std::string gram = folded.substr(i, 3);
      if (std::find(grams.begin(), grams.end(), gram) == grams.end()) grams.push_back(std::move(gram));
    }
    if (grams.size() > max_terms && max_terms > 1) {
      std::vector<std::string> spread;
      for (size_t i = 0; i < max_terms; ++i) spread.push_back(grams[i * (grams.size() - 1) / (max_terms - 1)]);
      grams = std::move(spread);
    }
    for (std::string& g : grams) g = absl::StrCat("\"", absl::StrReplaceAll(g, {{"\"", "\"\""}}), "\"");
    groups.push_back(absl::StrCat("(", absl::StrJoin(grams, " AND "), ")"));
  }
  return absl::StrJoin(groups, " OR ");
}

}  // namespace steward::station::ledger
