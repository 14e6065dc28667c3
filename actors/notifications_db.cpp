#include "actors/notifications_db.hpp"
#include "actors/sql_util.hpp"

#include "actors/directory_db.hpp"
#include "actors/error.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace projlink::notifications {

namespace {

using SQLite::Statement;
using json = nlohmann::json;

struct place {
  std::string id;
  std::string name;
  std::string company;
};

place place_of(db& d, const std::string& project) {
  sql::stmt q(d, "SELECT p.name, c.name FROM projects p JOIN companies c ON c.id = p.company "
                 "WHERE p.id = ?");
  q.bind(1, project);
  if (!q.executeStep())
    return {project, project, "?"};
  return {project, q.getColumn(0).getString(), q.getColumn(1).getString()};
}

std::string who(db& d, const std::optional<std::string>& user) {
  if (!user)
    return "projlink (automatic)";
  sql::stmt q(d, "SELECT name, email FROM users WHERE id = ?");
  q.bind(1, *user);
  if (!q.executeStep())
    return *user;
  return q.getColumn(0).getString() + " <" + q.getColumn(1).getString() + ">";
}

/// Which notification an event is, and who gets it (SPEC §10).
struct target {
  std::string name;
  bool upstream = false;
  bool downstream = false;
  bool drawings_admins = false; ///< the downstream's drawings: admin users, not its list
};

std::optional<target> target_of(const event& e, const connection& c) {
  const auto& k = e.kind;
  if (k == "requested")
    return c.state == conn_state::awaiting_approval ? std::optional<target>{{"connection_requested", true, false}}
                                          : std::nullopt; // auto-approved: connection_created
  if (k == "auto_approved" || k == "approved")
    return target{"connection_created", true, true};
  if (k == "rejected")
    return target{"request_rejected", false, true};
  if (k == "cancelled")
    return target{"request_cancelled", true, true};
  if (k == "expired")
    return target{"request_expired", true, true};
  if (k == "disconnected")
    return target{"connection_disabled", true, true};
  if (k == "initial_sync_complete")
    return target{"initial_sync_complete", false, true, true};
  if (k == "drawings_published")
    return target{"drawings_published_upstream", false, true, true};
  if (k == "drawings_deleted")
    return target{"drawings_deleted_upstream", false, true, true};
  if (k == "sync_failed")
    return target{"sync_failed", true, true};
  if (k == "undone") {
    // Undone by the upstream: the request waits for approval again (SPEC §10).
    if (e.detail.find("\"side\":\"upstream\"") != std::string::npos)
      return target{"connection_unapproved", true, true};
    return target{"request_cancelled", true, true};
  }
  return std::nullopt;
}

std::string headline(const std::string& name, const place& down, const place& up) {
  std::string pair = down.name + " (" + down.id + ") <- " + up.name + " (" + up.id + ")";
  if (name == "connection_requested")
    return "Connection requested: " + pair;
  if (name == "connection_created")
    return "Connection active: " + pair;
  if (name == "connection_unapproved")
    return "Connection approval undone: " + pair;
  if (name == "request_rejected")
    return "Connection request rejected: " + pair;
  if (name == "request_cancelled")
    return "Connection request cancelled: " + pair;
  if (name == "request_expired")
    return "Connection request expired: " + pair;
  if (name == "connection_disabled")
    return "Connection disconnected: " + pair;
  if (name == "initial_sync_complete")
    return "Initial drawing sync complete: " + pair;
  if (name == "drawings_published_upstream")
    return "New drawings from upstream: " + pair;
  if (name == "drawings_deleted_upstream")
    return "Drawings deleted upstream: " + pair;
  if (name == "sync_failed")
    return "Drawing sync failed: " + pair;
  return name + ": " + pair;
}

std::string summary(const std::string& name, const place& down, const place& up) {
  auto d = down.company + "'s project " + down.name + " (" + down.id + ")";
  auto u = up.company + "'s project " + up.name + " (" + up.id + ")";
  if (name == "connection_requested")
    return d + " asks to receive the published drawings of " + u
           + ". A Connection Manager admin of " + up.name + " can approve or reject it.";
  if (name == "connection_created")
    return d + " is now connected to " + u
           + ": its published drawings are copied, unpublished, into " + down.name + ".";
  if (name == "connection_unapproved")
    return "The approval of the connection of " + d + " to " + u
           + " was undone: the request waits for approval again, and the copies not yet"
             " published in " + down.name + " were removed.";
  if (name == "request_rejected")
    return "The request of " + d + " to connect to " + u + " was rejected.";
  if (name == "request_cancelled")
    return "The request of " + d + " to connect to " + u + " was cancelled.";
  if (name == "request_expired")
    return "The request of " + d + " to connect to " + u
           + " expired without an answer.";
  if (name == "connection_disabled")
    return d + " was disconnected from " + u
           + ". Drawings already copied stay; nothing new is copied. " + down.name
           + " can never connect again.";
  if (name == "initial_sync_complete")
    return "Every published drawing of " + u + " has been copied, unpublished, into " + d
           + ". A Drawings admin can review and publish them.";
  if (name == "drawings_published_upstream")
    return u + " published new drawings; they have been copied, unpublished, into " + d + ".";
  if (name == "drawings_deleted_upstream")
    return u + " deleted drawings; their copies were removed from the drawing log of " + d
           + " and are listed in its deleted-revisions report.";
  if (name == "sync_failed")
    return "Copying a drawing from " + u + " into " + d
           + " failed after every retry. It can be retried with projlinkctl sync retry.";
  return name;
}

std::vector<std::string> drawings_admins_of(db& d, const std::string& project) {
  std::vector<std::string> out;
  sql::stmt r(d, "SELECT u.email FROM access a JOIN users u ON u.id = a.user "
                 "WHERE a.project = ? AND a.drawings = 3 ORDER BY u.email");
  r.bind(1, project);
  while (r.executeStep())
    out.push_back(r.getColumn(0).getString());
  return out;
}

} // namespace

