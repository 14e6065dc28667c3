// End to end: concurrent requests can never together break R3 or R5
// (SPEC §11). Every call of a round is released at the same instant from
// its own client connection.

#include "e2e_connections_support.hpp"

#include <atomic>
#include <iostream>
#include <thread>

using namespace e2e;

namespace {

/// Sends call i on connection i from thread i, all released together, and
/// returns the replies in order. No Catch2 macro runs off the main thread.
std::vector<json> at_once(const fs::path& socket,
                          const std::vector<std::pair<std::string, json>>& calls,
                          double* seconds = nullptr) {
  std::vector<std::unique_ptr<conn>> conns;
  for (size_t i = 0; i < calls.size(); ++i)
    conns.push_back(std::make_unique<conn>(socket));
  std::vector<json> replies(calls.size());
  std::atomic<size_t> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < calls.size(); ++i) {
    threads.emplace_back([&, i] {
      ready++;
      while (!go)
        std::this_thread::yield();
      conns[i]->send_call(calls[i].first, calls[i].second);
      auto r = conns[i]->read(30'000);
      replies[i] = r ? *r : json{{"error", "no reply"}};
    });
  }
  while (ready < calls.size())
    std::this_thread::yield();
  auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto& t : threads)
    t.join();
  if (seconds != nullptr)
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return replies;
}

const std::string request = "io.projlink.Connections.Request";

json req(const std::string& down, const std::string& up) {
  return {{"as", "sa"}, {"downstream", down}, {"upstream", up}};
}

/// A directory: company gc (auto-approve) with upstreams u0.., company sub
/// with projects p0.., sa the sub admin with drawings access everywhere.
std::string directory(int upstreams, int subs) {
  std::string y = "companies:\n  - {id: gc, name: GC}\n  - {id: sub, name: Sub}\nprojects:\n";
  for (int i = 0; i < upstreams; ++i)
    y += "  - {id: u" + std::to_string(i) + ", company: gc, name: U}\n";
  for (int i = 0; i < subs; ++i)
    y += "  - {id: p" + std::to_string(i) + ", company: sub, name: P}\n";
  y += "users:\n  - {id: sa, email: sa@sub.test, name: SA, company: sub, company_admin: true}\n";
  if (upstreams > 0) {
    y += "access:\n";
    for (int i = 0; i < upstreams; ++i)
      y += "  - {project: u" + std::to_string(i) + ", user: sa, cm: read_only, drawings: read_only}\n";
  }
  return y;
}

void import(conn& c, const std::string& yaml) {
  auto r = c.call("io.projlink.Directory.Import", {{"document", yaml}});
  REQUIRE(error_of(r).empty());
}

json list(conn& c, const std::string& project) {
  return c.call("io.projlink.Connections.List",
                {{"as", "sa"}, {"project", project}})["parameters"];
}

size_t live(const json& xs) {
  size_t n = 0;
  for (const auto& x : xs)
    n += x["state"] == "active" || x["state"] == "awaiting_approval";
  return n;
}

} // namespace

TEST_CASE("concurrency: 50 downstream projects requesting one upstream at once all succeed") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  import(c, directory(1, 50));
  std::vector<std::pair<std::string, json>> calls;
  for (int i = 0; i < 50; ++i)
    calls.push_back({request, req("p" + std::to_string(i), "u0")});
  double seconds = 0;
  auto replies = at_once(d.socket, calls, &seconds);
  for (const auto& r : replies) {
    INFO(r.dump());
    CHECK(r["parameters"]["connection"]["state"] == "active");
  }
  auto l = list(c, "u0");
  CHECK(l["as_upstream"].size() == 50);
  CHECK(live(l["as_upstream"]) == 50);
  std::cout << "figure: 50 concurrent requests to one upstream: " << seconds * 1000 << " ms\n";
}

TEST_CASE("concurrency: one downstream requesting 20 upstreams at once gets exactly one") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  import(c, directory(20, 1));
  std::vector<std::pair<std::string, json>> calls;
  for (int i = 0; i < 20; ++i)
    calls.push_back({request, req("p0", "u" + std::to_string(i))});
  double seconds = 0;
  auto replies = at_once(d.socket, calls, &seconds);
  int ok = 0;
  for (const auto& r : replies) {
    if (error_of(r).empty())
      ++ok;
    else
      CHECK(error_of(r) == "io.projlink.Connections.AlreadyConnected");
  }
  CHECK(ok == 1);
  auto l = list(c, "p0");
  CHECK(l["as_downstream"].size() == 1);
  std::cout << "figure: 20 concurrent requests from one downstream: " << seconds * 1000
            << " ms\n";
}

TEST_CASE("concurrency: A requests B while B requests A, never both, 30 rounds") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  const int rounds = 30;
  import(c, directory(0, rounds * 2));
  int one_won = 0;
  for (int i = 0; i < rounds; ++i) {
    auto a = "p" + std::to_string(2 * i);
    auto b = "p" + std::to_string(2 * i + 1);
    auto replies = at_once(d.socket, {{request, req(a, b)}, {request, req(b, a)}});
    int ok = error_of(replies[0]).empty() + error_of(replies[1]).empty();
    INFO(replies[0].dump() << "\n" << replies[1].dump());
    CHECK(ok <= 1);
    one_won += ok == 1;
    for (const auto& r : replies)
      if (!error_of(r).empty())
        CHECK(error_of(r) == "io.projlink.Connections.RoleConflict");
    for (const auto& p : {a, b}) {
      auto l = list(c, p);
      CHECK(live(l["as_downstream"]) + live(l["as_upstream"]) <= 1);
    }
  }
  std::cout << "figure: A<->B races: " << one_won << " of " << rounds
            << " rounds had one winner, none had two\n";
}

TEST_CASE("concurrency: a project requested while it requests is never both upstream and downstream") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  const int rounds = 30;
  import(c, directory(0, rounds * 3));
  for (int i = 0; i < rounds; ++i) {
    auto p = "p" + std::to_string(3 * i);
    auto q = "p" + std::to_string(3 * i + 1);
    auto r = "p" + std::to_string(3 * i + 2);
    // p requests q while r requests p.
    auto replies = at_once(d.socket, {{request, req(p, q)}, {request, req(r, p)}});
    INFO(replies[0].dump() << "\n" << replies[1].dump());
    CHECK(error_of(replies[0]).empty() + error_of(replies[1]).empty() <= 1);
    auto l = list(c, p);
    CHECK_FALSE((live(l["as_downstream"]) > 0 && live(l["as_upstream"]) > 0));
  }
}
