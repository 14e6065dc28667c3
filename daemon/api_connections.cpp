// io.projlink.Connections: decisions go to the deciding project's actor
// (through the registry); reads go straight to the store, since they change
// nothing; Watch subscribes the session to the event hub.

#include "actors/actors.hpp"
#include "actors/mail_text.hpp"
#include "actors/notifications_db.hpp"
#include "actors/sync_db.hpp"
#include "daemon/api_util.hpp"
#include "daemon/paging.hpp"
#include "daemon/session.hpp"

#include <caf/all.hpp>

namespace projlink {

namespace {

using varlink::json;
using varlink::params;

constexpr auto timeout = std::chrono::seconds{90};

json to_json(const connection& c) {
  json j{{"id", c.id},
         {"upstream", c.upstream},
         {"downstream", c.downstream},
         {"state", to_string(c.state)},
         {"requested_by", c.requested_by},
         {"requested_at", c.requested_at}};
  api::put(j, "decided_by", c.decided_by);
  api::put(j, "decided_at", c.decided_at);
  api::put(j, "ended_by", c.ended_by);
  api::put(j, "ended_at", c.ended_at);
  api::put(j, "reason", c.reason);
  api::put(j, "undo_until", c.undo_until);
  return j;
}

json to_json(const event& e) {
  json j{{"seq", e.seq}, {"at", e.at}, {"kind", e.kind}, {"project", e.project}};
  api::put(j, "connection", e.connection);
  api::put(j, "user", e.user);
  api::put(j, "reason", e.reason);
  if (!e.detail.empty())
    j["detail"] = json::parse(e.detail, nullptr, false);
  if (e.peer)
    j["detail"]["peer"] = *e.peer;
  return j;
}

json to_json(const settings& s) {
  return {{"project", s.project}, {"mode", s.mode}, {"users", s.users},
          {"recipients", s.recipients}};
}

json to_json(const notification& n) {
  json j{{"id", std::to_string(n.id)}, {"at", n.at},           {"event", n.event},
         {"project", n.project},        {"recipients", n.recipients}, {"state", n.state},
         {"attempts", n.attempts}};
  api::put(j, "connection", n.connection);
  api::put(j, "last_error", n.last_error);
  return j;
}

json to_json(const sync_status& s) {
  json j{{"connection", s.connection}, {"state", s.state},           {"pending", s.pending},
         {"done", s.done},             {"failed", s.failed},         {"bytes_done", s.bytes_done},
         {"bytes_total", s.bytes_total}};
  api::put(j, "last_error", s.last_error);
  return j;
}

json to_json(const std::vector<connection>& xs) {
  auto out = json::array();
  for (const auto& x : xs)
    out.push_back(to_json(x));
  return out;
}

void publish(const call_ptr& c, std::vector<event> events) {
  if (!events.empty())
    c->self->send(c->svc->hub, atom::publish_v, std::move(events));
}

/// Sends `m` to the actor of `project` and replies with the connection.
void route(const call_ptr& c, const std::string& project, caf::message m) {
  c->self->request(c->svc->registry, timeout, atom::route_v, project, std::move(m))
    .then([c](connection& x) { c->reply({{"connection", to_json(x)}}); },
          [c](caf::error& e) { c->fail(e); });
}

enum class side { upstream, downstream };

/// Looks the connection up, then sends `m` to the actor of `who`.
void route_by_connection(const call_ptr& c, const std::string& id, side who, caf::message m) {
  c->self
    ->request(c->read_target(), timeout, atom::read_v,
              make_store_fn([id](SQLite::Database& d) { return connections::find(d, id); }))
    .then(
      [c, who, m](connection& x) {
        route(c, who == side::upstream ? x.upstream : x.downstream, m);
      },
      [c](caf::error& e) { c->fail(e); });
}

constexpr bool read = false;

/// Streams a Watch's events one at a time, each only if its user may still
/// view the event's project (permissions are checked at each streamed
/// event). A Watch on one project ends with PermissionDenied(view, project)
/// once its user may no longer view it; a Watch of every project skips
/// what is no longer viewable.
caf::behavior watch_gate(caf::event_based_actor* self, call_ptr c, std::string as,
                         std::optional<std::string> project,
                         std::shared_ptr<std::atomic<bool>> stopped) {
  return {
    [=](event& e) {
      if (stopped->load())
        return;
      auto target = c->svc->reader ? c->svc->reader : c->svc->store;
      auto p = project ? *project : e.project;
      // await: one event at a time, in the order the hub sent them.
      self
        ->request(target, std::chrono::seconds{60}, atom::read_v,
                  make_store_fn([as, p](SQLite::Database& d) {
                    return connections::viewable(d, as, p);
                  }))
        .await(
          [=](std::vector<std::string>&) {
            if (!stopped->load())
              c->reply({{"event", to_json(e)}}, true);
          },
          [=](caf::error& err) {
            if (!project || stopped->exchange(true)) {
              return; // not viewable any more: skipped
            }
            c->fail(err);
            self->quit();
          });
    },
  };
}

} // namespace

void add_connections_api(handler_map& m) {
  const std::string i = "io.projlink.Connections.";

  m[i + "Request"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto downstream = api::ref_param(p, "downstream");
    auto upstream = api::ref_param(p, "upstream");
    p.finish();
    route(c, downstream, caf::make_message(atom::request_v, as, upstream));
  };
  m[i + "Approve"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    route_by_connection(c, id, side::upstream, caf::make_message(atom::approve_v, as, id));
  };
  m[i + "Reject"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    auto reason = p.opt_str("reason");
    p.finish();
    // SPEC §6.2 reasons: 1–1,000 characters, no control but newline.
    if (reason) {
      auto ok = mail_text::check_reason(*reason);
      if (!ok)
        throw varlink::invalid_parameter("reason");
      reason = *ok;
    }
    route_by_connection(c, id, side::upstream,
                        caf::make_message(atom::reject_v, as, id, reason.value_or("")));
  };
  m[i + "Undo"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    route_by_connection(c, id, side::downstream, caf::make_message(atom::undo_v, as, id));
  };
  m[i + "Cancel"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    route_by_connection(c, id, side::downstream, caf::make_message(atom::cancel_v, as, id));
  };
  m[i + "Disconnect"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    // Missing reason / terms get the rule's own errors (R11), after the
    // permission check, like empty ones.
    auto reason = p.opt_str("reason").value_or("");
    auto terms = p.opt_bool("accept_terms").value_or(false);
    p.finish();
    // Empty after trimming stays ReasonRequired (R11); anything else that
    // breaks SPEC §6.2's rule for reasons is InvalidParameter(reason).
    if (reason.find_first_not_of(" \t\n\r\v\f") == std::string::npos) {
      reason.clear();
    } else if (auto ok = mail_text::check_reason(reason)) {
      reason = *ok;
    } else {
      throw varlink::invalid_parameter("reason");
    }
    route_by_connection(c, id, side::downstream,
                        caf::make_message(atom::disconnect_v, as, id, reason, terms));
  };

  m[i + "Get"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    store_call<connection>(
      c, read, [=](SQLite::Database& d) { return connections::get(d, as, id); },
      [](const connection& x) { return json{{"connection", to_json(x)}}; });
  };
  m[i + "List"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    // SPEC §6.2: ascending by connection id; a page holds up to `limit`
    // connections of both lists together.
    std::string scope = "Connections.List|" + project;
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<connection>>(
      c, read,
      [=](SQLite::Database& d) { return connections::list(d, as, project, pg.after, pg.limit + 1); },
      [=](const std::vector<connection>& xs) {
        std::vector<json> items;
        std::vector<std::string> keys;
        for (const auto& x : xs) {
          items.push_back(to_json(x));
          keys.push_back(x.id);
        }
        json page = json::object();
        paging::fill(page, "items", std::move(items), keys, pg.limit, scope);
        json reply{{"as_downstream", json::array()}, {"as_upstream", json::array()}};
        for (auto& x : page["items"])
          reply[x["downstream"] == project ? "as_downstream" : "as_upstream"].push_back(std::move(x));
        if (page.contains("next"))
          reply["next"] = page["next"];
        return reply;
      });
  };
  m[i + "History"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    auto after = p.opt_int("after").value_or(0);
    auto limit = p.opt_int("limit").value_or(paging::default_limit);
    p.finish();
    if (after < 0)
      throw varlink::invalid_parameter("after");
    if (limit < 1 || limit > paging::max_limit)
      throw varlink::invalid_parameter("limit");
    // SPEC §6.2: one row more tells whether a next page exists; a page also
    // ends before its reply passes 4 MiB. Here `next` is the last seq.
    store_call<std::vector<event>>(
      c, read,
      [=](SQLite::Database& d) { return connections::history(d, as, project, after, limit + 1); },
      [limit](const std::vector<event>& xs) {
        auto out = json::array();
        size_t bytes = 256;
        bool more = false;
        for (size_t n = 0; n < xs.size(); ++n) {
          auto j = to_json(xs[n]);
          auto size = j.dump().size() + 1;
          if (static_cast<int64_t>(n) == limit || (n > 0 && bytes + size > paging::max_page_bytes)) {
            more = true;
            break;
          }
          bytes += size;
          out.push_back(std::move(j));
        }
        json reply{{"events", out}};
        if (more && !out.empty())
          reply["next"] = out.back()["seq"];
        return reply;
      });
  };
  m[i + "GetSettings"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    p.finish();
    store_call<settings>(
      c, read, [=](SQLite::Database& d) { return connections::get_settings(d, as, project); },
      [](const settings& s) { return json{{"settings", to_json(s)}}; });
  };
  m[i + "SetDistribution"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    auto mode = p.one_of("mode", {"all_admins", "specific_users"});
    auto users = p.opt_str_list("users").value_or(std::vector<std::string>{});
    p.finish();
    store_fn fn = [=](SQLite::Database& d) -> caf::expected<caf::message> {
      std::vector<event> written;
      auto r = connections::set_distribution(d, as, project, mode, users, &written);
      if (!r)
        return std::move(r.error());
      return caf::make_message(std::move(*r), std::move(written));
    };
    c->self->request(c->svc->store, timeout, atom::write_v, std::move(fn))
      .then(
        [c](settings& s, std::vector<event>& written) {
          c->reply({{"settings", to_json(s)}});
          publish(c, std::move(written));
        },
        [c](caf::error& e) { c->fail(e); });
  };
  m[i + "SetApprovalMode"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto company = api::ref_param(p, "company");
    auto auto_approve = p.boolean("auto_approve");
    p.finish();
    store_fn fn = [=](SQLite::Database& d) -> caf::expected<caf::message> {
      std::vector<event> written;
      auto r = connections::set_approval_mode(d, as, company, auto_approve, &written);
      if (!r)
        return std::move(r.error());
      return caf::make_message(*r, std::move(written));
    };
    c->self->request(c->svc->store, timeout, atom::write_v, std::move(fn))
      .then(
        [c](bool value, std::vector<event>& written) {
          c->reply({{"auto_approve", value}});
          publish(c, std::move(written));
        },
        [c](caf::error& e) { c->fail(e); });
  };
  m[i + "SyncStatus"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    store_call<sync_status>(
      c, read, [=](SQLite::Database& d) { return sync::status(d, as, id); },
      [](const sync_status& s) { return json{{"status", to_json(s)}}; });
  };
  m[i + "RetrySync"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto id = api::ref_param(p, "connection");
    p.finish();
    store_call<sync_status>(
      c, true, [=](SQLite::Database& d) { return sync::retry(d, as, id); },
      [c](const sync_status& s) {
        caf::anon_send(c->svc->sync, atom::notify_v);
        return json{{"status", to_json(s)}};
      });
  };
  m[i + "Notifications"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = api::ref_param(p, "project");
    // SPEC §6.2: newest first, by at then id; the key is "<at>\n<id>".
    std::string scope = "Connections.Notifications|" + project;
    auto pg = paging::read(p, scope);
    p.finish();
    std::optional<std::pair<std::string, int64_t>> after;
    if (pg.after) {
      auto cut = pg.after->find('\n');
      if (cut == std::string::npos)
        throw varlink::invalid_parameter("after");
      try {
        after.emplace(pg.after->substr(0, cut), std::stoll(pg.after->substr(cut + 1)));
      } catch (const std::exception&) {
        throw varlink::invalid_parameter("after");
      }
    }
    store_call<std::vector<notification>>(
      c, read,
      [=](SQLite::Database& d) {
        return notifications::list(d, as, project, after, pg.limit + 1);
      },
      [=](const std::vector<notification>& xs) {
        std::vector<json> items;
        std::vector<std::string> keys;
        for (const auto& n : xs) {
          items.push_back(to_json(n));
          keys.push_back(n.at + "\n" + std::to_string(n.id));
        }
        json reply = json::object();
        paging::fill(reply, "notifications", std::move(items), keys, pg.limit, scope);
        return reply;
      });
  };
  m[i + "Watch"] = [](const call_ptr& c, params& p) {
    auto as = api::ref_param(p, "as");
    auto project = p.opt_str("project");
    p.finish();
    if (!c->in().call.more) {
      c->fail("org.varlink.service.ExpectedMore", json::object());
      return;
    }
    c->self
      ->request(c->read_target(), timeout, atom::read_v,
                make_store_fn(
                  [=](SQLite::Database& d) { return connections::viewable(d, as, project); }))
      .then(
        [c, as, project](std::vector<std::string>& projects) {
          // Revocation (SPEC §6.3): every event is checked again before it
          // is streamed, by a gate linked to the session (it ends with it).
          auto stopped = std::make_shared<std::atomic<bool>>(false);
          auto gate = c->self->spawn<caf::linked>(watch_gate, c, as, project, stopped);
          // The session ends when its client hangs up; the hub watches it.
          subscription s{c->self->address(), std::move(projects),
                         [gate, stopped](const event& e) {
                           if (stopped->load())
                             return false;
                           caf::anon_send(gate, e);
                           return true;
                         }};
          c->self->send(c->svc->hub, atom::subscribe_v, std::move(s));
          c->svc->metrics->watches_started++;
        },
        [c](caf::error& e) { c->fail(e); });
  };
}

} // namespace projlink
