// train_lm's settings and their command line (CLI11).
#pragma once

#include <cstdint>
#include <set>
#include <string>

struct Settings {   // the defaults are the flags' defaults
    std::string corpus = "/usr/share/dict/american-english";
    std::int64_t steps = 5000;
    std::size_t batch = 32, block_size = 64, n_embd = 64, hidden = 0;
    double lr = 3e-3, weight_decay = 0.0, clip = 0.0, min_lr_ratio = 1.0;
    std::int64_t warmup = 0;
    std::uint64_t seed = 1337;
    int threads = 0;
    std::int64_t eval_interval = 500, eval_batches = 8, checkpoint_every = 0;
    std::string out = "out", resume;
    std::size_t sample_length = 300;
    double temperature = 0.8;
    float init_std = 0.02f;
    bool sparse = false;                   // row-sparse embedding gradients: Adam then moves only the touched rows
    std::int64_t diagnostics_every = 0;    // record inspect::Diagnostics every this many steps; 0: off
    std::set<std::string> given;   // the flags on the command line ("--lr", ...): on --resume the others come from the checkpoint
};

// Fills `s` from the command line. Returns -1 to go on, or the exit code to end with: 0 after
// --help, non-zero after a one-line message about a bad flag or value.
int parse_settings(int argc, const char* const* argv, Settings& s);
