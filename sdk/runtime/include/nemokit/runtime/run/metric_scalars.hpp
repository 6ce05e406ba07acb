#pragma once
// The numbers one metrics.jsonl line holds, as named series: the event files and `nemokit
// report` read a line the same way.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nemokit::rt {

// Top-level numbers under their key ("loss"), numbers of nested objects as "key/sub"
// ("reward/arith"), all under "<phase>/" when the line names a phase ("reward_model/loss", so
// a stage with two phases keeps their curves apart). "step" is the x axis, not a series;
// strings, booleans, arrays (generated samples) and nulls (JSON's NaN) are left out.
std::vector<std::pair<std::string, double>> metric_scalars(const nlohmann::json& line);

// The line's "step" (0 when it has none).
int64_t metric_step(const nlohmann::json& line);

}  // namespace nemokit::rt
