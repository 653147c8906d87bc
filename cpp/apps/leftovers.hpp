#pragma once
// What a run killed while writing leaves behind: the temporaries of its
// outputs and checkpoint files (io::write_atomically's, named after the file
// they were to become), and checkpoint generations the state does not name.
// The next run with the same prefix removes them when it starts; it knows
// its own file names, and touches nothing else.
// Part of the unmix-nmf program: included only by unmix_nmf.cpp.
#include "checkpoint.hpp"

namespace unmix_nmf {

// The temporaries of the targets `ours` accepts.
template <typename Ours>
void remove_temporaries(const std::filesystem::path& folder, Ours&& ours) {
  remove_files(folder, [&](const std::string& name) {
    const std::string target = unmix::io::temporary_target(name);
    return !target.empty() && ours(target);
  });
}

// Rank 0 removes the outputs' and the checkpoint state's, every rank those of
// its own checkpoint files (which may be on a disk of its node only).
void remove_leftovers(const std::string& prefix, const Team& team) {
  namespace fs = std::filesystem;
  if (team.root()) {
    const Outputs o = output_files(prefix);
    const fs::path summary(o.summary);
    remove_temporaries(summary.has_parent_path() ? summary.parent_path() : fs::path("."),
                       [&](const std::string& target) {
                         for (const std::string& f : {o.W, o.H, o.summary})
                           if (fs::path(f).filename() == target) return true;
                         return false;
                       });
  }
  const std::string folder = checkpoint_folder(prefix);
  remove_temporaries(folder, [&](const std::string& target) {
    return (team.root() && target == state_file) || generation_of(target, team.rank()) >= 0;
  });
  // A run that resumes with nothing left to do saves no generation, which
  // would otherwise be when the others go.
  const long long named = named_generation(folder);
  if (named >= 0) remove_other_generations(folder, team.rank(), named);
}

}  // namespace unmix_nmf
