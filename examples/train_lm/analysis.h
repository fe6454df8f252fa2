// Measuring what the embeddings learned: cosine neighbours, a structure score over character
// classes, position similarity by distance, and a 2-D PCA map.
#pragma once

#include <string>
#include <vector>

#include "xgrad.h"

namespace analysis {

// Cosine similarity of every pair of rows of a (N, C) array: (N, N).
xgrad::Array cosine_matrix(const xgrad::Array& rows);

// The class a character belongs to, for the structure score: "vowel", "consonant", "capital", or
// "other" (the apostrophe, accented letters, the newline).
std::string char_class(char32_t c);

// The k rows nearest row `id` of `rows` (N, C) by cosine, without the (N, N) matrix: a vocabulary of
// 100,000 characters is measured in O(N C) memory.
struct Neighbour {
    std::size_t id;
    float cosine;
};
std::vector<float> cosines_to(const xgrad::Array& rows, std::size_t id);
std::vector<Neighbour> nearest(const xgrad::Array& rows, std::size_t id, std::size_t k);

// The share of vowels, consonants and capitals whose nearest neighbour (by cosine, among all other
// tokens) is in the same class, and the share a random neighbour would give; counted is 0 (and the
// shares 0) when no such token has another token beside it (a vocabulary of one, or only "other"s).
struct Structure {
    double score = 0.0, chance = 0.0;
    std::size_t counted = 0;
};
Structure structure_score(const xgrad::Array& rows, const std::vector<char32_t>& vocabulary);

// The rows minus their mean row: what sets each row apart from the others. Position vectors learn a
// large shared part (it acts as a bias); cosines of the centred vectors show how positions differ.
xgrad::Array centered(const xgrad::Array& rows);

// Mean cosine similarity of rows d apart, for each d in `distances`, over rows [0, limit).
std::vector<double> similarity_by_distance(const xgrad::Array& cosines, const std::vector<std::size_t>& distances,
                                           std::size_t limit);

// The rows projected on their first two principal components: (N, 2).
xgrad::Array pca_2d(const xgrad::Array& rows);

}  // namespace analysis
