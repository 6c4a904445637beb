#include "tools/loom/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace loom::cli {

namespace {

constexpr const char* kColours[] = {"#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"};
constexpr int kWidth = 720, kHeight = 400, kLeft = 80, kRight = 190, kTop = 50, kBottom = 340;

std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  char text[32];
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-2))
    std::snprintf(text, sizeof text, "%.2g", v);
  else
    std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

std::string header(const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
         std::to_string(kHeight) +
         "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
         "<text x=\"" +
         std::to_string((kLeft + kWidth - kRight) / 2) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">" +
         escaped(title) + "</text>\n";
}

// Maps values on one axis to pixels, linear or logarithmic, with round tick values.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double pixel_lo = 0, pixel_hi = 1;
  double at(double v) const {
    const double a = log ? std::log10(v) : v, l = log ? std::log10(lo) : lo, h = log ? std::log10(hi) : hi;
    return pixel_lo + (pixel_hi - pixel_lo) * (h > l ? (a - l) / (h - l) : 0.5);
  }
  std::vector<double> ticks() const {
    std::vector<double> out;
    if (log) {
      for (double p = std::pow(10.0, std::floor(std::log10(lo))); p <= hi * 1.0001; p *= 10)
        for (double m : {1.0, 2.0, 5.0})
          if (p * m >= lo * 0.9999 && p * m <= hi * 1.0001) out.push_back(p * m);
      return out;
    }
    const double span = hi - lo, raw = span / 5;
    const double unit = std::pow(10.0, std::floor(std::log10(raw)));
    const double step = raw / unit < 2 ? unit * 2 : raw / unit < 5 ? unit * 5 : unit * 10;
    for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-6; t += step) out.push_back(t);
    return out;
  }
};

Axis axis_over(const std::vector<ChartSeries>& series, bool use_x, bool log, double pixel_lo, double pixel_hi) {
  Axis a{std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(), log, pixel_lo, pixel_hi};
  for (const ChartSeries& s : series)
    for (double v : use_x ? s.x : s.y)
      if (!log || v > 0) a.lo = std::min(a.lo, v), a.hi = std::max(a.hi, v);
  if (a.lo > a.hi) a.lo = log ? 1 : 0, a.hi = log ? 10 : 1;
  if (!log && !use_x) a.lo = std::min(0.0, a.lo);  // values from zero, so heights compare
  if (a.hi == a.lo) a.hi = log ? a.lo * 10 : a.lo + 1;
  if (!use_x) a.hi = log ? a.hi * 1.5 : a.hi + (a.hi - a.lo) * 0.08;
  return a;
}

std::string legend(const std::vector<std::string>& names, const std::vector<bool>& dashed, bool boxes) {
  std::string svg;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const int y = kTop + 10 + static_cast<int>(i) * 20, x = kWidth - kRight + 15;
    const char* colour = kColours[i % std::size(kColours)];
    if (boxes)
      svg += "<rect x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(y - 9) +
             "\" width=\"14\" height=\"12\" fill=\"" + colour + "\"/>\n";
    else
      svg += "<line x1=\"" + std::to_string(x) + "\" y1=\"" + std::to_string(y - 4) + "\" x2=\"" +
             std::to_string(x + 18) + "\" y2=\"" + std::to_string(y - 4) + "\" stroke=\"" + colour +
             "\" stroke-width=\"2\"" + (dashed[i] ? " stroke-dasharray=\"5,3\"" : "") + "/>\n";
    svg +=
        "<text x=\"" + std::to_string(x + 24) + "\" y=\"" + std::to_string(y) + "\">" + escaped(names[i]) + "</text>\n";
  }
  return svg;
}

}  // namespace

