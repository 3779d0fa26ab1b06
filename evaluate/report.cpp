#include "report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "denoise/audio_io.h"
#include "denoise/atomic_file.h"
#include "denoise/error.h"
#include "denoise/figures.h"
#include "denoise/plot.h"

namespace fs = std::filesystem;

namespace denoise {
namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// File names from method names ("gate-nonstationary" is already safe; keep it that way).
std::string safe(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-') ? c : '_';
  return out;
}

struct Metric {
  const char* name;
  const char* unit;
  double MethodScores::*field;
  int decimals;
};
const Metric kMetrics[] = {{"SI-SDR", "dB", &MethodScores::si_sdr_db, 2},
                           {"SNR", "dB", &MethodScores::snr_db, 2},
                           {"Segmental SNR", "dB", &MethodScores::seg_snr_db, 2},
                           {"STOI", "", &MethodScores::stoi, 3},
                           {"ESTOI", "", &MethodScores::estoi, 3},
                           {"Real-time factor", "s per s of audio", &MethodScores::rtf, 4}};

}  // namespace

Report::Report(const std::string& dir, int examples) : dir_(dir), max_examples_(examples) {
  std::error_code ec;
  if (fs::exists(dir_, ec) && !fs::is_directory(dir_, ec))
    throw Error(dir_ + ": exists and is not a folder (--report takes a folder)");
  fs::create_directories(fs::path(dir_) / "audio", ec);
  if (ec) throw Error(dir_ + ": cannot create the report folder (" + ec.message() + ")");
}

void Report::add_example(const FileScores& scores, const PairSignals& signals,
                         const std::vector<std::string>& methods) {
  Example ex;
  ex.noisy = scores.noisy;
  ex.clean = scores.clean;
  const std::string id = "pair" + std::to_string(examples_.size() + 1);
  const int rate = signals.sample_rate_hz;
  auto write = [&](const std::string& name, const std::vector<float>& x) {
    const std::string rel = "audio/" + id + "_" + safe(name) + ".wav";
    Audio a;
    a.sample_rate_hz = rate;
    a.channels = {x};
    write_audio((fs::path(dir_) / rel).string(), a);
    ex.audio.push_back(rel);
  };
  write("clean", signals.clean);
  for (size_t m = 0; m < methods.size() && m < signals.outputs.size(); ++m)
    write(methods[m], signals.outputs[m]);

  // One colour scale for the whole figure: dB re the noisy input's peak (or the clean's).
  std::vector<figures::DisplaySpectrogram> specs;
  specs.push_back(figures::display_spectrogram(signals.clean, rate));
  float ref = specs.back().peak();
  for (const auto& out : signals.outputs) {
    specs.push_back(figures::display_spectrogram(out, rate));
    ref = std::max(ref, specs.back().peak());
  }
  plot::Figure f;
  f.title = fs::path(scores.noisy).filename().string() + " (dB re the loudest bin of the figure)";
  f.columns = 2;
  f.width = 1200;
  f.panel_height = 260;
  f.panels.push_back(figures::db_panel(specs[0], ref, "clean"));
  for (size_t m = 0; m < methods.size() && m + 1 < specs.size(); ++m)
    f.panels.push_back(figures::db_panel(specs[m + 1], ref, methods[m]));
  ex.figure = id + ".png";
  plot::write_png(f, (fs::path(dir_) / ex.figure).string());
  examples_.push_back(std::move(ex));
}

