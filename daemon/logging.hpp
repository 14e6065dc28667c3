#pragma once

#include "config/config.hpp"

#include <spdlog/common.h>

#include <string>

namespace projlink {

/// Points spdlog's default logger at stderr with the configured level and
/// format (`text`: one readable line; `json`: one JSON object per line).
/// When stderr is the journal (`JOURNAL_STREAM` names it, sd-daemon(3)),
/// each line starts with its syslog priority (`<3>` error … `<7>` debug)
/// and carries no time stamp (journald adds one). Safe to call again on
/// reload.
void setup_logging(const config& cfg);

/// True when stderr is the journal's stream (checked once).
bool stderr_is_journal();

/// What a log line is about; empty members are left out.
struct log_fields {
  std::string project;
  std::string connection;
};

/// Logs `message` about one project or connection. Under the journal (and
/// when its socket exists) it goes through sd_journal_send with the
/// structured fields PROJLINK_PROJECT and PROJLINK_CONNECTION (so
/// `journalctl PROJLINK_CONNECTION=c-…` finds it); otherwise it is an
/// ordinary line with ` project=… connection=…` appended.
void log_about(spdlog::level::level_enum level, const log_fields& about,
               const std::string& message);

} // namespace projlink
