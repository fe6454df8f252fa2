// UTF-8 decoding and the character tokenizer.
#include "text/tokenizer.h"

#include <algorithm>
#include <cstdio>

#include "core/check.h"

namespace xgrad::text {

std::vector<char32_t> decode_utf8(std::string_view text)
{
    std::vector<char32_t> out;
    out.reserve(text.size());
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    for (std::size_t i = 0; i < n;) {
        const unsigned char lead = s[i];
        std::size_t length;
        char32_t c;
        if (lead < 0x80) {
            out.push_back(lead);
            ++i;
            continue;
        } else if ((lead & 0xE0) == 0xC0) {
            length = 2, c = lead & 0x1F;
        } else if ((lead & 0xF0) == 0xE0) {
            length = 3, c = lead & 0x0F;
        } else if ((lead & 0xF8) == 0xF0) {
            length = 4, c = lead & 0x07;
        } else {
            fail("invalid UTF-8 at byte offset ", i, ": byte 0x", std::hex, int(lead), " cannot start a character");
        }
        XGRAD_CHECK(i + length <= n, "invalid UTF-8 at byte offset ", i, ": the text ends inside a ", length, "-byte character");
        for (std::size_t k = 1; k < length; ++k) {
            XGRAD_CHECK((s[i + k] & 0xC0) == 0x80, "invalid UTF-8 at byte offset ", i + k, ": expected a continuation byte");
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        static constexpr char32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        XGRAD_CHECK(c >= smallest[length], "invalid UTF-8 at byte offset ", i, ": an overlong encoding");
        XGRAD_CHECK(c <= 0x10FFFF && (c < 0xD800 || c > 0xDFFF), "invalid UTF-8 at byte offset ", i,
              ": not a Unicode scalar value");
        out.push_back(c);
        i += length;
    }
    return out;
}

std::string encode_utf8(char32_t c)
{
    std::string s;
    if (c < 0x80) {
        s += static_cast<char>(c);
    } else if (c < 0x800) {
        s += static_cast<char>(0xC0 | (c >> 6));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        s += static_cast<char>(0xE0 | (c >> 12));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        s += static_cast<char>(0xF0 | (c >> 18));
        s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        s += static_cast<char>(0x80 | (c & 0x3F));
    }
    return s;
}

std::string describe_char(char32_t c)
{
    switch (c) {
    case '\n': return "'\\n'";
    case '\t': return "'\\t'";
    case ' ': return "' '";
    default: break;
    }
    if (c < 0x20 || c == 0x7F) {
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "U+%04X", static_cast<unsigned>(c));
        return buffer;
    }
    if (c < 0x80) return "'" + encode_utf8(c) + "'";
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "U+%04X", static_cast<unsigned>(c));
    return std::string(buffer) + " '" + encode_utf8(c) + "'";
}

CharTokenizer::CharTokenizer(std::string_view text) : vocabulary_(decode_utf8(text))
{
    std::sort(vocabulary_.begin(), vocabulary_.end());
    vocabulary_.erase(std::unique(vocabulary_.begin(), vocabulary_.end()), vocabulary_.end());
    XGRAD_CHECK(!vocabulary_.empty(), "CharTokenizer: the text is empty, so there is no vocabulary");
}

std::vector<std::int64_t> CharTokenizer::encode(std::string_view text) const
{
    std::vector<std::int64_t> ids;
    std::size_t index = 0;
    for (char32_t c : decode_utf8(text)) {
        auto it = std::lower_bound(vocabulary_.begin(), vocabulary_.end(), c);
        XGRAD_CHECK(it != vocabulary_.end() && *it == c, "encode: character ", describe_char(c), " at character ", index,
              " is not in the vocabulary of ", vocabulary_.size(), " characters");
        ids.push_back(it - vocabulary_.begin());
        ++index;
    }
    return ids;
}

std::string CharTokenizer::token(std::int64_t id) const
{
    XGRAD_CHECK(id >= 0 && static_cast<std::size_t>(id) < vocabulary_.size(), "decode: id ", id,
          " is out of range for a vocabulary of ", vocabulary_.size(), " characters");
    return encode_utf8(vocabulary_[static_cast<std::size_t>(id)]);
}

std::string CharTokenizer::decode(const std::vector<std::int64_t>& ids) const
{
    std::string text;
    for (std::int64_t id : ids) text += token(id);
    return text;
}

IdArray to_ids(const std::vector<std::int64_t>& ids, bool as_batch)
{
    IdArray out(as_batch ? Shape{1, ids.size()} : Shape{ids.size()});
    std::copy(ids.begin(), ids.end(), out.begin());
    return out;
}

}  // namespace xgrad::text
