// The character tokenizer and UTF-8 decoding, and the corpus text helpers.
#include <catch2/catch.hpp>

#include <algorithm>

#include "xgrad.h"

using namespace xgrad;
using Catch::Matchers::Contains;

TEST_CASE("hello encodes as in the seed: sorted unique characters")
{
    text::CharTokenizer t("hello");
    CHECK(t.vocab_size() == 4);
    CHECK(t.encode("hello") == std::vector<std::int64_t>{1, 0, 2, 2, 3});
    CHECK(t.decode({1, 0, 2, 2, 3}) == "hello");
    CHECK(t.token(2) == "l");
}

TEST_CASE("multi-byte characters round-trip and sort by code point")
{
    const std::string text = "café naïve 日本 🙂";
    text::CharTokenizer t(text);
    CHECK(t.decode(t.encode(text)) == text);
    CHECK(t.vocabulary().back() == U'🙂');
    CHECK(t.encode("é").size() == 1);
    CHECK(text::describe_char(U'é') == "U+00E9 'é'");
    CHECK(text::describe_char(U'\n') == "'\\n'");
}

TEST_CASE("characters and ids outside the vocabulary are named in the error")
{
    text::CharTokenizer t("hello");
    CHECK_THROWS_WITH(t.encode("help"), Contains("character 'p' at character 3 is not in the vocabulary of 4 characters"));
    CHECK_THROWS_WITH(t.decode({0, 4}), Contains("id 4 is out of range for a vocabulary of 4 characters"));
    CHECK_THROWS_WITH(text::CharTokenizer(""), Contains("the text is empty"));
}

TEST_CASE("invalid UTF-8 is an error naming the byte offset")
{
    CHECK_THROWS_WITH(text::decode_utf8("ab\xff"), Contains("invalid UTF-8 at byte offset 2"));
    CHECK_THROWS_WITH(text::decode_utf8("abc\xc3"), Contains("byte offset 3: the text ends inside a 2-byte character"));
    CHECK_THROWS_WITH(text::decode_utf8("a\xe6\x97x"), Contains("byte offset 3: expected a continuation byte"));
    CHECK_THROWS_WITH(text::decode_utf8("\xc0\xaf"), Contains("byte offset 0: an overlong encoding"));
    CHECK_THROWS_WITH(text::decode_utf8("\xed\xa0\x80"), Contains("not a Unicode scalar value"));
    CHECK(text::decode_utf8("\xf0\x9f\x99\x82") == std::vector<char32_t>{0x1F642});
}

TEST_CASE("shuffling lines keeps every character, and adds no line break where the text has none")
{
    CHECK(text::shuffle_lines("no line breaks here", 1) == "no line breaks here");
    CHECK(text::shuffle_lines("a", 1) == "a");                  // one character stays one character
    const std::string shuffled = text::shuffle_lines("one\ntwo\nthree", 3);
    CHECK(shuffled.size() == std::string("one\ntwo\nthree").size());
    CHECK(std::count(shuffled.begin(), shuffled.end(), '\n') == 2);
    const std::string ended = text::shuffle_lines("one\ntwo\n", 3);
    CHECK((ended == "one\ntwo\n" || ended == "two\none\n"));
}

TEST_CASE("Windows line ends read as line breaks; a carriage return on its own stays")
{
    CHECK(text::normalize_line_ends("ab\r\ncd\r\n") == "ab\ncd\n");
    CHECK(text::normalize_line_ends("a\rb\r") == "a\rb\r");
    CHECK(text::normalize_line_ends("\r\r\n") == "\r\n");
}
