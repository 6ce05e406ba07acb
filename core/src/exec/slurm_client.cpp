#include "exec/slurm_client.hpp"

#include "exec/process.hpp"

#include <sstream>
#include <stdexcept>

namespace nemokit {

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  size_t b = s.find_first_not_of(" \n");
  return b == std::string::npos ? "" : s.substr(b);
}

// Value of KEY= in `scontrol show job -o` output (fields are blank-separated).
std::string field(const std::string& text, const std::string& key) {
  size_t pos = 0;
  while ((pos = text.find(key + "=", pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == ' ' || text[pos - 1] == '\n') {
      size_t start = pos + key.size() + 1;
      size_t end = text.find_first_of(" \n", start);
      return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    pos += key.size();
  }
  return "";
}

}  // namespace

bool SlurmJobState::ended() const {
  static const char* finals[] = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                                 "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED"};
  std::string s = state.substr(0, state.find(' '));  // sacct writes "CANCELLED by 0"
  for (const char* f : finals)
    if (s == f) return true;
  return false;
}

bool is_slurm_job_id(const std::string& id) {
  if (id.empty() || id.size() > 32) return false;
  bool underscore = false;
  for (size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (c == '_' && i > 0 && !underscore && i + 1 < id.size()) { underscore = true; continue; }
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int parse_slurm_exit_code(const std::string& text) {
  size_t colon = text.find(':');
  try {
    int code = std::stoi(text.substr(0, colon));
    int sig = colon == std::string::npos ? 0 : std::stoi(text.substr(colon + 1));
    return sig != 0 ? 128 + sig : code;
  } catch (const std::exception&) {
    return -1;
  }
}

std::string sbatch_submit(const std::filesystem::path& script, const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {"sbatch", "--parsable"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  argv.push_back(script.string());
  CommandResult r = run_command(argv);
  std::string id = trim(r.out);
  id = id.substr(0, id.find(';'));  // "ID;cluster" on multi-cluster setups
  if (r.exit_code != 0 || !is_slurm_job_id(id))
    throw std::runtime_error("sbatch refused " + script.string() + ": " + trim(r.err.empty() ? r.out : r.err));
  return id;
}

SlurmJobState slurm_job_state(const std::string& job_id) {
  SlurmJobState st;
  if (!is_slurm_job_id(job_id)) return st;
  CommandResult q = run_command({"squeue", "-h", "-j", job_id, "-o", "%T|%r"});
  std::string line = trim(q.out);
  if (q.exit_code == 0 && !line.empty()) {
    st.state = line.substr(0, line.find('|'));
    st.reason = line.find('|') == std::string::npos ? "" : line.substr(line.find('|') + 1);
    if (st.state != "COMPLETED" && st.state != "FAILED" && st.state != "CANCELLED" && st.state != "TIMEOUT") return st;
  }
  CommandResult s = run_command({"scontrol", "show", "job", "-o", job_id});
  if (s.exit_code == 0 && !trim(s.out).empty()) {
    st.state = field(s.out, "JobState");
    st.reason = field(s.out, "Reason");
    std::string restarts = field(s.out, "Restarts");
    st.restarts = restarts.empty() ? 0 : std::atoi(restarts.c_str());
    if (st.ended()) st.exit_code = parse_slurm_exit_code(field(s.out, "ExitCode"));
    return st;
  }
  // -c reads the job completion log; plain sacct needs accounting storage, so try both.
  for (bool completion_log : {false, true}) {
    std::vector<std::string> argv = {"sacct", "-n", "-P", "-X", "-j", job_id, "-o", "JobID,State,ExitCode"};
    if (completion_log) argv.insert(argv.begin() + 1, "-c");
    CommandResult a = run_command(argv);
    if (a.exit_code != 0) continue;
    std::istringstream in(a.out);
    std::string l, last;
    while (std::getline(in, l))
      if (l.starts_with(job_id + "|")) last = l;  // the last record is the newest run of a requeued job
    if (last.empty()) continue;
    std::vector<std::string> parts;
    std::istringstream fs(last);
    for (std::string p; std::getline(fs, p, '|');) parts.push_back(p);
    if (parts.size() >= 3) {
      st.state = parts[1].substr(0, parts[1].find(' '));
      if (st.ended()) st.exit_code = parse_slurm_exit_code(parts[2]);
      return st;
    }
  }
  st.state.clear();
  return st;
}

void slurm_cancel(const std::string& job_id, const std::string& signal, bool batch_only) {
  if (!is_slurm_job_id(job_id)) throw std::runtime_error("\"" + job_id + "\" is not a Slurm job id");
  std::vector<std::string> argv = {"scancel"};
  if (!signal.empty()) argv.push_back("--signal=" + signal);
  if (batch_only) argv.push_back("--batch");
  argv.push_back(job_id);
  CommandResult r = run_command(argv);
  if (r.exit_code != 0) throw std::runtime_error("scancel " + job_id + ": " + trim(r.err));
}

}  // namespace nemokit