std::vector<std::string> recipients_of(db& d, const std::string& project) {
  std::vector<std::string> out;
  std::string mode = "all_admins";
  std::vector<std::string> users;
  sql::stmt q(d, "SELECT mode, users FROM distribution WHERE project = ?");
  q.bind(1, project);
  if (q.executeStep()) {
    mode = q.getColumn(0).getString();
    users = json::parse(q.getColumn(1).getString()).get<std::vector<std::string>>();
  }
  if (mode == "all_admins") {
    sql::stmt r(d, "SELECT u.email FROM access a JOIN users u ON u.id = a.user "
                   "WHERE a.project = ? AND a.cm = 3 ORDER BY u.email");
    r.bind(1, project);
    while (r.executeStep())
      out.push_back(r.getColumn(0).getString());
  } else {
    sql::stmt r(d, "SELECT email FROM users WHERE id = ?");
    for (const auto& id : users) {
      r.reset();
      r.bind(1, id);
      if (r.executeStep())
        out.push_back(r.getColumn(0).getString());
    }
  }
  return out;
}

int enqueue(db& d, const event& e, const connection& c) {
  auto t = target_of(e, c);
  if (!t)
    return 0;
  // One row per list to notify, not yet expanded: the notifier resolves the
  // recipients and renders the message later, in its own transactions.
  sql::stmt q(d, "INSERT INTO outbox (at, event, project, connection, recipients, subject, body, "
                 "state, event_seq, expanded) VALUES (?, ?, ?, ?, '[]', '', '', 'pending', ?, 0)");
  int n = 0;
  for (const auto& [wanted, project] :
       {std::pair{t->downstream, &c.downstream}, std::pair{t->upstream, &c.upstream}}) {
    if (!wanted)
      continue;
    q.reset();
    q.bind(1, e.at);
    q.bind(2, t->name);
    q.bind(3, *project);
    q.bind(4, c.id);
    q.bind(5, e.seq);
    q.exec();
    ++n;
  }
  return n;
}

