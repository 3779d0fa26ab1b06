// evaluate: score denoising methods on noisy/clean pairs (SI-SDR, SNR, segmental SNR, STOI,
// ESTOI, PESQ, real-time factor), with each output's delay found and compensated before scoring.
//
//   evaluate --data pairs/                         any layout `train --data` reads
//   evaluate --data pairs/ --methods noisy,gate --json scores.json --csv scores.csv
//   evaluate --clean c.wav --noisy n.wav           one pair
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "denoise/atomic_file.h"
#include "denoise/cli_range.h"
#include "denoise/dataset.h"
#include "denoise/denoiser.h"
#include "denoise/error.h"
#include "denoise/evaluation.h"
#include "denoise/json_text.h"
#include "denoise/main_guard.h"
#include "denoise/path_guard.h"
#include "denoise/progress.h"
#include "report.h"

namespace fs = std::filesystem;
using denoise::Error;

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Methods as rows, mean metrics as columns; delays are shown, never hidden.
void print_table(const denoise::Evaluator& ev) {
  const auto summary = ev.summary();
  // PESQ columns for the modes that scored files (the same files for every method).
  const bool pesq_wb = !summary.empty() && summary[0].pesq_wb_files > 0;
  const bool pesq_nb = !summary.empty() && summary[0].pesq_nb_files > 0;
  std::printf(
      "| method | SI-SDR (dB) | SNR (dB) | segSNR (dB) | STOI | ESTOI |%s%s RTF | delay "
      "(samples) |\n",
      pesq_wb ? " PESQ-WB |" : "", pesq_nb ? " PESQ-NB |" : "");
  std::printf("|---|---:|---:|---:|---:|---:|%s%s---:|---:|\n", pesq_wb ? "---:|" : "",
              pesq_nb ? "---:|" : "");
  bool any_delay = false;
  for (const auto& m : summary) {
    std::string delay = std::to_string(m.min_delay_samples);
    if (m.min_delay_samples != m.max_delay_samples)
      delay += ".." + std::to_string(m.max_delay_samples);
    if (m.files_delayed > 0) {
      any_delay = true;
      delay += " (" + std::to_string(m.files_delayed) + "/" + std::to_string(m.files) + " files)";
    }
    std::string pesq;
    if (pesq_wb) pesq += " " + fixed(m.pesq_wb, 3) + " |";
    if (pesq_nb) pesq += " " + fixed(m.pesq_nb, 3) + " |";
    std::printf("| %s | %s | %s | %s | %s | %s |%s %s | %s |\n", m.method.c_str(),
                fixed(m.mean.si_sdr_db, 2).c_str(), fixed(m.mean.snr_db, 2).c_str(),
                fixed(m.mean.seg_snr_db, 2).c_str(), fixed(m.mean.stoi, 3).c_str(),
                fixed(m.mean.estoi, 3).c_str(), pesq.c_str(), fixed(m.mean.rtf, 4).c_str(),
                delay.c_str());
  }
  std::printf(
      "\nFiles scored: %zu (%.1f s of audio), skipped: %zu. Means over the same files for "
      "every method; RTF: processing seconds per second of audio.\n",
      ev.files().size(), ev.scored_seconds(), ev.skipped().size());
  const auto identity = std::count_if(ev.files().begin(), ev.files().end(),
                                      [](const denoise::FileScores& f) { return f.identity; });
  if (identity > 0)
    std::printf(
        "Note: %ld of the files are clean -> clean identity pairs; there the noisy input "
        "scores at the metrics' 200 dB ceiling.\n",
        static_cast<long>(identity));
  size_t pesq_skipped = 0;
  for (const auto& f : ev.files()) pesq_skipped += f.pesq_skipped_reason.empty() ? 0 : 1;
  if (pesq_wb || pesq_nb || pesq_skipped > 0) {
    std::string note = "PESQ: MOS-LQO, -0.5..4.5 (4.64 wide-band for identical audio); scored";
    if (pesq_wb) note += " " + std::to_string(summary[0].pesq_wb_files) + " file(s) wide-band";
    if (pesq_nb) note += " " + std::to_string(summary[0].pesq_nb_files) + " file(s) narrow-band";
    if (!pesq_wb && !pesq_nb) note += " no file";
    if (pesq_skipped > 0)
      note += "; " + std::to_string(pesq_skipped) +
              " file(s) without PESQ (the reasons are in the JSON's pesq_skipped)";
    std::printf("%s.\n", note.c_str());
  }
  if (any_delay)
    std::printf(
        "Note: non-zero delays are outputs lagging (positive) or leading the clean "
        "reference; they were compensated before scoring.\n");
}

}  // namespace

