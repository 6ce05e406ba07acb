// The instructions that only edit the image config (ENV, LABEL, USER, CMD,
// ENTRYPOINT, VOLUME, HEALTHCHECK ...): no layer, one history entry each.
// WORKDIR also makes its folder, so it is a layer step (build_driver.cpp).
#include "config_instructions.hpp"

#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <map>

#include "nemokit/dockerfile/user_db.hpp"

namespace nemokit::dockerfile {
using nlohmann::json;

namespace {

// Go duration syntax as Docker takes it: "30s", "1m30s", "500ms", "1.5h": numbers, each with a unit.
// Read by hand: a flag can be arbitrarily long and std::regex recurses once per character.
int64_t duration_ns(const Flag& f) {
  static const std::map<std::string, double> unit = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  const std::string& v = f.value;
  if (v.empty()) fail_at(f.where, "--" + f.name + " needs a duration");
  auto bad = [&](const std::string& why) { fail_at(f.where, "--" + f.name + "=" + v + ": " + why); };
  auto digits_from = [&](size_t p) {
    while (p < v.size() && std::isdigit(static_cast<unsigned char>(v[p]))) ++p;
    return p;
  };
  double total = 0;
  for (size_t pos = 0; pos < v.size();) {
    size_t number_end = digits_from(pos);
    if (number_end == pos) bad("expected a duration such as 30s or 1m30s");
    if (number_end < v.size() && v[number_end] == '.') {
      size_t fraction_end = digits_from(number_end + 1);
      if (fraction_end == number_end + 1) bad("expected a duration such as 30s or 1m30s");
      number_end = fraction_end;
    }
    size_t unit_end = number_end;
    while (unit_end < v.size() && std::isalpha(static_cast<unsigned char>(v[unit_end]))) ++unit_end;
    auto u = unit.find(v.substr(number_end, unit_end - number_end));
    if (u == unit.end()) bad("expected a duration such as 30s or 1m30s");
    total += std::strtod(v.substr(pos, number_end - pos).c_str(), nullptr) * u->second;
    pos = unit_end;
  }
  // Docker keeps durations as int64 nanoseconds (about 292 years).
  if (!(total < 9.2e18)) bad("duration too long");
  return int64_t(total);
}

}  // namespace

bool apply_config_instruction(Stage& s, const Instruction& ins, const Vars& vars, const WordOptions& words) {
  const std::string& k = ins.keyword;
  if (k == "ENV") {
    for (auto& [key, value] : parse_key_values(ins.args, vars, words, ins.args_where, true)) set_env(s, key, value);
    add_history(s, "ENV " + ins.args, true);
    return true;
  }
  if (k == "LABEL") {
    for (auto& [key, value] : parse_key_values(ins.args, vars, words, ins.args_where, false)) config_of(s)["Labels"][key] = value;
    add_history(s, "LABEL " + ins.args, true);
    return true;
  }
  if (k == "MAINTAINER") {
    s.image["author"] = ins.args;
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "USER") {
    std::string user = process_word(ins.args, vars, words, ins.args_where);
    try {
      check_user_spec(user);
    } catch (const BuildError& e) {
      fail_at(ins.args_where, "USER " + user + ": " + e.what());
    }
    config_of(s)["User"] = user;
    add_history(s, "USER " + ins.args, true);
    return true;
  }
  if (k == "SHELL") {
    if (ins.json_args.empty()) fail_at(ins.args_where, "SHELL needs at least the shell program");
    s.shell = ins.json_args;
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "CMD" || k == "ENTRYPOINT") {
    json v = ins.json_form ? json(ins.json_args) : json(shell_command(s, ins.args));
    config_of(s)[k == "CMD" ? "Cmd" : "Entrypoint"] = v;
    if (k == "CMD")
      s.cmd_set = true;
    else if (!s.cmd_set)
      config_of(s).erase("Cmd");  // a new ENTRYPOINT drops an inherited CMD
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "EXPOSE") {
    for (auto& p : split_words(ins.args, vars, words, ins.args_where))
      config_of(s)["ExposedPorts"][p.find('/') == std::string::npos ? p + "/tcp" : p] = json::object();
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "VOLUME") {
    auto vols = ins.json_form ? ins.json_args : split_words(ins.args, vars, words, ins.args_where);
    for (auto& v : vols) {
      if (v.empty()) fail_at(ins.args_where, "VOLUME with an empty path");
      config_of(s)["Volumes"][v] = json::object();
    }
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "STOPSIGNAL") {
    config_of(s)["StopSignal"] = process_word(ins.args, vars, words, ins.args_where);
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "HEALTHCHECK") {
    if (lower_case(ins.args) == "none") {
      config_of(s)["Healthcheck"] = {{"Test", {"NONE"}}};
    } else {
      std::string rest = ins.args;
      if (lower_case(rest.substr(0, 4)) != "cmd ") fail_at(ins.args_where, "HEALTHCHECK takes NONE or CMD ...");
      rest = rest.substr(4);
      rest.erase(0, rest.find_first_not_of(" \t"));
      json test;
      if (ins.json_form) {
        test = ins.json_args;
        test.insert(test.begin(), "CMD");
      } else {
        test = {"CMD-SHELL", rest};
      }
      json hc = {{"Test", test}};
      for (auto& f : ins.flags) {
        static const std::map<std::string, std::string> keys = {{"interval", "Interval"},
                                                                {"timeout", "Timeout"},
                                                                {"start-period", "StartPeriod"},
                                                                {"start-interval", "StartInterval"}};
        if (f.name == "retries") {
          if (f.value.empty() || f.value.size() > 9 || f.value.find_first_not_of("0123456789") != std::string::npos)
            fail_at(f.where, "--retries=" + f.value + ": expected a whole number below a billion");
          hc["Retries"] = std::stoi(f.value);
        } else if (auto it = keys.find(f.name); it != keys.end()) {
          hc[it->second] = duration_ns(f);
        } else {
          fail_at(f.where, "HEALTHCHECK does not take --" + f.name);
        }
      }
      config_of(s)["Healthcheck"] = hc;
    }
    add_history(s, ins.original, true);
    return true;
  }
  if (k == "ONBUILD") {
    // Checked now, as Docker does, so that no image carries a trigger that cannot run.
    Dockerfile trigger;
    try {
      trigger = parse_dockerfile(ins.args, "ONBUILD");
    } catch (const BuildError& e) {
      fail_at(ins.args_where, std::string("ONBUILD: ") + e.what());
    }
    if (trigger.instructions.size() != 1) fail_at(ins.args_where, "ONBUILD takes one instruction");
    const std::string& tk = trigger.instructions[0].keyword;
    if (tk == "ONBUILD" || tk == "FROM" || tk == "MAINTAINER")
      fail_at(ins.args_where, tk + " is not allowed as an ONBUILD trigger");
    config_of(s)["OnBuild"].push_back(ins.args);
    add_history(s, ins.original, true);
    return true;
  }
  return false;
}

}  // namespace nemokit::dockerfile
