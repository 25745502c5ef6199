// The headers nearly every test file parses: gtest, the standard library, abseil, the generated
// messages and gRPC. Compiled once per build tree into a precompiled header that every test
// binary reuses (tests/CMakeLists.txt), because parsing them was a third of each test file's
// compile time, and test code is the largest share of CI's build. Nothing here is test-specific:
// test files still include what they use.
#ifndef MOECAP_TESTS_PRECOMPILED_H_
#define MOECAP_TESTS_PRECOMPILED_H_

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "moecap/v1/agent_service.grpc.pb.h"
#include "moecap/v1/job_service.grpc.pb.h"
#include "moecap/v1/plan.pb.h"
#include "moecap/v1/rank.pb.h"
#include "moecap/v1/report.pb.h"

#endif  // MOECAP_TESTS_PRECOMPILED_H_
