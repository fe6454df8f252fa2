// Diagnostics::html(): the recorded figures as inline SVG charts, with no script and no network.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "inspect/diagnostics.h"

namespace xgrad::inspect {

namespace {

const char* const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string fmt(double v, const char* format = "%.3g")
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, v);
    return buffer;
}

std::string escape(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '\'') out += "&#39;";
        else out += c;
    }
    return out;
}

struct Series {
    std::string label;
    std::vector<std::pair<double, double>> points;   // (x, y), finite y only
};

// Lines against the step, a legend on the right, and optionally a shaded band between two y values.
std::string line_chart(const std::vector<Series>& series, const std::string& y_label, double band_lo = NAN,
                       double band_hi = NAN, double band_line = NAN)
{
    const double w = 720, h = 300, left = 55, right = 190, top = 10, bottom = 30;
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const auto& s : series) {
        for (const auto& [x, y] : s.points) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
    if (!std::isnan(band_lo)) y0 = std::min(y0, band_lo), y1 = std::max(y1, band_hi);
    if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x1 = x0 + 1;
    if (y1 == y0) y1 = y0 + 1;
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    auto X = [&](double x) { return left + (w - left - right) * (x - x0) / (x1 - x0); };
    auto Y = [&](double y) { return top + (h - top - bottom) * (y1 - y) / (y1 - y0); };
    std::ostringstream s;
    s << "<svg width='" << w << "' height='" << h << "' xmlns='http://www.w3.org/2000/svg' font-size='11'>"
      << "<rect x='" << left << "' y='" << top << "' width='" << w - left - right << "' height='" << h - top - bottom
      << "' fill='white' stroke='#ccc'/>";
    if (!std::isnan(band_lo)) {
        s << "<rect x='" << left << "' y='" << fmt(Y(band_hi), "%.1f") << "' width='" << w - left - right << "' height='"
          << fmt(Y(band_lo) - Y(band_hi), "%.1f") << "' fill='#2ca02c' fill-opacity='0.12'/>"
          << "<line x1='" << left << "' x2='" << w - right << "' y1='" << fmt(Y(band_line), "%.1f") << "' y2='"
          << fmt(Y(band_line), "%.1f") << "' stroke='#2ca02c' stroke-dasharray='5 3'/>";
    }
    for (int k = 0; k <= 4; ++k) {
        const double y = y0 + (y1 - y0) * k / 4.0;
        s << "<text x='" << left - 4 << "' y='" << fmt(Y(y) + 4, "%.1f") << "' text-anchor='end'>" << fmt(y) << "</text>";
    }
    s << "<text x='" << left << "' y='" << h - 8 << "'>step " << fmt(x0, "%.0f") << "</text><text x='" << w - right
      << "' y='" << h - 8 << "' text-anchor='end'>step " << fmt(x1, "%.0f") << "</text><text x='" << left + 6 << "' y='"
      << top + 14 << "' fill='#444'>" << escape(y_label) << "</text>";
    for (std::size_t i = 0; i < series.size(); ++i) {
        const char* colour = palette[i % std::size(palette)];
        s << "<polyline fill='none' stroke='" << colour << "' stroke-width='1.5' points='";
        for (const auto& [x, y] : series[i].points) s << fmt(X(x), "%.1f") << "," << fmt(Y(y), "%.1f") << " ";
        s << "'/><text x='" << w - right + 8 << "' y='" << top + 12 + 13 * double(i) << "' fill='" << colour << "'>"
          << escape(series[i].label) << "</text>";
    }
    s << "</svg>";
    return s.str();
}

// One small histogram per layer at one step, each over its own range (an lm_head's logits span far
// more than a GELU's outputs): the bar heights are counts, scaled to the panel.
std::string histogram_panels(const std::vector<const LayerStat*>& layers)
{
    const double w = 200, h = 110, pad = 4, top = 30, bottom = 16;
    std::ostringstream s;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const LayerStat& l = *layers[i];
        std::size_t most = 1;
        for (auto c : l.histogram) most = std::max(most, c);
        const double bar = (w - 2 * pad) / double(l.histogram.size());
        s << "<svg width='" << w << "' height='" << h << "' xmlns='http://www.w3.org/2000/svg' font-size='10'>"
          << "<rect width='" << w << "' height='" << h << "' fill='white' stroke='#ccc'/>"
          << "<text x='" << pad << "' y='12'>" << escape(l.name) << "</text><text x='" << pad << "' y='24' fill='#555'>mean "
          << fmt(l.mean, "%+.2f") << ", std " << fmt(l.std, "%.2f");
        if (!std::isnan(l.saturated)) s << ", saturated " << fmt(100 * l.saturated, "%.1f") << "%";
        s << "</text>";
        for (std::size_t k = 0; k < l.histogram.size(); ++k) {
            const double bh = (h - top - bottom) * double(l.histogram[k]) / double(most);
            s << "<rect x='" << fmt(pad + bar * double(k), "%.1f") << "' y='" << fmt(h - bottom - bh, "%.1f") << "' width='"
              << fmt(std::max(bar - 0.5, 0.5), "%.1f") << "' height='" << fmt(bh, "%.1f") << "' fill='"
              << palette[i % std::size(palette)] << "'/>";
        }
        s << "<text x='" << pad << "' y='" << h - 4 << "'>" << fmt(l.lo) << "</text><text x='" << w - pad << "' y='" << h - 4
          << "' text-anchor='end'>" << fmt(l.hi) << "</text></svg> ";
    }
    return s.str();
}

}  // namespace

