#include "report/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <tuple>

namespace nemokit::report {

namespace {

std::string num(double v) {  // coordinates: two decimals are well below a pixel
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// The data range an axis spans; a flat series gets a span around its value so it sits mid-axis.
std::pair<double, double> span(double lo, double hi) {
  if (hi > lo) return {lo, hi};
  const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.5;
  return {lo - pad, hi + pad};
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

PlotBox plot_box(const LinePlot& p) { return {72.0, 34.0, double(p.width) - 18.0, double(p.height) - 48.0}; }

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi) || target < 1) return ticks;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  // Counted in whole steps, so rounding does not pile up along the axis.
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; ++k) ticks.push_back(k == 0 ? 0.0 : k * step);
  return ticks;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string svg_line_plot(const LinePlot& p) {
  const PlotBox b = plot_box(p);
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(p.width) + "\" height=\"" +
                  std::to_string(p.height) + "\" viewBox=\"0 0 " + std::to_string(p.width) + " " + std::to_string(p.height) +
                  "\" role=\"img\" aria-label=\"" + xml_escape(p.title) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + std::to_string(p.width) + "\" height=\"" + std::to_string(p.height) + "\" fill=\"#ffffff\"/>\n";
  s += "<text x=\"" + num(p.width / 2.0) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" +
       xml_escape(p.title) + "</text>\n";
  s += "<rect class=\"frame\" x=\"" + num(b.left) + "\" y=\"" + num(b.top) + "\" width=\"" + num(b.right - b.left) +
       "\" height=\"" + num(b.bottom - b.top) + "\" fill=\"none\" stroke=\"#444444\"/>\n";
  s += "<text x=\"" + num((b.left + b.right) / 2) + "\" y=\"" + num(p.height - 8.0) + "\" text-anchor=\"middle\">" +
       xml_escape(p.x_label) + "</text>\n";
  s += "<text x=\"14\" y=\"" + num((b.top + b.bottom) / 2) + "\" text-anchor=\"middle\" transform=\"rotate(-90 14 " +
       num((b.top + b.bottom) / 2) + ")\">" + xml_escape(p.y_label) + "</text>\n";
  std::vector<std::pair<double, double>> pts;
  for (const auto& [x, y] : p.points)
    if (std::isfinite(x) && std::isfinite(y)) pts.emplace_back(x, y);
  if (pts.empty()) {
    s += "<text x=\"" + num((b.left + b.right) / 2) + "\" y=\"" + num((b.top + b.bottom) / 2) +
         "\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n</svg>\n";
    return s;
  }
  double x_lo = pts[0].first, x_hi = x_lo, y_lo = pts[0].second, y_hi = y_lo;
  for (const auto& [x, y] : pts) {
    x_lo = std::min(x_lo, x), x_hi = std::max(x_hi, x);
    y_lo = std::min(y_lo, y), y_hi = std::max(y_hi, y);
  }
  std::tie(x_lo, x_hi) = span(x_lo, x_hi);
  std::tie(y_lo, y_hi) = span(y_lo, y_hi);
  const double margin = (y_hi - y_lo) * 0.05;  // the curve's extremes clear the frame, as matplotlib's
  y_lo -= margin, y_hi += margin;
  auto px = [&](double x) { return b.left + (x - x_lo) / (x_hi - x_lo) * (b.right - b.left); };
  auto py = [&](double y) { return b.bottom - (y - y_lo) / (y_hi - y_lo) * (b.bottom - b.top); };
  s += "<g class=\"x-ticks\" stroke=\"#dddddd\">\n";
  for (double t : nice_ticks(x_lo, x_hi)) s += "<line x1=\"" + num(px(t)) + "\" y1=\"" + num(b.top) + "\" x2=\"" + num(px(t)) + "\" y2=\"" + num(b.bottom + 4) + "\"/>\n";
  s += "</g>\n<g class=\"x-labels\" text-anchor=\"middle\">\n";
  for (double t : nice_ticks(x_lo, x_hi)) s += "<text x=\"" + num(px(t)) + "\" y=\"" + num(b.bottom + 16) + "\">" + tick_label(t) + "</text>\n";
  s += "</g>\n<g class=\"y-ticks\" stroke=\"#dddddd\">\n";
  for (double t : nice_ticks(y_lo, y_hi)) s += "<line x1=\"" + num(b.left - 4) + "\" y1=\"" + num(py(t)) + "\" x2=\"" + num(b.right) + "\" y2=\"" + num(py(t)) + "\"/>\n";
  s += "</g>\n<g class=\"y-labels\" text-anchor=\"end\">\n";
  for (double t : nice_ticks(y_lo, y_hi)) s += "<text x=\"" + num(b.left - 6) + "\" y=\"" + num(py(t) + 4) + "\">" + tick_label(t) + "</text>\n";
  s += "</g>\n<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"";
  for (size_t i = 0; i < pts.size(); ++i) s += (i ? " " : "") + num(px(pts[i].first)) + "," + num(py(pts[i].second));
  s += "\"/>\n";
  if (pts.size() == 1)  // one point draws no line: mark it
    s += "<circle cx=\"" + num(px(pts[0].first)) + "\" cy=\"" + num(py(pts[0].second)) + "\" r=\"3\" fill=\"#1f77b4\"/>\n";
  return s + "</svg>\n";
}

}  // namespace nemokit::report
