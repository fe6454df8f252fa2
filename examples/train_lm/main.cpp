// train_lm: train the seed's model (token + position embeddings -> next-token head) on real text,
// and show what its embeddings learn. `train_lm --help` lists the flags.
//
//   text file -> shuffled lines -> characters -> ids -> random (B, T) windows, targets shifted by one
//   -> TinyLM -> cross_entropy -> Adam -> every N steps: validation loss
//   -> neighbours, structure score and position similarity, before vs after
//   -> out/: checkpoint.safetensors, vectors.tsv, metadata.tsv, losses.csv, report.html, graph.svg (the
//      autograd graph of the first step), with --diagnostics-every diagnostics_*.csv, written together
//
// A run locks its output folder (out/.xgrad.lock). Ctrl-C (SIGINT) or SIGTERM ends it after the
// step in progress, with the checkpoint and the report of that step; a second Ctrl-C quits at once.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <optional>
#include <sstream>

#include "../cli_checks.h"
#include "../memory_check.h"
#include "../output_folder.h"
#include "../progress.h"
#include "../resume.h"
#include "../stop_signal.h"
#include "analysis.h"
#include "data_parallel.h"
#include "model.h"
#include "report.h"
#include "settings.h"
#include "xgrad.h"

using namespace xgrad;

namespace {

// A character as a label: in the console, the report, and metadata.tsv, whose columns a raw tab or
// line break would break. So every control character is escaped (and the backslash that starts an escape).
std::string printable(char32_t c)
{
    switch (c) {
    case '\n': return "\\n";
    case '\t': return "\\t";
    case '\r': return "\\r";
    case '\\': return "\\\\";
    case ' ': return "␠";
    default: break;
    }
    if (c < 0x20 || (c >= 0x7F && c < 0xA0)) {
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "\\u%04X", static_cast<unsigned>(c));
        return buffer;
    }
    return text::encode_utf8(c);
}

// Files committed together: each is written and synced before any is renamed into place, so that a
// full disk leaves the previous set whole, never a new checkpoint beside an old report or a torn file.
void write_together(const std::vector<std::pair<std::string, std::string>>& files)
{
    std::vector<std::unique_ptr<io::AtomicFile>> open;
    for (const auto& [path, content] : files) {
        open.push_back(std::make_unique<io::AtomicFile>(path, "save"));
        open.back()->write(content.data(), content.size());
    }
    for (auto& file : open) file->sync();
    for (auto& file : open) file->commit();
}

// ---- memory ---------------------------------------------------------------------------------------
// Roughly what a configuration holds at its peak, by what it scales with; checked before anything of
// that size is allocated, so that a typo (--batch 100000000) is refused with the figure and the flag
// to lower, instead of ending in std::bad_alloc (or in swapping).
void check_memory(const Settings& s, std::size_t vocab_size, std::size_t corpus_characters)
{
    const long double B = s.batch, T = s.block_size, C = s.n_embd, H = s.hidden, V = vocab_size, f = sizeof(float);
    struct Part {
        long double bytes;
        std::string what, lower;
    };
    const std::vector<Part> parts = {
        // weights, gradients, Adam's two moments, the snapshots and the checkpoint's bytes
        {(2 * V * C + V + T * C) * f * 6, "the embeddings and the head", "--n-embd"},
        {(2 * C * H + H + C) * f * 6, "the MLP block", "--hidden"},
        // per step: (B, T, V) logits, probabilities and their gradients; (B, T, C) and (B, T, H) activations
        {B * T * V * f * 4 + B * T * 16, "the logits of a step", "--batch (or --block-size)"},
        {B * T * C * f * 8, "the activations of a step", "--batch or --n-embd"},
        {B * T * H * f * 6, "the MLP activations of a step", "--batch or --hidden"},
        {static_cast<long double>(s.eval_batches) * B * T * 16, "the validation batches", "--eval-batches or --batch"},
        {static_cast<long double>(corpus_characters) * 8 * 3, "the corpus as ids", "the corpus"},
        {T * T * f * 4, "the position similarity maps", "--block-size"},
    };
    long double total = 0;
    const Part* largest = &parts[0];
    for (const auto& part : parts) {
        total += part.bytes;
        if (part.bytes > largest->bytes) largest = &part;
    }
    const long double available = available_memory();
    XGRAD_CHECK(available == 0 || total <= available, "these flags need about ", gib(total), " of memory, more than the ",
          gib(available), " available; most of it (", gib(largest->bytes), ") is ", largest->what, ": lower ",
          largest->lower);
}

