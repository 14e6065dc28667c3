#include "daemon/interfaces.hpp"
#include "daemon/varlink.hpp"

#include <catch2/catch.hpp>

using namespace projlink;
using namespace projlink::varlink;

TEST_CASE("frame_reader splits a stream at NUL bytes, across reads") {
  frame_reader r{1024};
  std::string stream = std::string("{\"a\":1}") + '\0' + "{\"b\"" ;
  r.feed(stream.data(), stream.size());
  CHECK(r.next() == std::string("{\"a\":1}"));
  CHECK_FALSE(r.next());
  CHECK(r.partial());
  std::string rest = std::string(":2}") + '\0' + '\0';
  r.feed(rest.data(), rest.size());
  CHECK(r.next() == std::string("{\"b\":2}"));
  CHECK(r.next() == std::string(""));
  CHECK_FALSE(r.next());
  CHECK_FALSE(r.partial());
}

TEST_CASE("frame_reader handles many messages fed one byte at a time") {
  frame_reader r{64};
  std::string stream;
  for (int i = 0; i < 100; ++i)
    stream += "{\"i\":" + std::to_string(i) + "}" + '\0';
  int seen = 0;
  for (char ch : stream) {
    r.feed(&ch, 1);
    while (auto m = r.next())
      CHECK(*m == "{\"i\":" + std::to_string(seen++) + "}");
  }
  CHECK(seen == 100);
}

TEST_CASE("frame_reader flags a message over the limit, with or without its NUL") {
  SECTION("terminated") {
    frame_reader r{8};
    std::string m = std::string(20, 'x') + '\0';
    r.feed(m.data(), m.size());
    CHECK_FALSE(r.next());
    CHECK(r.overflowed());
  }
  SECTION("unterminated and growing") {
    frame_reader r{8};
    std::string m(9, 'x');
    r.feed(m.data(), m.size());
    CHECK_FALSE(r.next());
    CHECK(r.overflowed());
  }
  SECTION("exactly at the limit is fine") {
    frame_reader r{8};
    std::string m = std::string(8, 'x') + '\0';
    r.feed(m.data(), m.size());
    CHECK(r.next() == std::string(8, 'x'));
    CHECK_FALSE(r.overflowed());
  }
}

TEST_CASE("parse_call accepts a call and rejects what is not one") {
  std::string why;
  auto c = parse_call(R"({"method":"a.b.C","parameters":{"x":1},"more":true})", why);
  REQUIRE(c);
  CHECK(c->method == "a.b.C");
  CHECK(c->parameters["x"] == 1);
  CHECK(c->more);
  CHECK_FALSE(c->oneway);
  for (const char* bad : {"{", "[1,2]", "\"str\"", "{}", R"({"method":1})", R"({"method":""})",
                          R"({"method":"a.B","parameters":[]})", R"({"method":"a.B","more":"yes"})",
                          R"({"method":"a.B","upgrade":true})", "nul\x01l"}) {
    INFO(bad);
    CHECK_FALSE(parse_call(bad, why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("replies and errors are one JSON object followed by NUL") {
  auto r = encode_reply({{"a", 1}}, true);
  CHECK(r.back() == '\0');
  auto j = json::parse(r.substr(0, r.size() - 1));
  CHECK(j["parameters"]["a"] == 1);
  CHECK(j["continues"] == true);
  auto e = encode_error("x.Y", {{"k", "v"}});
  auto je = json::parse(e.substr(0, e.size() - 1));
  CHECK(je["error"] == "x.Y");
  CHECK(je["parameters"]["k"] == "v");
  // Invalid UTF-8 in a value does not throw.
  CHECK_NOTHROW(encode_reply({{"a", std::string("\xff\xfe")}}));
}

TEST_CASE("params reads typed values and names the bad one") {
  json p{{"s", "x"}, {"b", true}, {"i", 3}, {"f", 3.0}, {"l", {"a", "b"}}, {"n", nullptr}};
  params r{p};
  CHECK(r.str("s") == "x");
  CHECK(r.boolean("b"));
  CHECK(r.integer("i") == 3);
  CHECK(r.integer("f") == 3);
  CHECK(r.str_list("l") == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(r.opt_str("n"));
  CHECK_FALSE(r.opt_str("absent"));
  CHECK_NOTHROW(r.finish());

  auto fails_on = [](json j, auto fn) {
    params q{j};
    try {
      fn(q);
    } catch (const invalid_parameter& e) {
      return e.parameter;
    }
    return std::string{};
  };
  CHECK(fails_on({{"s", 1}}, [](params& q) { q.str("s"); }) == "s");
  CHECK(fails_on(json::object(), [](params& q) { q.str("s"); }) == "s");
  CHECK(fails_on({{"b", "true"}}, [](params& q) { q.boolean("b"); }) == "b");
  CHECK(fails_on({{"i", 3.5}}, [](params& q) { q.integer("i"); }) == "i");
  CHECK(fails_on({{"l", {"a", 1}}}, [](params& q) { q.str_list("l"); }) == "l");
  CHECK(fails_on({{"m", "x"}}, [](params& q) { q.one_of("m", {"a", "b"}); }) == "m");
  CHECK(fails_on({{"typo", 1}}, [](params& q) { q.finish(); }) == "typo");
}

TEST_CASE("every embedded interface is served and declares its methods") {
  const auto& all = embedded_interfaces();
  REQUIRE(all.size() == 5);
  const auto* d = find_interface("io.projlink.Directory");
  REQUIRE(d);
  CHECK(d->text.find("interface io.projlink.Directory") != std::string::npos);
  CHECK(declares_method(*d, "ListProjects"));
  CHECK(declares_method(*d, "Import"));
  CHECK_FALSE(declares_method(*d, "ListProject"));
  CHECK_FALSE(declares_method(*d, "Project"));
  const auto* c = find_interface("io.projlink.Connections");
  REQUIRE(c);
  CHECK(declares_method(*c, "Disconnect")); // signature spans two lines
  CHECK_FALSE(find_interface("io.projlink"));
  std::string_view i, m;
  CHECK(split_method("io.projlink.Daemon.GetStatus", i, m));
  CHECK(i == "io.projlink.Daemon");
  CHECK(m == "GetStatus");
  CHECK_FALSE(split_method("nodot", i, m));
  CHECK_FALSE(split_method("trailing.", i, m));
}

TEST_CASE("integer parameters out of int64's range are InvalidParameter, never a wrapped cast") {
  using projlink::varlink::json;
  using projlink::varlink::params;
  auto value = [](const std::string& text) -> std::optional<int64_t> {
    auto j = json::parse(R"({"n": )" + text + "}");
    params p{j};
    try {
      return p.integer("n");
    } catch (const projlink::varlink::invalid_parameter&) {
      return std::nullopt;
    }
  };
  CHECK(value("3") == 3);
  CHECK(value("3.0") == 3);
  CHECK_FALSE(value("3.5"));
  CHECK(value("-9223372036854775808") == std::numeric_limits<int64_t>::min());
  CHECK(value("9223372036854775807") == std::numeric_limits<int64_t>::max());
  CHECK_FALSE(value("9223372036854775808"));   // unsigned past int64
  CHECK_FALSE(value("18446744073709551615"));
  CHECK_FALSE(value("1e300"));                  // float past int64: was undefined behaviour
  CHECK_FALSE(value("-1e300"));
  CHECK_FALSE(value("9.3e18"));
}
