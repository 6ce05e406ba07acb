// Run reports and TensorBoard logs, through the real program: a tiny pretraining run on real
// text writes an event file beside metrics.jsonl whose records read back (both CRCs checked)
// with the same scalars; the run names the `wandb sync` command of env.toml's [wandb]; `nemokit
// report` draws one SVG plot per series, whose points are the metrics; an unknown job is an
// error. NEMOKIT_TFEVENTS_DIR (set by the tensorboard check) keeps the run there for
// check_tfevents.py.
#include "pretrain/bible_slice.hpp"
#include "report/svg_plot.hpp"
#include "run_cli.hpp"
#include "support/tfevents_reader.hpp"

#include "nemokit/runtime/run/metric_scalars.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::read_file;
using nemokit::test::run_cli;

namespace {

// A user config on top of the shipped `tiny`: a smaller model, a slice of the Bible, 6 steps.
fs::path write_config(const fs::path& dir) {
  const fs::path text = nemokit::test::write_bible_slice(dir);
  fs::path cfg = dir / "small.toml";
  std::ofstream(cfg) << "defaults = [\"tiny\"]\n"
                        "[model]\nhidden_size = 64\nmamba_num_heads = 4\nmamba_head_dim = 32\nssm_state_size = 16\n"
                        "chunk_size = 16\nnum_attention_heads = 4\nnum_key_value_heads = 2\nhead_dim = 16\n"
                        "intermediate_size = 128\nn_routed_experts = 4\nnum_experts_per_tok = 2\n"
                        "moe_intermediate_size = 64\nmoe_shared_expert_intermediate_size = 64\nvocab_size = 512\n"
                        "[train]\nseq_length = 32\nmicro_batch_size = 4\nglobal_batch_size = 8\nmax_steps = 8\n"
                        "warmup_steps = 2\neval_interval = 3\neval_steps = 1\nsave_interval = 6\nlog_interval = 1\n"
                        "sample_prompt = \"In the beginning\"\nsample_tokens = 4\n"
                        "[data]\ninputs = [\"" + text.string() + "\"]\n"
                        "train_tokenizer = { vocab_size = 512, min_frequency = 2, special_tokens = [\"<|endoftext|>\"] }\n"
                        "seq_length = 32\noutput = \"" + (dir / "data").string() + "\"\n"
                        "[checkpoint]\ndir = \"" + (dir / "ckpt").string() + "\"\n";
  return cfg;
}

std::vector<json> read_jsonl(const fs::path& file) {
  std::vector<json> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// The <svg> element inside <figure id="ID">, or "" when the page has none.
std::string figure_svg(const std::string& html, const std::string& id) {
  size_t at = html.find("<figure id=\"" + id + "\">");
  if (at == std::string::npos) return "";
  size_t b = html.find("<svg", at), e = html.find("</svg>", at);
  return b == std::string::npos || e == std::string::npos ? "" : html.substr(b, e + 6 - b);
}

std::vector<std::pair<double, double>> polyline_points(const std::string& svg) {
  std::vector<std::pair<double, double>> pts;
  size_t at = svg.find("<polyline");
  if (at == std::string::npos) return pts;
  at = svg.find("points=\"", at) + 8;
  std::istringstream in(svg.substr(at, svg.find('"', at) - at));
  for (std::string xy; in >> xy;) pts.emplace_back(std::stod(xy.substr(0, xy.find(','))), std::stod(xy.substr(xy.find(',') + 1)));
  return pts;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Pixels are an affine image of the data: x grows with the step, y falls as the value grows,
// each by one scale for the whole series (checked against the extremes, to a hundredth of a
// pixel plus rounding).
void expect_affine(const std::vector<std::pair<double, double>>& data, const std::vector<std::pair<double, double>>& px,
                   const std::string& name) {
  ASSERT_EQ(px.size(), data.size()) << name;
  auto scale = [&](bool y) {
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      double v = y ? data[i].second : data[i].first;
      if (v < (y ? data[lo].second : data[lo].first)) lo = i;
      if (v > (y ? data[hi].second : data[hi].first)) hi = i;
    }
    double dv = y ? data[hi].second - data[lo].second : data[hi].first - data[lo].first;
    double dp = y ? px[hi].second - px[lo].second : px[hi].first - px[lo].first;
    return std::make_tuple(lo, dv == 0 ? 0.0 : dp / dv);
  };
  auto [xlo, sx] = scale(false);
  auto [ylo, sy] = scale(true);
  EXPECT_GT(sx, 0) << name << ": x must grow with the step";
  EXPECT_LT(sy, 0) << name << ": y must fall as the value grows (SVG's y points down)";
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_NEAR(px[i].first, px[xlo].first + sx * (data[i].first - data[xlo].first), 0.02) << name << " point " << i;
    EXPECT_NEAR(px[i].second, px[ylo].second + sy * (data[i].second - data[ylo].second), 0.02) << name << " point " << i;
  }
}

}  // namespace

