// Proto messages to JSON by reflection, with the text and enum rules of common/json.h.
#include "common/json.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/protocol.h"
#include "common/utf8.h"

namespace steward::json {
namespace {

using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string EnumName(const EnumDescriptor* type, int number) {
  if (type == proto::State_descriptor()) return StateName(static_cast<proto::State>(number));
  if (type == proto::NodeStatus_descriptor()) return NodeStatusName(static_cast<proto::NodeStatus>(number));
  if (type == proto::Outcome_descriptor()) return OutcomeName(static_cast<proto::Outcome>(number));
  if (type == proto::Stage_descriptor()) return StageName(static_cast<proto::Stage>(number));
  const google::protobuf::EnumValueDescriptor* value = type->FindValueByNumber(number);
  if (value == nullptr) return std::to_string(number);  // from a newer peer
  const std::string& name = value->name();              // KIND_COMMAND
  return absl::AsciiStrToLower(name.substr(name.find('_') + 1));
}

// Bytes that are never text.
bool AlwaysBase64(const FieldDescriptor& field) {
  return field.type() == FieldDescriptor::TYPE_BYTES &&
         (field.name() == "signature" || absl::EndsWith(field.name(), "_key"));
}

// One element of field `f` of `m` (index < 0: a singular field). `text` says whether a
// string/bytes value may be a JSON string (false: base64).
nlohmann::ordered_json Value(const Message& m, const FieldDescriptor& f, int index, bool text) {
  const Reflection& r = *m.GetReflection();
  const bool rep = index >= 0;
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return rep ? r.GetRepeatedInt32(m, &f, index) : r.GetInt32(m, &f);
    case FieldDescriptor::CPPTYPE_INT64: return rep ? r.GetRepeatedInt64(m, &f, index) : r.GetInt64(m, &f);
    case FieldDescriptor::CPPTYPE_UINT32: return rep ? r.GetRepeatedUInt32(m, &f, index) : r.GetUInt32(m, &f);
    case FieldDescriptor::CPPTYPE_UINT64: return rep ? r.GetRepeatedUInt64(m, &f, index) : r.GetUInt64(m, &f);
    case FieldDescriptor::CPPTYPE_DOUBLE: return rep ? r.GetRepeatedDouble(m, &f, index) : r.GetDouble(m, &f);
    case FieldDescriptor::CPPTYPE_FLOAT: return rep ? r.GetRepeatedFloat(m, &f, index) : r.GetFloat(m, &f);
    case FieldDescriptor::CPPTYPE_BOOL: return rep ? r.GetRepeatedBool(m, &f, index) : r.GetBool(m, &f);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumName(f.enum_type(), rep ? r.GetRepeatedEnumValue(m, &f, index) : r.GetEnumValue(m, &f));
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string value = rep ? r.GetRepeatedString(m, &f, index) : r.GetString(m, &f);
      return text ? std::move(value) : absl::Base64Escape(value);
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      if (!rep && !r.HasField(m, &f)) return nullptr;
      return ToJson(rep ? r.GetRepeatedMessage(m, &f, index) : r.GetMessage(m, &f));
  }
  return nullptr;
}

// Whether every value of string/bytes field `f` may be a JSON string.
bool AllText(const Message& m, const FieldDescriptor& f) {
  if (AlwaysBase64(f)) return false;
  const Reflection& r = *m.GetReflection();
  if (!f.is_repeated()) return IsValidUtf8(r.GetString(m, &f));
  for (int i = 0; i < r.FieldSize(m, &f); ++i) {
    if (!IsValidUtf8(r.GetRepeatedString(m, &f, i))) return false;
  }
  return true;
}

}  // namespace

nlohmann::ordered_json ToJson(const Message& message) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  // Appended to the ordered map's vector directly: field names are unique, and its own
  // insert looks for the key first (quadratic in the fields; slow for 10,000 nodes).
  using Fields = nlohmann::ordered_json::object_t::Container;
  Fields& fields = out.get_ref<nlohmann::ordered_json::object_t&>();
  const google::protobuf::Descriptor& type = *message.GetDescriptor();
  fields.reserve(static_cast<size_t>(type.field_count()));
  for (int i = 0; i < type.field_count(); ++i) {
    const FieldDescriptor& f = *type.field(i);
    const bool text = f.cpp_type() != FieldDescriptor::CPPTYPE_STRING || AllText(message, f);
    std::string name = text ? f.name() : f.name() + "_base64";
    if (!f.is_repeated()) {
      fields.emplace_back(std::move(name), Value(message, f, -1, text));
      continue;
    }
    nlohmann::ordered_json items = nlohmann::ordered_json::array();
    for (int k = 0; k < message.GetReflection()->FieldSize(message, &f); ++k) {
      items.push_back(Value(message, f, k, text));
    }
    fields.emplace_back(std::move(name), std::move(items));
  }
  return out;
}

bool IsValidUtf8(absl::string_view text) {
  // The same rules as nlohmann's serializer (RFC 3629), without a copy and an exception.
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

}  // namespace steward::json
