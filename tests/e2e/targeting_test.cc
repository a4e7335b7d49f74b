// Fleet targeting end to end (real nats-server, station, stewardctl; simulated nodes
// from bench/node_simulator, each a real agent with its own facts, and real
// steward-agent processes): expressions over 50 nodes, an empty match refused, a
// rollout aborting at its threshold, a rollout surviving kill -9 of the station, a
// continuous job reaching nodes that come later, schedules on time and after downtime.
#include <signal.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/nats.h"
#include "common/protocol.h"
#include "common/sqlite.h"
#include "ctl/client.h"
#include "tests/testing/cluster.h"
#include "tests/testing/files.h"
#include "tests/testing/wait.h"

namespace {

using nlohmann::json;
using steward::testing::BinPath;
using steward::testing::Cluster;
using steward::testing::LineCounts;
using steward::testing::Process;
using steward::testing::RunResult;
using steward::testing::WaitUntil;

std::string Sim(int i) { return absl::StrFormat("sim%04d", i); }

// Starts node_simulator with `n` nodes (sim0001..) on `c`'s broker, a heartbeat of 1 s,
// facts from `facts_dir` ("" for none); waits until every node started.
std::unique_ptr<Process> StartSimulator(Cluster& c, int n, const std::string& facts_dir = "") {
  std::vector<std::string> argv = {BinPath("bench/node_simulator"),
                                   "--nats",
                                   c.url(),
                                   "--nodes",
                                   std::to_string(n),
                                   "--heartbeat",
                                   "1s",
                                   "--connections",
                                   "2",
                                   "--workers",
                                   "2",
                                   "--delivery-pool",
                                   "2"};
  if (!facts_dir.empty()) {
    argv.push_back("--facts-dir");
    argv.push_back(facts_dir);
  }
  auto p = std::make_unique<Process>(argv);
  INFO(p->Stderr());
  REQUIRE(p->WaitForOutput(absl::StrCat("ready ", n), absl::Seconds(60)));
  return p;
}

std::vector<std::string> Targets(Cluster& c, std::vector<std::string> args);

// A station and `n` simulated nodes, all heard from; the simulator stops with it.
struct SimulatedFleet {
  explicit SimulatedFleet(int n, const std::string& facts_dir = "") {
    c.StartStation();
    sim = StartSimulator(c, n, facts_dir);
    REQUIRE(WaitUntil(
        [&] {
          return Targets(c, {"--where", "online"}).size() == static_cast<size_t>(n);
        },
        absl::Seconds(30), absl::Milliseconds(200)));
  }
  ~SimulatedFleet() {
    sim->Signal(SIGTERM);
    sim->Wait(absl::Seconds(20));
  }
  Cluster c;
  std::unique_ptr<Process> sim;
};

std::vector<json> JsonLines(const std::string& out) {
  std::vector<json> lines;
  for (absl::string_view l : absl::StrSplit(out, '\n', absl::SkipEmpty())) lines.push_back(json::parse(l));
  return lines;
}

// The nodes `targets ARGS` picks (their names, sorted as the station lists them).
std::vector<std::string> Targets(Cluster& c, std::vector<std::string> args) {
  args.insert(args.begin(), {"--json", "targets"});
  RunResult r = c.Ctl(args);
  INFO(r.err);
  REQUIRE((r.exit_code == 0 || r.exit_code == 1));
  std::vector<std::string> names;
  for (const json& row : JsonLines(r.out)) names.push_back(row["name"]);
  return names;
}

// The job id `send` names on stderr ("stewardctl: job ID: ...").
std::string JobIdOf(const RunResult& r) {
  const size_t at = r.err.find("stewardctl: job ");
  REQUIRE(at != std::string::npos);
  const size_t start = at + std::string("stewardctl: job ").size();
  return r.err.substr(start, r.err.find(':', start) - start);
}

json Job(Cluster& c, const std::string& id) {
  RunResult r = c.Ctl({"--json", "rollout", "show", id});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

// What the agent's shell command writes: one line per run, naming the node.
std::string Marker(const std::filesystem::path& file) { return absl::StrCat("echo $STEWARD_NODE >> ", file.string()); }

TEST_CASE("targets and --where pick among 50 simulated nodes by facts and tags", "[integration][targeting]") {
  steward::testing::TempDir tmp;
  // sim i: os debian, ubuntu or alpine (i % 3); fleet north (odd) or south; role radar
  // every fifth.
  const std::filesystem::path facts = tmp.path() / "facts";
  std::filesystem::create_directories(facts);
  const char* kOs[] = {"debian", "ubuntu", "alpine"};
  struct Truth {
    std::string os, fleet, role, region;
  };
  std::map<std::string, Truth> truth;
  for (int i = 1; i <= 50; ++i) {
    Truth& t = truth[Sim(i)];
    t.os = kOs[i % 3];
    t.fleet = i % 2 == 1 ? "north" : "south";
    t.role = i % 5 == 0 ? "radar" : "";
    std::ofstream(facts / (Sim(i) + ".os-release")) << "ID=" << t.os << "\nVERSION_ID=\"" << i % 3 + 10 << "\"\n";
    std::ofstream(facts / (Sim(i) + ".facts")) << "# made by the test\nfleet=" << t.fleet << "\n"
                                               << (t.role.empty() ? "" : "role=" + t.role + "\n");
  }
  SimulatedFleet fleet(50, facts.string());
  Cluster& c = fleet.c;
  REQUIRE(Targets(c, {"--where", R"(os != "")"}).size() == 50);  // facts come with the first hello

  {
    INFO("the fleet in pages (as stewardctl takes one too large for a reply): every node once, in order");
    auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
    REQUIRE(client.ok());
    auto whole = (*client)->Nodes("", absl::Seconds(10));
    auto paged = (*client)->Nodes("", absl::Seconds(10), /*page=*/7);
    REQUIRE(whole.ok());
    REQUIRE(paged.ok());
    std::vector<std::string> a, b;
    for (const auto& n : whole->nodes()) a.push_back(n.name());
    for (const auto& n : paged->nodes()) b.push_back(n.name());
    CHECK(a.size() == 50);
    CHECK(b == a);
    CHECK_FALSE(paged->more());
    steward::proto::NodesRequest req;
    req.set_paged(true);
    req.set_after("sim0045");
    req.set_limit(3);
    steward::proto::Envelope env = steward::NewEnvelope("tester", "station", steward::proto::KIND_COMMAND,
                                                        steward::kStationNodes, steward::kCliDomain);
    env.set_payload(req.SerializeAsString());
    steward::nats::ConnectionPtr nc = steward::testing::MustConnect(c.url(), "pages");
    auto msg = steward::nats::Request(nc.get(), absl::StrCat("station.command.", steward::kStationNodes, ".cli"),
                                      env.SerializeAsString(), absl::Seconds(10));
    REQUIRE(msg.ok());
    auto page = steward::ctl::Client::AckPayload(steward::nats::Data(msg->get()));
    REQUIRE(page.ok());
    steward::proto::NodesReply r;
    REQUIRE(r.ParseFromString(*page));
    REQUIRE(r.nodes_size() == 3);
    CHECK(r.nodes(0).name() == "sim0046");
    CHECK(r.more());
  }

  // Tags: sim0010..sim0019 are in the north sea; two spares.
  REQUIRE(c.Ctl({"tag", "set", "sim001*", "region=north-sea"}).exit_code == 0);
  RunResult tagged = c.Ctl({"tag", "set", "sim0003,sim0004", "region=spare", "role=spare"});
  REQUIRE(tagged.exit_code == 0);
  CHECK(tagged.out == "sim0003: region=spare, role=spare\nsim0004: region=spare, role=spare\n");
  for (int i = 10; i <= 19; ++i) truth[Sim(i)].region = "north-sea";
  truth[Sim(3)].region = truth[Sim(4)].region = "spare";

  auto expect = [&](const std::function<bool(int, const Truth&)>& pick) {
    std::vector<std::string> names;
    for (int i = 1; i <= 50; ++i) {
      if (pick(i, truth[Sim(i)])) names.push_back(Sim(i));
    }
    return names;
  };
  CHECK(Targets(c, {"--where", R"(os == "debian")"}) == expect([](int, const Truth& t) { return t.os == "debian"; }));
  CHECK(Targets(c, {"--where", R"(os == "debian" and fact.fleet == "north" and not maintenance)"}) ==
        expect([](int, const Truth& t) { return t.os == "debian" && t.fleet == "north"; }));
  CHECK(Targets(c, {"--where", R"(tag.region == "north-sea" or fact.role == "radar")"}) ==
        expect([](int, const Truth& t) { return t.region == "north-sea" || t.role == "radar"; }));
  CHECK(Targets(c, {"--where", R"(name =~ "sim00[12]*" and os in ["ubuntu", "alpine"])"}) ==
        expect([](int i, const Truth& t) { return i >= 10 && i <= 29 && t.os != "debian"; }));
  CHECK(Targets(c, {"sim004*", "--where", R"(tag.role != "spare" and os_version == "11")"}) ==
        expect([](int i, const Truth&) { return i >= 40 && i % 3 == 1; }));
  CHECK(Targets(c, {"sim0001,sim0050"}) == std::vector<std::string>{"sim0001", "sim0050"});
  CHECK(Targets(c, {"--where", "not online"}).empty());
  REQUIRE(c.Ctl({"maintenance", "on", "sim0005", "--reason", "hull work"}).exit_code == 0);
  CHECK(Targets(c, {"--where", "maintenance"}) == std::vector<std::string>{"sim0005"});
  CHECK(Targets(c, {"sim000*", "--where", "not maintenance and maintenance != true"}).size() == 8);
  REQUIRE(c.Ctl({"maintenance", "off", "sim0005"}).exit_code == 0);
  CHECK(Targets(c, {"--where", "maintenance"}).empty());

  {
    INFO("bad syntax and unknown fields are refused with the column, before anything is sent");
    RunResult r = c.Ctl({"targets", "--where", R"(os == "debian" and (tag.role == "radar")"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains("--where: at column 40: expected ) to close the ( at column 20, found the end"));
    r = c.Ctl({"send", "--where", R"(tags.role == "radar")", "--", "true"});
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(R"(at column 1: unknown field "tags.role" (did you mean "tag.role"?))"));
    // The station checks too (for clients other than stewardctl).
    auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
    REQUIRE(client.ok());
    steward::proto::TargetsRequest req;
    req.mutable_target()->set_where("os ==");
    auto reply = (*client)->Targets(req, absl::Seconds(5));
    CHECK(reply.status().message() == "--where: at column 6: expected a quoted string after ==, found the end");
    // A node pattern with a set left open matches no name: refused, not "no node matches".
    r = c.Ctl({"targets", "sim00[1-"});
    CHECK(r.exit_code != 0);
    CHECK_THAT(r.err, Catch::Contains("bad node pattern \"sim00[1-\": the '[' at column 6 is not closed by a ']'"));
    CHECK(Targets(c, {"sim000[!2-9]"}) == std::vector<std::string>{"sim0001"});
    CHECK(Targets(c, {"sim00[]5]0"}) == std::vector<std::string>{"sim0050"});
    CHECK(c.Ctl({"history", "--json"}).out.empty());
  }

  {
    INFO("an empty match refuses to send unless --allow-empty");
    RunResult r = c.Ctl({"send", "--where", R"(os == "windows")", "--", "true"});
    CHECK(r.exit_code == 255);
    CHECK_THAT(r.err, Catch::Contains(R"(no node matches every node where os == "windows")") &&
                          Catch::Contains("nothing sent"));
    CHECK(c.Ctl({"history", "--json"}).out.empty());
    r = c.Ctl({"send", "--allow-empty", "sim9*", "--", "true"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.err, Catch::Contains("no node matched sim9*; nothing sent"));
    const json job = Job(c, JobIdOf(r));
    CHECK(job["job"]["state"] == "done");
    CHECK(job["job"]["target"]["selectors"] == json::array({"sim9*"}));
    CHECK(job["totals"]["targets"] == 0);
  }

  {
    INFO("a send by expression reaches exactly the nodes it picks, and records them");
    RunResult r =
        c.Ctl({"send", "--where", R"(fact.role == "radar" and os != "alpine")", "--method", "echo", "--", "ping"});
    INFO(r.err);
    CHECK(r.exit_code == 0);
    const std::vector<std::string> picked =
        expect([](int, const Truth& t) { return t.role == "radar" && t.os != "alpine"; });
    std::set<std::string> answered;
    for (absl::string_view line : absl::StrSplit(r.out, '\n', absl::SkipEmpty())) {
      answered.insert(std::string(line.substr(0, line.find(':'))));
    }
    CHECK(answered == std::set<std::string>(picked.begin(), picked.end()));
    const json job = Job(c, JobIdOf(r));
    CHECK(job["job"]["target"]["where"] == R"(fact.role == "radar" and os != "alpine")");
    std::vector<std::string> recorded;
    for (const json& t : job["job"]["targets"]) recorded.push_back(t["node"]);
    CHECK(recorded == picked);
    CHECK(job["totals"]["succeeded"] == picked.size());
  }

  {
    INFO("tags are audited");
    RunResult r = c.Ctl({"tag", "show", "sim0003", "--history"});
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("sim0003: region=spare role=spare") &&
                          Catch::Contains("tag set sim0003: role=spare") &&
                          Catch::Contains("tag set sim0003: region=spare"));
    REQUIRE(c.Ctl({"tag", "unset", "sim0003", "role"}).exit_code == 0);
    CHECK_THAT(c.Ctl({"tag", "show", "sim0003", "--history"}).out,
               Catch::Contains("tag remove sim0003: role removed (was spare)"));
    // In the station's one audit, beside pause, maintenance and the rest.
    RunResult audit = c.Ctl({"audit", "--limit", "100"});
    CHECK(audit.exit_code == 0);
    CHECK_THAT(audit.out, Catch::Contains("tag set") && Catch::Contains("tag remove") && Catch::Contains("sim0003"));
    CHECK(c.Ctl({"tag", "set", "sim0003", "bad key=x"}).exit_code == 255);
  }
}

TEST_CASE("a rollout with failing nodes aborts at exactly its threshold, with the counts in the ledger",
          "[integration][targeting]") {
  SimulatedFleet fleet(20);
  Cluster& c = fleet.c;
  const std::filesystem::path runs = c.dir().path() / "runs";
  const std::filesystem::path fail = c.dir().path() / "fail";
  std::filesystem::create_directories(fail);
  for (int i : {3, 6, 9, 12}) std::ofstream(fail / Sim(i)) << "x";
  // A canary, then batches of 2: [1] [2 3] [4 5] [6 7] [8 9] ... The third failure
  // (sim0009) stops it; sim0012 is never reached.
  RunResult r = c.Ctl({"send", "--all", "--canary", "1", "--batch", "2", "--abort-after", "3", "--shell", "--",
                       absl::StrCat(Marker(runs), "; test ! -e ", fail.string(), "/$STEWARD_NODE")},
                      absl::Seconds(90));
  INFO(r.out << r.err);
  CHECK(r.exit_code == 255);
  CHECK_THAT(r.err, Catch::Contains("rollout aborted: 3 of 20 failed; 11 commands canceled before they were sent"));
  std::map<std::string, int> ran = LineCounts(runs);
  std::map<std::string, int> want;
  for (int i = 1; i <= 9; ++i) want[Sim(i)] = 1;
  CHECK(ran == want);

  const json job = Job(c, JobIdOf(r));
  CHECK(job["job"]["state"] == "aborted");
  CHECK(job["job"]["reason"] == "rollout aborted: 3 of 20 failed");
  CHECK(job["totals"]["targets"] == 20);
  CHECK(job["totals"]["succeeded"] == 6);
  CHECK(job["totals"]["failed"] == 3);
  CHECK(job["totals"]["canceled"] == 11);
  CHECK(job["totals"]["pending"] == 0);
  CHECK(job["batches"].size() == 11);
  CHECK(job["job"]["progress"]["released"] == 5);
  // The ledger's record of each command says the same.
  RunResult show = c.Ctl({"--json", "show", JobIdOf(r)});
  std::map<std::string, int> states;
  for (const json& s : JsonLines(show.out)) {
    states[s["state"]]++;
    if (s["state"] == "canceled") CHECK(s["result"]["error"] == "rollout aborted: 3 of 20 failed");
  }
  CHECK(states == std::map<std::string, int>{{"canceled", 11}, {"failed", 3}, {"succeeded", 6}});
}

TEST_CASE("a rollout interrupted by kill -9 of the station resumes without running anything twice",
          "[integration][targeting]") {
  SimulatedFleet fleet(6);
  Cluster& c = fleet.c;
  const std::filesystem::path runs = c.dir().path() / "runs";
  RunResult r =
      c.Ctl({"send", "--all", "--no-wait", "--batch", "2", "--batch-wait", "3s", "--shell", "--", Marker(runs)});
  REQUIRE(r.exit_code == 0);
  const std::string id = JobIdOf(r);
  // The first batch ran; the station waits before the second: kill it there.
  REQUIRE(WaitUntil([&] { return LineCounts(runs).size() == 2; }, absl::Seconds(20), absl::Milliseconds(10)));
  c.StopStation(SIGKILL);
  CHECK(LineCounts(runs).size() == 2);
  c.StartStation();
  REQUIRE(WaitUntil([&] { return Job(c, id)["job"]["state"] == "done"; }, absl::Seconds(40), absl::Milliseconds(200)));
  std::map<std::string, int> want;
  for (int i = 1; i <= 6; ++i) want[Sim(i)] = 1;
  CHECK(LineCounts(runs) == want);
  const json job = Job(c, id);
  CHECK(job["totals"]["succeeded"] == 6);
  CHECK(job["job"]["progress"]["released"] == 3);
  const json& released = job["job"]["progress"]["batch_released_unix_ms"];
  REQUIRE(released.size() == 3);
  CHECK(released[1].get<int64_t>() - released[0].get<int64_t>() >= 3000);  // the wait was kept
  CHECK(released[2].get<int64_t>() - released[1].get<int64_t>() >= 3000);
}

TEST_CASE("a continuous job reaches nodes that enrol, are tagged or leave maintenance after it was sent, once each",
          "[integration][targeting]") {
  Cluster c;
  c.StartStation();
  const std::filesystem::path radar = c.dir().path() / "radar.facts";
  std::ofstream(radar) << "role=radar\n";
  c.StartAgent("ship1", {"--facts", radar.string()});
  c.StartAgent("ship2");
  const std::filesystem::path runs = c.dir().path() / "runs";
  RunResult r = c.Ctl({"send", "--continuous", "--where",
                       R"((fact.role == "radar" or tag.role == "radar") and not maintenance)", "--shell", "--",
                       Marker(runs)});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = JobIdOf(r);
  CHECK(LineCounts(runs) == std::map<std::string, int>{{"ship1", 1}});
  // A unit installed later, with the fact: it gets the command when it is first heard from.
  c.StartAgent("ship3", {"--facts", radar.string()});
  REQUIRE(WaitUntil([&] { return LineCounts(runs).count("ship3") > 0; }, absl::Seconds(15)));
  // A unit tagged later, while in maintenance: it gets the command once back from it.
  REQUIRE(c.Ctl({"maintenance", "on", "ship2"}).exit_code == 0);
  REQUIRE(c.Ctl({"tag", "set", "ship2", "role=radar"}).exit_code == 0);
  absl::SleepFor(absl::Seconds(2));  // a match is offered within a second
  CHECK(Job(c, id)["totals"]["targets"] == 2);
  REQUIRE(c.Ctl({"maintenance", "off", "ship2"}).exit_code == 0);
  REQUIRE(WaitUntil([&] { return LineCounts(runs).count("ship2") > 0; }, absl::Seconds(15)));
  // The job survives a restart of the station.
  c.StopStation(SIGTERM);
  c.StartStation();
  c.StartAgent("ship4", {"--facts", radar.string()});
  REQUIRE(WaitUntil([&] { return LineCounts(runs).count("ship4") > 0; }, absl::Seconds(15)));
  const json job = Job(c, id);
  CHECK(job["job"]["state"] == "open");
  CHECK(job["totals"]["targets"] == 4);
  // Closed: a later match gets nothing.
  RunResult closed = c.Ctl({"close", id});
  CHECK(closed.exit_code == 0);
  CHECK(closed.out == absl::StrCat("closed ", id, "\n"));
  c.StartAgent("ship5", {"--facts", radar.string()});
  REQUIRE(c.Ctl({"tag", "set", "ship5", "role=radar"}).exit_code == 0);
  absl::SleepFor(absl::Seconds(3));  // a match is offered within a second
  CHECK(LineCounts(runs) == std::map<std::string, int>{{"ship1", 1}, {"ship2", 1}, {"ship3", 1}, {"ship4", 1}});
  CHECK(Job(c, id)["job"]["state"] == "closed");
  RunResult again = c.Ctl({"close", id});
  CHECK(again.exit_code == 255);
  CHECK_THAT(again.err, Catch::Contains("is closed: closed by"));
}

// The runs of schedule `name`, oldest first.
std::vector<json> Runs(Cluster& c, const std::string& name) {
  RunResult r = c.Ctl({"--json", "schedule", "show", name});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  std::vector<json> runs;
  const json reply = json::parse(r.out);
  for (const json& run : reply["runs"]) runs.insert(runs.begin(), run["job"]);
  return runs;
}

TEST_CASE("schedules fire on time, and after downtime skip or catch up once, as configured",
          "[integration][targeting]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(c.Ctl({"schedule", "add", "tick", "--cron", "*/2 * * * * *", "ship1", "--method", "echo", "--", "tick"})
              .exit_code == 0);
  REQUIRE(c.Ctl({"schedule", "add", "skipper", "--cron", "*/3 * * * * *", "--missed", "skip", "ship1", "--method",
                 "echo", "--", "s"})
              .exit_code == 0);
  REQUIRE(c.Ctl({"schedule", "add", "catcher", "--cron", "*/3 * * * * *", "--missed", "run-once", "ship1", "--method",
                 "echo", "--", "c"})
              .exit_code == 0);
  RunResult bad = c.Ctl({"schedule", "add", "bad", "--cron", "0 25 * * *", "--all", "--", "true"});
  CHECK(bad.exit_code == 255);
  CHECK_THAT(bad.err, Catch::Contains("cron hour field \"25\": 25 is outside 0-23"));

  SECTION("on time: each run made at its second, and it ran") {
    REQUIRE(WaitUntil([&] { return Runs(c, "tick").size() >= 3; }, absl::Seconds(20), absl::Milliseconds(200)));
    std::vector<json> runs = Runs(c, "tick");
    for (size_t i = 0; i < runs.size(); ++i) {
      const int64_t at = runs[i]["scheduled_unix_ms"];
      CHECK(at % 2000 == 0);
      CHECK(runs[i]["created_unix_ms"].get<int64_t>() - at < 1500);
      if (i > 0) CHECK(at - runs[i - 1]["scheduled_unix_ms"].get<int64_t>() == 2000);
    }
    REQUIRE(WaitUntil([&] { return Job(c, runs[0]["id"])["totals"]["succeeded"] == 1; }, absl::Seconds(10)));
    // Paused: no more runs.
    REQUIRE(c.Ctl({"schedule", "pause", "tick"}).exit_code == 0);
    const size_t paused_at = Runs(c, "tick").size();
    absl::SleepFor(absl::Seconds(3));
    CHECK(Runs(c, "tick").size() == paused_at);
    CHECK_THAT(c.Ctl({"schedule", "show", "tick"}).out,
               Catch::Contains("schedule pause tick") && Catch::Contains("schedule add tick"));
  }

  SECTION("after downtime: skip makes no run for the missed times, run-once makes exactly one") {
    REQUIRE(WaitUntil([&] { return Runs(c, "catcher").size() >= 1 && Runs(c, "skipper").size() >= 1; },
                      absl::Seconds(15), absl::Milliseconds(200)));
    const int64_t down = absl::ToUnixMillis(absl::Now());
    c.StopStation(SIGKILL);
    absl::SleepFor(absl::Seconds(7));                    // at least two runs of each missed
    const int64_t up = absl::ToUnixMillis(absl::Now());  // every time before this was missed
    c.StartStation();
    const int64_t serving = absl::ToUnixMillis(absl::Now());  // the station loaded before this
    // Runs for times in (from, to).
    auto runs_for = [&](const std::string& name, int64_t from, int64_t to) {
      std::vector<json> out;
      for (const json& run : Runs(c, name)) {
        const int64_t at = run["scheduled_unix_ms"];
        if (at > from && at < to) out.push_back(run);
      }
      return out;
    };
    // Both go on as scheduled after the restart.
    REQUIRE(WaitUntil(
        [&] {
          return Runs(c, "skipper").back()["scheduled_unix_ms"].get<int64_t>() > up &&
                 Runs(c, "catcher").back()["scheduled_unix_ms"].get<int64_t>() > up;
        },
        absl::Seconds(15), absl::Milliseconds(200)));
    // skip: no run for a time the station was down. run-once: one, marked catch-up, for
    // the last time it missed (made at start), and none other for those times.
    CHECK(runs_for("skipper", down + 500, up).empty());
    std::vector<json> caught = runs_for("catcher", down + 500, serving);
    REQUIRE(caught.size() >= 1);
    CHECK(caught[0]["catch_up"] == true);
    CHECK(caught[0]["created_unix_ms"].get<int64_t>() >= up);
    for (size_t i = 1; i < caught.size(); ++i) CHECK(caught[i]["scheduled_unix_ms"].get<int64_t>() > up);
    int catch_ups = 0;
    for (const json& run : Runs(c, "catcher")) catch_ups += run["catch_up"].get<bool>() ? 1 : 0;
    CHECK(catch_ups == 1);
    const json skipper = json::parse(c.Ctl({"--json", "schedule", "show", "skipper"}).out)["schedules"][0];
    CHECK(skipper["missed_runs"].get<int64_t>() >= 2);
    const json catcher = json::parse(c.Ctl({"--json", "schedule", "show", "catcher"}).out)["schedules"][0];
    CHECK(catcher["missed_runs"].get<int64_t>() >= 1);  // the others the catch-up stood for
  }
  REQUIRE(c.Ctl({"schedule", "remove", "tick"}).exit_code == 0);
  RunResult list = c.Ctl({"schedule", "list"});
  CHECK_THAT(list.out, Catch::Contains("skipper") && !Catch::Contains("tick "));
}

}  // namespace