static int run(int argc, char** argv) {
  CLI::App app{
      "evaluate: score denoising methods on noisy/clean pairs.\n"
      "Metrics per method (means over the files): SI-SDR, SNR, segmental SNR, STOI, ESTOI, PESQ\n"
      "and the real-time factor. Each output's constant delay against the clean reference is\n"
      "found by cross-correlation, compensated before scoring and reported."};
  app.set_version_flag("--version", std::string("denoise ") + DENOISE_VERSION);

  std::string data_dir, clean_path, noisy_path, json_path, csv_path;
  denoise::EvaluationOptions opt;
  std::vector<std::string> methods;
  bool quiet = false;

  auto* o_data = app.add_option("--data", data_dir,
                                "Paired data in any layout `train --data` reads: Kaggle CSV, "
                                "noisy/ + clean/ folders with matching names, VoiceBank+DEMAND")
                     ->check(CLI::ExistingDirectory);
  auto* o_clean = app.add_option("--clean", clean_path, "Clean reference of one pair");
  auto* o_noisy = app.add_option("--noisy", noisy_path, "Noisy recording of one pair");
  o_clean->needs(o_noisy);
  o_noisy->needs(o_clean);
  o_data->excludes(o_clean)->excludes(o_noisy);

  const bool have_models = denoise::model_methods_available();
  std::vector<std::string> known = {"noisy"};
  for (const auto& n : denoise::classical_method_names()) known.push_back(n);
  if (have_models) known.push_back("unet");
  known.push_back("oracle");
  std::string methods_help =
      "Comma-separated methods; noisy is the unprocessed input, oracle the ideal ratio mask "
      "computed from the clean reference (a ceiling for masking methods, not a denoiser). Known: ";
  for (const auto& n : known) methods_help += n + " ";
  methods_help += "[default: noisy,subtract,gate,gate-nonstationary";
  methods_help += have_models ? ", and unet when a model is given or found]" : "]";
  app.add_option("-m,--methods", methods, methods_help)
      ->delimiter(',')
      ->check(CLI::IsMember(known));
  if (have_models) {
    app.add_option("--model", opt.method_options.model_path,
                   "Trained model for unet [default: $DENOISE_MODEL, or the model installed "
                   "with the program]")
        ->check(CLI::ExistingFile);
    app.add_option("--threads", opt.method_options.threads,
                   "CPU threads for the model (0: all cores)")
        ->capture_default_str()
        ->check(CLI::Range(0, 1024));
  }
  app.add_option("--max-delay-ms", opt.max_delay_ms, "Delay search range either side of zero, ms")
      ->capture_default_str()
      ->check(denoise::finite_range(0, 1000));
  std::string pesq_word = "auto";
  app.add_option("--pesq", pesq_word,
                 "PESQ: auto (wide-band, P.862.2, for 16 kHz and above, resampled to 16 kHz; "
                 "narrow-band, P.862 + P.862.1, below, resampled to 8 kHz), nb, wb or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "nb", "wb", "off"}));
  app.add_option("--json", json_path, "Write per-file and mean scores, delays and skipped files");
  app.add_option("--csv", csv_path, "Write one row per (file, method)");
  std::string report_dir;
  int report_examples = 3;
  app.add_option("--report", report_dir,
                 "Write an HTML report into this folder: tables, bar charts, spectrograms and "
                 "audio of the first --report-examples pairs");
  app.add_option("--report-examples", report_examples, "Pairs shown with spectrograms and audio")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  app.add_flag("-q,--quiet", quiet,
               "No table, notes or progress bar; skipped files and errors only");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  // Ctrl-C, kill or a closed terminal: no temporary file is left behind.
  denoise::remove_temporary_files_on_signals();
  auto usage = [](const std::string& message) {
    std::fprintf(stderr, "evaluate: error: %s\n", message.c_str());
    return 2;
  };
  opt.pesq = denoise::parse_pesq_choice(pesq_word);
  if (data_dir.empty() && clean_path.empty())
    return usage("give --data DIR, or --clean FILE and --noisy FILE (see --help)");
  for (const std::string* out : {&json_path, &csv_path}) {
    if (out->empty()) continue;
    const fs::path parent = fs::path(*out).parent_path();
    std::error_code ec;
    if (!parent.empty() && !fs::is_directory(parent, ec))
      return usage(*out + ": folder " + parent.string() + " does not exist");
    if (fs::is_directory(*out, ec)) return usage(*out + ": is a folder, expected a file name");
  }
  if (!json_path.empty() && json_path == csv_path)
    return usage("--json and --csv name the same file");

  // Methods: as asked; by default the classical ones, and unet when a model is given or found.
  const std::string model_path = opt.method_options.model_path.empty()
                                     ? (have_models ? denoise::default_model_path() : "")
                                     : opt.method_options.model_path;
  if (!methods.empty()) {
    opt.methods = methods;
  } else if (have_models && !model_path.empty()) {
    opt.methods.push_back("unet");
  }
  const bool wants_unet =
      std::find(opt.methods.begin(), opt.methods.end(), "unet") != opt.methods.end();
  if (!opt.method_options.model_path.empty() && !wants_unet)
    return usage("--model applies to the unet method, which --methods leaves out");
  if (wants_unet) {
    if (model_path.empty())
      return usage(
          "no model for unet: give --model FILE (train one with `train`) or set "
          "DENOISE_MODEL");
    // Load the plugin and the model once, before any file: a bad model is one error.
    try {
      opt.method_options.model_path = model_path;
      denoise::prepare_model_method(opt.method_options);
    } catch (const Error& e) {
      std::fprintf(stderr, "evaluate: error: %s\n", e.what());
      return 1;
    }
  }

  std::vector<denoise::FilePair> pairs;
  std::unique_ptr<denoise::Evaluator> ev;
  try {
    ev = std::make_unique<denoise::Evaluator>(opt);
    if (!data_dir.empty()) {
      auto listing = denoise::find_pairs(data_dir);
      pairs = std::move(listing.pairs);
      for (const auto& u : listing.unpaired) {
        std::fprintf(stderr, "evaluate: skipped: %s: %s\n", u.path.c_str(), u.reason.c_str());
        ev->skip(u.path, "", u.reason);
      }
      if (!quiet)
        for (const auto& n : listing.notes) std::fprintf(stderr, "evaluate: note: %s\n", n.c_str());
    } else {
      pairs.push_back({noisy_path, clean_path, noisy_path == clean_path});
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "evaluate: error: %s\n", e.what());
    return 1;
  }

  // No output may be an input or another output, in any spelling (links included).
  try {
    denoise::PathGuard guard;
    for (const auto& p : pairs) {
      guard.add_input(p.noisy, "noisy input");
      guard.add_input(p.clean, "clean input");
    }
    guard.add_input(opt.method_options.model_path, "--model");
    guard.add_output(json_path, "--json");
    guard.add_output(csv_path, "--csv");
    if (!report_dir.empty()) {
      guard.add_output((fs::path(report_dir) / "index.html").string(), "--report page");
      guard.add_output((fs::path(report_dir) / "metrics.png").string(), "--report chart");
      for (size_t i = 1; i <= pairs.size() && i <= static_cast<size_t>(report_examples); ++i)
        guard.add_output((fs::path(report_dir) / ("pair" + std::to_string(i) + ".png")).string(),
                         "--report figure");
      guard.add_output_folder((fs::path(report_dir) / "audio").string(), "--report audio");
    }
  } catch (const Error& e) {
    return usage(e.what());
  }
  std::unique_ptr<denoise::Report> report;
  if (!report_dir.empty()) {
    try {
      report = std::make_unique<denoise::Report>(report_dir, report_examples);
    } catch (const Error& e) {
      return usage(e.what());
    }
  }

  denoise::ProgressBar bar("evaluate", static_cast<int64_t>(pairs.size()), !quiet);
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto& p = pairs[i];
    try {
      denoise::PairSignals signals;
      const bool keep = report && report->wants_more_examples();
      auto scores = ev->evaluate_pair(p.noisy, p.clean, keep ? &signals : nullptr);
      if (!scores.pesq_skipped_reason.empty())
        bar.print_line("evaluate: skipped PESQ: " + scores.pesq_skipped_reason);
      if (keep) report->add_example(scores, signals, opt.methods);
      ev->add(std::move(scores));
    } catch (const std::exception& e) {
      // One line per file; the reason names the file.
      bar.print_line(std::string("evaluate: skipped: ") + e.what());
      ev->skip(p.noisy, p.clean, e.what());
    }
    bar.update(static_cast<int64_t>(i + 1));
  }
  bar.finish();

  try {
    if (!json_path.empty())
      denoise::write_file_atomically(json_path, denoise::dump_json(ev->report(), 2) + "\n");
    if (!csv_path.empty()) denoise::write_file_atomically(csv_path, ev->csv());
    if (report && !ev->files().empty()) {
      report->finish(*ev);
      if (!quiet) std::fprintf(stderr, "evaluate: report -> %s/index.html\n", report_dir.c_str());
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "evaluate: error: %s\n", e.what());
    return 1;
  }
  if (ev->files().empty()) {
    std::fprintf(stderr, "evaluate: error: no file could be scored (%zu skipped)\n",
                 ev->skipped().size());
    return 1;
  }
  if (!quiet) print_table(*ev);
  return 0;
}

int main(int argc, char** argv) { return denoise::run_main("evaluate", run, argc, argv); }