std::string Diagnostics::html() const
{
    std::ostringstream s;
    s << "<h2>Diagnostics</h2><p>Recorded every " << every_ << " steps (CSV beside this report: diagnostics_params.csv, "
      << "diagnostics_layers.csv, diagnostics_embeddings.csv).</p>";
    if (params_.empty()) return s.str() + "<p>No step was recorded.</p>";

    std::map<std::string, Series> ratio, norm;
    std::vector<std::string> order;
    for (const auto& p : params_) {
        if (!ratio.count(p.name)) order.push_back(p.name), ratio[p.name].label = norm[p.name].label = p.name;
        if (std::isfinite(p.update_ratio_log10)) ratio[p.name].points.emplace_back(double(p.step), p.update_ratio_log10);
        if (p.grad_norm > 0) norm[p.name].points.emplace_back(double(p.step), std::log10(p.grad_norm));
    }
    std::vector<Series> ratios, norms;
    for (const auto& name : order) ratios.push_back(ratio[name]), norms.push_back(norm[name]);
    s << "<h3>Update-to-data ratio</h3><p>log10(std(update) / std(weights)) per parameter, the update being what "
      << "the optimizer changed. The band is the lectures' rule of thumb: near -3 (updates a thousandth of the "
      << "weights); far below, a parameter learns too slowly; far above, too fast.</p>"
      << line_chart(ratios, "log10 update / data", -3.5, -2.5, -3.0)
      << "<h3>Gradient norms</h3>" << line_chart(norms, "log10 gradient L2 norm");

    // layer histograms at three recorded steps: the first, the middle and the last
    std::vector<std::int64_t> steps;
    for (const auto& l : *layers_) {
        if (steps.empty() || steps.back() != l.step) steps.push_back(l.step);
    }
    if (!steps.empty()) {
        s << "<h3>Layer outputs</h3><p>Histograms of each layer's output, each over its own range; for GELU the "
          << "saturated share is the inputs where its slope is under 0.01, whose gradient hardly flows.</p>";
        std::vector<std::int64_t> shown = {steps.front(), steps[steps.size() / 2], steps.back()};
        shown.erase(std::unique(shown.begin(), shown.end()), shown.end());
        for (std::int64_t step : shown) {
            std::vector<const LayerStat*> at;
            for (const auto& l : *layers_) {
                if (l.step == step) at.push_back(&l);
            }
            s << "<h4>step " << step << "</h4>" << histogram_panels(at);
        }
    }

    if (!embeddings_.empty()) {
        std::map<std::string, Series> touched, untouched, fraction;
        std::vector<std::string> tables;
        for (const auto& e : embeddings_) {
            if (!touched.count(e.name)) {
                tables.push_back(e.name);
                touched[e.name].label = e.name + " touched rows";
                untouched[e.name].label = e.name + " untouched rows";
                fraction[e.name].label = e.name;
            }
            touched[e.name].points.emplace_back(double(e.step), e.touched_drift);
            untouched[e.name].points.emplace_back(double(e.step), e.untouched_drift);
            fraction[e.name].points.emplace_back(double(e.step), e.touched_fraction);
        }
        std::vector<Series> drift, fractions;
        for (const auto& t : tables) drift.push_back(touched[t]), drift.push_back(untouched[t]), fractions.push_back(fraction[t]);
        s << "<h3>Embedding rows</h3><p>How far a step moved the rows its ids used, and the rows they did not "
          << "(mean L2 norm of a row's update). With dense Adam the untouched rows still move, by the momentum of "
          << "earlier steps (PyTorch issue 18404); with <code>--sparse</code> and SparseAdam they stay put.</p>"
          << line_chart(drift, "row update norm") << "<p>Fraction of rows a step touched:</p>"
          << line_chart(fractions, "touched fraction");
    }
    return s.str();
}

}  // namespace xgrad::inspect