TEST_CASE("a rollout prints a line for a node whose running command an operator canceled",
          "[integration][targeting]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  c.StartAgent("ship2");
  RunResult r;
  std::thread sender([&] { r = c.Ctl({"send", "ship1,ship2", "--batch", "2", "--", "sleep", "3"}, absl::Seconds(60)); });
  std::string id;
  const bool running = WaitUntil(
      [&] {
        for (const json& s : JsonLines(c.Ctl({"--json", "history", "--node", "ship2", "--state", "running"}).out)) {
          id = s["id"];
        }
        return !id.empty();
      },
      absl::Seconds(15));
  if (running) CHECK(c.Ctl({"cancel", id}).exit_code == 0);
  sender.join();
  REQUIRE(running);
  INFO(r.out << r.err);
  // Before, it was counted as stopped by the rollout and never said: no line at all.
  CHECK_THAT(r.out, Catch::Contains("ship1:"));
  CHECK_THAT(r.out, Catch::Contains("ship2: [canceled"));
  CHECK(r.exit_code == 255);
}

TEST_CASE("the station refuses a launch whose target is --all with names, or no target at all",
          "[integration][targeting]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  auto client = steward::ctl::Client::Connect({.nats = {.url = c.url()}});
  REQUIRE(client.ok());
  steward::proto::LaunchRequest req;
  req.mutable_command()->set_method("shellcommand");
  req.mutable_command()->set_domain("operatingsystem");
  req.mutable_command()->add_argv("true");
  // What stewardctl no longer sends, from any client: never widened to every node.
  req.mutable_target()->set_all_nodes(true);
  req.mutable_target()->add_selectors("ship1");
  auto launched = (*client)->Launch(req, absl::Seconds(10));
  REQUIRE_FALSE(launched.ok());
  CHECK_THAT(std::string(launched.status().message()), Catch::Contains("--all takes every node"));
  req.clear_target();
  launched = (*client)->Launch(req, absl::Seconds(10));
  REQUIRE_FALSE(launched.ok());
  CHECK_THAT(std::string(launched.status().message()), Catch::Contains("no target"));
  // Nothing was sent.
  RunResult h = c.Ctl({"--json", "history", "--node", "ship1"});
  CHECK(JsonLines(h.out).empty());
}

