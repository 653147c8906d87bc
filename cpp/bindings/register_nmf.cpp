#include "fit.hpp"
#include "register.hpp"

namespace py = pybind11;

namespace unmix::bindings {

namespace {

template <typename eT>
py::dict nmf_dense(const FArray<eT>& M, arma::uword k, const py::dict& options,
                   const std::optional<FArray<eT>>& W0, const std::optional<FArray<eT>>& H0,
                   const py::object& callback, const py::object& checkpoint) {
  const arma::Mat<eT> Mv = view(M);
  return run<eT>(data::Dense<eT>(Mv), comm::Serial{}, Mv.n_rows, Mv.n_cols, k, options, W0, H0,
                 callback, checkpoint);
}

template <typename eT, typename Index>
py::dict nmf_sparse(const py::array_t<Index, py::array::c_style>& indptr,
                    const py::array_t<Index, py::array::c_style>& indices,
                    const py::array_t<eT, py::array::c_style>& values, arma::uword n_rows,
                    arma::uword n_cols, arma::uword k, const py::dict& options,
                    const std::optional<FArray<eT>>& W0, const std::optional<FArray<eT>>& H0,
                    const py::object& callback, const py::object& checkpoint) {
  if (static_cast<arma::uword>(indptr.size()) != n_cols + 1)
    throw std::invalid_argument("unmix._core: indptr must have n_cols + 1 = " +
                                std::to_string(n_cols + 1) + " entries, got " +
                                std::to_string(indptr.size()));
  const data::Sparse<eT, Index> data(n_rows, n_cols, indptr.data(), indices.data(), values.data());
  return run<eT>(data, comm::Serial{}, n_rows, n_cols, k, options, W0, H0, callback, checkpoint);
}

template <typename eT>
void def_dense(py::module_& m) {
  m.def("nmf_dense", &nmf_dense<eT>, py::arg("M").noconvert(), py::arg("k"), py::arg("options"),
        py::arg("W0").noconvert() = py::none(), py::arg("H0").noconvert() = py::none(),
        py::arg("callback") = py::none(), py::arg("checkpoint") = py::none());
}

template <typename eT, typename Index>
void def_sparse(py::module_& m) {
  m.def("nmf_sparse", &nmf_sparse<eT, Index>, py::arg("indptr").noconvert(),
        py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("n_rows"),
        py::arg("n_cols"), py::arg("k"), py::arg("options"),
        py::arg("W0").noconvert() = py::none(), py::arg("H0").noconvert() = py::none(),
        py::arg("callback") = py::none(), py::arg("checkpoint") = py::none());
}

}  // namespace

void register_nmf(py::module_& m) {
  // noconvert: an array of the wrong dtype or layout is refused rather than
  // copied behind the caller's back; the Python layer decides about copies.
  def_dense<double>(m);
  def_dense<float>(m);
  def_sparse<double, std::int32_t>(m);
  def_sparse<double, std::int64_t>(m);
  def_sparse<float, std::int32_t>(m);
  def_sparse<float, std::int64_t>(m);
}

}  // namespace unmix::bindings
