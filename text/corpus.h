// A training corpus: a checked UTF-8 text file, shuffled by line, split, and cut into (B, T) batches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/array.h"
#include "core/random.h"

namespace xgrad::text {

// The whole file; throws xgrad::Error naming the file when it cannot be read, is empty, or is not
// valid UTF-8 (with the byte offset).
std::string read_text_file(const std::string& path);

// The lines of `text` in an order drawn from `seed` (a sorted word list would otherwise put every
// word starting with 'z' in the validation split), joined again with '\n': the same characters,
// ending in '\n' only where `text` does.
std::string shuffle_lines(const std::string& text, std::uint64_t seed);

// `text` with every "\r\n" made "\n" (Windows line ends read as line breaks, not as a '\r' character
// before each); a '\r' on its own stays.
std::string normalize_line_ends(const std::string& text);

// x (B, T): windows of `tokens` at offsets drawn from `rng`; y (B, T): the same windows shifted by
// one, so y[b, t] is the token that follows x[b, t]. With `starts`, windows begin only at those
// offsets (for instance the starts of lines, so that position t means "t characters into a word").
struct Batch {
    IdArray x, y;
};
Batch sample_batch(const std::vector<std::int64_t>& tokens, std::size_t batch_size, std::size_t block_size,
                   Generator& rng, const std::vector<std::size_t>& starts = {});

// The offsets just after each `separator` token (and 0), where a window of block_size + 1 still fits.
std::vector<std::size_t> offsets_after(const std::vector<std::int64_t>& tokens, std::int64_t separator,
                                       std::size_t block_size);

}  // namespace xgrad::text