// ---- resuming -------------------------------------------------------------------------------------
// The flags a checkpoint records (resume.h): on --resume a flag left out takes the checkpoint's value;
// one given with another value is applied and said, or, where a change would break the run, refused.
// The rest (--steps, --eval-interval, --out, ...) are this run's.
std::vector<resume::RecordedFlag> recorded_flags(Settings& s)
{
    return {
        {"seed", "--seed", &s.seed, "it fixed the train/validation split and the batches"},
        {"batch", "--batch", &s.batch, "the batches of the steps to come follow from it", true},
        {"init_std", "--init-std", &s.init_std, "it only set the initial weights, which the checkpoint replaces", true},
        {"lr", "--lr", &s.lr, nullptr, true},
        {"weight_decay", "--weight-decay", &s.weight_decay, nullptr},
        {"clip", "--clip", &s.clip, nullptr},
        {"warmup", "--warmup", &s.warmup, nullptr},
        {"min_lr_ratio", "--min-lr-ratio", &s.min_lr_ratio, nullptr},
        {"sparse", "--sparse", &s.sparse, nullptr},
    };
}

bool all_finite(const TinyLM& model)
{
    for (const auto& p : model.parameters()) {
        for (float v : p.to_array()) {
            if (!std::isfinite(v)) return false;
        }
    }
    return true;
}


// --compare-diagnostics: another run's embedding figures, and what it was (read from its checkpoint)
struct ComparedRun {
    std::vector<inspect::EmbeddingStat> embeddings;
    std::string label;
};

ComparedRun read_compared_run(const Settings& s)
{
    if (s.compare_diagnostics.empty()) return {};
    XGRAD_CHECK(s.diagnostics_every > 0, "--compare-diagnostics draws another run beside this one's diagnostics: give "
                                         "--diagnostics-every too");
    const std::string csv = s.compare_diagnostics + "/diagnostics_embeddings.csv";
    std::ifstream in(csv, std::ios::binary);
    XGRAD_CHECK(in.good(), "--compare-diagnostics: cannot read '", csv, "': ", std::strerror(errno),
                " (run train_lm --diagnostics-every N --out ", s.compare_diagnostics, " first)");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ComparedRun run{inspect::Diagnostics::read_embeddings_csv(text, csv), s.compare_diagnostics};
    try {   // its mode, from its checkpoint; without one the folder names it
        const io::Metadata m = io::load_safetensors(s.compare_diagnostics + "/checkpoint.safetensors").metadata;
        if (auto it = m.find("sparse"); it != m.end()) run.label = (it->second == "1" ? "--sparse (" : "dense (") + s.compare_diagnostics + ")";
    } catch (const Error&) {
    }
    return run;
}

// The graph of a step as SVG, or, without Graphviz, nothing and a note saying so (the run goes on).
std::string render_graph(const inspect::Graph& graph)
{
    try {
        return inspect::render_svg(graph.dot());
    } catch (const Error& e) {
        std::fprintf(stderr, "train_lm: graph.svg is left out: %s\n", e.what());
        return "";
    }
}

// The batch of step `step`: drawn from its own generator, so a resumed run draws the same batches.
// Under mpirun `seed` is --seed + rank: each rank draws its own.
text::Batch batch_for_step(const std::vector<std::int64_t>& tokens, const std::vector<std::size_t>& starts,
                           const Settings& s, std::uint64_t seed, std::int64_t step)
{
    Generator rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(step));
    return text::sample_batch(tokens, s.batch, s.block_size, rng, starts);
}

double evaluate(const TinyLM& model, const std::vector<text::Batch>& batches)
{
    NoGradGuard no_grad;
    double total = 0.0;
    for (const auto& b : batches) total += nn::functional::cross_entropy(model.forward(b.x), b.y).item();
    return total / double(batches.size());
}

