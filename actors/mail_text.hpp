#pragma once

// User text on its way into a message or an SMTP session (SPEC §6.2
// reasons, §10 notifications). Pure functions, no I/O; unit-tested in
// tests/notifications_test.cpp.
//
// A disconnect reason with a bare CR, `<CR>.<CR><LF>` or a NUL once
// reached an SMTP server as an SMTP-smuggling sequence, and a long body
// line or Subject broke RFC 5322's 998-octet limit. So: reasons are
// checked where they enter (`check_reason`); every header value and every
// envelope address is stripped of control characters (`header_safe`); the
// Subject is RFC 2047-encoded in words of at most 75 characters on folded
// lines (`encode_subject`); the body gets CRLF line ends only, no control
// characters but tab, and no line over 998 octets (`body_lines`).

#include <optional>
#include <string>
#include <string_view>

namespace projlink::mail_text {

/// SPEC §6.2: a reason is 1–1,000 Unicode code points of valid UTF-8 after
/// trimming white space, with no control character but newline. Returns
/// the trimmed reason, or nothing when it breaks a rule (empty included).
std::optional<std::string> check_reason(std::string_view text);

/// Removes every control character (C0, DEL) — CR, LF and NUL included.
std::string header_safe(std::string_view text);

/// The value of a `Subject:` header: plain when it is printable ASCII and
/// the line stays within 998 octets, else RFC 2047 `=?UTF-8?B?…?=` words
/// of 60 characters at most (split between UTF-8 characters), joined
/// by CRLF + space (folding). Control characters are removed first.
std::string encode_subject(std::string_view text);

/// The body with CRLF line ends (CR, LF and CRLF all end a line), control
/// characters other than tab removed, and lines longer than 998 octets
/// broken (between UTF-8 characters) so that none passes 998.
std::string body_lines(std::string_view text);

} // namespace projlink::mail_text
