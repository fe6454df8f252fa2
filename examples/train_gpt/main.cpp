// train_gpt: a small character-level GPT trained end to end on real English prose (the fortunes of
// Debian's `fortunes` package by default), with nanoGPT's CPU recipe, a validation loss, bit-exact
// --resume, samples from a KV-cached generate, and a report that shows what every attention head of
// every layer looks at, before and after training.
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include "../cli_checks.h"
#include "../memory_check.h"
#include "../output_folder.h"
#include "../progress.h"
#include "../resume.h"
#include "../stop_signal.h"
#include <xtensor/xview.hpp>

#include "data_parallel.h"
#include "model.h"

using namespace xgrad;

namespace {

struct Settings {   // defaults: nanoGPT's shakespeare_char recipe for CPU
    std::string corpus = "fortunes", out = "out-gpt", resume, prompt = "\n";
    std::int64_t steps = 2000, warmup = 100, eval_interval = 250, eval_iters = 20, diagnostics_every = 0;
    std::size_t batch = 12, block_size = 64, n_layer = 4, n_head = 4, n_embd = 128, max_new_tokens = 300, top_k = 200;
    double lr = 1e-3, min_lr = 1e-4, weight_decay = 0.1, beta2 = 0.99, clip = 1.0, temperature = 0.8;
    float dropout = 0.0f;
    std::uint64_t seed = 1337;
    int threads = 0;
    bool zero = false;
    std::set<std::string> given;   // the flags on the command line: on --resume the others come from the checkpoint
};

int parse_settings(int argc, char** argv, Settings& s)
{
    CLI::App app{"Train a character-level GPT (nanoGPT's model and CPU recipe) and show what its attention learns."};
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    using namespace cli_checks;
    const CLI::Validator positive = number_above_zero(false), non_negative = number_above_zero(true);
    const CLI::Validator count = whole_number<std::int64_t>(1), count_or_zero = whole_number<std::int64_t>(0);
    const CLI::Validator size = whole_number<std::size_t>(1);
    app.add_option("--corpus", s.corpus, "UTF-8 text file, or 'fortunes' for the fortunes package's prose");
    app.add_option("--steps", s.steps, "training steps")->check(count);
    app.add_option("--batch", s.batch, "sequences per batch (B)")->check(size);
    app.add_option("--block-size", s.block_size, "context length T")->check(size);
    app.add_option("--n-layer", s.n_layer, "transformer blocks")->check(size);
    app.add_option("--n-head", s.n_head, "attention heads per block")->check(size);
    app.add_option("--n-embd", s.n_embd, "channels C (a multiple of --n-head)")->check(size);
    app.add_option("--dropout", s.dropout, "dropout probability")->check(finite_number())->check(CLI::Range(0.0, 0.999));
    app.add_option("--lr", s.lr, "peak learning rate (AdamW)")->check(positive);
    app.add_option("--min-lr", s.min_lr, "the cosine decay's floor")->check(non_negative);
    app.add_option("--warmup", s.warmup, "linear warmup steps")->check(count_or_zero);
    app.add_option("--weight-decay", s.weight_decay, "AdamW's decay, on the 2-D weights only")->check(non_negative);
    app.add_option("--beta2", s.beta2, "AdamW's beta2")->check(finite_number())->check(CLI::Range(0.0, 0.999999));
    app.add_option("--clip", s.clip, "clip the gradient norm to this; 0: no clipping")->check(non_negative);
    app.add_option("--eval-interval", s.eval_interval, "steps between validation losses")->check(count);
    app.add_option("--eval-iters", s.eval_iters, "validation batches per evaluation")->check(count);
    app.add_option("--seed", s.seed, "seed for the weights, the split and the batches")->check(whole_number<std::uint64_t>(0));
    app.add_option("--threads", s.threads, "threads; 0: XGRAD_NUM_THREADS or all cores")->check(whole_number<int>(0, 1024));
    app.add_option("--out", s.out, "output folder (one run at a time: a run locks it)");
    app.add_option("--resume", s.resume, "continue from this checkpoint (same corpus and model): the flags left out are "
                                         "the checkpoint's, and a changed --seed or --batch is refused")
        ->check(CLI::ExistingFile);
    app.add_option("--prompt", s.prompt, "the start of the samples (characters of the corpus)");
    app.add_option("--diagnostics-every", s.diagnostics_every, "record gradient norms, update-to-data ratios and layer "
                                                               "histograms every this many steps into the report; 0: off")
        ->check(count_or_zero);
    app.add_option("--max-new-tokens", s.max_new_tokens, "characters per sample")->check(whole_number<std::size_t>(0, 1000000));
    app.add_option("--temperature", s.temperature, "sampling temperature")->check(positive);
    app.add_option("--top-k", s.top_k, "sample from the k most likely characters")->check(size);
    app.add_flag("--zero", s.zero, "under mpirun: shard AdamW's state over the ranks (ZeRO stage 1)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "train_gpt: %s (see --help)\n", e.what());
        return e.get_exit_code();
    }
    for (const CLI::Option* option : app.get_options()) {
        if (option->count() > 0) s.given.insert(option->get_name());
    }
    return -1;
}

// The prose of the fortunes package: its text files (not ascii-art) without the '%' lines that
// separate fortunes, and without the backspace overstriking some use for emphasis.
std::string fortunes_text()
{
    const std::filesystem::path folder = "/usr/share/games/fortunes";
    XGRAD_CHECK(std::filesystem::is_directory(folder), "corpus: ", folder.string(), " does not exist; install Debian's ",
                "'fortunes' package (scripts/run does) or pass --corpus FILE");
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        const auto& p = entry.path();
        if (entry.is_regular_file() && !p.has_extension() && p.filename() != "ascii-art") files.push_back(p);
    }
    std::sort(files.begin(), files.end());
    std::string out;
    for (const auto& file : files) {
        std::istringstream lines(text::read_text_file(file.string()));
        for (std::string line; std::getline(lines, line);) {
            if (line == "%") continue;
            std::string clean;
            for (char c : line) {
                if (c == '\b') {                          // "_\bx": the x alone; a character may be several bytes
                    while (!clean.empty() && (static_cast<unsigned char>(clean.back()) & 0xC0) == 0x80) clean.pop_back();
                    if (!clean.empty()) clean.pop_back();
                } else if (c == '\t' || static_cast<unsigned char>(c) >= 32) {
                    clean += c;
                }
            }
            out += clean + '\n';
        }
    }
    return out;
}

