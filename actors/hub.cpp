// The event hub: every committed event goes to the Watch calls that cover
// one of its projects. Subscribers are dropped when their session ends.

#include "actors/actors.hpp"

#include <caf/all.hpp>

#include <unordered_set>

namespace projlink {

namespace {

struct watcher {
  caf::actor_addr owner;
  std::unordered_set<std::string> projects;
  event_sink sink;
};

struct hub_state {
  std::vector<watcher> watchers;
  std::string label;
  static inline const char* name = "hub";
};

// `name` is only there because CAF 0.17's factory binds a null reference
// when an actor is spawned without arguments (UBSan); see daemon/main.cpp.
hub_actor::behavior_type hub(hub_actor::stateful_pointer<hub_state> self, std::string name) {
  self->state.label = std::move(name);
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& ws = self->state.watchers;
    ws.erase(std::remove_if(ws.begin(), ws.end(),
                            [&](const watcher& w) { return w.owner == dm.source; }),
             ws.end());
  });
  return {
    [=](atom::subscribe, subscription& s) {
      self->monitor(s.owner);
      self->state.watchers.push_back(
        {s.owner, {s.projects.begin(), s.projects.end()}, std::move(s.sink)});
    },
    [=](atom::publish, std::vector<event>& events) {
      auto& ws = self->state.watchers;
      for (const auto& e : events) {
        for (auto& w : ws) {
          if (!w.sink)
            continue;
          // One row per project's history: a connection event reaches a
          // Watch once for each of its projects it covers.
          bool covered = w.projects.count(e.project) > 0;
          if (covered && !w.sink(e))
            w.sink = nullptr;
        }
      }
      ws.erase(std::remove_if(ws.begin(), ws.end(), [](const watcher& w) { return !w.sink; }),
               ws.end());
    },
  };
}

} // namespace

hub_actor spawn_hub(caf::actor_system& sys) {
  return sys.spawn(hub, std::string{"events"});
}

} // namespace projlink