namespace {

/// Whether `name` goes to the downstream's drawings admins instead of its list.
bool to_drawings_admins(const std::string& name) {
  return name == "initial_sync_complete" || name == "drawings_published_upstream"
         || name == "drawings_deleted_upstream";
}

std::string render_body(const std::string& name, const event& e, const connection& c,
                        const place& down, const place& up, const place& p,
                        const std::string& by) {
  std::string body = summary(name, down, up) + "\n\n";
  body += "Event:       " + name + "\n";
  body += "Connection:  " + c.id + "\n";
  body += "Downstream:  " + down.name + " (" + down.id + "), " + down.company + "\n";
  body += "Upstream:    " + up.name + " (" + up.id + "), " + up.company + "\n";
  body += "By:          " + by + "\n";
  body += "At:          " + e.at + "\n";
  if (e.reason)
    body += "Reason:      " + *e.reason + "\n";
  if (!e.detail.empty() && e.kind != "undone")
    body += "Details:     " + e.detail + "\n";
  body += "\nYou receive this message because you are on the notification list of project "
          + p.name + " (" + p.id + ").\n";
  return body;
}

std::optional<event> load_event(db& d, int64_t seq) {
  sql::stmt q(d, "SELECT at, kind, project, user, reason, detail FROM events WHERE seq = ?");
  q.bind(1, seq);
  if (!q.executeStep())
    return std::nullopt;
  event e;
  e.seq = seq;
  e.at = q.getColumn(0).getString();
  e.kind = q.getColumn(1).getString();
  e.project = q.getColumn(2).getString();
  if (!q.getColumn(3).isNull())
    e.user = q.getColumn(3).getString();
  if (!q.getColumn(4).isNull())
    e.reason = q.getColumn(4).getString();
  if (!q.getColumn(5).isNull())
    e.detail = q.getColumn(5).getString();
  return e;
}

std::optional<connection> load_connection(db& d, const std::string& id) {
  sql::stmt q(d, "SELECT upstream, downstream FROM connections WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  connection c;
  c.id = id;
  c.upstream = q.getColumn(0).getString();
  c.downstream = q.getColumn(1).getString();
  return c;
}

} // namespace

caf::expected<std::vector<expansion>> prepare(db& d, int64_t limit) {
  struct queued {
    int64_t id;
    std::string name;
    std::string project;
    std::string connection;
    int64_t seq;
  };
  std::vector<queued> rows;
  {
    sql::stmt q(d, "SELECT id, event, project, connection, event_seq FROM outbox "
                   "WHERE expanded = 0 ORDER BY id LIMIT ?");
    q.bind(1, limit);
    while (q.executeStep())
      rows.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                      q.getColumn(2).getString(), q.getColumn(3).getString(),
                      q.getColumn(4).getInt64()});
  }
  std::vector<expansion> out;
  out.reserve(rows.size());
  for (const auto& r : rows) {
    expansion x;
    x.id = r.id;
    auto e = load_event(d, r.seq);
    auto c = load_connection(d, r.connection);
    if (e && c) {
      auto down = place_of(d, c->downstream);
      auto up = place_of(d, c->upstream);
      const auto& p = r.project == c->downstream ? down : up;
      x.subject = "[projlink] " + headline(r.name, down, up);
      x.body = render_body(r.name, *e, *c, down, up, p, who(d, e->user));
      x.recipients = to_drawings_admins(r.name) ? drawings_admins_of(d, r.project)
                                                : recipients_of(d, r.project);
    }
    if (x.recipients.empty())
      x.error = "the distribution list of project " + r.project + " is empty";
    out.push_back(std::move(x));
  }
  return out;
}

caf::expected<int64_t> expand(db& d, const std::vector<expansion>& xs) {
  sql::stmt first(d, "UPDATE outbox SET expanded = 1, recipients = ?, subject = ?, body = ?, "
                     "state = ?, last_error = ? WHERE id = ? AND expanded = 0");
  sql::stmt more(d, "INSERT INTO outbox (at, event, project, connection, recipients, subject, "
                    "body, state, event_seq, expanded) "
                    "SELECT at, event, project, connection, ?, subject, body, 'pending', "
                    "event_seq, 1 FROM outbox WHERE id = ?");
  int64_t n = 0;
  for (const auto& x : xs) {
    const auto& to = x.recipients;
    first.reset();
    first.bind(1, json(to.empty() ? std::vector<std::string>{} : std::vector{to[0]}).dump());
    first.bind(2, x.subject);
    first.bind(3, x.body);
    if (to.empty()) {
      first.bind(4, "failed");
      first.bind(5, x.error);
    } else {
      first.bind(4, "pending");
      first.bind(5);
    }
    first.bind(6, x.id);
    if (first.exec() == 0)
      continue; // expanded already: a repeat changes nothing
    ++n;
    for (size_t i = 1; i < to.size(); ++i) {
      more.reset();
      more.bind(1, json(std::vector{to[i]}).dump());
      more.bind(2, x.id);
      more.exec();
    }
  }
  return n;
}