double evaluate(Gpt& model, const std::vector<text::Batch>& batches)
{
    NoGradGuard no_grad;
    model.eval();
    double total = 0;
    for (const auto& b : batches) total += nn::functional::cross_entropy(model.forward(b.x), b.y).item();
    model.train();
    return total / double(batches.size());
}

// The attention of every head of every layer over `text`: [layer][head] -> (T, T)
std::vector<std::vector<Array>> attention_maps(Gpt& model, const text::CharTokenizer& tokenizer, const std::string& text)
{
    NoGradGuard no_grad;
    model.eval();
    const IdArray idx = text::to_ids(tokenizer.encode(text), true);
    const std::size_t T = idx.shape()[1];
    Tensor x = model.wte->forward(idx) + model.wpe->forward(xt::arange<std::int64_t>(static_cast<std::int64_t>(T)));
    std::vector<std::vector<Array>> maps;
    for (std::size_t l = 0; l < model.h->size(); ++l) {
        const auto block = model.h->at<nn::TransformerBlock>(l);
        const Tensor w = block->attn->attention_weights(block->ln_1->forward(x));   // (1, nh, T, T)
        maps.emplace_back();
        for (std::size_t head = 0; head < w.shape()[1]; ++head) {
            maps.back().push_back(Array(xt::view(w.to_array(), 0, head, xt::all(), xt::all())));
        }
        x = block->forward(x);
    }
    model.train();
    return maps;
}

std::string escape_html(const std::string& s)
{
    std::string out;
    for (char c : s) {
        if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '&') out += "&amp;";
        else if (c == '"') out += "&quot;";
        else out += c;
    }
    return out;
}