std::string svg_line_chart(const LineChart& chart) {
  const Axis x = axis_over(chart.series, true, chart.log_x, kLeft, kWidth - kRight);
  const Axis y = axis_over(chart.series, false, chart.log_y, kBottom, kTop);
  std::string svg = header(chart.title);
  char text[256];
  for (double t : y.ticks()) {
    std::snprintf(text, sizeof text,
                  "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                  "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                  kLeft, y.at(t), kWidth - kRight, y.at(t), kLeft - 6, y.at(t) + 4, number(t).c_str());
    svg += text;
  }
  for (double t : x.ticks()) {
    std::snprintf(text, sizeof text, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x.at(t),
                  kBottom + 18, number(t).c_str());
    svg += text;
  }
  std::snprintf(text, sizeof text,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n"
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n",
                kLeft, kBottom, kWidth - kRight, kBottom, kLeft, kTop, kLeft, kBottom);
  svg += text;
  svg += "<text x=\"" + std::to_string((kLeft + kWidth - kRight) / 2) + "\" y=\"" + std::to_string(kBottom + 42) +
         "\" text-anchor=\"middle\">" + escaped(chart.x_label) + "</text>\n";
  svg += "<text transform=\"translate(18," + std::to_string((kTop + kBottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escaped(chart.y_label) + "</text>\n";
  std::vector<std::string> names;
  std::vector<bool> dashed;
  for (std::size_t i = 0; i < chart.series.size(); ++i) {
    const ChartSeries& s = chart.series[i];
    const char* colour = kColours[i % std::size(kColours)];
    std::string points;
    for (std::size_t p = 0; p < std::min(s.x.size(), s.y.size()); ++p) {
      if ((chart.log_x && s.x[p] <= 0) || (chart.log_y && s.y[p] <= 0)) continue;
      std::snprintf(text, sizeof text, "%.1f,%.1f ", x.at(s.x[p]), y.at(s.y[p]));
      points += text;
      if (!s.dashed) {
        std::snprintf(text, sizeof text, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x.at(s.x[p]),
                      y.at(s.y[p]), colour);
        svg += text;
      }
    }
    svg += "<polyline fill=\"none\" stroke=\"" + std::string(colour) + "\" stroke-width=\"2\"" +
           (s.dashed ? " stroke-dasharray=\"5,3\"" : "") + " points=\"" + points + "\"/>\n";
    names.push_back(s.name);
    dashed.push_back(s.dashed);
  }
  svg += legend(names, dashed, false);
  return svg + "</svg>\n";
}

std::string svg_stacked_bars(const StackedBars& chart) {
  std::string svg = header(chart.title);
  char text[256];
  for (int pct = 0; pct <= 100; pct += 20) {
    const double py = kBottom - (kBottom - kTop) * pct / 100.0;
    std::snprintf(text, sizeof text,
                  "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                  "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d%%</text>\n",
                  kLeft, py, kWidth - kRight, py, kLeft - 6, py + 4, pct);
    svg += text;
  }
  const int n = std::max<int>(1, static_cast<int>(chart.groups.size()));
  const double slot = static_cast<double>(kWidth - kRight - kLeft) / n;
  for (std::size_t g = 0; g < chart.groups.size(); ++g) {
    double bottom = kBottom;
    const double bx = kLeft + slot * static_cast<double>(g) + slot * 0.2, bw = slot * 0.6;
    for (std::size_t c = 0; c < chart.components.size() && c < chart.shares[g].size(); ++c) {
      const double h = (kBottom - kTop) * std::clamp(chart.shares[g][c], 0.0, 1.0);
      std::snprintf(text, sizeof text, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n", bx,
                    bottom - h, bw, h, kColours[c % std::size(kColours)]);
      svg += text;
      bottom -= h;
    }
    std::snprintf(text, sizeof text, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", bx + bw / 2, kBottom + 18);
    svg += text + escaped(chart.groups[g]) + "</text>\n";
  }
  std::snprintf(text, sizeof text, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", kLeft, kBottom,
                kWidth - kRight, kBottom);
  svg += text;
  svg += "<text x=\"" + std::to_string((kLeft + kWidth - kRight) / 2) + "\" y=\"" + std::to_string(kBottom + 42) +
         "\" text-anchor=\"middle\">" + escaped(chart.x_label) + "</text>\n";
  svg += legend(chart.components, std::vector<bool>(chart.components.size(), false), true);
  return svg + "</svg>\n";
}

}  // namespace loom::cli