TEST_CASE("a schedule stored with --all and names is listed as broken after a restart, and makes no runs",
          "[integration][targeting]") {
  Cluster c;
  c.StartStation();
  c.StartAgent("ship1");
  REQUIRE(c.Ctl({"schedule", "add", "drill", "--cron", "*/2 * * * * *", "ship1", "--method", "echo", "--", "d"})
              .exit_code == 0);
  REQUIRE(WaitUntil([&] { return !Runs(c, "drill").empty(); }, absl::Seconds(15), absl::Milliseconds(200)));
  // As a station before targets were checked stored "schedule add drill ship1 --all":
  // --all with a name, which its runs took as every node.
  c.StopStation();
  {
    auto db = steward::sqlite::Database::Open((c.dir().path() / "station" / "station.db").string(), {});
    REQUIRE(db.ok());
    auto read = db->Prepare("SELECT record FROM schedules WHERE name = 'drill'");
    REQUIRE(read.ok());
    auto row = read->Step();
    REQUIRE(row.ok());
    REQUIRE(*row);
    steward::proto::Schedule s;
    REQUIRE(s.ParseFromString(read->ColumnBlob(0)));
    s.mutable_target()->set_all_nodes(true);
    auto write = db->Prepare("UPDATE schedules SET record = ?1 WHERE name = 'drill'");
    REQUIRE(write.ok());
    REQUIRE(write->BindBlob(1, s.SerializeAsString()).ok());
    REQUIRE(write->Step().ok());
  }
  c.StartStation();
  const size_t before = Runs(c, "drill").size();
  RunResult list = c.Ctl({"schedule", "list"});
  INFO(list.out << list.err);
  CHECK(list.exit_code == 0);
  CHECK_THAT(list.out, Catch::Contains("broken"));
  CHECK_THAT(list.err, Catch::Contains("schedule drill is broken: target: --all takes every node: name no nodes "
                                       "with it (ship1) (it makes no runs: remove it and add it again)"));
  CHECK_THAT(c.Ctl({"schedule", "show", "drill"}).out, Catch::Contains("broken: target: --all takes every node"));
  // Resumed, it still makes none.
  CHECK(c.Ctl({"schedule", "pause", "drill"}).exit_code == 0);
  CHECK(c.Ctl({"schedule", "resume", "drill"}).exit_code == 0);
  absl::SleepFor(absl::Seconds(5));  // two of its times and more
  CHECK(Runs(c, "drill").size() == before);
  CHECK(c.Ctl({"schedule", "remove", "drill"}).exit_code == 0);
  CHECK_THAT(c.Ctl({"schedule", "list"}).out, !Catch::Contains("drill"));
}