void Report::finish(const Evaluator& ev) {
  const auto summary = ev.summary();
  const auto& methods = ev.options().methods;

  plot::Figure bars;
  bars.title = "Mean over " + std::to_string(ev.files().size()) + " files";
  bars.columns = 3;
  bars.width = 1200;
  bars.panel_height = 280;
  for (const auto& metric : kMetrics) {
    plot::BarPanel p;
    p.title = metric.name;
    p.y_label = *metric.unit ? std::string(metric.name) + " (" + metric.unit + ")" : metric.name;
    for (const auto& m : summary) {
      p.categories.push_back(m.method);
      p.values.push_back(m.mean.*metric.field);
    }
    bars.panels.push_back(p);
  }
  for (const bool wide : {true, false}) {
    if (summary.empty() || (wide ? summary[0].pesq_wb_files : summary[0].pesq_nb_files) == 0)
      continue;
    plot::BarPanel p;
    p.title = wide ? "PESQ-WB" : "PESQ-NB";
    p.y_label = "MOS-LQO";
    for (const auto& m : summary) {
      p.categories.push_back(m.method);
      p.values.push_back(wide ? m.pesq_wb : m.pesq_nb);
    }
    bars.panels.push_back(p);
  }
  plot::write_png(bars, (fs::path(dir_) / "metrics.png").string());

  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<title>Denoising evaluation</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;max-width:1250px}\n"
    << "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:3px 8px}"
    << "td.n{text-align:right}th{background:#eee}\nimg{max-width:100%}\n"
    << "audio{height:2em}\n</style></head><body>\n"
    << "<h1>Denoising evaluation</h1>\n<p>" << ev.files().size() << " files scored ("
    << fixed(ev.scored_seconds(), 1) << " s of audio), " << ev.skipped().size()
    << " skipped. Means are over the same files for every method. Each output's constant delay "
       "against the clean reference was compensated before scoring (delays in samples).</p>\n";
  h << "<h2>Means</h2>\n<table><tr><th>method</th>";
  for (const auto& metric : kMetrics)
    h << "<th>" << metric.name << (*metric.unit ? std::string(" (") + metric.unit + ")" : "")
      << "</th>";
  const bool pesq_wb = !summary.empty() && summary[0].pesq_wb_files > 0;
  const bool pesq_nb = !summary.empty() && summary[0].pesq_nb_files > 0;
  if (pesq_wb) h << "<th>PESQ-WB (" << summary[0].pesq_wb_files << " files)</th>";
  if (pesq_nb) h << "<th>PESQ-NB (" << summary[0].pesq_nb_files << " files)</th>";
  h << "<th>delay (samples)</th></tr>\n";
  for (const auto& m : summary) {
    h << "<tr><td>" << html_escape(m.method) << "</td>";
    for (const auto& metric : kMetrics)
      h << "<td class=n>" << fixed(m.mean.*metric.field, metric.decimals) << "</td>";
    if (pesq_wb) h << "<td class=n>" << fixed(m.pesq_wb, 3) << "</td>";
    if (pesq_nb) h << "<td class=n>" << fixed(m.pesq_nb, 3) << "</td>";
    h << "<td class=n>" << m.min_delay_samples
      << (m.min_delay_samples != m.max_delay_samples ? ".." + std::to_string(m.max_delay_samples)
                                                     : "")
      << "</td></tr>\n";
  }
  h << "</table>\n";
  if (pesq_wb || pesq_nb)
    h << "<p>PESQ: MOS-LQO of ITU-T P.862.2 (wide-band, at 16 kHz) or P.862 with P.862.1 "
         "(narrow-band, at 8 kHz), -0.5 to 4.5 (4.64 wide-band for identical audio).</p>\n";
  h << "<img src=\"metrics.png\" alt=\"bar charts of the mean metrics per method\">\n";

  if (!examples_.empty()) {
    h << "<h2>Examples</h2>\n<p>Spectrograms and the audio as scored (mono, delay-compensated). "
         "Listen with headphones.</p>\n";
    for (const auto& ex : examples_) {
      h << "<h3>" << html_escape(fs::path(ex.noisy).filename().string())
        << "</h3>\n<p>noisy: " << html_escape(ex.noisy) << "<br>clean: " << html_escape(ex.clean)
        << "</p>\n<table>";
      for (size_t i = 0; i < ex.audio.size(); ++i) {
        const std::string label = i == 0 ? "clean" : methods[i - 1];
        h << "<tr><td>" << html_escape(label) << "</td><td><audio controls preload=\"none\" src=\""
          << html_escape(ex.audio[i]) << "\"></audio></td><td><a href=\""
          << html_escape(ex.audio[i]) << "\">" << html_escape(ex.audio[i]) << "</a></td></tr>\n";
      }
      h << "</table>\n<img src=\"" << html_escape(ex.figure) << "\" alt=\"spectrograms\">\n";
    }
  }

  h << "<h2>Per file</h2>\n<table><tr><th>noisy file</th><th>method</th>";
  for (const auto& metric : kMetrics) h << "<th>" << metric.name << "</th>";
  const bool any_pesq = ev.options().pesq != PesqChoice::off;
  if (any_pesq) h << "<th>PESQ</th>";
  h << "<th>delay</th></tr>\n";
  for (const auto& f : ev.files()) {
    for (size_t m = 0; m < methods.size() && m < f.methods.size(); ++m) {
      h << "<tr><td>" << html_escape(fs::path(f.noisy).filename().string()) << "</td><td>"
        << html_escape(methods[m]) << "</td>";
      for (const auto& metric : kMetrics)
        h << "<td class=n>" << fixed(f.methods[m].*metric.field, metric.decimals) << "</td>";
      if (any_pesq)
        h << "<td class=n>"
          << (f.pesq_mode.empty() ? std::string("n/a")
                                  : fixed(f.methods[m].pesq, 3) + " (" + f.pesq_mode + ")")
          << "</td>";
      h << "<td class=n>" << f.methods[m].delay_samples << "</td></tr>\n";
    }
  }
  h << "</table>\n";
  if (!ev.skipped().empty()) {
    h << "<h2>Skipped</h2>\n<ul>\n";
    for (const auto& s : ev.skipped()) h << "<li>" << html_escape(s.reason) << "</li>\n";
    h << "</ul>\n";
  }
  bool pesq_heading = false;
  for (const auto& f : ev.files()) {
    if (f.pesq_skipped_reason.empty()) continue;
    if (!pesq_heading) h << "<h2>Files without PESQ</h2>\n<ul>\n";
    pesq_heading = true;
    h << "<li>" << html_escape(f.pesq_skipped_reason) << "</li>\n";
  }
  if (pesq_heading) h << "</ul>\n";
  h << "</body></html>\n";
  write_file_atomically((fs::path(dir_) / "index.html").string(), h.str());
}

}  // namespace denoise
