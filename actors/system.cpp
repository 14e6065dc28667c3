#include "actors/system.hpp"

#include "actors/actors.hpp"
#include "actors/error.hpp"

#include <caf/all.hpp>

#include <stdexcept>
#include <thread>

namespace projlink {

std::unique_ptr<caf::actor_system_config> make_caf_config(const config& cfg) {
  auto c = std::make_unique<caf::actor_system_config>();
  size_t threads = cfg.actors.scheduler_threads;
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  // set() only prints when a key is wrong: read each value back.
  c->set("scheduler.policy", caf::atom("sharing"));
  c->set("scheduler.max-threads", threads);
  if (caf::get_or(c->content, "scheduler.max-threads", size_t{0}) != threads
      || caf::get_or(c->content, "scheduler.policy", caf::atom("")) != caf::atom("sharing"))
    throw std::runtime_error("CAF refused the scheduler configuration");
  // Messages between project actors are plain values that could cross a
  // node boundary (SPEC §13): announce them.
  c->add_message_type<connection>("projlink::connection");
  c->add_message_type<event>("projlink::event");
  c->add_message_type<std::vector<event>>("std::vector<projlink::event>");
  c->add_message_type<decision>("projlink::decision");
  c->add_error_category(ec_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
    return describe(caf::error{code, ec_category, ctx});
  });
  return c;
}

} // namespace projlink