double unigram_entropy(const std::vector<std::int64_t>& tokens, std::size_t vocab_size)
{
    std::vector<double> count(vocab_size, 0.0);
    for (auto t : tokens) count[static_cast<std::size_t>(t)] += 1.0;
    double h = 0.0;
    for (double c : count) {
        if (c > 0) h -= c / double(tokens.size()) * std::log(c / double(tokens.size()));
    }
    return h;
}

std::string sample(const TinyLM& model, const text::CharTokenizer& tokenizer, const Settings& s)
{
    NoGradGuard no_grad;
    Generator rng(s.seed + 2);
    const auto& vocab = tokenizer.vocabulary();
    const auto newline = std::lower_bound(vocab.begin(), vocab.end(), U'\n');
    std::vector<std::int64_t> ids = {newline != vocab.end() && *newline == U'\n' ? newline - vocab.begin() : 0};
    for (std::size_t i = 0; i < s.sample_length; ++i) {
        const std::size_t start = ids.size() > s.block_size ? ids.size() - s.block_size : 0;
        std::vector<std::int64_t> context(ids.begin() + static_cast<std::ptrdiff_t>(start), ids.end());
        const Array logits = model.forward(text::to_ids(context, true)).to_array();       // (1, T, V)
        const std::size_t V = tokenizer.vocab_size(), last = context.size() - 1;
        std::vector<double> p(V);
        double top = -1e30, total = 0.0;
        for (std::size_t v = 0; v < V; ++v) top = std::max(top, double(logits(0, last, v)) / s.temperature);
        for (std::size_t v = 0; v < V; ++v) total += p[v] = std::exp(double(logits(0, last, v)) / s.temperature - top);
        double r = rng.uniform() * total;
        std::size_t next = 0;
        while (next + 1 < V && (r -= p[next]) > 0) ++next;
        ids.push_back(static_cast<std::int64_t>(next));
    }
    return tokenizer.decode(ids);
}

struct Snapshot {
    Array tok, pos_cos;                  // token vectors; cosines of the centred position vectors
    analysis::Structure structure;
    std::vector<double> by_distance, by_distance_early;
};

const std::vector<std::size_t> distances = {1, 2, 4, 8, 16, 32};

Snapshot look_at(const TinyLM& model, const text::CharTokenizer& tokenizer, const char* when)
{
    Snapshot snap{model.tok_emb->weight.to_array(), analysis::cosine_matrix(analysis::centered(model.pos_emb->weight.to_array())),
                  {}, {}, {}};
    snap.structure = analysis::structure_score(snap.tok, tokenizer.vocabulary());
    snap.by_distance = analysis::similarity_by_distance(snap.pos_cos, distances, snap.pos_cos.shape()[0]);
    snap.by_distance_early = analysis::similarity_by_distance(snap.pos_cos, {1, 2, 4, 8}, 16);
    std::printf("\nembeddings %s training\n  nearest neighbours by cosine:\n", when);
    for (char32_t c : std::u32string(U"aeiousntrAE'")) {
        const auto& vocab = tokenizer.vocabulary();
        auto it = std::find(vocab.begin(), vocab.end(), c);
        if (it == vocab.end()) continue;
        std::printf("    %-2s ->", printable(c).c_str());
        for (const auto& n : analysis::nearest(snap.tok, static_cast<std::size_t>(it - vocab.begin()), 4)) {
            std::printf("  %-2s %.2f", printable(vocab[n.id]).c_str(), n.cosine);
        }
        std::printf("\n");
    }
    if (snap.structure.counted == 0) {
        std::printf("  structure: not measured (no vowel, consonant or capital with another token beside it)\n");
    } else {
        std::printf("  structure: %.0f%% of vowels, consonants and capitals have a nearest neighbour of their own class "
                    "(chance %.0f%%)\n", 100 * snap.structure.score, 100 * snap.structure.chance);
    }
    std::printf("  position similarity by distance (mean cosine of centred position vectors d apart):\n    all positions:");
    for (std::size_t i = 0; i < distances.size(); ++i) std::printf("  d=%zu: %+.2f", distances[i], snap.by_distance[i]);
    std::printf("\n    positions 0-15:");
    for (std::size_t i = 0; i < 4; ++i) std::printf("  d=%zu: %+.2f", distances[i], snap.by_distance_early[i]);
    std::printf("\n");
    return snap;
}

