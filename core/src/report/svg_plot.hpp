#pragma once
// A small SVG writer for line plots: a frame, "nice" ticks (1, 2 or 5 times a power of ten) with
// their labels on both axes, axis titles, a plot title and the series as one <polyline>. Enough
// for a report page that any browser shows without scripts or external files.

#include <string>
#include <utility>
#include <vector>

namespace nemokit::report {

struct LinePlot {
  std::string title;
  std::string x_label = "step";
  std::string y_label;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in this order
  int width = 640, height = 300;
};

// The plot area inside the picture: where x_min..x_max and y_min..y_max land.
struct PlotBox {
  double left, top, right, bottom;
};
PlotBox plot_box(const LinePlot& p);

// Tick values inside [lo, hi]: multiples of 1, 2 or 5 times a power of ten, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// "12", "0.0003", "1.5e+06": four significant digits, no trailing zeros.
std::string tick_label(double v);

// The <svg> element (no XML prolog: it is meant to sit inside an HTML page). An empty series
// draws the axes and says "no data".
std::string svg_line_plot(const LinePlot& p);

// &, <, >, " and ' as entities, for text and attribute values.
std::string xml_escape(const std::string& s);

}  // namespace nemokit::report