// One head's (T, T) weights as an SVG heatmap, the characters along both axes.
std::string heatmap_svg(const Array& w, const std::vector<std::string>& labels)
{
    const std::size_t T = labels.size(), cell = 9, margin = 12;
    std::ostringstream svg;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << margin + T * cell << "' height='" << margin + T * cell
        << "' font-family='monospace' font-size='8'>";
    for (std::size_t i = 0; i < T; ++i) {
        svg << "<text x='" << margin + i * cell + 2 << "' y='9'>" << escape_html(labels[i]) << "</text>";
        svg << "<text x='2' y='" << margin + i * cell + 8 << "'>" << escape_html(labels[i]) << "</text>";
        for (std::size_t j = 0; j <= i; ++j) {   // lower-triangular: query i, key j <= i
            const int shade = 255 - static_cast<int>(std::lround(255.0 * std::clamp<double>(w(i, j), 0.0, 1.0)));
            svg << "<rect x='" << margin + j * cell << "' y='" << margin + i * cell << "' width='" << cell << "' height='"
                << cell << "' fill='rgb(" << shade << "," << shade << ",255)'/>";
        }
    }
    svg << "</svg>";
    return svg.str();
}

std::string loss_svg(const std::vector<std::pair<std::int64_t, double>>& train,
                     const std::vector<std::pair<std::int64_t, double>>& val, std::int64_t steps)
{
    const double width = 600, height = 240, top = 5.0;
    auto x = [&](std::int64_t s) { return 40 + width * double(s) / double(std::max<std::int64_t>(steps, 1)); };
    auto y = [&](double loss) { return 10 + height * (1.0 - std::clamp(loss, 0.0, top) / top); };
    std::ostringstream svg;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='660' height='280' font-family='sans-serif' font-size='11'>";
    for (double l = 0; l <= top; l += 1) {
        svg << "<line x1='40' x2='640' y1='" << y(l) << "' y2='" << y(l) << "' stroke='#ddd'/><text x='5' y='" << y(l) + 4
            << "'>" << l << "</text>";
    }
    for (const auto* series : {&train, &val}) {
        svg << "<polyline fill='none' stroke='" << (series == &train ? "#4a7bd0" : "#d05a4a") << "' stroke-width='1.5' points='";
        for (const auto& [s, l] : *series) svg << x(s) << "," << y(l) << " ";
        svg << "'/>";
    }
    svg << "<text x='460' y='20' fill='#4a7bd0'>train</text><text x='500' y='20' fill='#d05a4a'>validation</text></svg>";
    return svg.str();
}

// What a configuration holds at its peak, roughly, by what it scales with; refused before it is
// allocated, with the figure and the flag to lower (instead of a bare std::bad_alloc, or swapping).
void check_memory(const Settings& s, std::size_t vocab_size)
{
    const long double B = s.batch, T = s.block_size, C = s.n_embd, L = s.n_layer, V = vocab_size, f = sizeof(float);
    const long double weights = (V * C + T * C + L * 12 * C * C) * f * 5;   // weights, grads, Adam's moments, a copy
    const long double activations = B * T * (L * 24 * C + 4 * V) * f;       // what a step's backward keeps
    const long double evaluation = static_cast<long double>(s.eval_iters) * B * T * 16;
    const long double total = weights + activations + evaluation, available = available_memory();
    const bool most_weights = weights >= activations && weights >= evaluation;
    XGRAD_CHECK(available == 0 || total <= available, "these flags need about ", gib(total), " of memory, more than the ",
                gib(available), " available; most of it (", gib(std::max({weights, activations, evaluation})), ") is ",
                most_weights ? "the weights and their optimizer state: lower --n-embd or --n-layer"
                : activations >= evaluation ? "the activations of a step: lower --batch, --block-size, --n-embd or --n-layer"
                                            : "the validation batches: lower --eval-iters or --batch");
}

