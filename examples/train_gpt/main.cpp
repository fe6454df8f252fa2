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
#include <sstream>

#include <CLI/CLI.hpp>
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
};

int parse_settings(int argc, char** argv, Settings& s)
{
    CLI::App app{"Train a character-level GPT (nanoGPT's model and CPU recipe) and show what its attention learns."};
    app.option_defaults()->always_capture_default()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--corpus", s.corpus, "UTF-8 text file, or 'fortunes' for the fortunes package's prose");
    app.add_option("--steps", s.steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", s.batch, "sequences per batch (B)")->check(CLI::PositiveNumber);
    app.add_option("--block-size", s.block_size, "context length T")->check(CLI::PositiveNumber);
    app.add_option("--n-layer", s.n_layer, "transformer blocks")->check(CLI::PositiveNumber);
    app.add_option("--n-head", s.n_head, "attention heads per block")->check(CLI::PositiveNumber);
    app.add_option("--n-embd", s.n_embd, "channels C (a multiple of --n-head)")->check(CLI::PositiveNumber);
    app.add_option("--dropout", s.dropout, "dropout probability")->check(CLI::Range(0.0, 0.999));
    app.add_option("--lr", s.lr, "peak learning rate (AdamW)")->check(CLI::PositiveNumber);
    app.add_option("--min-lr", s.min_lr, "the cosine decay's floor")->check(CLI::NonNegativeNumber);
    app.add_option("--warmup", s.warmup, "linear warmup steps")->check(CLI::NonNegativeNumber);
    app.add_option("--weight-decay", s.weight_decay, "AdamW's decay, on the 2-D weights only")->check(CLI::NonNegativeNumber);
    app.add_option("--beta2", s.beta2, "AdamW's beta2")->check(CLI::Range(0.0, 0.999999));
    app.add_option("--clip", s.clip, "clip the gradient norm to this; 0: no clipping")->check(CLI::NonNegativeNumber);
    app.add_option("--eval-interval", s.eval_interval, "steps between validation losses")->check(CLI::PositiveNumber);
    app.add_option("--eval-iters", s.eval_iters, "validation batches per evaluation")->check(CLI::PositiveNumber);
    app.add_option("--seed", s.seed, "seed for the weights, the split and the batches");
    app.add_option("--threads", s.threads, "threads; 0: XGRAD_NUM_THREADS or all cores")->check(CLI::Range(0, 1024));
    app.add_option("--out", s.out, "output folder");
    app.add_option("--resume", s.resume, "continue from this checkpoint (same flags and corpus)")->check(CLI::ExistingFile);
    app.add_option("--prompt", s.prompt, "the start of the samples");
    app.add_option("--diagnostics-every", s.diagnostics_every, "record gradient norms, update-to-data ratios and layer "
                                                               "histograms every this many steps into the report; 0: off")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--max-new-tokens", s.max_new_tokens, "characters per sample");
    app.add_option("--temperature", s.temperature, "sampling temperature")->check(CLI::PositiveNumber);
    app.add_option("--top-k", s.top_k, "sample from the k most likely characters")->check(CLI::PositiveNumber);
    app.add_flag("--zero", s.zero, "under mpirun: shard AdamW's state over the ranks (ZeRO stage 1)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "train_gpt: %s (see --help)\n", e.what());
        return e.get_exit_code();
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
            maps.back().push_back(Array(xt::view(w.data(), 0, head, xt::all(), xt::all())));
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

int run(const Settings& s, DataParallel& dp)
{
    const auto start = std::chrono::steady_clock::now();
    if (s.threads > 0) set_num_threads(s.threads);
    manual_seed(s.seed);
    XGRAD_CHECK(s.n_embd % s.n_head == 0, "--n-embd ", s.n_embd, " must be a multiple of --n-head ", s.n_head);
    std::error_code error;
    std::filesystem::create_directories(s.out, error);
    XGRAD_CHECK(!error, "cannot create the output folder '", s.out, "': ", error.message());

    // data: characters as tokens, the lines shuffled by the seed, a 90/10 split
    const std::string raw = s.corpus == "fortunes" ? fortunes_text() : text::read_text_file(s.corpus);
    const std::string corpus = text::shuffle_lines(raw, s.seed);
    const text::CharTokenizer tokenizer(corpus);
    const std::vector<std::int64_t> tokens = tokenizer.encode(corpus);
    const std::size_t split = tokens.size() * 9 / 10;
    XGRAD_CHECK(split > s.block_size + 1 && tokens.size() - split > s.block_size + 1, "corpus: '", s.corpus, "' has ",
                tokens.size(), " characters, too few for --block-size ", s.block_size);
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

    const std::string shape = "vocab=" + std::to_string(tokenizer.vocab_size()) + " block_size=" + std::to_string(s.block_size) +
                              " n_layer=" + std::to_string(s.n_layer) + " n_head=" + std::to_string(s.n_head) +
                              " n_embd=" + std::to_string(s.n_embd);
    std::int64_t first_step = 0;
    if (!s.resume.empty()) {
        const io::Safetensors peek = dp.read_checkpoint(s.resume);
        const auto model_it = peek.metadata.find("model"), step_it = peek.metadata.find("step");
        XGRAD_CHECK(model_it != peek.metadata.end() && model_it->second == shape && step_it != peek.metadata.end(),
                    "resume: '", s.resume, "' is not a checkpoint of this model (", shape, ")");
        dp.load_checkpoint(s.resume, model.named_parameters(), adamw);
        first_step = std::stoll(step_it->second);
        XGRAD_CHECK(first_step <= s.steps, "resume: the checkpoint is at step ", first_step, ", past --steps ", s.steps);
    }

    std::printf("xgrad train_gpt: %s, %zu train / %zu validation characters, vocabulary of %zu\n", s.corpus.c_str(),
                train.size(), val.size(), tokenizer.vocab_size());
    std::cout << model;
    const std::string probe = tokenizer.decode(std::vector<std::int64_t>(val.begin(), val.begin() + std::min<std::ptrdiff_t>(32, static_cast<std::ptrdiff_t>(val.size()))));
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
    for (std::int64_t step = first_step; step < s.steps; ++step) {
        schedule.apply(adamw, step);
        // the batch and the dropout masks drawn from the seed and the step alone: --resume is bit-exact
        Generator batch_rng(dp.batch_seed(s.seed) * 1000003 + static_cast<std::uint64_t>(step));   // seed + rank
        manual_seed(dp.batch_seed(s.seed) * 1000033 + static_cast<std::uint64_t>(step));
        const text::Batch batch = text::sample_batch(train, s.batch, s.block_size, batch_rng);
        adamw.zero_grad();
        if (diagnostics) diagnostics->begin_step(step);
        Tensor loss = nn::functional::cross_entropy(model.forward(batch.x), batch.y);
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
        const double global_loss = dp.mean(loss.item());   // the global batch's loss
        train_history.emplace_back(step, global_loss);
        recent += global_loss, ++recent_count;
        if (((step + 1) % s.eval_interval == 0 || step + 1 == s.steps) && dp.is_main()) {
            last_val = evaluate(model, val_batches);
            val_history.emplace_back(step + 1, last_val);
            std::printf("step %5lld  train %.4f  val %.4f  (%.1f s)\n", static_cast<long long>(step + 1),
                        recent / double(recent_count), last_val,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
            std::fflush(stdout);
            recent = 0, recent_count = 0;
        }
    }
    dp.save_checkpoint(s.out + "/checkpoint.safetensors", model.named_parameters(), adamw,
                       {{"step", std::to_string(s.steps)}, {"model", shape}, {"seed", std::to_string(s.seed)}});
    if (!dp.is_main()) return 0;   // rank 0 alone samples and writes the report
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
         << "<h1>train_gpt: what the attention learned</h1><p>" << escape_html(s.corpus) << "; " << shape << "; " << s.steps
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
        } catch (const std::exception& e) {
            return dp.fail("train_gpt", e.what());   // under mpirun: ends every rank
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "\ntrain_gpt: %s\n", e.what());
        return 1;
    }
}