caf::expected<std::vector<outbox_item>> due(db& d, const std::string& now, int64_t limit) {
  sql::stmt q(d, "SELECT id, at, event, project, connection, recipients, subject, body, attempts "
                 "FROM outbox WHERE state = 'pending' AND expanded = 1 AND "
                 "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?");
  q.bind(1, now);
  q.bind(2, limit);
  std::vector<outbox_item> out;
  while (q.executeStep()) {
    outbox_item x;
    x.id = q.getColumn(0).getInt64();
    x.at = q.getColumn(1).getString();
    x.event = q.getColumn(2).getString();
    x.project = q.getColumn(3).getString();
    if (!q.getColumn(4).isNull())
      x.connection = q.getColumn(4).getString();
    auto to = json::parse(q.getColumn(5).getString());
    x.recipient = to.empty() ? std::string{} : to[0].get<std::string>();
    x.subject = q.getColumn(6).getString();
    x.body = q.getColumn(7).getString();
    x.attempts = q.getColumn(8).getInt64();
    out.push_back(std::move(x));
  }
  return out;
}

caf::expected<std::string> record(db& d, const std::vector<delivery_result>& results,
                                  std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                  int64_t max_attempts) {
  auto now = std::chrono::system_clock::now();
  auto at = format_time(now);
  sql::stmt ok(d, "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, "
                  "delivered_at = ?, last_error = NULL, next_attempt_at = NULL WHERE id = ?");
  sql::stmt attempts(d, "SELECT attempts FROM outbox WHERE id = ?");
  sql::stmt fail(d, "UPDATE outbox SET state = ?, attempts = ?, last_error = ?, "
                    "next_attempt_at = ? WHERE id = ?");
  for (const auto& r : results) {
    if (r.delivered) {
      ok.reset();
      ok.bind(1, at);
      ok.bind(2, r.id);
      ok.exec();
      continue;
    }
    attempts.reset();
    attempts.bind(1, r.id);
    if (!attempts.executeStep())
      continue;
    auto n = attempts.getColumn(0).getInt64() + 1;
    attempts.reset();
    bool give_up = r.permanent || n >= max_attempts;
    // Exponential backoff: initial, 2×, 4×, … capped at max.
    auto delay = initial;
    for (int64_t i = 1; i < n && delay < max; ++i)
      delay *= 2;
    delay = std::min(delay, max);
    fail.reset();
    fail.bind(1, give_up ? "failed" : "pending");
    fail.bind(2, n);
    fail.bind(3, r.error);
    if (give_up)
      fail.bind(4);
    else
      fail.bind(4, format_time(now + delay));
    fail.bind(5, r.id);
    fail.exec();
  }
  return next_due(d);
}

caf::expected<std::string> next_due(db& d) {
  auto at = now_string();
  // Pending without a time: due now.
  if (d.execAndGet("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending' AND "
                   "next_attempt_at IS NULL AND expanded = 1)")
        .getInt()
      != 0)
    return at;
  auto next = d.execAndGet("SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'");
  return next.isNull() ? std::string{} : next.getString();
}

caf::expected<std::vector<notification>> list(db& d, const std::string& as,
                                              const std::string& project,
                                              const std::optional<std::pair<std::string, int64_t>>& after,
                                              int64_t limit) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto at = directory::levels_in(d, *u, project);
  if (!at)
    return std::move(at.error());
  if (!rules::may_view(*at))
    return make_error(ec::permission_denied, std::string{"view"}, project);
  sql::stmt q(d, "SELECT id, at, event, project, connection, recipients, state, attempts, "
                 "last_error FROM outbox WHERE project = ?1 AND (?2 IS NULL OR at < ?2 "
                 "OR (at = ?2 AND id < ?3)) ORDER BY at DESC, id DESC LIMIT ?4");
  q.bind(1, project);
  if (after) {
    q.bind(2, after->first);
    q.bind(3, after->second);
  } else {
    q.bind(2);
    q.bind(3);
  }
  q.bind(4, limit);
  std::vector<notification> out;
  while (q.executeStep()) {
    notification n;
    n.id = q.getColumn(0).getInt64();
    n.at = q.getColumn(1).getString();
    n.event = q.getColumn(2).getString();
    n.project = q.getColumn(3).getString();
    if (!q.getColumn(4).isNull())
      n.connection = q.getColumn(4).getString();
    n.recipients = json::parse(q.getColumn(5).getString()).get<std::vector<std::string>>();
    n.state = q.getColumn(6).getString();
    n.attempts = q.getColumn(7).getInt64();
    if (!q.getColumn(8).isNull())
      n.last_error = q.getColumn(8).getString();
    out.push_back(std::move(n));
  }
  return out;
}

} // namespace projlink::notifications