// ---- resuming ------------------------------------------------------------------------------------
// The training flags a checkpoint records (resume.h): on --resume one left out takes the checkpoint's
// value, one given with another value is applied and said, or refused where it would break the run.
std::vector<resume::RecordedFlag> recorded_flags(Settings& s)
{
    return {{"seed", "--seed", &s.seed, "it fixed the train/validation split and the batches"},
            {"batch", "--batch", &s.batch, "the batches of the steps to come follow from it", true},
            {"lr", "--lr", &s.lr, nullptr, true},
            {"min-lr", "--min-lr", &s.min_lr, nullptr},
            {"warmup", "--warmup", &s.warmup, nullptr},
            {"weight-decay", "--weight-decay", &s.weight_decay, nullptr},
            {"beta2", "--beta2", &s.beta2, nullptr},
            {"clip", "--clip", &s.clip, nullptr},
            {"dropout", "--dropout", &s.dropout, nullptr}};
}

// What no single flag's check sees: flags against each other (and the checkpoint's, on --resume).
void check_flags(const Settings& s)
{
    const std::string from = s.resume.empty() ? "" : " (with the flags of '" + s.resume + "')";
    XGRAD_CHECK(s.n_embd % s.n_head == 0, "--n-embd ", s.n_embd, " must be a multiple of --n-head ", s.n_head,
                ": each head takes n_embd / n_head channels");
    XGRAD_CHECK(s.min_lr <= s.lr, "--min-lr ", s.min_lr, " is above --lr ", s.lr, from,
                ": the cosine schedule decays from --lr down to --min-lr; give a --min-lr of at most --lr");
    XGRAD_CHECK(s.beta2 < 1.0, "--beta2 ", s.beta2, from, " must be below 1");
    XGRAD_CHECK(s.dropout < 1.0f, "--dropout ", s.dropout, from, " must be below 1");
    XGRAD_CHECK(!s.prompt.empty(), "--prompt is empty: the samples continue it; give at least one character of the corpus");
    try {
        text::decode_utf8(s.prompt);
    } catch (const Error& e) {
        fail("--prompt is not UTF-8 text: ", e.what());
    }
}

// n > block_size + 1, without the sum wrapping around for a block_size near SIZE_MAX
bool more_than_one_past(std::size_t n, std::size_t block_size) { return n > block_size && n - block_size > 1; }

