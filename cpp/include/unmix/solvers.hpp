#pragma once
// The one table that maps names to solvers and initializations. The Python
// bindings and the command line both parse through it.
#include <string>

#include "core/error.hpp"
#include "core/options.hpp"
#include "rules/admm.hpp"
#include "rules/bpp.hpp"
#include "rules/hals.hpp"
#include "rules/mu.hpp"

namespace unmix {

template <typename Enum>
struct NamedValue {
  const char* name;
  Enum value;
  const char* summary;
};

inline constexpr NamedValue<Solver> solver_table[] = {
    {"bpp", Solver::bpp, "alternating NNLS solved exactly by block principal pivoting"},
    {"hals", Solver::hals, "hierarchical alternating least squares, one column at a time"},
    {"mu", Solver::mu, "multiplicative updates (Lee-Seung)"},
    {"admm", Solver::admm, "AO-ADMM: every constraint by projection (bounds with sum-to-one too)"},
};

inline constexpr NamedValue<Init> init_table[] = {
    {"nndsvda", Init::nndsvda, "NNDSVD with zeros filled at the factors' mean scale"},
    {"nndsvd", Init::nndsvd, "non-negative double SVD (keeps zeros; not for MU)"},
    {"nndsvdar", Init::nndsvdar, "NNDSVD with zeros filled by small random values"},
    {"random", Init::random, "uniform random, scaled to the data mean"},
    {"custom", Init::custom, "the W and H given by the caller"},
};

inline constexpr NamedValue<Loss> loss_table[] = {
    {"frobenius", Loss::frobenius, "1/2 ||M - W H^T||_F^2 (Gaussian noise)"},
    {"kl", Loss::kl, "generalized Kullback-Leibler divergence (Poisson counts; solver mu)"},
};

template <typename Enum, std::size_t N>
Enum parse(const NamedValue<Enum> (&table)[N], const std::string& name, const char* param) {
  std::string names;
  for (const auto& e : table) {
    if (name == e.name) return e.value;
    names += names.empty() ? "" : ", ";
    names += std::string("'") + e.name + "'";
  }
  throw_invalid("unmix", param, "one of " + names, "'" + name + "'");
}

template <typename Enum, std::size_t N>
const char* name_of(const NamedValue<Enum> (&table)[N], Enum value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return "unknown";
}

inline Solver parse_solver(const std::string& s) { return parse(solver_table, s, "solver"); }
inline Init parse_init(const std::string& s) { return parse(init_table, s, "init"); }
inline Loss parse_loss(const std::string& s) { return parse(loss_table, s, "loss"); }
inline const char* to_string(Solver s) { return name_of(solver_table, s); }
inline const char* to_string(Init i) { return name_of(init_table, i); }
inline const char* to_string(Loss l) { return name_of(loss_table, l); }

// Calls fn(RuleTag<Rule>{}) for the rule that implements the solver.
template <template <typename> class R>
struct RuleTag {
  template <typename eT>
  using rule = R<eT>;
};

template <typename Fn>
decltype(auto) with_rule(Solver solver, Fn&& fn) {
  switch (solver) {
    case Solver::mu: return fn(RuleTag<rules::MU>{});
    case Solver::hals: return fn(RuleTag<rules::HALS>{});
    case Solver::admm: return fn(RuleTag<rules::ADMM>{});
    case Solver::bpp: break;
  }
  return fn(RuleTag<rules::BPP>{});
}

}  // namespace unmix
