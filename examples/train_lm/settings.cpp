// The command line of train_lm.
#include "settings.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

namespace {

// A number above (or, with allow_zero, at least) zero, with a message that says so.
CLI::Validator number_above_zero(bool allow_zero)
{
    return CLI::Validator(
        [allow_zero](std::string& text) -> std::string {
            char* end = nullptr;
            const double value = std::strtod(text.c_str(), &end);
            if (end == text.c_str() || *end != '\0') return "expected a number, got '" + text + "'";
            if (allow_zero ? !(value >= 0) : !(value > 0)) {
                return std::string("must be ") + (allow_zero ? "zero or more" : "positive") + ", got " + text;
            }
            return "";
        },
        allow_zero ? "NUMBER >= 0" : "NUMBER > 0");
}

}  // namespace

int parse_settings(int argc, const char* const* argv, Settings& s)
{
    const CLI::Validator positive = number_above_zero(false), non_negative = number_above_zero(true);
    CLI::App app{"Train a character-level language model (token + position embeddings -> next-token head) on a text\n"
                 "file, and show what its embeddings learn. Writes a checkpoint and a report to --out."};
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--corpus", s.corpus, "UTF-8 text file to train on (one word or sentence per line works best)");
    app.add_option("--steps", s.steps, "training steps")->check(positive);
    app.add_option("--batch", s.batch, "sequences per batch (B)")->check(positive);
    app.add_option("--block-size,--block_size", s.block_size, "sequence length T, and the position table's size")->check(positive);
    app.add_option("--n-embd,--n_embd", s.n_embd, "embedding width C")->check(positive);
    app.add_option("--hidden", s.hidden, "add an MLP block (Linear, GELU, Linear, residual) of this width; 0: none");
    app.add_option("--init-std", s.init_std, "standard deviation of the initial embeddings (GPT-2's 0.02; nn.Embedding's is 1)")
        ->check(positive);
    app.add_option("--lr", s.lr, "peak learning rate (Adam)")->check(positive);
    app.add_option("--weight-decay", s.weight_decay, "decoupled weight decay on the Linear weights only")->check(non_negative);
    app.add_option("--warmup", s.warmup, "linear warmup steps before the cosine decay")->check(non_negative);
    app.add_option("--min-lr-ratio", s.min_lr_ratio, "the cosine decay's floor, as a fraction of --lr; 1: constant lr")
        ->check(CLI::Range(0.0, 1.0));
    app.add_option("--clip", s.clip, "clip the gradient norm to this; 0: no clipping")->check(non_negative);
    app.add_option("--seed", s.seed, "seed for the initial weights, the shuffle and the batches");
    app.add_option("--threads", s.threads, "threads for xgrad and OpenBLAS; 0: XGRAD_NUM_THREADS or all cores")
        ->check(CLI::Range(0, 1024));
    app.add_option("--eval-interval", s.eval_interval, "steps between validation losses")->check(positive);
    app.add_option("--eval-batches", s.eval_batches, "validation batches per evaluation")->check(positive);
    app.add_option("--checkpoint-every", s.checkpoint_every, "also save a checkpoint every this many steps; 0: at the end only")
        ->check(non_negative);
    app.add_option("--out", s.out, "output folder");
    app.add_option("--resume", s.resume, "continue from this checkpoint (same flags and corpus) up to --steps")->check(CLI::ExistingFile);
    app.add_option("--sample-length", s.sample_length, "characters to sample at the end");
    app.add_option("--temperature", s.temperature, "sampling temperature")->check(positive);
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);                                    // --help
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "train_lm: %s (see --help)\n", e.what());
        return e.get_exit_code();
    }
    return -1;
}
