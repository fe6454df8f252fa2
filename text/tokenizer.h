// CharTokenizer: a character-level tokenizer over UTF-8 code points. Its vocabulary is the sorted
// set of characters of the text it is built from, so "hello" gives e=0, h=1, l=2, o=3 and encodes
// to [1, 0, 2, 2, 3].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/array.h"

namespace xgrad::text {

// The code points of UTF-8 text. Throws xgrad::Error naming the byte offset of invalid UTF-8
// (a bad lead or continuation byte, an overlong form, a surrogate, or a truncated sequence).
std::vector<char32_t> decode_utf8(std::string_view text);
std::string encode_utf8(char32_t c);

class CharTokenizer {
public:
    explicit CharTokenizer(std::string_view text);   // the vocabulary: every distinct character, sorted

    std::vector<std::int64_t> encode(std::string_view text) const;   // throws on a character outside it
    std::string decode(const std::vector<std::int64_t>& ids) const;  // throws on an id outside it
    std::size_t vocab_size() const { return vocabulary_.size(); }
    const std::vector<char32_t>& vocabulary() const { return vocabulary_; }
    std::string token(std::int64_t id) const;        // one character, as UTF-8

private:
    std::vector<char32_t> vocabulary_;               // id -> character, increasing
};

// "'l'", "'\n'", "U+00E9 'é'": how a character appears in messages and printouts.
std::string describe_char(char32_t c);

// ids as a 1-D IdArray, or as (1, T) with as_batch.
IdArray to_ids(const std::vector<std::int64_t>& ids, bool as_batch = false);

}  // namespace xgrad::text
