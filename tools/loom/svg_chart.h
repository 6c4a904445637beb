// Small SVG charts for reports (`loom bench --report`): lines over a numeric x axis, and stacked
// bars of shares. Self-contained SVG text, white background, readable without a browser's CSS.
#pragma once

#include <string>
#include <vector>

namespace loom::cli {

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;
  bool dashed = false;  // e.g. a limit drawn beside measurements
};

struct LineChart {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;  // log axes need positive values
  std::vector<ChartSeries> series;
};

std::string svg_line_chart(const LineChart& chart);

// One bar per group (x), split into components stacked bottom up; values are fractions of 1.
struct StackedBars {
  std::string title, x_label;
  std::vector<std::string> groups;          // the bars, left to right
  std::vector<std::string> components;      // the parts of each bar, bottom up
  std::vector<std::vector<double>> shares;  // [group][component], summing to about 1 per group
};

std::string svg_stacked_bars(const StackedBars& chart);

}  // namespace loom::cli
