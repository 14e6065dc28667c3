// io.projlink.Drawings: metadata through the store; file work (hashing an
// upload into the blob store, exporting into a passed descriptor) on a
// short-lived detached actor, never on a scheduler thread.

#include "actors/drawings_db.hpp"
#include "daemon/api_util.hpp"
#include "daemon/file_pool.hpp"
#include "daemon/paging.hpp"
#include "daemon/session.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <unistd.h>

namespace projlink {

namespace {

using varlink::json;
using varlink::params;

constexpr auto timeout = std::chrono::minutes{30}; // large files
constexpr bool write = true;
constexpr bool read = false;

json to_json(const revision& r) {
  json j{{"id", r.id},
         {"project", r.project},
         {"number", r.number},
         {"title", r.title},
         {"revision", r.label},
         {"obsolete", r.obsolete},
         {"published", r.published},
         {"connected", r.connected},
         {"sha256", r.sha256},
         {"size", r.size}};
  api::put(j, "status", r.status);
  api::put(j, "drawing_date", r.drawing_date);
  api::put(j, "received_date", r.received_date);
  api::put(j, "discipline", r.discipline);
  if (r.discipline_position)
    j["discipline_position"] = *r.discipline_position;
  api::put(j, "area", r.area);
  api::put(j, "area_description", r.area_description);
  api::put(j, "set", r.set);
  api::put(j, "set_date", r.set_date);
  api::put(j, "upstream_revision", r.upstream_revision);
  return j;
}

json to_json(const std::vector<revision>& xs) {
  auto out = json::array();
  for (const auto& x : xs)
    out.push_back(to_json(x));
  return out;
}

std::string text_param(params& p, const char* name) {
  auto s = p.str(name);
  if (s.empty() || s.size() > 1000)
    throw varlink::invalid_parameter(name);
  return s;
}

drawing_fields fields(params& p) {
  drawing_fields f;
  f.title = p.opt_str("title");
  f.status = p.opt_str("status");
  f.drawing_date = p.opt_str("drawing_date");
  f.received_date = p.opt_str("received_date");
  f.discipline = p.opt_str("discipline");
  f.discipline_position = p.opt_int("discipline_position");
  f.area = p.opt_str("area");
  f.area_description = p.opt_str("area_description");
  f.set = p.opt_str("set");
  f.set_date = p.opt_str("set_date");
  return f;
}

/// A duplicate of descriptor `index` passed with the call (closed by the
/// caller), or -1 when there is no such descriptor.
int passed_fd(const call_ptr& c, int64_t index) {
  const auto& fds = c->in().fds;
  if (!fds || index < 0 || static_cast<size_t>(index) >= fds->fds.size())
    return -1;
  return ::fcntl(fds->fds[static_cast<size_t>(index)], F_DUPFD_CLOEXEC, 0);
}

/// Runs blocking file work `fn` on the bounded file pool (daemon/file_pool);
/// `ok` gets its result on the session, errors go to the caller.
template <class F, class OK>
void off_thread(const call_ptr& c, F fn, OK ok) {
  const auto& worker = c->svc->file_workers->pick();
  c->self->request(worker, timeout, file_task{std::move(fn)})
    .then([c, ok](blob_info& x) { ok(x); }, [c](caf::error& e) { c->fail(e); });
}

/// control.fd_timeout: the longest wait for a passed descriptor.
std::chrono::milliseconds fd_timeout(const call_ptr& c) {
  return std::chrono::milliseconds{c->svc->files->fd_timeout_ms.load()};
}

/// The caller as a reader of files under storage.import_dirs.
blob_store::reader caller_reader(const call_ptr& c) {
  blob_store::reader who;
  if (const auto& p = c->in().peer) {
    who.uid = p->uid;
    who.groups = p->groups;
  } else {
    who.uid = static_cast<uid_t>(-1); // unknown: only what anyone may read
  }
  return who;
}

/// Renders a page of revisions fetched with limit + 1 rows (daemon/paging).
template <class Key>
auto paged(const char* list_key, paging::request pg, std::string scope, Key key_of) {
  return [=](const std::vector<revision>& xs) {
    std::vector<json> items;
    std::vector<std::string> keys;
    for (const auto& x : xs) {
      items.push_back(to_json(x));
      keys.push_back(key_of(x));
    }
    json reply = json::object();
    paging::fill(reply, list_key, std::move(items), keys, pg.limit, scope);
    return reply;
  };
}

template <class T>
auto as(const char* key) {
  return [key](const T& x) { return json{{key, to_json(x)}}; };
}

/// Like `as`, and tells the sync coordinator that jobs may have been queued.
template <class T>
auto kick_as(const call_ptr& c, const char* key) {
  return [c, key](const T& x) {
    caf::anon_send(c->svc->sync, atom::notify_v);
    return json{{key, to_json(x)}};
  };
}

} // namespace

void add_drawings_api(handler_map& m) {
  const std::string i = "io.projlink.Drawings.";

  m[i + "Upload"] = [](const call_ptr& c, params& p) {
    upload_request r;
    r.as = api::ref_param(p, "as");
    r.project = api::ref_param(p, "project");
    r.number = text_param(p, "number");
    auto title = text_param(p, "title");
    r.label = text_param(p, "revision");
    auto file_fd = p.opt_int("file_fd");
    auto path = p.opt_str("path");
    r.fields = fields(p);
    r.fields.title = title;
    p.finish();
    // Exactly one of the two.
    if (file_fd.has_value() == path.has_value())
      throw varlink::invalid_parameter("file_fd");
    int fd = -1;
    if (file_fd) {
      fd = passed_fd(c, *file_fd);
      if (fd < 0)
        throw varlink::invalid_parameter("file_fd");
    }
    auto fd_guard = std::shared_ptr<int>(new int{fd}, [](int* p) {
      if (*p >= 0)
        ::close(*p);
      delete p;
    });
    // May this user upload here? Checked before a byte is read, and again
    // inside `insert`, so a change meanwhile is caught.
    const auto* blobs = c->svc->blobs;
    auto dirs = c->svc->files->import_dirs();
    auto store = c->svc->store;
    auto who = caller_reader(c);
    uint64_t max_bytes = c->svc->files->max_upload_bytes.load();
    auto wait = fd_timeout(c);
    auto gone = c->in().gone;
    c->self
      ->request(store, timeout, atom::read_v,
                make_store_fn([r](SQLite::Database& d) { return drawings::check_upload(d, r); }))
      .then(
        [=]() {
          off_thread(
            c,
            [blobs, fd_guard, path, dirs, who, max_bytes, wait, gone]() -> caf::expected<blob_info> {
              if (path)
                return blobs->put_path(*path, dirs, who, max_bytes);
              return blobs->put_fd(*fd_guard, max_bytes, wait, gone.get());
            },
            [c, r, store, blobs](blob_info& blob) {
              // The blob stays pinned (safe from collection) until the
              // revision referring to it is committed, or refused.
              auto sha = blob.sha256;
              c->self
                ->request(store, timeout, atom::write_v,
                          make_store_fn([r, blob](SQLite::Database& d) {
                            return drawings::insert(d, r, blob);
                          }))
                .then(
                  [c, blobs, sha](revision& x) {
                    blobs->unpin(sha);
                    c->reply({{"revision", to_json(x)}});
                  },
                  [c, blobs, sha](caf::error& e) {
                    blobs->unpin(sha);
                    c->fail(e);
                  });
            });
        },
        [c](caf::error& e) { c->fail(e); });
  };

  m[i + "Publish"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    auto ids = p.str_list("revisions");
    p.finish();
    if (ids.empty() || ids.size() > 10'000)
      throw varlink::invalid_parameter("revisions");
    store_call<std::vector<revision>>(
      c, write,
      [=](SQLite::Database& d) { return drawings::publish(d, as_, project, ids); },
      kick_as<std::vector<revision>>(c, "revisions"));
  };
  m[i + "Update"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto id = api::ref_param(p, "revision");
    auto f = fields(p);
    p.finish();
    store_call<revision>(
      c, write, [=](SQLite::Database& d) { return drawings::update(d, as_, id, f); },
      kick_as<revision>(c, "revision"));
  };
  m[i + "SetObsolete"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto id = api::ref_param(p, "revision");
    auto obsolete = p.boolean("obsolete");
    p.finish();
    store_call<revision>(
      c, write, [=](SQLite::Database& d) { return drawings::set_obsolete(d, as_, id, obsolete); },
      kick_as<revision>(c, "revision"));
  };
  m[i + "Delete"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto id = api::ref_param(p, "revision");
    p.finish();
    store_call<void>(
      c, write, [=](SQLite::Database& d) { return drawings::remove(d, as_, id); },
      [c] {
        caf::anon_send(c->svc->sync, atom::notify_v);
        return json::object();
      });
  };
  m[i + "Get"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto id = api::ref_param(p, "revision");
    p.finish();
    store_call<revision>(
      c, read, [=](SQLite::Database& d) { return drawings::get(d, as_, id); },
      as<revision>("revision"));
  };
  m[i + "List"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    auto all = p.opt_bool("include_unpublished").value_or(false);
    std::string scope = "Drawings.List|" + project + (all ? "|all" : "|published");
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<revision>>(
      c, read,
      [=](SQLite::Database& d) {
        return drawings::list(d, as_, project, all, pg.after, pg.limit + 1);
      },
      paged("revisions", pg, scope, [](const revision& r) { return r.id; }));
  };
  m[i + "DeletedRevisions"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    std::string scope = "Drawings.DeletedRevisions|" + project;
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<revision>>(
      c, read,
      [=](SQLite::Database& d) {
        return drawings::deleted(d, as_, project, pg.after, pg.limit + 1);
      },
      paged("revisions", pg, scope,
            [](const revision& r) { return r.deleted_at.value_or("") + "\n" + r.id; }));
  };
  m[i + "Export"] = [](const call_ptr& c, params& p) {
    auto as_ = api::ref_param(p, "as");
    auto id = api::ref_param(p, "revision");
    auto index = p.integer("file_fd");
    p.finish();
    int fd = passed_fd(c, index);
    if (fd < 0)
      throw varlink::invalid_parameter("file_fd");
    auto fd_guard = std::shared_ptr<int>(new int{fd}, [](int* p) {
      ::close(*p);
      delete p;
    });
    const auto* blobs = c->svc->blobs;
    auto wait = fd_timeout(c);
    auto gone = c->in().gone;
    c->self
      ->request(c->read_target(), timeout, atom::read_v,
                make_store_fn(
                  [=](SQLite::Database& d) { return drawings::for_export(d, as_, id); }))
      .then(
        [c, blobs, fd_guard, wait, gone](revision& r) {
          auto sha = r.sha256;
          off_thread(
            c,
            [blobs, fd_guard, sha, wait, gone] {
              return blobs->export_to(sha, *fd_guard, wait, gone.get());
            },
            [c](blob_info& b) { c->reply({{"size", b.size}, {"sha256", b.sha256}}); });
        },
        [c](caf::error& e) { c->fail(e); });
  };
}

} // namespace projlink
