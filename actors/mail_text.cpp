#include "actors/mail_text.hpp"

#include <openssl/evp.h>

namespace projlink::mail_text {

namespace {

/// Length of the UTF-8 sequence starting at s[i], or 0 when invalid.
size_t utf8_len(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80)
      return 0;
  // Overlong forms and surrogates are not valid UTF-8.
  auto c1 = static_cast<unsigned char>(n > 1 ? s[i + 1] : 0);
  if ((n == 2 && c < 0xc2) || (n == 3 && c == 0xe0 && c1 < 0xa0)
      || (n == 3 && c == 0xed && c1 >= 0xa0) || (n == 4 && c == 0xf0 && c1 < 0x90)
      || (n == 4 && (c > 0xf4 || (c == 0xf4 && c1 >= 0x90))))
    return 0;
  return n;
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

bool is_space(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  auto n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                           reinterpret_cast<const unsigned char*>(s.data()),
                           static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

/// Where to cut `s` at most `max` bytes from `from`, between characters.
size_t cut(std::string_view s, size_t from, size_t max) {
  size_t i = from;
  while (i < s.size()) {
    auto n = utf8_len(s, i);
    if (n == 0)
      n = 1; // invalid byte: one at a time
    if (i + n - from > max)
      break;
    i += n;
  }
  return i == from ? std::min(s.size(), from + 1) : i;
}

} // namespace

std::optional<std::string> check_reason(std::string_view text) {
  size_t b = 0, e = text.size();
  while (b < e && is_space(static_cast<unsigned char>(text[b])))
    ++b;
  while (e > b && is_space(static_cast<unsigned char>(text[e - 1])))
    --e;
  auto t = text.substr(b, e - b);
  size_t points = 0;
  for (size_t i = 0; i < t.size();) {
    auto n = utf8_len(t, i);
    if (n == 0)
      return std::nullopt;
    auto c = static_cast<unsigned char>(t[i]);
    if (n == 1 && is_control(c) && c != '\n')
      return std::nullopt;
    // C1 controls (U+0080–U+009F) are control characters too.
    if (n == 2 && c == 0xc2 && static_cast<unsigned char>(t[i + 1]) < 0xa0)
      return std::nullopt;
    i += n;
    ++points;
  }
  if (points < 1 || points > 1000)
    return std::nullopt;
  return std::string{t};
}

std::string header_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text)
    if (!is_control(static_cast<unsigned char>(c)))
      out += c;
  return out;
}

std::string encode_subject(std::string_view text) {
  auto s = header_safe(text);
  bool ascii = true;
  for (unsigned char c : s)
    ascii = ascii && c < 0x80;
  if (ascii && s.size() <= 998 - 9) // "Subject: " + value within 998
    return s;
  // Each word: "=?UTF-8?B?" (10) + base64 + "?=" (2): 36 bytes of text
  // make 48 base64 characters, a 60-character word, so that even the first
  // line ("Subject: " + word) stays within 78.
  std::string out;
  for (size_t i = 0; i < s.size();) {
    auto j = cut(s, i, 36);
    if (!out.empty())
      out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view{s}.substr(i, j - i)) + "?=";
    i = j;
  }
  return out;
}

std::string body_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 40);
  std::string line;
  auto end_line = [&] {
    for (size_t i = 0; i < line.size();) {
      auto j = line.size() - i > 998 ? cut(line, i, 998) : line.size();
      out.append(line, i, j - i);
      out += "\r\n";
      i = j;
    }
    if (line.empty())
      out += "\r\n";
    line.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n')
        ++i;
      end_line();
    } else if (c == '\n') {
      end_line();
    } else if (!is_control(c) || c == '\t') {
      line += static_cast<char>(c);
    }
  }
  if (!line.empty())
    end_line();
  return out;
}

} // namespace projlink::mail_text
