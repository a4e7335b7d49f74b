#include "station/nodes.h"

#include <algorithm>

namespace steward::station {

void NodeTable::Load(std::vector<proto::NodeInfo> rows) {
  for (proto::NodeInfo& info : rows) {
    Node& n = Get(info.name());
    n.last_heard = info.last_heard_unix_ms() > 0 ? absl::FromUnixMillis(info.last_heard_unix_ms())
                                                 : absl::InfinitePast();
    n.heartbeat = info.heartbeat_ms() > 0 ? absl::Milliseconds(info.heartbeat_ms()) : default_heartbeat_;
    if (info.status() == proto::NODE_STATUS_UNSPECIFIED) {
      // Rows of 0.1.0 have no status: what they knew was online or not.
      info.set_status(info.last_heard_unix_ms() == 0 ? proto::NODE_UNKNOWN
                      : info.online()                ? proto::NODE_ONLINE
                                                     : proto::NODE_OFFLINE);
    }
    n.info = std::move(info);
  }
}

NodeTable::Node& NodeTable::Get(const std::string& name) {
  auto [it, inserted] = nodes_.try_emplace(name);
  if (inserted) {
    it->second.info.set_name(name);
    it->second.info.set_status(proto::NODE_UNKNOWN);
    it->second.heartbeat = default_heartbeat_;
  }
  return it->second;
}

const NodeTable::Node* NodeTable::Find(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

NodeTable::Node* NodeTable::Find(const std::string& name) {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<std::string> NodeTable::Names(bool heard_only) const {
  std::vector<std::string> out;
  for (const auto& [name, node] : nodes_) {
    const proto::NodeStatus st = node.info.status();
    if (heard_only && (st == proto::NODE_UNKNOWN || st == proto::NODE_PENDING)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t NodeTable::Unbelieved() const {
  size_t n = 0;
  for (const auto& [name, node] : nodes_) {
    const proto::NodeStatus st = node.info.status();
    n += (st == proto::NODE_PENDING || st == proto::NODE_UNKNOWN) && !node.info.enrolled();
  }
  return n;
}

bool NodeTable::Forget(const std::string& name) {
  dirty_.erase(name);
  return nodes_.erase(name) > 0;
}

Transition NodeTable::SetOnline(Node& node, bool online, absl::Time now, const std::string& reason) {
  const int64_t now_ms = absl::ToUnixMillis(now);
  node.info.set_online(online);
  node.info.set_status(online ? proto::NODE_ONLINE : proto::NODE_OFFLINE);
  node.info.set_since_unix_ms(now_ms);
  return Transition{node.info.name(), online, now_ms, reason};
}

std::optional<Transition> NodeTable::HeardFrom(const std::string& name, absl::Time now) {
  Node& node = Get(name);
  node.last_heard = now;
  node.info.set_last_heard_unix_ms(absl::ToUnixMillis(now));
  Changed(name);
  if (node.info.status() == proto::NODE_ONLINE) return std::nullopt;
  return SetOnline(node, true, now, "heard from");
}

std::string NodeTable::Instance(const std::string& name) const {
  const Node* node = Find(name);
  return node == nullptr ? "" : node->info.instance_id();
}

NodeTable::InstanceChange NodeTable::Hello(const std::string& name, const proto::Hello& hello,
                                           absl::Time now) {
  Node& node = Get(name);
  InstanceChange change;
  if (!hello.instance_id().empty() && hello.instance_id() != node.info.instance_id()) {
    change.changed = true;
    change.previous = node.info.instance_id();
    node.info.set_instance_id(hello.instance_id());
    node.info.set_instance_since_unix_ms(absl::ToUnixMillis(now));
  }
  node.info.set_version(hello.version());
  node.info.set_hostname(hello.hostname());
  node.info.set_os(hello.os());
  node.info.set_load1(hello.load1());
  node.info.set_agent_started_unix_ms(hello.started_unix_ms());
  node.info.mutable_methods()->CopyFrom(hello.methods());
  node.info.set_takes_batches(hello.takes_batches());
  *node.info.mutable_facts() = hello.facts();
  if (hello.has_stats()) *node.info.mutable_agent_stats() = hello.stats();
  if (hello.heartbeat_ms() > 0) {
    node.heartbeat = absl::Milliseconds(hello.heartbeat_ms());
    node.info.set_heartbeat_ms(hello.heartbeat_ms());
  }
  Changed(name);
  return change;
}

std::optional<Transition> NodeTable::NoResponders(const std::string& name, absl::Time now) {
  Node& node = Get(name);
  if (node.info.status() != proto::NODE_ONLINE) return std::nullopt;
  return SetOnline(node, false, now, "no responders");
}

std::vector<Transition> NodeTable::Monitor(absl::Time now, int missed, absl::Time heard) {
  std::vector<Transition> out;
  const absl::Time until = std::min(now, heard);
  for (auto& [name, node] : nodes_) {
    if (node.info.status() == proto::NODE_ONLINE &&
        until - std::max(node.last_heard, listening_since_) > node.heartbeat * missed) {
      out.push_back(SetOnline(node, false, now, "missed heartbeats"));
    }
  }
  return out;
}

void NodeTable::LogsStored(const std::string& name, int64_t stored, int64_t errors,
                           uint64_t dropped, absl::Time now) {
  Node& node = Get(name);
  const int64_t now_ms = absl::ToUnixMillis(now);
  node.info.set_last_log_unix_ms(now_ms);
  node.info.set_log_lines(node.info.log_lines() + stored);
  node.info.set_log_errors(node.info.log_errors() + errors);
  node.info.set_log_dropped(node.info.log_dropped() + dropped);
  const int64_t minute = now_ms / 60000;
  if (node.error_minutes.empty() || node.error_minutes.back().first != minute) {
    node.error_minutes.emplace_back(minute, 0);
  }
  node.error_minutes.back().second += errors;
  while (node.error_minutes.front().first <= minute - 10) node.error_minutes.pop_front();
  Changed(name);
}

void NodeTable::RestoreErrors(const std::string& name, int64_t minute, int64_t errors) {
  Node* node = Find(name);
  if (node == nullptr) return;  // forgotten since
  auto& minutes = node->error_minutes;
  auto it = std::lower_bound(minutes.begin(), minutes.end(), std::make_pair(minute, int64_t{0}));
  if (it != minutes.end() && it->first == minute) {
    it->second += errors;
  } else {
    minutes.insert(it, {minute, errors});
  }
}

void NodeTable::ConfigPushed(const std::string& name, const std::string& hash, int64_t at_ms) {
  Node& node = Get(name);
  node.info.set_config_pushed_hash(hash);
  node.info.set_config_pushed_unix_ms(at_ms);
  Changed(name);
}

proto::NodeInfo NodeTable::Info(const std::string& name, absl::Time now) const {
  const Node* node = Find(name);
  if (node == nullptr) return {};
  proto::NodeInfo info = node->info;
  const int64_t minute = absl::ToUnixMillis(now) / 60000;
  int64_t recent_errors = 0;
  for (const auto& [m, n] : node->error_minutes) {
    if (m > minute - 10) recent_errors += n;
  }
  info.set_log_errors_per_min(static_cast<double>(recent_errors) / 10.0);
  // Only a hello read after the push counts: until the node reloaded, its hellos still
  // carry the hash it had before.
  const proto::AgentStats& stats = info.agent_stats();
  info.set_config_drift(!info.config_pushed_hash().empty() && !stats.config_hash().empty() &&
                        stats.at_unix_ms() > info.config_pushed_unix_ms() &&
                        stats.config_hash() != info.config_pushed_hash());
  return info;
}

std::vector<std::pair<std::string, std::string>> NodeTable::TakeDirty() {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(dirty_.size());
  for (const std::string& name : dirty_) {
    if (const Node* node = Find(name)) out.emplace_back(name, node->info.SerializeAsString());
  }
  dirty_.clear();
  return out;
}

}  // namespace steward::station
