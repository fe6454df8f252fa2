// The output files. report.html draws its charts as inline SVG: no network, no scripts.
#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include <xtensor/xview.hpp>

using xgrad::Array;

namespace {

std::string escape_html(const std::string& s)
{
    std::string out;
    for (char c : s) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

const char* class_colour(const std::string& cls)
{
    if (cls == "vowel") return "#d62728";
    if (cls == "consonant") return "#1f77b4";
    if (cls == "capital") return "#2ca02c";
    return "#7f7f7f";
}

std::string fmt(double v, const char* format = "%.4g")
{
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, v);
    return buffer;
}

// Train and validation loss against the step, with the unigram entropy as a dashed line.
std::string loss_chart(const ReportData& d)
{
    const double w = 640, h = 320, left = 50, bottom = 30, top = 10, right = 10;
    double lo = d.unigram_entropy, hi = d.unigram_entropy;
    std::int64_t first = 0, last = 1;
    for (const auto* series : {&d.train_loss, &d.val_loss}) {
        for (const auto& [step, loss] : *series) {
            lo = std::min(lo, loss), hi = std::max(hi, loss);
            last = std::max(last, step);
        }
    }
    if (!d.train_loss.empty()) first = d.train_loss.front().first;
    hi += 0.05 * (hi - lo + 1e-9);
    auto x = [&](double step) { return left + (w - left - right) * (step - double(first)) / double(std::max<std::int64_t>(1, last - first)); };
    auto y = [&](double loss) { return top + (h - top - bottom) * (hi - loss) / (hi - lo + 1e-9); };
    std::ostringstream s;
    s << "<svg width='" << w << "' height='" << h << "' xmlns='http://www.w3.org/2000/svg' font-size='11'>";
    s << "<rect x='" << left << "' y='" << top << "' width='" << w - left - right << "' height='" << h - top - bottom
      << "' fill='white' stroke='#ccc'/>";
    for (int k = 0; k <= 4; ++k) {   // y ticks
        const double loss = lo + (hi - lo) * k / 4.0;
        s << "<text x='" << left - 4 << "' y='" << y(loss) + 4 << "' text-anchor='end'>" << fmt(loss, "%.2f") << "</text>";
    }
    s << "<text x='" << left << "' y='" << h - 8 << "'>step " << first << "</text><text x='" << w - right << "' y='"
      << h - 8 << "' text-anchor='end'>step " << last << "</text>";
    s << "<line x1='" << left << "' x2='" << w - right << "' y1='" << y(d.unigram_entropy) << "' y2='" << y(d.unigram_entropy)
      << "' stroke='#999' stroke-dasharray='4 3'/><text x='" << w - right - 4 << "' y='" << y(d.unigram_entropy) - 4
      << "' text-anchor='end' fill='#666'>unigram entropy " << fmt(d.unigram_entropy, "%.3f") << "</text>";
    auto polyline = [&](const std::vector<std::pair<std::int64_t, double>>& series, const char* colour, double width) {
        s << "<polyline fill='none' stroke='" << colour << "' stroke-width='" << width << "' points='";
        const std::size_t stride = std::max<std::size_t>(1, series.size() / 800);   // at most ~800 points
        for (std::size_t i = 0; i < series.size(); i += stride) s << fmt(x(double(series[i].first)), "%.1f") << ","
                                                                     << fmt(y(series[i].second), "%.1f") << " ";
        s << "'/>";
    };
    polyline(d.train_loss, "#1f77b4", 1);
    polyline(d.val_loss, "#ff7f0e", 2.5);
    s << "<text x='" << left + 8 << "' y='" << top + 14 << "' fill='#1f77b4'>train loss</text><text x='" << left + 8
      << "' y='" << top + 28 << "' fill='#ff7f0e'>validation loss</text></svg>";
    return s.str();
}

// The token embeddings on their first two principal components, each drawn as its character.
std::string pca_chart(const Array& embeddings, const ReportData& d, const std::string& caption)
{
    const double size = 380, pad = 20;
    Array xy = analysis::pca_2d(embeddings);
    float lo_x = xt::amin(xt::view(xy, xt::all(), 0))(), hi_x = xt::amax(xt::view(xy, xt::all(), 0))();
    float lo_y = xt::amin(xt::view(xy, xt::all(), 1))(), hi_y = xt::amax(xt::view(xy, xt::all(), 1))();
    std::ostringstream s;
    s << "<figure><svg width='" << size << "' height='" << size << "' xmlns='http://www.w3.org/2000/svg'>"
      << "<rect width='" << size << "' height='" << size << "' fill='white' stroke='#ccc'/>";
    for (std::size_t i = 0; i < d.labels.size(); ++i) {
        const double px = pad + (size - 2 * pad) * (xy(i, 0) - lo_x) / (hi_x - lo_x + 1e-9);
        const double py = pad + (size - 2 * pad) * (hi_y - xy(i, 1)) / (hi_y - lo_y + 1e-9);
        s << "<text x='" << fmt(px, "%.1f") << "' y='" << fmt(py, "%.1f") << "' fill='" << class_colour(d.classes[i])
          << "' font-size='15' font-family='monospace' text-anchor='middle'>" << escape_html(d.labels[i]) << "</text>";
    }
    s << "</svg><figcaption>" << caption << "</figcaption></figure>";
    return s.str();
}

// cos(pos_i, pos_j) as a heatmap: red is similar, blue is opposite.
std::string heatmap(const Array& cosines, const std::string& caption)
{
    const std::size_t n = cosines.shape()[0];
    const double cell = std::max(2.0, 320.0 / double(n));
    std::ostringstream s;
    s << "<figure><svg width='" << cell * double(n) << "' height='" << cell * double(n)
      << "' xmlns='http://www.w3.org/2000/svg' shape-rendering='crispEdges'>";
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            const double v = std::clamp(double(cosines(i, j)), -1.0, 1.0);
            const int r = v > 0 ? 255 : int(255 * (1 + v)), b = v < 0 ? 255 : int(255 * (1 - v)), g = int(255 * (1 - std::abs(v)));
            s << "<rect x='" << cell * double(j) << "' y='" << cell * double(i) << "' width='" << cell << "' height='" << cell
              << "' fill='rgb(" << r << "," << g << "," << b << ")'/>";
        }
    }
    s << "</svg><figcaption>" << caption << "</figcaption></figure>";
    return s.str();
}

}  // namespace