std::string history_csv(const std::vector<std::pair<std::int64_t, double>>& history)
{
    std::ostringstream out;
    char buffer[48];
    for (const auto& [step, loss] : history) {
        std::snprintf(buffer, sizeof buffer, "%lld:%.9g;", static_cast<long long>(step), loss);
        out << buffer;
    }
    return out.str();
}

// "step:loss;step:loss;...", as history_csv writes it; anything else is an error naming the file.
std::vector<std::pair<std::int64_t, double>> parse_history(const std::string& text, const std::string& file, const char* key)
{
    std::vector<std::pair<std::int64_t, double>> out;
    std::istringstream in(text);
    for (std::string item; std::getline(in, item, ';');) {
        const auto colon = item.find(':');
        const std::string loss_text = colon == std::string::npos ? "" : item.substr(colon + 1);
        char* end = nullptr;
        const double loss = std::strtod(loss_text.c_str(), &end);
        XGRAD_CHECK(colon != std::string::npos && !loss_text.empty() && *end == '\0', "resume: '", file, "' has an entry '",
              item, "' in ", key, ", expected step:loss");
        out.emplace_back(resume::parse_step(item.substr(0, colon), file, key), loss);
    }
    return out;
}

// n > block_size + 1, without the sum wrapping around for a block_size near SIZE_MAX
bool more_than_one_past(std::size_t n, std::size_t block_size) { return n > block_size && n - block_size > 1; }

