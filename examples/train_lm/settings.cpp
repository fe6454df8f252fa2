// The command line of train_lm.
#include "settings.h"

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "../cli_checks.h"

using namespace cli_checks;

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
