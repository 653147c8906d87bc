#pragma once
// The ranks of one run must be given the same options and data. Started
// otherwise (mpirun's multiple-program form, a script that writes each
// rank's command, node-local copies of a file that differ) they would meet
// in collectives with different sizes, where MPI_Allgatherv fails or
// crashes, or write files that do not belong together. Before the first such
// collective the ranks compare a hash of each setting (one all-reduce) and,
// only when one differs, gather its values to name it.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "problem.hpp"
#include "summary_json.hpp"

namespace unmix_nmf {

struct Setting {
  std::string name;   // as the message names it: "-k", "the shape of the data"
  std::string value;  // as the message shows it
};

std::string setting_text(double x) { return std::isfinite(x) ? json_number(x) : x > 0 ? "inf" : "-inf"; }
std::string setting_text(const std::string& s) { return s.empty() ? "not given" : s; }
std::string flag_text(bool given) { return given ? "given" : "not given"; }

// Every option as parsed, but --threads: it may differ from rank to rank
// (the result does not depend on it).
std::vector<Setting> option_settings(const Args& a) {
  const auto pair = [](auto x, auto y) { return setting_text(double(x)) + "," + setting_text(double(y)); };
  return {
      {"the input file", setting_text(a.input)},
      {"--generate", a.generate ? shape_text(a.gen_rows, a.gen_cols) : flag_text(false)},
      {"--density", setting_text(a.density)},
      {"--rank", setting_text(double(a.gen_rank))},
      {"--noise", setting_text(a.noise)},
      {"-k", setting_text(double(a.k))},
      {"--solver", setting_text(a.solver_given ? a.solver : "")},
      {"--init", setting_text(a.init)},
      {"--loss", a.loss},
      {"--max-iter", setting_text(double(a.max_iter))},
      {"--tol", setting_text(a.tol)},
      {"--time-limit", setting_text(a.time_limit)},
      {"--seed", std::to_string(a.seed)},
      {"--l1-W", setting_text(a.l1_W)},
      {"--l1-H", setting_text(a.l1_H)},
      {"--l2-W", setting_text(a.l2_W)},
      {"--l2-H", setting_text(a.l2_H)},
      {"--sum-to-one", flag_text(a.sum_to_one)},
      {"--extrapolate", flag_text(a.extrapolate)},
      {"--bounds-W", pair(a.lower_W, a.upper_W)},
      {"--bounds-H", pair(a.lower_H, a.upper_H)},
      {"--minvol-H", setting_text(a.minvol_H)},
      {"--smooth-W", setting_text(a.smooth_W)},
      {"--graph-W", pair(a.graph_ny, a.graph_nx) + ":" + std::to_string(a.graph_connectivity)},
      {"--fixed-H", setting_text(a.fixed_H)},
      {"--grid", pair(a.grid_r, a.grid_c)},
      {"--dtype", setting_text(a.dtype)},
      {"-o", a.prefix},
      {"--quiet", flag_text(a.quiet)},
      {"--print-every", setting_text(double(a.print_every))},
      {"--checkpoint-every", setting_text(double(a.checkpoint_every))},
      {"--checkpoint-seconds", setting_text(a.checkpoint_seconds)},
      {"--resume", flag_text(a.resume)},
      {"--watchdog", setting_text(a.watchdog)},
      {"--help", flag_text(a.help)},
      {"--version", flag_text(a.version)},
  };
}

// The data as each rank found it: every rank reads its own file.
std::vector<Setting> data_settings(const Problem& p) {
  const char* layout = p.source == Source::generate ? "generated"
                       : p.source == Source::mtx    ? "sparse"
                       : p.transposed               ? "C order"
                                                    : "Fortran order";
  return {{"the shape of the data", shape_text(p.n_samples, p.n_features)},
          {"the dtype of the data", p.dtype},
          {"the layout of the data", layout}};
}

#ifdef UNMIX_HAS_MPI
std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h;
}

// Every rank's `s`, on rank 0.
std::vector<std::string> gather_strings(const std::string& s, const Team& team) {
  const int n = int(s.size());
  std::vector<int> sizes(std::size_t(team.size())), offsets(sizes.size());
  MPI_Gather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  long long total = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    offsets[r] = int(total);
    total += sizes[r];
  }
  std::string all(std::size_t(team.root() ? total : 0), ' ');
  MPI_Gatherv(s.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, 0,
              MPI_COMM_WORLD);
  std::vector<std::string> out;
  if (team.root())
    for (std::size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(std::size_t(offsets[r]), std::size_t(sizes[r])));
  return out;
}

// "2 on ranks 0-2 and 5, 3 on rank 3": each value with the ranks that hold it.
std::string values_by_rank(const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (std::size_t r = 0; r < values.size(); ++r) {
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == values[r]; });
    if (g == groups.end()) g = groups.insert(groups.end(), {values[r], {}});
    g->second.push_back(int(r));
  }
  constexpr std::size_t shown = 4;
  std::string out;
  for (std::size_t i = 0; i < std::min(groups.size(), shown); ++i) {
    const std::vector<int>& ranks = groups[i].second;
    std::vector<std::string> runs;
    for (std::size_t j = 0; j < ranks.size(); ++j) {
      std::size_t end = j;
      while (end + 1 < ranks.size() && ranks[end + 1] == ranks[end] + 1) ++end;
      runs.push_back(std::to_string(ranks[j]) + (end > j ? "-" + std::to_string(ranks[end]) : ""));
      j = end;
    }
    std::string list = runs[0];
    for (std::size_t j = 1; j < runs.size(); ++j) list += (j + 1 < runs.size() ? ", " : " and ") + runs[j];
    out += (i ? ", " : "") + groups[i].first + (ranks.size() == 1 ? " on rank " : " on ranks ") + list;
  }
  if (groups.size() > shown) out += " and " + std::to_string(groups.size() - shown) + " other values";
  return out;
}
#endif

// Exit status 2 on every rank, and a message naming each setting the ranks
// disagree on with its value on each rank, when they do.
Status check_agreement(const Team& team, const std::vector<Setting>& settings) {
#ifdef UNMIX_HAS_MPI
  if (team.size() == 1) return {};
  // max(h) and max(~h) = ~min(h), in one all-reduce.
  std::vector<std::uint64_t> h(2 * settings.size());
  for (std::size_t i = 0; i < settings.size(); ++i) {
    h[2 * i] = fnv1a(settings[i].value);
    h[2 * i + 1] = ~h[2 * i];
  }
  MPI_Allreduce(MPI_IN_PLACE, h.data(), int(h.size()), MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  bool differ = false;
  std::string differences;  // on rank 0
  for (std::size_t i = 0; i < settings.size(); ++i) {
    if (h[2 * i] == ~h[2 * i + 1]) continue;
    differ = true;
    const std::vector<std::string> values = gather_strings(settings[i].value, team);
    if (team.root())
      differences += (differences.empty() ? "" : "; on ") + settings[i].name + ": " + values_by_rank(values);
  }
  if (differ)
    return team.agree(failure(exit_usage, "the ranks disagree on " + differences +
                                              " (start every rank with the same options and data)"));
#else
  (void)team, (void)settings;
#endif
  return {};
}

}  // namespace unmix_nmf