int run(Settings s, DataParallel& dp)
{
    const auto start = std::chrono::steady_clock::now();
    cli_checks::apply_threads(s.threads, "train_lm");

    // the output folder first: fail before training, not after
    std::optional<OutputFolder> folder;   // rank 0's: the only writer
    if (dp.is_main()) folder.emplace(s.out, "train_lm");

    // --resume: the checkpoint's flags first, since its seed fixes the split
    std::optional<io::Safetensors> peek;
    std::string resume_line;
    if (!s.resume.empty()) {
        peek = dp.read_checkpoint(s.resume);
        resume_line = resume::resolve(recorded_flags(s), s.given, peek->metadata, s.resume);
        XGRAD_CHECK(s.min_lr_ratio <= 1.0, "resume: '", s.resume, "' records --min-lr-ratio = ", s.min_lr_ratio,
                    ", expected at most 1");
    }
    manual_seed(s.seed);

    // data: a shuffled word list (or any UTF-8 text), characters as tokens, a 90/10 split
    const std::string raw = text::normalize_line_ends(text::read_text_file(s.corpus));   // CRLF: a line break
    const std::string corpus = text::shuffle_lines(raw, s.seed);
    text::CharTokenizer tokenizer(corpus);
    const std::vector<std::int64_t> tokens = tokenizer.encode(corpus);
    const std::size_t split = tokens.size() * 9 / 10;
    XGRAD_CHECK(more_than_one_past(split, s.block_size) && more_than_one_past(tokens.size() - split, s.block_size), "corpus: '", s.corpus, "' has ",
          tokens.size(), tokens.size() == 1 ? " character" : " characters", ", too few for block_size ", s.block_size,
          ": the train and validation splits (90% and 10%) each need more than block_size + 1");
    // a checkpoint of another model, corpus or step is refused before any work
    const std::string shape = "vocab=" + std::to_string(tokenizer.vocab_size()) + " n_embd=" + std::to_string(s.n_embd) +
                              " block_size=" + std::to_string(s.block_size) + " hidden=" + std::to_string(s.hidden);
    const std::int64_t first_step =
        peek ? resume::check_checkpoint(*peek, s.resume, {shape, resume::vocabulary_text(tokenizer), s.steps}) : 0;
    check_memory(s, tokenizer.vocab_size(), tokens.size());
    const std::vector<std::int64_t> train(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(split));
    const std::vector<std::int64_t> val(tokens.begin() + static_cast<std::ptrdiff_t>(split), tokens.end());
    const double entropy = unigram_entropy(train, tokenizer.vocab_size());
    // Windows start at the beginning of a line, as makemore feeds one name at a time: position t
    // then means "t characters into a word", which gives the position table something to learn.
    const auto& vocab = tokenizer.vocabulary();
    const bool has_lines = std::binary_search(vocab.begin(), vocab.end(), U'\n');
    const std::int64_t newline = has_lines ? tokenizer.encode("\n")[0] : -1;
    // (a text without line breaks is cut at any offset)
    const auto train_starts = has_lines ? text::offsets_after(train, newline, s.block_size) : std::vector<std::size_t>{};
    const auto val_starts = has_lines ? text::offsets_after(val, newline, s.block_size) : std::vector<std::size_t>{};
    std::vector<text::Batch> val_batches;
    Generator val_rng(s.seed + 1);
    for (std::int64_t i = 0; i < s.eval_batches; ++i) {
        val_batches.push_back(text::sample_batch(val, s.batch, s.block_size, val_rng, val_starts));
    }

    TinyLM model(tokenizer.vocab_size(), s.n_embd, s.block_size, s.hidden, s.init_std, s.sparse);
    // weight decay (when asked for) applies to the Linear weights only, not embeddings or biases
    std::vector<Tensor> decay, no_decay;
    for (const auto& [name, p] : model.named_parameters()) {
        const bool linear_weight = name.ends_with(".weight") && (name.starts_with("fc") || name.starts_with("lm_head"));
        (linear_weight ? decay : no_decay).push_back(p);
    }
    dp.wrap(model);   // under mpirun: rank 0's weights to every rank, gradients averaged
    optim::AdamW adam({{decay, {}}, {no_decay, optim::GroupOptions().weight_decay(0.0)}},
                      optim::AdamOptions().lr(s.lr).weight_decay(s.weight_decay));
    std::unique_ptr<optim::Schedule> schedule;
    if (s.warmup > 0 || s.min_lr_ratio < 1.0) {
        schedule = std::make_unique<optim::WarmupCosine>(s.warmup, std::max<std::int64_t>(s.steps, s.warmup + 1), s.min_lr_ratio);
    }

    std::vector<std::pair<std::int64_t, double>> train_history, val_history;
    if (peek) {
        auto meta = [&](const char* key) { return peek->metadata.count(key) ? peek->metadata.at(key) : std::string(); };
        dp.load_checkpoint(s.resume, model.named_parameters(), adam);
        // The checkpoint holds the lr its last step used; from here on it is this run's --lr (the
        // checkpoint's unless given), which the schedule, if any, scales step by step.
        for (auto& group : adam.param_groups()) group.lr = group.initial_lr;
        train_history = parse_history(meta("train_loss"), s.resume, "train_loss");
        val_history = parse_history(meta("val_loss"), s.resume, "val_loss");
        std::printf("%s\n", resume_line.c_str());
    }

    std::printf("xgrad train_lm: %s, %zu train / %zu validation characters, vocabulary of %zu\n", s.corpus.c_str(),
                train.size(), val.size(), tokenizer.vocab_size());
    std::cout << model;
    std::printf("unigram entropy of the training characters: %.3f nats (a model that knows only their frequencies)\n", entropy);
    const Snapshot before = look_at(model, tokenizer, first_step == 0 ? "before" : "at the resumed step, before more");
    if (dp.is_main()) std::printf("validation loss before training: %.4f\n", evaluate(model, val_batches));

    const std::string checkpoint_path = s.out + "/checkpoint.safetensors";
    std::int64_t saved_step = -1;   // the step of the last checkpoint this run wrote
    auto checkpoint_metadata = [&](std::int64_t steps_done) {
        io::Metadata metadata = {{"step", std::to_string(steps_done)}, {"model", shape},
                                 {"vocabulary", resume::vocabulary_text(tokenizer)}, {"train_loss", history_csv(train_history)},
                                 {"val_loss", history_csv(val_history)}};
        resume::record(recorded_flags(s), metadata);
        return metadata;
    };
    // Weights that hold a NaN or an Inf are not a checkpoint (--resume would train nothing from them).
    auto check_finite = [&](std::int64_t steps_done) {
        XGRAD_CHECK(all_finite(model), "training diverged: the weights hold NaN or Inf after step ", steps_done,
              " (lower --lr", s.clip > 0 ? "" : ", or set --clip", "); ",
              saved_step >= 0 ? "the last good checkpoint, of step " + std::to_string(saved_step) + ", is kept in '" +
                                    checkpoint_path + "'"
                              : std::string("no checkpoint was written"));
    };
    auto save = [&](std::int64_t steps_done) {
        check_finite(steps_done);
        dp.save_checkpoint(checkpoint_path, model.named_parameters(), adam, checkpoint_metadata(steps_done));
        saved_step = steps_done;
    };

    std::printf("\ntraining: %lld steps of (B, T) = (%zu, %zu), Adam lr %g, %d threads\n", static_cast<long long>(s.steps),
                s.batch, s.block_size, s.lr, get_num_threads());
    Progress progress(first_step, s.steps, s.batch * s.block_size * static_cast<std::size_t>(dp.world_size));   // the global batch
    std::unique_ptr<inspect::Diagnostics> diagnostics;   // off by default: then no hook is registered
    const ComparedRun compared = read_compared_run(s);
    if (s.diagnostics_every > 0) diagnostics = std::make_unique<inspect::Diagnostics>(model, s.diagnostics_every);
    std::string graph_svg;                               // the graph of this run's first step
    double recent = 0.0, last_val = std::nan("");
    std::int64_t recent_count = 0;
    std::vector<std::pair<std::int64_t, double>> final_off_interval;
    std::int64_t steps_done = s.steps;
    catch_stop_signals();
    for (std::int64_t step = first_step; step < s.steps; ++step) {
        if (schedule) schedule->apply(adam, step);
        const text::Batch batch = batch_for_step(train, train_starts, s, dp.batch_seed(s.seed), step);
        adam.zero_grad();
        if (diagnostics) diagnostics->begin_step(step);
        Tensor loss = nn::functional::cross_entropy(model.forward(batch.x), batch.y);
        const double value = dp.mean(loss.item());   // the global batch's loss: every rank stops together on a NaN
        // A NaN or Inf loss poisons every weight at the next step: stop here, before it does.
        XGRAD_CHECK(std::isfinite(value), "training diverged: the training loss is ", value, " at step ", step + 1,
              " (lower --lr", s.clip > 0 ? "" : ", or set --clip", "); ",
              saved_step >= 0 ? "the last good checkpoint, of step " + std::to_string(saved_step) + ", is kept in '" +
                                    checkpoint_path + "'"
                              : std::string("no checkpoint was written"));
        std::optional<inspect::Graph> graph;   // hooks that record the gradient norms, this step only
        if (step == first_step) graph.emplace(loss, inspect::GraphOptions{.names = model.named_parameters()});
        loss.backward();
        dp.synchronize();
        if (graph && dp.is_main()) graph_svg = render_graph(*graph);
        if (s.clip > 0) optim::clip_grad_norm(model.parameters(), s.clip);
        if (diagnostics) diagnostics->after_backward();
        adam.step();
        if (diagnostics) diagnostics->after_update();

        train_history.emplace_back(step, value);
        recent += value, ++recent_count;
        progress.update(step, value, false);
        const bool last = step + 1 == s.steps, on_interval = (step + 1) % s.eval_interval == 0;
        if ((on_interval || last) && dp.is_main()) {
            const double val_loss = evaluate(model, val_batches);
            // Only evaluations on the interval go into the history that checkpoints carry, so that a
            // run resumed from a checkpoint writes the same history as one that never stopped.
            (on_interval ? val_history : final_off_interval).emplace_back(step, val_loss);
            last_val = val_loss;
            char line[160];
            std::snprintf(line, sizeof line, "step %6lld  train %.4f  val %.4f  (unigram entropy %.3f)  %.0fk tok/s",
                          static_cast<long long>(step + 1), recent / double(recent_count), val_loss, entropy,
                          progress.tokens_per_second(step) / 1e3);
            progress.line(line);
            recent = 0.0, recent_count = 0;
        }
        if (dp.any(stop_signal != 0) && !last) {   // the step is done on every rank: end with its checkpoint and report
            steps_done = step + 1;
            break;
        }
        if (s.checkpoint_every > 0 && (step + 1) % s.checkpoint_every == 0 && !last) save(step + 1);
    }
    check_finite(steps_done);
    if (!dp.is_main()) return 0;   // rank 0 alone writes the report and the final checkpoint

    const Snapshot after = look_at(model, tokenizer, "after");
    if (after.structure.counted > 0) {
        std::printf("\nstructure score: %.0f%% before, %.0f%% after (chance %.0f%%)\n", 100 * before.structure.score,
                    100 * after.structure.score, 100 * after.structure.chance);
    }
    if (!std::isnan(last_val)) std::printf("final validation loss %.4f nats vs unigram entropy %.3f\n", last_val, entropy);
    std::printf("\nsample (temperature %.2f):\n%s\n", s.temperature, sample(model, tokenizer, s).c_str());

    ReportData report;
    char title[256];
    std::snprintf(title, sizeof title, "%s; %lld steps, batch %zu, block_size %zu, n_embd %zu, hidden %zu, lr %g, seed %llu",
                  s.corpus.c_str(), static_cast<long long>(s.steps), s.batch, s.block_size, s.n_embd, s.hidden, s.lr,
                  static_cast<unsigned long long>(s.seed));
    report.title = title;
    for (char32_t c : tokenizer.vocabulary()) {
        report.labels.push_back(printable(c));
        report.classes.push_back(analysis::char_class(c));
    }
    report.tok_before = before.tok, report.tok_after = after.tok;
    report.pos_cos_before = before.pos_cos, report.pos_cos_after = after.pos_cos;
    report.train_loss = train_history, report.val_loss = val_history;
    report.val_loss.insert(report.val_loss.end(), final_off_interval.begin(), final_off_interval.end());
    report.unigram_entropy = entropy;
    report.structure_before = before.structure, report.structure_after = after.structure;
    report.graph_svg = graph_svg;
    if (diagnostics) {
        report.diagnostics_html = diagnostics->html(compared.embeddings, s.sparse ? "--sparse (this run)" : "dense (this run)",
                                                    compared.label);
    }

    // the checkpoint and the report files, all together or none
    io::NamedTensors tensors;
    io::Metadata metadata = checkpoint_metadata(steps_done);
    const auto named = model.named_parameters();
    for (const auto& [name, p] : named) tensors.emplace_back(name, p);
    adam.save_state(tensors, metadata);
    std::vector<std::pair<std::string, std::string>> files = {
        {checkpoint_path, io::safetensors_bytes(tensors, metadata, checkpoint_path)}};
    for (auto& [name, content] : report_files(report)) files.emplace_back(s.out + "/" + name, std::move(content));
    if (diagnostics) {
        files.emplace_back(s.out + "/diagnostics_params.csv", diagnostics->params_csv());
        files.emplace_back(s.out + "/diagnostics_layers.csv", diagnostics->layers_csv());
        files.emplace_back(s.out + "/diagnostics_embeddings.csv", diagnostics->embeddings_csv());
    }
    write_together(files);
    const int stopped_by = stop_signal;
    if (stopped_by != 0 && steps_done < s.steps) {
        std::fflush(stdout);
        std::fprintf(stderr, "\ntrain_lm: stopped by %s after step %lld of %lld: wrote checkpoint.safetensors, vectors.tsv, "
                     "metadata.tsv, losses.csv and report.html (and graph.svg) of that step to %s/ (--resume %s continues)\n",
                     stopped_by == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(steps_done),
                     static_cast<long long>(s.steps), s.out.c_str(), checkpoint_path.c_str());
        return 128 + stopped_by;
    }
    std::printf("\nwrote %s/: checkpoint.safetensors, vectors.tsv, metadata.tsv, losses.csv, report.html%s%s (%.1f s in all)\n",
                s.out.c_str(), graph_svg.empty() ? "" : ", graph.svg", diagnostics ? ", diagnostics_*.csv" : "", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Settings s;
    if (int exit_code = parse_settings(argc, argv, s); exit_code >= 0) return exit_code;   // --help, or a bad flag
    std::optional<DataParallel> dp;   // under mpirun: a failure on any rank ends every rank (dp->fail)
    try {
        dp.emplace();
        return run(s, *dp);
    } catch (const std::bad_alloc& e) {
        const std::string message = std::string("out of memory: ") + e.what() + "; lower --batch, --block-size, --n-embd or --hidden";
        if (dp) return dp->fail("train_lm", message);
        std::fprintf(stderr, "\ntrain_lm: %s\n", message.c_str());
        return 1;
    } catch (const std::exception& e) {
        if (dp) return dp->fail("train_lm", e.what());   // flushes stdout first, so the message comes last in a log
        std::fprintf(stderr, "\ntrain_lm: %s\n", e.what());
        return 1;
    }
}
