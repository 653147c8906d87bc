#pragma once
// Checkpoints of unmix-nmf: the run's state in a folder PREFIX.ckpt, one
// generation at a time, safe against a kill at any moment.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
//
// A generation g (the iteration it holds) is
//   PREFIX.ckpt/g<g>.r<rank>.W.npy, .H.npy   each rank's rows of the factors
//   PREFIX.ckpt/state                        which generation is whole, and the
//                                            history (text, written last)
// Every rank writes its files, the ranks meet, then rank 0 replaces `state`
// atomically; only after that do the ranks delete their other generations
// (the previous one, and any a kill left unnamed). So `state` always names a
// generation whose files are all there.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace unmix_nmf {

constexpr const char* checkpoint_magic = "unmix-nmf checkpoint 2";

std::string checkpoint_folder(const std::string& prefix) { return prefix + ".ckpt"; }

constexpr const char* state_file = "state";

std::string generation_file(const std::string& folder, int iteration, int rank,
                            const std::string& factor) {
  return folder + "/g" + std::to_string(iteration) + ".r" + std::to_string(rank) + "." + factor +
         ".npy";
}

// The iteration of a file name of generation_file's for `rank`, else -1.
long long generation_of(const std::string& name, int rank) {
  const std::regex pattern("g([0-9]{1,9})\\.r" + std::to_string(rank) + "\\.[A-Za-z_]+\\.npy");
  std::smatch m;
  return std::regex_match(name, m, pattern) ? std::stoll(m[1].str()) : -1;
}

// The library names "the state to resume"; here it is a folder the user knows.
std::string naming_checkpoint(std::string message, const std::string& folder) {
  const std::string vague = "the state to resume";
  const std::size_t at = message.find(vague);
  if (at != std::string::npos) message.replace(at, vague.size(), "the checkpoint '" + folder + "'");
  return message;
}

// What makes two runs the same problem, as one line: a resumed run must
// agree on it (max-iter, tol and time-limit may change).
std::string problem_key(const Args& a, const Problem& p, int ranks) {
  std::ostringstream s;
  s << std::setprecision(17) << "input " << (a.generate ? "generate" : a.input) << " shape "
    << p.n_samples << "x" << p.n_features << " k " << p.k << " dtype " << p.dtype << " solver "
    << a.solver << " loss " << a.loss << " init " << a.init << " seed " << a.seed << " l1 " << a.l1_W
    << "," << a.l1_H << " l2 " << a.l2_W << "," << a.l2_H << " sum_to_one " << a.sum_to_one
    << " extrapolate " << a.extrapolate
    << " bounds " << a.lower_W << "," << a.upper_W << "," << a.lower_H << "," << a.upper_H
    << " minvol " << a.minvol_H << " smooth " << a.smooth_W << " graph " << a.graph_ny << "x"
    << a.graph_nx << ":" << a.graph_connectivity << " fixed_H " << a.fixed_H << " grid " << p.pr
    << "x" << p.pc << " ranks " << ranks;
  if (a.generate)
    s << " generate " << a.gen_rows << "x" << a.gen_cols << "," << a.density << "," << a.gen_rank
      << "," << a.noise;
  return s.str();
}

void write_vector(std::ostream& out, const char* name, const std::vector<double>& v) {
  out << name << " " << v.size();
  for (double x : v) out << " " << x;
  out << "\n";
}

std::vector<double> read_vector(std::istream& in, const std::string& name, const std::string& file) {
  std::string key;
  std::size_t n = 0;
  if (!(in >> key >> n) || key != name || n > (1u << 30))
    throw std::runtime_error("checkpoint '" + file + "' is damaged (at '" + name + "')");
  std::vector<double> v(n);
  for (double& x : v)
    if (!(in >> x)) throw std::runtime_error("checkpoint '" + file + "' is damaged (in '" + name + "')");
  return v;
}

// The factors of a state, each in its own file: W and H, and with
// extrapolation the plain iterates and where the next iteration starts.
template <typename State>
auto factors(State& s) {
  using M = std::conditional_t<std::is_const_v<State>, const decltype(s.W), decltype(s.W)>;
  std::vector<std::pair<std::string, M*>> out = {{"W", &s.W}, {"H", &s.H}};
  if (!s.extrapolation.empty())
    out.insert(out.end(), {{"W_plain", &s.W_plain}, {"H_plain", &s.H_plain},
                           {"W_next", &s.W_next}, {"H_next", &s.H_next}});
  return out;
}

// The generation `state` names, or -1 without a readable state file.
long long named_generation(const std::string& folder) {
  std::ifstream in(folder + "/" + state_file);
  std::string magic, key, word;
  long long g = -1;
  if (std::getline(in, magic) && magic == checkpoint_magic && std::getline(in, key) && in >> word >> g &&
      word == "iteration")
    return g;
  return -1;
}