TEST(Report, TinyRunWritesEventsAndItsReportPlotsTheMetrics) {
  ASSERT_TRUE(fs::exists(nemokit::test::kjv_bible())) << nemokit::test::kjv_bible() << " missing: run scripts/setup.sh";
  fs::path dir;
  if (const char* keep = std::getenv("NEMOKIT_TFEVENTS_DIR")) {
    dir = keep;
    fs::remove_all(dir);
    fs::create_directories(dir);
  } else {
    dir = nemokit::test::temp_folder("report");
  }
  const fs::path cfg = write_config(dir);
  std::ofstream(dir / "env.toml") << "[wandb]\nproject = \"nemokit-tests\"\nentity = \"${env:TEST_WANDB_ENTITY}\"\n\n[here]\nexecutor = \"local\"\n";
  const std::string env = "NEMOKIT_ENV=" + (dir / "env.toml").string() + " NEMOKIT_JOB_ROOT=" + (dir / "jobs").string() +
                          " NEMOKIT_ARTIFACTS_ROOT=" + (dir / "artifacts").string() + " TEST_WANDB_ENTITY='my team'";
  auto run = run_cli("run nano3 pretrain -c " + cfg.string() + " train.max_steps=6", env);
  ASSERT_EQ(run.rc, 0) << run.out << run.err;
  std::vector<fs::path> jobs;
  for (const auto& e : fs::directory_iterator(dir / "jobs")) jobs.push_back(e.path());
  ASSERT_EQ(jobs.size(), 1u);
  const fs::path job = jobs[0];

  // The run names where its logs are and the upload command of [wandb].
  const std::string all = run.out + run.err;
  EXPECT_NE(all.find("tensorboard --logdir " + job.string()), std::string::npos) << all;
  EXPECT_NE(all.find("wandb sync --sync-tensorboard --project nemokit-tests --entity 'my team' " + job.string()), std::string::npos) << all;

  // Every number of every metrics line is an event with the same step, tags and values.
  const auto metrics = read_jsonl(job / "metrics.jsonl");
  auto files = nemokit::test::tfevents_files(job);
  ASSERT_EQ(files.size(), 1u);
  const auto events = nemokit::test::read_tfevents(files[0]);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  size_t e = 1, losses = 0, val_losses = 0;
  for (const auto& line : metrics) {
    const auto scalars = nemokit::rt::metric_scalars(line);
    if (scalars.empty()) continue;  // the generated sample
    ASSERT_LT(e, events.size()) << "no event for " << line.dump();
    EXPECT_EQ(events[e].step, line["step"].get<int64_t>());
    ASSERT_EQ(events[e].values.size(), scalars.size()) << line.dump();
    for (size_t i = 0; i < scalars.size(); ++i) {
      EXPECT_EQ(events[e].values[i].first, scalars[i].first);
      EXPECT_EQ(events[e].values[i].second, float(scalars[i].second)) << scalars[i].first;
    }
    losses += line.contains("loss"), val_losses += line.contains("val_loss");
    ++e;
  }
  EXPECT_EQ(e, events.size());
  EXPECT_EQ(losses, 6u);
  EXPECT_EQ(val_losses, 2u);  // steps 3 and 6

  // The report, by job id: one <svg> per plotted series, its polyline the series' points.
  auto rep = run_cli("report " + job.filename().string(), env);
  ASSERT_EQ(rep.rc, 0) << rep.out << rep.err;
  const std::string html = read_file(job / "report.html");
  EXPECT_NE(rep.out.find(job.string() + "/report.html"), std::string::npos) << rep.out;
  const std::vector<std::string> plotted = {"loss", "val_loss", "lr", "grad_norm", "tokens_per_s"};
  EXPECT_EQ(count(html, "<svg"), plotted.size() + 1) << html;  // and the lineage
  for (const auto& name : plotted) {
    std::vector<std::pair<double, double>> data;
    for (const auto& line : metrics)
      if (line.contains(name)) data.emplace_back(line["step"].get<double>(), line[name].get<double>());
    const std::string svg = figure_svg(html, "plot-" + name);
    ASSERT_FALSE(svg.empty()) << name << " has no figure";
    EXPECT_NE(svg.find("aria-label=\"" + name + "\""), std::string::npos) << svg;
    EXPECT_NE(svg.find("class=\"x-labels\""), std::string::npos);  // ticks with labels on both axes
    EXPECT_NE(svg.find("class=\"y-labels\""), std::string::npos);
    expect_affine(data, polyline_points(svg), name);
  }
  // The lineage: the model the run published, drawn and written as `nemokit artifacts lineage`
  // has it, down to the text it was trained on.
  auto lineage = run_cli("artifacts lineage nano3-pretrain-model:v1", env);
  ASSERT_EQ(lineage.rc, 0) << lineage.err;
  EXPECT_NE(html.find("<pre class=\"lineage\">" + nemokit::report::xml_escape(lineage.out) + "</pre>"), std::string::npos)
      << lineage.out << "\n" << html;
  const std::string drawn = figure_svg(html, "lineage-nano3-pretrain-model-v1");
  EXPECT_NE(drawn.find("nano3-pretrain-model:v1  ModelArtifact"), std::string::npos) << drawn;
  EXPECT_NE(drawn.find("raw " + (dir / "genesis-to-ruth.txt").string()), std::string::npos) << drawn;
  // The resolved config is on the page, and the page needs nothing from elsewhere.
  EXPECT_NE(html.find("hybrid_override_pattern = &quot;ME*-ME&quot;"), std::string::npos);
  EXPECT_NE(html.find("max_steps = 6"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_NE(html.find("wandb sync --sync-tensorboard"), std::string::npos);

  // Bash completion offers the command and, after it, the job.
  EXPECT_NE(run_cli("__complete", env).out.find("report\n"), std::string::npos);
  EXPECT_EQ(run_cli("__complete report", env).out, job.filename().string() + "\n");

  // --out, by job folder: written there, whole, and nothing left beside it.
  auto out = run_cli("report " + job.string() + " --out " + (dir / "page.html").string(), env);
  ASSERT_EQ(out.rc, 0) << out.err;
  EXPECT_EQ(read_file(dir / "page.html"), html);
  for (const auto& f : fs::directory_iterator(dir))
    EXPECT_EQ(f.path().filename().string().find("page.html."), std::string::npos) << f.path();
}

TEST(Report, UnknownJobIsAnErrorNamingIt) {
  const fs::path dir = nemokit::test::temp_folder("report-unknown");
  const std::string env = "NEMOKIT_ENV= NEMOKIT_JOB_ROOT=" + (dir / "jobs").string();
  auto r = run_cli("report 20260101-000000-nano3-nothing", env, dir.string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("no job \"20260101-000000-nano3-nothing\""), std::string::npos) << r.err;
  auto none = run_cli("report", env, dir.string());
  EXPECT_EQ(none.rc, 2);
  EXPECT_NE(none.err.find("usage: nemokit report JOB"), std::string::npos) << none.err;
  EXPECT_FALSE(fs::exists(dir / "report.html"));
}

TEST(Report, SvgTicksAreRoundNumbersInsideTheRange) {
  using nemokit::report::nice_ticks;
  const auto unit = nice_ticks(0, 1);
  const std::vector<double> fifths = {0, 0.2, 0.4, 0.6, 0.8, 1};
  ASSERT_EQ(unit.size(), fifths.size());
  for (size_t i = 0; i < unit.size(); ++i) EXPECT_NEAR(unit[i], fifths[i], 1e-12);
  const auto lr = nice_ticks(3e-5, 3e-3);
  ASSERT_FALSE(lr.empty());
  for (double t : lr) {
    EXPECT_GE(t, 3e-5);
    EXPECT_LE(t, 3e-3);
  }
  EXPECT_EQ(nice_ticks(1, 6).size(), 6u);  // steps 1..6 by 1
  EXPECT_TRUE(nice_ticks(2, 2).empty());
  EXPECT_EQ(nemokit::report::tick_label(0.0003), "0.0003");
  EXPECT_EQ(nemokit::report::tick_label(1500000), "1.5e+06");
  EXPECT_EQ(nemokit::report::xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}
