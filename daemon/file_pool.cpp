#include "daemon/file_pool.hpp"

#include <caf/all.hpp>

namespace projlink {

namespace {

caf::behavior file_worker(caf::event_based_actor* self, std::atomic<int64_t>* load) {
  return {
    [load](file_task& t) -> caf::result<blob_info> {
      auto r = t.run();
      load->fetch_sub(1);
      if (!r)
        return std::move(r.error());
      return std::move(*r);
    },
  };
}

} // namespace

file_pool::file_pool(caf::actor_system& sys, size_t workers)
  : load_(new std::atomic<int64_t>[workers == 0 ? 1 : workers]) {
  if (workers == 0)
    workers = 1;
  for (size_t i = 0; i < workers; ++i) {
    load_[i] = 0;
    workers_.push_back(sys.spawn<caf::detached>(file_worker, &load_[i]));
  }
}

const caf::actor& file_pool::pick() const {
  size_t best = 0;
  for (size_t i = 1; i < workers_.size(); ++i)
    if (load_[i].load() < load_[best].load())
      best = i;
  load_[best].fetch_add(1);
  return workers_[best];
}

void file_pool::shutdown() {
  for (auto& w : workers_)
    caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
}

} // namespace projlink