// Removes the files of `folder` whose names `doomed` accepts. They are
// litter that a later call removes as well, so a failure is no reason to
// stop a run.
template <typename Doomed>
void remove_files(const std::filesystem::path& folder, Doomed&& doomed) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> found;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (doomed(it->path().filename().string())) found.push_back(it->path());
  for (const fs::path& f : found) fs::remove(f, ec);
}

// Files of this rank's generations but `keep`: the previous one, and those a
// kill between writing a generation and naming it (or deleting the one
// before) left behind. Only the generation `state` names is ever read.
void remove_other_generations(const std::string& folder, int rank, long long keep) {
  remove_files(folder, [&](const std::string& name) {
    const long long g = generation_of(name, rank);
    return g >= 0 && g != keep;
  });
}

// Writes this rank's part of the state, then (rank 0) the state file.
template <typename eT>
void save_checkpoint(const std::string& folder, const std::string& key, const unmix::State<eT>& s,
                     const Team& team) {
  namespace io = unmix::io;
  std::filesystem::create_directories(folder);
  for (const auto& [name, F] : factors(s))
    io::write_npy(generation_file(folder, s.iteration, team.rank(), name), *F);
  team.barrier();
  if (team.root()) {
    io::write_atomically(folder + "/" + state_file, [&](std::ostream& out) {
      out << std::setprecision(17) << checkpoint_magic << "\n" << key << "\n";
      out << "iteration " << s.iteration << "\nelapsed " << s.elapsed << "\ndata_norm "
          << s.data_norm << "\n";
      write_vector(out, "fixed_at_start", s.fixed_at_start);
      write_vector(out, "objective", s.objective);
      write_vector(out, "rel_error", s.rel_error);
      write_vector(out, "extrapolation", s.extrapolation);
      for (auto [name, gram] : {std::pair{"gram_W", &s.gram_W}, std::pair{"gram_H", &s.gram_H}})
        write_vector(out, name, std::vector<double>(gram->begin(), gram->end()));
      out << "events " << s.events.size() << "\n";
      for (const auto& e : s.events) out << e.iteration << " " << e.what << "\n";
    });
  }
  team.barrier();
  remove_other_generations(folder, team.rank(), s.iteration);
}

// This rank's state from the folder, checked against the problem.
template <typename eT>
unmix::State<eT> load_checkpoint(const std::string& folder, const std::string& key, int rank) {
  const std::string file = folder + "/" + state_file;
  std::ifstream in(file);
  if (!in) throw std::invalid_argument("--resume: no checkpoint '" + file + "'");
  std::string magic, saved_key, word;
  std::getline(in, magic);
  std::getline(in, saved_key);
  if (magic != checkpoint_magic)
    throw std::invalid_argument("--resume: '" + file + "' is not an unmix-nmf checkpoint");
  if (saved_key != key)
    throw std::invalid_argument("--resume: the checkpoint is from another problem:\n  saved: " +
                                saved_key + "\n  now:   " + key);
  unmix::State<eT> s;
  if (!(in >> word >> s.iteration) || word != "iteration" || !(in >> word >> s.elapsed) ||
      !(in >> word >> s.data_norm))
    throw std::runtime_error("checkpoint '" + file + "' is damaged");
  s.fixed_at_start = read_vector(in, "fixed_at_start", file);
  s.objective = read_vector(in, "objective", file);
  s.rel_error = read_vector(in, "rel_error", file);
  s.extrapolation = read_vector(in, "extrapolation", file);
  for (auto [name, gram] : {std::pair{"gram_W", &s.gram_W}, std::pair{"gram_H", &s.gram_H}}) {
    const std::vector<double> g = read_vector(in, name, file);
    const auto k = arma::uword(std::llround(std::sqrt(double(g.size()))));
    if (k * k != g.size()) throw std::runtime_error("checkpoint '" + file + "' is damaged (in '" + name + "')");
    *gram = arma::conv_to<arma::Mat<eT>>::from(arma::mat(g.data(), k, k));
  }
  std::size_t n_events = 0;
  if (!(in >> word >> n_events) || word != "events" || n_events > (1u << 20))
    throw std::runtime_error("checkpoint '" + file + "' is damaged (at 'events')");
  for (std::size_t i = 0; i < n_events; ++i) {
    unmix::Event e{};
    in >> e.iteration;
    std::getline(in >> std::ws, e.what);
    s.events.push_back(e);
  }
  for (auto& [name, F] : factors(s))
    *F = unmix::io::read_npy<eT>(generation_file(folder, s.iteration, rank, name));
  return s;
}

}  // namespace unmix_nmf
