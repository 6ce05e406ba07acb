// How the chat template's Jinja expressions turn JSON values into text. Jinja runs on Python, so a
// template's `x | string` is Python's str(x), `x | trim` is str.strip(), and transformers' `x | tojson`
// is json.dumps(x, ensure_ascii=False). Rendering the same bytes natively means reproducing those
// three exactly, including the parts nlohmann's dump() does differently (", " and ": " separators,
// Python's float repr, True/False/None).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace nemokit::sft {

// Python's repr() of a float: the shortest digits that round-trip, fixed notation for exponents -4..15
// ("0.0001", "100.0"), else scientific with a two-digit exponent ("1e-05", "1e+16").
std::string python_float_repr(double value);

// Python's str() of the value json.loads would give: strings as they are; True/False/None; containers
// as Python prints them (['a', 1], {'k': True}).
std::string python_str(const nlohmann::ordered_json& value);

// json.dumps(value, ensure_ascii=False) with the default separators, keys in the record's order.
std::string python_json(const nlohmann::ordered_json& value);

// str.strip(): drops leading and trailing characters Python counts as whitespace (ASCII and Unicode).
std::string python_strip(std::string_view text);

}  // namespace nemokit::sft
