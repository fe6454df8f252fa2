// The command line of train_lm.
#include "settings.h"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

namespace {

// A number above (or, with allow_zero, at least) zero, and finite: "inf" and "nan" parse as numbers
// but train nothing. `largest` keeps a float flag within what a float holds (1e39 would become inf).
CLI::Validator number_above_zero(bool allow_zero, double largest = DBL_MAX)
{
    return CLI::Validator(
        [allow_zero, largest](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (!std::isfinite(value)) return "expected a finite number, got " + text;
            if (allow_zero ? !(value >= 0) : !(value > 0)) {
                return std::string("must be ") + (allow_zero ? "zero or more" : "positive") + ", got " + text;
            }
            if (value > largest) return "must be at most " + std::to_string(largest) + ", got " + text;
            return "";
        },
        allow_zero ? "NUMBER >= 0" : "NUMBER > 0");
}

// A finite number (what CLI::Range lets through: it compares, and NaN compares false).
CLI::Validator finite_number()
{
    return CLI::Validator(
        [](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (!std::isfinite(value)) return "expected a finite number, got " + text;
            return "";
        },
        "NUMBER");
}

// A whole number in [smallest, largest], the whole text: CLI11 alone reads "-1" into an unsigned flag
// as 2^64 - 1 and saturates "99999999999999999999", without a word.
template <class Int>
CLI::Validator whole_number(Int smallest, Int largest = std::numeric_limits<Int>::max())
{
    return CLI::Validator(
        [smallest, largest](std::string& text) -> std::string {
            char* end = nullptr;
            const long double value = std::strtold(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (value < static_cast<long double>(smallest)) {
                return (smallest == 1 ? "must be positive, got " : "must be " + std::to_string(smallest) + " or more, got ") + text;
            }
            if (value > static_cast<long double>(largest)) return "must be at most " + std::to_string(largest) + ", got " + text;
            Int parsed{};
            const auto [stop, error] = std::from_chars(text.data(), text.data() + text.size(), parsed);
            if (error == std::errc::result_out_of_range || (error == std::errc() && parsed > largest)) {
                return "must be at most " + std::to_string(largest) + ", got " + text;
            }
            if (error != std::errc() || stop != text.data() + text.size()) return "expected a whole number, got " + text;
            return "";
        },
        smallest == 1 ? "INTEGER > 0" : "INTEGER >= 0");
}

}  // namespace

int parse_settings(int argc, const char* const* argv, Settings& s)
{
    const CLI::Validator positive = number_above_zero(false), non_negative = number_above_zero(true);
    const CLI::Validator count = whole_number<std::int64_t>(1), count_or_zero = whole_number<std::int64_t>(0);
    const CLI::Validator size = whole_number<std::size_t>(1), size_or_zero = whole_number<std::size_t>(0);
    CLI::App app{"Train a character-level language model (token + position embeddings -> next-token head) on a text\n"
                 "file, and show what its embeddings learn. Writes a checkpoint and a report to --out."};
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--corpus", s.corpus, "UTF-8 text file to train on (one word or sentence per line works best; "
                                         "Windows line ends count as line breaks)");
    app.add_option("--steps", s.steps, "training steps")->check(count);
    app.add_option("--batch", s.batch, "sequences per batch (B)")->check(size);
    app.add_option("--block-size,--block_size", s.block_size, "sequence length T, and the position table's size")->check(size);
    app.add_option("--n-embd,--n_embd", s.n_embd, "embedding width C")->check(size);
    app.add_option("--hidden", s.hidden, "add an MLP block (Linear, GELU, Linear, residual) of this width; 0: none")
        ->check(size_or_zero);
    app.add_option("--init-std", s.init_std, "standard deviation of the initial embeddings (GPT-2's 0.02; nn.Embedding's is 1)")
        ->check(number_above_zero(false, FLT_MAX));
    app.add_option("--lr", s.lr, "peak learning rate (Adam)")->check(positive);
    app.add_option("--weight-decay", s.weight_decay, "decoupled weight decay on the Linear weights only")->check(non_negative);
    app.add_option("--warmup", s.warmup, "linear warmup steps before the cosine decay")->check(count_or_zero);
    app.add_option("--min-lr-ratio", s.min_lr_ratio, "the cosine decay's floor, as a fraction of --lr; 1: constant lr")
        ->check(finite_number())
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--clip", s.clip, "clip the gradient norm to this; 0: no clipping")->check(non_negative);
    app.add_option("--seed", s.seed, "seed for the initial weights, the shuffle and the batches")
        ->check(whole_number<std::uint64_t>(0));
    app.add_option("--threads", s.threads, "threads for xgrad and OpenBLAS; 0: XGRAD_NUM_THREADS or all cores")
        ->check(whole_number<int>(0, 1024));
    app.add_option("--eval-interval", s.eval_interval, "steps between validation losses")->check(count);
    app.add_option("--eval-batches", s.eval_batches, "validation batches per evaluation")->check(count);
    app.add_option("--checkpoint-every", s.checkpoint_every, "also save a checkpoint every this many steps; 0: at the end only")
        ->check(count_or_zero);
    app.add_option("--out", s.out, "output folder (one run at a time: a run locks it)");
    app.add_option("--resume", s.resume, "continue from this checkpoint up to --steps: the flags left out are the "
                                         "checkpoint's, and a changed --seed, --batch or --init-std is refused")
        ->check(CLI::ExistingFile);
    app.add_flag("--sparse", s.sparse, "give the embeddings row-sparse gradients, so that Adam moves only the rows a "
                                       "step used (as nn.Embedding(sparse=True) with SparseAdam)");
    app.add_option("--diagnostics-every", s.diagnostics_every, "record gradient norms, update-to-data ratios, layer "
                                                               "histograms and embedding drift every this many steps "
                                                               "into the report and diagnostics_*.csv; 0: off")
        ->check(count_or_zero);
    app.add_option("--sample-length", s.sample_length, "characters to sample at the end")
        ->check(whole_number<std::size_t>(0, 1000000));
    app.add_option("--temperature", s.temperature, "sampling temperature")->check(positive);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);                                    // --help
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "train_lm: %s (see --help)\n", e.what());
        return e.get_exit_code();
    }
    for (const CLI::Option* option : app.get_options()) {
        if (option->count() > 0) s.given.insert(option->get_name());
    }
    return -1;
}
