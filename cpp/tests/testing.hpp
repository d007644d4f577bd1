// A minimal unit-test harness for the C++ core (no third-party framework to install):
//   TEST(name) { CHECK(cond); CHECK_EQ(a, b); CHECK_THROWS_ERRNO(expr, ECONNREFUSED); }
//   int main() { return socketeer::testing::run_all(); }
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "socketeer/error.hpp"

namespace socketeer::testing {

struct Case {
  const char* name;
  std::function<void()> body;
};

inline std::vector<Case>& cases() {
  static std::vector<Case> all;
  return all;
}

struct Failure {
  std::string message;
};

struct Register {
  Register(const char* name, std::function<void()> body) { cases().push_back({name, std::move(body)}); }
};

inline int run_all() {
  int failed = 0;
  for (auto& test : cases()) {
    try {
      test.body();
      std::printf("ok   %s\n", test.name);
    } catch (const Failure& failure) {
      ++failed;
      std::printf("FAIL %s: %s\n", test.name, failure.message.c_str());
    } catch (const std::exception& error) {
      ++failed;
      std::printf("FAIL %s: unexpected exception: %s\n", test.name, error.what());
    }
  }
  std::printf("%zu passed, %d failed\n", cases().size() - failed, failed);
  return failed ? 1 : 0;
}

}  // namespace socketeer::testing

#define SOCKETEER_CAT2(a, b) a##b
#define SOCKETEER_CAT(a, b) SOCKETEER_CAT2(a, b)
#define TEST(name)                                                                        \
  static void test_##name();                                                              \
  static socketeer::testing::Register SOCKETEER_CAT(register_, name)(#name, test_##name); \
  static void test_##name()
#define FAIL_AT(text) \
  throw socketeer::testing::Failure{std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + (text)}
#define CHECK(cond) \
  do {              \
    if (!(cond)) FAIL_AT("CHECK(" #cond ")"); \
  } while (0)
#define CHECK_EQ(a, b)                                          \
  do {                                                          \
    if (!((a) == (b))) FAIL_AT("CHECK_EQ(" #a ", " #b ")");     \
  } while (0)
#define CHECK_THROWS_ERRNO(expr, code)                                                      \
  do {                                                                                      \
    try {                                                                                   \
      (void)(expr);                                                                         \
    } catch (const socketeer::Error& error) {                                               \
      if (error.code_value() == (code)) break;                                              \
      FAIL_AT("wrong errno " + std::to_string(error.code_value()) + " from " #expr);        \
    }                                                                                       \
    FAIL_AT("no error from " #expr);                                                        \
  } while (0)
#define CHECK_THROWS_AS(expr, type)                      \
  do {                                                   \
    try {                                                \
      (void)(expr);                                      \
    } catch (const type&) {                              \
      break;                                             \
    }                                                    \
    FAIL_AT("no " #type " from " #expr);                 \
  } while (0)
