// Reading, shuffling and batching a corpus.
#include "text/corpus.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "text/tokenizer.h"

namespace xgrad::text {

std::string read_text_file(const std::string& path)
{
    // Checked before opening: opening a FIFO blocks until a writer comes, which may be never.
    std::error_code error;
    const auto status = std::filesystem::status(path, error);
    XGRAD_CHECK(status.type() != std::filesystem::file_type::not_found, "corpus: cannot open '", path, "': ",
          std::strerror(ENOENT));
    XGRAD_CHECK(error || std::filesystem::is_regular_file(status), "corpus: '", path, "' is not a regular file");
    std::ifstream in(path, std::ios::binary);
    XGRAD_CHECK(in.good(), "corpus: cannot open '", path, "': ", std::strerror(errno));
    std::ostringstream content;
    content << in.rdbuf();
    XGRAD_CHECK(!in.bad(), "corpus: cannot read '", path, "'");
    std::string text = content.str();
    XGRAD_CHECK(!text.empty(), "corpus: '", path, "' is empty");
    try {
        decode_utf8(text);
    } catch (const Error& e) {
        fail("corpus: '", path, "' is not UTF-8 text: ", e.what());
    }
    return text;
}

std::string shuffle_lines(const std::string& text, std::uint64_t seed)
{
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    Generator rng(seed);
    for (std::size_t i = lines.size(); i > 1; --i) std::swap(lines[i - 1], lines[rng.below(i)]);   // Fisher-Yates
    // The same characters as `text`, newlines included: a text that does not end with one gets none
    // (a text without line breaks stays one line, which train_lm then cuts at any offset).
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" : "") + lines[i];
    if (!text.empty() && text.back() == '\n') out += '\n';
    return out;
}

std::string normalize_line_ends(const std::string& text)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out += text[i];
    }
    return out;
}

Batch sample_batch(const std::vector<std::int64_t>& tokens, std::size_t batch_size, std::size_t block_size,
                   Generator& rng, const std::vector<std::size_t>& starts)
{
    XGRAD_CHECK(tokens.size() > block_size, "sample_batch: ", tokens.size(), " tokens are too few for windows of block_size + 1 = ",
          block_size + 1);
    Batch batch{IdArray(Shape{batch_size, block_size}), IdArray(Shape{batch_size, block_size})};
    for (std::size_t b = 0; b < batch_size; ++b) {
        const std::size_t start = starts.empty() ? rng.below(tokens.size() - block_size) : starts[rng.below(starts.size())];
        XGRAD_CHECK(start + block_size < tokens.size(), "sample_batch: a window at ", start, " runs past the end");
        for (std::size_t t = 0; t < block_size; ++t) {
            batch.x(b, t) = tokens[start + t];
            batch.y(b, t) = tokens[start + t + 1];   // the next token
        }
    }
    return batch;
}

std::vector<std::size_t> offsets_after(const std::vector<std::int64_t>& tokens, std::int64_t separator,
                                       std::size_t block_size)
{
    std::vector<std::size_t> starts;
    for (std::size_t i = 0; i + block_size < tokens.size(); ++i) {
        if (i == 0 || tokens[i - 1] == separator) starts.push_back(i);
    }
    return starts;
}

}  // namespace xgrad::text
