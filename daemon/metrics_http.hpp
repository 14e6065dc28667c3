#pragma once

// /metrics in the Prometheus text exposition format (version 0.0.4), served
// by GNU libmicrohttpd on its own thread (`metrics.listen`). A scrape reads
// the counters of daemon/metrics.hpp, the registry of
// daemon/metrics_registry.hpp and one read of the store (connections by
// state, history events by kind, sync and outbox backlogs), which it asks of
// the reader actor and waits for on the HTTP thread: nothing here runs on
// CAF's scheduler threads.

#include "daemon/session.hpp"

#include <caf/actor_system.hpp>

#include <cstdint>
#include <string>

struct MHD_Daemon;

namespace projlink {

/// The whole exposition text. `db_json` is the store read's result (see
/// metrics_http.cpp), empty when the store did not answer.
std::string render_prometheus(const services& svc, const std::string& db_json);

/// What the store read of a scrape returns (a JSON object); runs on the
/// store's or reader's connection.
std::string metrics_store_snapshot(SQLite::Database& db);

class metrics_http {
public:
  /// Binds and listens on `listen` (HOST:PORT, checked by the
  /// configuration); returns the socket. Throws std::runtime_error with a
  /// message for the log when the address cannot be bound. Called before
  /// the actor system starts, so that a taken port stops the daemon early.
  static int bind_listen(const std::string& listen);

  /// Serves /metrics on `listen_fd` (from bind_listen; the server owns it).
  metrics_http(caf::actor_system& sys, const services* svc, int listen_fd);
  ~metrics_http(); ///< stops the thread; call before the actor system ends

  metrics_http(const metrics_http&) = delete;
  metrics_http& operator=(const metrics_http&) = delete;

  /// The bound port (the chosen one when `listen` said port 0).
  uint16_t port() const {
    return port_;
  }

  /// One scrape's text (what GET /metrics answers).
  std::string scrape();

private:
  caf::actor_system& sys_;
  const services* svc_;
  MHD_Daemon* mhd_ = nullptr;
  uint16_t port_ = 0;
};

} // namespace projlink
