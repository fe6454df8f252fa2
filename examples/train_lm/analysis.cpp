// The embedding measurements.
#include "analysis.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace analysis {

using xgrad::Array;

Array cosine_matrix(const Array& rows)
{
    const std::size_t n = rows.shape()[0], c = rows.shape()[1];
    std::vector<double> norm(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t k = 0; k < c; ++k) norm[i] += double(rows(i, k)) * rows(i, k);
        norm[i] = std::sqrt(norm[i]) + 1e-12;
    }
    Array cos(xgrad::Shape{n, n});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
            double dot = 0.0;
            for (std::size_t k = 0; k < c; ++k) dot += double(rows(i, k)) * rows(j, k);
            cos(i, j) = static_cast<float>(dot / (norm[i] * norm[j]));
        }
    }
    return cos;
}

std::string char_class(char32_t c)
{
    if (c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u') return "vowel";
    if (c >= 'a' && c <= 'z') return "consonant";
    if (c >= 'A' && c <= 'Z') return "capital";
    return "other";
}

// The cosine of row `id` with every row: one row of the cosine matrix, without the (N, N) matrix a
// vocabulary of 100,000 characters would need (40 GB).
std::vector<float> cosines_to(const Array& rows, std::size_t id)
{
    const std::size_t n = rows.shape()[0], c = rows.shape()[1];
    auto norm = [&](std::size_t i) {
        double sum = 0.0;
        for (std::size_t k = 0; k < c; ++k) sum += double(rows(i, k)) * rows(i, k);
        return std::sqrt(sum) + 1e-12;
    };
    const double norm_id = norm(id);
    std::vector<float> out(n);
    for (std::size_t j = 0; j < n; ++j) {
        double dot = 0.0;
        for (std::size_t k = 0; k < c; ++k) dot += double(rows(id, k)) * rows(j, k);
        out[j] = static_cast<float>(dot / (norm_id * norm(j)));
    }
    return out;
}

std::vector<Neighbour> nearest(const Array& rows, std::size_t id, std::size_t k)
{
    const std::vector<float> cosines = cosines_to(rows, id);
    std::vector<Neighbour> all;
    for (std::size_t j = 0; j < cosines.size(); ++j) {
        if (j != id) all.push_back({j, cosines[j]});
    }
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(k, all.size())), all.end(),
                      [](const Neighbour& a, const Neighbour& b) { return a.cosine > b.cosine; });
    all.resize(std::min(k, all.size()));
    return all;
}

Structure structure_score(const Array& rows, const std::vector<char32_t>& vocabulary)
{
    const std::size_t n = vocabulary.size();
    Structure s;
    if (n < 2) return s;   // one token has no neighbour: nothing counted
    std::map<std::string, std::size_t> members;   // per class, for the chance a random neighbour gives
    for (char32_t c : vocabulary) ++members[char_class(c)];
    for (std::size_t i = 0; i < n; ++i) {
        const std::string cls = char_class(vocabulary[i]);
        if (cls == "other") continue;
        s.chance += double(members[cls] - 1) / double(n - 1);
        s.score += char_class(vocabulary[nearest(rows, i, 1)[0].id]) == cls;
        ++s.counted;
    }
    if (s.counted > 0) {
        s.score /= double(s.counted);
        s.chance /= double(s.counted);
    }
    return s;
}

Array centered(const Array& rows)
{
    const std::size_t n = rows.shape()[0], c = rows.shape()[1];
    Array out = rows;
    for (std::size_t k = 0; k < c; ++k) {
        double mean = 0.0;
        for (std::size_t i = 0; i < n; ++i) mean += rows(i, k);
        mean /= double(n);
        for (std::size_t i = 0; i < n; ++i) out(i, k) = static_cast<float>(rows(i, k) - mean);
    }
    return out;
}

std::vector<double> similarity_by_distance(const Array& cosines, const std::vector<std::size_t>& distances,
                                           std::size_t limit)
{
    const std::size_t n = std::min(limit, cosines.shape()[0]);
    std::vector<double> out;
    for (std::size_t d : distances) {
        double total = 0.0;
        std::size_t count = 0;
        for (std::size_t i = 0; i + d < n; ++i, ++count) total += cosines(i, i + d);
        out.push_back(count ? total / double(count) : 0.0);
    }
    return out;
}

Array pca_2d(const Array& rows)
{
    const std::size_t n = rows.shape()[0], c = rows.shape()[1];
    std::vector<double> mean(c, 0.0);
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t k = 0; k < c; ++k) mean[k] += rows(i, k) / double(n);
    std::vector<double> cov(c * c, 0.0);                            // (C, C) covariance
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t a = 0; a < c; ++a)
            for (std::size_t b = 0; b < c; ++b) cov[a * c + b] += (rows(i, a) - mean[a]) * (rows(i, b) - mean[b]);

    // the two leading eigenvectors by power iteration, the second after deflating the first
    std::vector<std::vector<double>> components;
    for (int component = 0; component < 2; ++component) {
        std::vector<double> v(c);
        for (std::size_t k = 0; k < c; ++k) v[k] = 1.0 + 0.01 * double(k);
        double eigenvalue = 0.0;
        for (int iteration = 0; iteration < 500; ++iteration) {
            std::vector<double> w(c, 0.0);
            for (std::size_t a = 0; a < c; ++a)
                for (std::size_t b = 0; b < c; ++b) w[a] += cov[a * c + b] * v[b];
            double norm = 0.0;
            for (double x : w) norm += x * x;
            norm = std::sqrt(norm) + 1e-30;
            for (std::size_t k = 0; k < c; ++k) v[k] = w[k] / norm;
            eigenvalue = norm;
        }
        for (std::size_t a = 0; a < c; ++a)
            for (std::size_t b = 0; b < c; ++b) cov[a * c + b] -= eigenvalue * v[a] * v[b];
        components.push_back(v);
    }
    Array out(xgrad::Shape{n, 2});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t p = 0; p < 2; ++p) {
            double x = 0.0;
            for (std::size_t k = 0; k < c; ++k) x += (rows(i, k) - mean[k]) * components[p][k];
            out(i, p) = static_cast<float>(x);
        }
    }
    return out;
}

}  // namespace analysis