int run(Settings s, DataParallel& dp)
{
    const auto start = std::chrono::steady_clock::now();
    cli_checks::apply_threads(s.threads, "train_gpt");
    // --resume: the checkpoint's flags first, since its seed fixes the split
    std::optional<io::Safetensors> peek;
    std::string resume_line;
    if (!s.resume.empty()) {
        peek = dp.read_checkpoint(s.resume);
        resume_line = resume::resolve(recorded_flags(s), s.given, peek->metadata, s.resume);
    }
    check_flags(s);
    manual_seed(s.seed);
    std::optional<OutputFolder> folder;   // rank 0's, the only writer: fail before training, not after
    if (dp.is_main()) folder.emplace(s.out, "train_gpt");

    // data: characters as tokens, the lines shuffled by the seed, a 90/10 split
    const std::string raw = s.corpus == "fortunes" ? fortunes_text() : text::read_text_file(s.corpus);
    const std::string corpus = text::shuffle_lines(raw, s.seed);
    const text::CharTokenizer tokenizer(corpus);
    const std::vector<std::int64_t> tokens = tokenizer.encode(corpus);
    const std::size_t split = tokens.size() * 9 / 10;
    XGRAD_CHECK(more_than_one_past(split, s.block_size) && more_than_one_past(tokens.size() - split, s.block_size), "corpus: '", s.corpus, "' has ",
                tokens.size(), " characters, too few for --block-size ", s.block_size,
                ": the train and validation splits (90% and 10%) each need more than block_size + 1");
    const auto& vocabulary = tokenizer.vocabulary();   // the default prompt, "\n", for a corpus without line breaks:
    if (!s.given.count("--prompt") && !std::binary_search(vocabulary.begin(), vocabulary.end(), U'\n')) {
        s.prompt = tokenizer.decode({tokens.front()});   // its first character
    }
    try {   // a prompt outside the corpus's characters fails now, not after training
        tokenizer.encode(s.prompt);
    } catch (const Error& e) {
        fail("--prompt: ", e.what(), " (the corpus's characters)");
    }
    const std::string shape = "vocab=" + std::to_string(tokenizer.vocab_size()) + " block_size=" + std::to_string(s.block_size) +
                              " n_layer=" + std::to_string(s.n_layer) + " n_head=" + std::to_string(s.n_head) +
                              " n_embd=" + std::to_string(s.n_embd);
    // a checkpoint of another model, corpus or step is refused before any work
    const std::int64_t first_step =
        peek ? resume::check_checkpoint(*peek, s.resume, {shape, resume::vocabulary_text(tokenizer), s.steps}) : 0;
    check_memory(s, tokenizer.vocab_size());
    const std::vector<std::int64_t> train(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(split));
    const std::vector<std::int64_t> val(tokens.begin() + static_cast<std::ptrdiff_t>(split), tokens.end());
    Generator val_rng(s.seed + 1);
    std::vector<text::Batch> val_batches;
    for (std::int64_t i = 0; i < s.eval_iters; ++i) val_batches.push_back(text::sample_batch(val, s.batch, s.block_size, val_rng));

    Gpt model({tokenizer.vocab_size(), s.block_size, s.n_layer, s.n_head, s.n_embd, s.dropout});
    // weight decay on the 2-D weights (matmuls and embeddings, the tied table once), not on biases and LayerNorms
    std::vector<Tensor> decay, no_decay;
    for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    dp.wrap(model);   // under mpirun: rank 0's weights to every rank, gradients averaged
    const auto optimizer = dp.adamw({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                                    optim::AdamWOptions().lr(s.lr).betas(0.9, s.beta2).weight_decay(s.weight_decay), s.zero);
    optim::Optimizer& adamw = *optimizer;
    const optim::WarmupCosine schedule(s.warmup, std::max<std::int64_t>(s.steps, s.warmup + 1), s.min_lr / s.lr);

    if (peek) {
        dp.load_checkpoint(s.resume, model.named_parameters(), adamw);
        std::printf("%s\n", resume_line.c_str());
    }

    std::printf("xgrad train_gpt: %s, %zu train / %zu validation characters, vocabulary of %zu\n", s.corpus.c_str(),
                train.size(), val.size(), tokenizer.vocab_size());
    std::cout << model;
    // the report's validation string: 32 characters, or the whole context when it is shorter
    const std::size_t probe_length = std::min<std::size_t>({32, s.block_size, val.size()});
    const std::string probe = tokenizer.decode(std::vector<std::int64_t>(val.begin(), val.begin() + static_cast<std::ptrdiff_t>(probe_length)));
    const auto maps_before = dp.is_main() ? attention_maps(model, tokenizer, probe) : decltype(attention_maps(model, tokenizer, probe)){};
    const double val_before = dp.is_main() ? evaluate(model, val_batches) : 0.0;
    std::printf("validation loss before training: %.4f\n", val_before);
    std::printf("training: %lld steps of (B, T) = (%zu, %zu), AdamW lr %g, %d threads\n", static_cast<long long>(s.steps),
                s.batch, s.block_size, s.lr, get_num_threads());
    if (dp.world_size > 1) {
        std::printf("data-parallel: %d ranks, a global batch of %zu sequences%s\n", dp.world_size, s.batch * std::size_t(dp.world_size),
                    s.zero ? ", AdamW's state sharded (ZeRO-1)" : "");
    }

    std::vector<std::pair<std::int64_t, double>> train_history, val_history{{first_step, val_before}};
    double recent = 0, last_val = val_before;
    std::int64_t recent_count = 0;
    std::unique_ptr<inspect::Diagnostics> diagnostics;   // off by default: then no hook is registered
    if (s.diagnostics_every > 0) diagnostics = std::make_unique<inspect::Diagnostics>(model, s.diagnostics_every);
    std::string graph_svg;                               // the first step's graph, its 60 nodes nearest the loss
    std::int64_t steps_done = s.steps;
    Progress progress(first_step, s.steps, s.batch * s.block_size);
    catch_stop_signals();   // Ctrl-C: end after this step, with its checkpoint and report
    for (std::int64_t step = first_step; step < s.steps; ++step) {
        schedule.apply(adamw, step);
        // the batch and the dropout masks drawn from the seed and the step alone: --resume is bit-exact
        Generator batch_rng(dp.batch_seed(s.seed) * 1000003 + static_cast<std::uint64_t>(step));   // seed + rank
        manual_seed(dp.batch_seed(s.seed) * 1000033 + static_cast<std::uint64_t>(step));
        const text::Batch batch = text::sample_batch(train, s.batch, s.block_size, batch_rng);
        adamw.zero_grad();
        if (diagnostics) diagnostics->begin_step(step);
        Tensor loss = nn::functional::cross_entropy(model.forward(batch.x), batch.y);
        const double value = loss.item();
        // a NaN or Inf loss poisons every weight at the next step: stop before it does
        XGRAD_CHECK(std::isfinite(value), "training diverged: the training loss is ", value, " at step ", step + 1, " (lower --lr",
                    s.clip > 0 ? "" : ", or set --clip", "); no checkpoint was written",
                    s.resume.empty() ? "" : " (the one resumed from is untouched)");
        std::optional<inspect::Graph> graph;
        if (step == first_step) graph.emplace(loss, inspect::GraphOptions{.names = model.named_parameters()});
        loss.backward();
        dp.synchronize();
        if (graph && dp.is_main()) {
            try {
                graph_svg = inspect::render_svg(graph->dot());
            } catch (const Error& e) {
                std::fprintf(stderr, "train_gpt: the graph is left out of the report: %s\n", e.what());
            }
        }
        if (s.clip > 0) optim::clip_grad_norm(model.parameters(), s.clip);
        if (diagnostics) diagnostics->after_backward();
        adamw.step();
        if (diagnostics) diagnostics->after_update();
        const double global_loss = dp.mean(value);   // the global batch's loss
        train_history.emplace_back(step, global_loss);
        recent += global_loss, ++recent_count;
        progress.update(step, global_loss, false);
        if (((step + 1) % s.eval_interval == 0 || step + 1 == s.steps) && dp.is_main()) {
            last_val = evaluate(model, val_batches);
            val_history.emplace_back(step + 1, last_val);
            char line[128];
            std::snprintf(line, sizeof line, "step %5lld  train %.4f  val %.4f  (%.1f s, %.0fk tok/s)", static_cast<long long>(step + 1),
                          recent / double(recent_count), last_val, progress.seconds(), progress.tokens_per_second(step) / 1e3);
            progress.line(line);
            recent = 0, recent_count = 0;
        }
        if (dp.any(stop_signal != 0) && step + 1 < s.steps) {   // the step is done on every rank
            steps_done = step + 1;
            break;
        }
    }
    dp.save_checkpoint(s.out + "/checkpoint.safetensors", model.named_parameters(), adamw, [&] {
        io::Metadata metadata;
        resume::record(recorded_flags(s), metadata);
        metadata["step"] = std::to_string(steps_done), metadata["model"] = shape;
        metadata["vocabulary"] = resume::vocabulary_text(tokenizer);
        return metadata;
    }());
    if (!dp.is_main()) return steps_done < s.steps ? 128 + (stop_signal != 0 ? stop_signal : SIGINT) : 0;   // rank 0 alone reports
    std::printf("final validation loss %.4f\n", last_val);

    Generator sample_rng(s.seed + 2);
    std::string samples;
    for (int i = 0; i < 2; ++i) {
        const auto out = model.generate(tokenizer.encode(s.prompt), s.max_new_tokens, static_cast<float>(s.temperature),
                                        s.top_k, sample_rng);
        samples += tokenizer.decode(out) + "\n----\n";
    }
    std::printf("\nsamples (temperature %.2f, top_k %zu):\n%s", s.temperature, s.top_k, samples.c_str());

    // the report: losses, and every head of every layer on one validation string, before and after
    const auto maps_after = attention_maps(model, tokenizer, probe);
    std::vector<std::string> labels;
    for (std::int64_t id : tokenizer.encode(probe)) {
        const std::string c = tokenizer.token(id);
        labels.push_back(c == "\n" ? "⏎" : c == " " ? "·" : c);
    }
    std::ostringstream html;
    html << "<!doctype html><html><head><meta charset='utf-8'><title>train_gpt report</title><style>body{font-family:sans-serif;"
            "margin:20px} .heads{display:flex;flex-wrap:wrap;gap:8px} figure{margin:0} figcaption{font-size:11px}</style></head><body>"
         << "<h1>train_gpt: what the attention learned</h1><p>" << escape_html(s.corpus) << "; " << shape << "; " << steps_done
         << " steps. Validation loss " << val_before << " before, " << last_val << " after.</p><h2>Losses</h2>"
         << loss_svg(train_history, val_history, s.steps)
         << "<h2>Attention on a validation string</h2><p>Each heatmap is one head: row i is query position i, "
            "column j the key it attends to (darker = more weight); the causal mask leaves the upper triangle empty.</p>";
    for (const auto* maps : {&maps_before, &maps_after}) {
        html << "<h3>" << (maps == &maps_before ? "Before training" : "After training") << "</h3>";
        for (std::size_t l = 0; l < maps->size(); ++l) {
            html << "<div class='heads'>";
            for (std::size_t head = 0; head < (*maps)[l].size(); ++head) {
                html << "<figure>" << heatmap_svg((*maps)[l][head], labels) << "<figcaption>layer " << l << ", head " << head
                     << "</figcaption></figure>";
            }
            html << "</div>";
        }
    }
    html << "<h2>Samples</h2><pre>" << escape_html(samples) << "</pre>";
    if (!graph_svg.empty()) {
        html << "<h2>The autograd graph of the first step, nearest the loss</h2><div style='overflow-x:auto'>"
             << graph_svg.substr(std::min(graph_svg.find("<svg"), graph_svg.size())) << "</div>";
    }
    if (diagnostics) {
        html << diagnostics->html();
        io::write_file_atomic(s.out + "/diagnostics_params.csv", diagnostics->params_csv(), "report");
        io::write_file_atomic(s.out + "/diagnostics_layers.csv", diagnostics->layers_csv(), "report");
    }
    html << "</body></html>\n";
    io::write_file_atomic(s.out + "/report.html", html.str(), "report");
    std::ostringstream csv;
    csv << "step,train_loss\n";
    for (const auto& [step, l] : train_history) csv << step << "," << l << "\n";
    io::write_file_atomic(s.out + "/losses.csv", csv.str(), "report");
    if (const int stopped_by = stop_signal; stopped_by != 0 && steps_done < s.steps) {
        std::fflush(stdout);
        std::fprintf(stderr, "\ntrain_gpt: stopped by %s after step %lld of %lld: wrote checkpoint.safetensors, losses.csv and "
                     "report.html of that step to %s/ (--resume %s/checkpoint.safetensors continues)\n",
                     stopped_by == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(steps_done),
                     static_cast<long long>(s.steps), s.out.c_str(), s.out.c_str());
        return 128 + stopped_by;
    }
    std::printf("\nwrote %s/: checkpoint.safetensors, losses.csv, report.html (%.1f s in all)\n", s.out.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Settings s;
    if (int exit_code = parse_settings(argc, argv, s); exit_code >= 0) return exit_code;
    try {
        DataParallel dp;
        try {
            return run(s, dp);
        } catch (const std::bad_alloc& e) {   // under mpirun, dp.fail ends every rank
            return dp.fail("train_gpt", std::string("out of memory: ") + e.what() +
                                            "; lower --batch, --block-size, --n-embd or --n-layer");
        } catch (const std::exception& e) {
            return dp.fail("train_gpt", e.what());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\ntrain_gpt: %s\n", e.what());
        return 1;
    }
}
