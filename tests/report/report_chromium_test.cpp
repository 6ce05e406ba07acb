// The report page as a browser shows it: Debian's headless chromium renders `nemokit report`'s
// page of a job with a loss, a learning rate, a grad norm, a reward and a throughput series into
// a screenshot, and inside each plot's box there are drawn pixels of the curve's colour. The
// plots are found on the screenshot by their figure borders (1 px #dddddd, as wide as the 640 px
// plot and its two borders), in page order; each plot's box is svg_plot's plot_box inside them.
// Skipped, saying why, where chromium is not installed or cannot start (scripts/setup-deps.sh
// installs it).
#include "exec/job.hpp"
#include "exec/process.hpp"
#include "report/svg_plot.hpp"
#include "run_cli.hpp"

#include "nemokit/runtime/media/image.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>

namespace fs = std::filesystem;
using nlohmann::json;
using nemokit::test::read_file;
using nemokit::test::run_cli;

namespace {

constexpr int kPlotWidth = 640, kPlotHeight = 300;  // svg_plot's LinePlot defaults, which the report uses

// A job folder with twenty steps of each kind of series the report plots.
fs::path make_job(const fs::path& dir) {
  nemokit::JobDir job = nemokit::JobDir::create(dir / "jobs", "nano3", "rl", "");
  job.meta["state"] = "COMPLETED";
  job.meta["exit_code"] = 0;
  job.save();
  std::ofstream metrics(job.path / "metrics.jsonl");
  for (int step = 1; step <= 20; ++step)
    metrics << json{{"step", step},
                    {"loss", 5.0 / step + 0.1 * std::sin(step)},
                    {"lr", 3e-4 * std::min(1.0, step / 5.0)},
                    {"grad_norm", 1.0 + 0.5 * std::cos(step)},
                    {"reward", 0.05 * step},
                    {"tokens_per_s", 1200.0 + 40.0 * (step % 3)}}
                   .dump()
            << "\n";
  std::ofstream(job.path / "config.toml") << "[train]\nmax_steps = 20\n";
  return job.path;
}

struct Figure {
  int x = 0, y = 0;  // the top-left pixel of its border
  int bottom = 0;    // the row of its bottom border
};

bool is_border(const nemokit::rt::media::Image& img, int x, int y) {
  const uint8_t* p = &img.rgb[3 * (size_t(y) * size_t(img.width) + size_t(x))];
  return p[0] == 0xdd && p[1] == 0xdd && p[2] == 0xdd;
}

// Rows of exactly kPlotWidth + 2 border pixels in a run: a figure's top and bottom borders (the
// plots' own grid lines are shorter, the config's box wider). Paired top to bottom in each
// column of figures, sorted in page order.
std::vector<Figure> find_figures(const nemokit::rt::media::Image& img) {
  std::map<int, std::vector<int>> rows_at_x;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width;) {
      if (!is_border(img, x, y)) {
        ++x;
        continue;
      }
      int end = x;
      while (end < img.width && is_border(img, end, y)) ++end;
      if (end - x == kPlotWidth + 2) rows_at_x[x].push_back(y);
      x = end;
    }
  std::vector<Figure> out;
  for (const auto& [x, rows] : rows_at_x)
    for (size_t i = 0; i + 1 < rows.size(); i += 2) out.push_back({x, rows[i], rows[i + 1]});
  std::sort(out.begin(), out.end(), [](const Figure& a, const Figure& b) { return std::tie(a.y, a.x) < std::tie(b.y, b.x); });
  return out;
}

// Pixels of a colour (not white, grey or black: the curve is #1f77b4) inside the plot box.
int drawn_pixels(const nemokit::rt::media::Image& img, const Figure& f) {
  nemokit::report::LinePlot shape;
  shape.width = kPlotWidth;
  shape.height = kPlotHeight;
  const nemokit::report::PlotBox box = nemokit::report::plot_box(shape);
  int n = 0;
  for (int y = f.y + 1 + int(box.top) + 2; y < f.y + 1 + int(box.bottom) - 1; ++y)
    for (int x = f.x + 1 + int(box.left) + 2; x < f.x + 1 + int(box.right) - 1; ++x) {
      const uint8_t* p = &img.rgb[3 * (size_t(y) * size_t(img.width) + size_t(x))];
      n += std::max({p[0], p[1], p[2]}) - std::min({p[0], p[1], p[2]}) > 60;
    }
  return n;
}

}  // namespace

TEST(ReportInChromium, EveryPlotIsDrawnInsideItsBox) {
  if (!nemokit::on_path("chromium"))
    GTEST_SKIP() << "Debian's chromium is not installed (scripts/setup-deps.sh installs it): the report is not rendered";
  const fs::path dir = nemokit::test::temp_folder("report-chromium");
  const fs::path job = make_job(dir);
  auto rep = run_cli("report " + job.string(), "NEMOKIT_ENV=");
  ASSERT_EQ(rep.rc, 0) << rep.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(rep.out, m, std::regex("\\((\\d+) plots: ([^)]*)\\)"))) << rep.out;
  const int plots = std::stoi(m[1]);
  const std::string names = m[2];
  EXPECT_EQ(plots, 5) << rep.out;

  // A profile, config and cache of its own (never the user's); --no-sandbox because the suite
  // runs as root, where chromium refuses its sandbox, and the page is this test's own file.
  const fs::path shot = dir / "report.png";
  nemokit::test::RunOptions opt;
  opt.env = {{"XDG_CONFIG_HOME", (dir / "config").string()}, {"XDG_CACHE_HOME", (dir / "cache").string()}};
  auto r = nemokit::test::run({"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--force-device-scale-factor=1", "--user-data-dir=" + (dir / "profile").string(),
                               "--window-size=1400,2600", "--screenshot=" + shot.string(), "file://" + (job / "report.html").string()},
                              opt, 120);
  if (r.exit_code != 0 || !fs::exists(shot))
    GTEST_SKIP() << "chromium could not render here (exit code " << r.exit_code << "): " << r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0);
  const nemokit::rt::media::Image img = nemokit::rt::media::read_image(shot);
  const std::vector<Figure> figures = find_figures(img);
  ASSERT_EQ(int(figures.size()), plots) << "plots found on " << shot << " (" << names << ")";
  std::vector<std::string> order;
  for (size_t b = 0, e; b < names.size(); b = e + 2) {
    e = names.find(", ", b);
    if (e == std::string::npos) e = names.size();
    order.push_back(names.substr(b, e - b));
  }
  ASSERT_EQ(order.size(), figures.size());
  for (size_t i = 0; i < figures.size(); ++i) {
    EXPECT_GT(figures[i].bottom - figures[i].y, kPlotHeight) << order[i];
    // A 20-point curve across a 550 px wide box draws hundreds of pixels of its colour.
    EXPECT_GT(drawn_pixels(img, figures[i]), 200) << order[i] << " at (" << figures[i].x << ", " << figures[i].y << ") of " << shot;
  }
}
