#include "report/job_report.hpp"

#include "artifacts/lineage.hpp"
#include "report/metric_series.hpp"
#include "report/svg_plot.hpp"
#include "util/read_file.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace nemokit::report {
namespace fs = std::filesystem;

namespace {

const char* kStyle = R"(body{font-family:sans-serif;margin:24px;color:#222;max-width:1340px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-family:monospace}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ddd}
pre{background:#f7f7f7;border:1px solid #ddd;padding:10px;font-size:12px;overflow-x:auto}
code{background:#f3f3f3;padding:1px 4px}figure.lineage{border:none;overflow-x:auto})";

std::string row(const std::string& key, const std::string& value) {
  return "<tr><th>" + xml_escape(key) + "</th><td>" + xml_escape(value) + "</td></tr>\n";
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string meta_text(const nlohmann::json& meta, const char* key) {
  auto it = meta.find(key);
  if (it == meta.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

// The id of a figure: letters, digits, '_' and '-' kept, the rest ("/", ":") '-'.
std::string anchor(const std::string& prefix, const std::string& name) {
  std::string a = prefix;
  for (char c : name) a += std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ? c : '-';
  return a;
}

// The lineage section: each artifact the job published (those another of them was made from
// are drawn inside that one's), else each the job's config named, back to the raw data.
std::string lineage_section(const JobDir& job, const rt::artifacts::Store& store, std::vector<std::string>& warnings) {
  std::vector<std::string> roots;
  std::string lead;
  try {
    for (const auto& a : store.published_by(job.path)) roots.push_back(a.ref());
  } catch (const std::exception& e) {
    warnings.push_back("artifact store " + store.root().string() + ": " + e.what());
  }
  if (roots.empty()) {
    if (job.meta.contains("artifacts") && job.meta["artifacts"].is_array())
      for (const auto& u : job.meta["artifacts"])
        if (u.is_object() && !u.value("ref", "").empty() && !std::ranges::count(roots, u.value("ref", "")))
          roots.push_back(u.value("ref", ""));
    const std::string none = "<p>The job published nothing to the artifact store " + xml_escape(store.root().string());
    if (roots.empty()) return none + " and its config named nothing from it.</p>\n";
    lead = none + "; what its config took from it:</p>\n";
  }
  std::vector<std::pair<std::string, std::vector<LineageNode>>> drawn;
  for (const auto& ref : roots) {
    try {
      drawn.emplace_back(ref, lineage_of(store, ref));
    } catch (const std::exception& e) {
      warnings.push_back("lineage of " + ref + ": " + e.what());
    }
  }
  std::string h = lead;
  for (const auto& [ref, nodes] : drawn) {
    const bool inside_another = std::ranges::any_of(drawn, [&](const auto& other) {
      return other.first != ref &&
             std::ranges::any_of(other.second, [&](const LineageNode& n) { return n.title.starts_with(ref + "  "); });
    });
    if (inside_another) continue;
    h += "<p><code>nemokit artifacts lineage " + xml_escape(ref) + "</code></p>\n<div class=\"lineage\"><figure id=\"" +
         anchor("lineage-", ref) + "\">\n" + lineage_svg(nodes) + "</figure></div>\n<pre class=\"lineage\">" +
         xml_escape(lineage_tree_text(nodes)) + "</pre>\n";
  }
  return h;
}

}  // namespace

JobReport render_job_report(const JobDir& job, const std::string& wandb_sync, const rt::artifacts::Store& store) {
  JobReport r;
  const MetricsFile metrics = read_metrics(job.path / "metrics.jsonl");
  r.warnings = metrics.skipped;
  const std::string id = job.id();

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nemokit report: " + xml_escape(id) +
                  "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<h1>nemokit report: " + xml_escape(id) + "</h1>\n";
  h += "<table class=\"job\">\n";
  std::string stage = meta_text(job.meta, "family") + " " + meta_text(job.meta, "stage");
  if (auto sub = meta_text(job.meta, "substage"); !sub.empty()) stage += " " + sub;
  h += row("stage", stage);
  for (const char* k : {"command", "config", "plugin", "executor", "profile", "slurm_job_id", "state", "exit_code", "created_at", "updated_at", "host"})
    if (auto v = meta_text(job.meta, k); !v.empty()) h += row(k, v);
  h += row("folder", job.path.string());
  h += row("metrics", std::to_string(metrics.lines) + " lines of metrics.jsonl, " + std::to_string(metrics.series.size()) + " scalars");
  h += "</table>\n";

  const auto groups = plot_groups(metrics);
  if (groups.empty()) h += "<p>The job logged no loss, learning rate, grad norm, reward or throughput.</p>\n";
  for (const auto& g : groups) {
    h += "<h2>" + xml_escape(g.title) + "</h2>\n<div class=\"plots\">\n";
    for (const MetricSeries* s : g.series) {
      LinePlot p;
      p.title = s->name;
      p.y_label = s->name;
      p.points = s->points;
      h += "<figure id=\"" + anchor("plot-", s->name) + "\">\n" + svg_line_plot(p) + "</figure>\n";
      r.plotted.push_back(s->name);
    }
    h += "</div>\n";
  }

  if (!metrics.series.empty()) {
    h += "<h2>Every scalar</h2>\n<table class=\"scalars\">\n<tr><th>series</th><th>points</th><th>first step</th><th>last step</th>"
         "<th>last</th><th>min</th><th>max</th></tr>\n";
    for (const auto& s : metrics.series) {
      double lo = s.points[0].second, hi = lo;
      for (const auto& [_, v] : s.points) lo = std::min(lo, v), hi = std::max(hi, v);
      h += "<tr><td>" + xml_escape(s.name) + "</td><td class=\"num\">" + std::to_string(s.points.size()) + "</td><td class=\"num\">" +
           fmt(s.points.front().first) + "</td><td class=\"num\">" + fmt(s.points.back().first) + "</td><td class=\"num\">" +
           fmt(s.points.back().second) + "</td><td class=\"num\">" + fmt(lo) + "</td><td class=\"num\">" + fmt(hi) + "</td></tr>\n";
    }
    h += "</table>\n";
  }

  h += "<h2>TensorBoard</h2>\n<p><code>tensorboard --logdir " + xml_escape(job.path.string()) + "</code></p>\n";
  if (!wandb_sync.empty()) h += "<p>To W&amp;B: <code>" + xml_escape(wandb_sync) + "</code></p>\n";

  h += "<h2>Lineage</h2>\n" + lineage_section(job, store, r.warnings);

  h += "<h2>Resolved config</h2>\n";
  const fs::path config = job.path / "config.toml";
  std::error_code ec;
  if (fs::is_regular_file(config, ec)) {
    h += "<pre class=\"config\">" + xml_escape(read_file(config)) + "</pre>\n";
  } else {
    h += "<p>No config.toml in the job folder.</p>\n";
    r.warnings.push_back(config.string() + ": missing, the report has no config");
  }
  if (!metrics.skipped.empty()) {
    h += "<h2>Skipped metrics lines</h2>\n<ul>\n";
    for (const auto& w : metrics.skipped) h += "<li>" + xml_escape(w) + "</li>\n";
    h += "</ul>\n";
  }
  r.html = h + "</body>\n</html>\n";
  return r;
}

}  // namespace nemokit::report