std::vector<std::pair<std::string, std::string>> report_files(const ReportData& d)
{
    const std::size_t V = d.labels.size(), C = d.tok_after.shape()[1];
    std::ostringstream vectors, metadata, losses;
    metadata << "token\tclass\n";
    for (std::size_t i = 0; i < V; ++i) {
        for (std::size_t k = 0; k < C; ++k) vectors << (k ? "\t" : "") << fmt(d.tok_after(i, k), "%.6g");
        vectors << "\n";
        metadata << d.labels[i] << "\t" << d.classes[i] << "\n";
    }
    losses << "step,train_loss,val_loss\n";
    std::size_t v = 0;
    for (const auto& [step, loss] : d.train_loss) {
        losses << step << "," << fmt(loss, "%.9g") << ",";
        while (v < d.val_loss.size() && d.val_loss[v].first < step) ++v;
        if (v < d.val_loss.size() && d.val_loss[v].first == step) losses << fmt(d.val_loss[v].second, "%.9g");
        losses << "\n";
    }

    auto structure = [](const analysis::Structure& s) -> std::string {
        if (s.counted == 0) return "not measured (no token of those classes has another beside it)";
        return fmt(100 * s.score, "%.0f") + "% (chance " + fmt(100 * s.chance, "%.0f") + "%)";
    };
    std::ostringstream html;
    html << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>xgrad: embeddings being learned</title><style>"
         << "body{font-family:sans-serif;max-width:1100px;margin:20px auto;color:#222}"
         << "figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}figcaption{font-size:13px;color:#555}"
         << ".legend span{margin-right:14px}.graph svg{max-width:100%;height:auto}</style></head><body>"
         << "<h1>Token and position embeddings, before and after training</h1><p>" << escape_html(d.title) << "</p>"
         << "<h2>Loss</h2>" << loss_chart(d)
         << "<p>The validation loss (nats per character) against the unigram entropy of the corpus: below it, the model "
         << "predicts better than character frequencies alone.</p>"
         << "<h2>Token embeddings: 2-D PCA</h2><p class='legend'>"
         << "<span style='color:#d62728'>vowels</span><span style='color:#1f77b4'>consonants</span>"
         << "<span style='color:#2ca02c'>capitals</span><span style='color:#7f7f7f'>other</span></p>"
         << pca_chart(d.tok_before, d, "before training: nearest neighbour in the same class " + structure(d.structure_before))
         << pca_chart(d.tok_after, d, "after training: nearest neighbour in the same class " + structure(d.structure_after))
         << "<h2>Position embeddings: cosine similarity of every pair of positions</h2>"
         << "<p>Of the centred vectors (each minus the mean position vector), so that the part all positions share, "
         << "which acts as a bias, does not hide how they differ. Windows start at the beginning of a word, so "
         << "position t is the t-th character of a word, or of the words after it.</p>"
         << heatmap(d.pos_cos_before, "before training") << heatmap(d.pos_cos_after, "after training")
         << "<p>Red: similar, white: unrelated, blue: opposite. Top left is the start of the window.</p>";
    if (!d.graph_svg.empty()) {   // inline, without Graphviz's XML prolog and doctype
        html << "<h2>The autograd graph of the first step</h2><p>Each op and parameter with its shape and the norm "
             << "of the gradient that reached it. The embedding lookups' backward is a scatter-add: a repeated "
             << "character adds its rows' gradients into one row.</p>"
             << "<div class='graph'>" << d.graph_svg.substr(std::min(d.graph_svg.find("<svg"), d.graph_svg.size())) << "</div>";
    }
    html << d.diagnostics_html << "</body></html>\n";
    std::vector<std::pair<std::string, std::string>> files = {
        {"vectors.tsv", vectors.str()}, {"metadata.tsv", metadata.str()}, {"losses.csv", losses.str()}, {"report.html", html.str()}};
    if (!d.graph_svg.empty()) files.emplace_back("graph.svg", d.graph_svg);
    return files;
}
