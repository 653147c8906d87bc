// unmix._mpi: the distributed fit for mpi4py users. A separate module so
// that importing unmix never loads MPI; built only when MPI is found.
#include <mpi.h>

#include <cstdint>

#include <unmix/comm/mpi_grid.hpp>

#include "fit.hpp"

namespace py = pybind11;

namespace unmix::bindings {

namespace {

// mpi4py hands over MPI._handleof(comm): the MPI_Comm value as an integer
// (a pointer in Open MPI, an int in MPICH).
// A C-style cast is the one conversion valid for both.
MPI_Comm from_handle(std::uintptr_t handle) { return (MPI_Comm)(handle); }

py::dict with_grid_info(py::dict d, const comm::MpiGrid& grid, arma::uword m, arma::uword n) {
  const auto wr = grid.W_rows(m), hr = grid.H_rows(n);
  d["W_first"] = wr.first;
  d["H_first"] = hr.first;
  d["comm_seconds"] = grid.stats().seconds;
  d["comm_words"] = grid.stats().words();
  return d;
}

template <typename eT>
py::dict nmf_dense(const FArray<eT>& block, arma::uword k, const py::dict& options,
                   std::uintptr_t comm, int pr, int pc, arma::uword m, arma::uword n,
                   const py::object& callback, const py::object& checkpoint) {
  const comm::MpiGrid grid(from_handle(comm), pr, pc, m, n);
  const arma::Mat<eT> Mv = view(block);
  if (Mv.n_rows != grid.block_rows().count || Mv.n_cols != grid.block_cols().count)
    throw std::invalid_argument("unmix._mpi: this rank's block has shape (" +
                                std::to_string(Mv.n_rows) + ", " + std::to_string(Mv.n_cols) +
                                "), the grid expects (" + std::to_string(grid.block_rows().count) +
                                ", " + std::to_string(grid.block_cols().count) + ")");
  return with_grid_info(run<eT>(data::Dense<eT>(Mv), grid, m, n, k, options, std::nullopt,
                                std::nullopt, callback, checkpoint),
                        grid, m, n);
}

template <typename eT, typename Index>
py::dict nmf_sparse(const py::array_t<Index, py::array::c_style>& indptr,
                    const py::array_t<Index, py::array::c_style>& indices,
                    const py::array_t<eT, py::array::c_style>& values, arma::uword k,
                    const py::dict& options, std::uintptr_t comm, int pr, int pc, arma::uword m,
                    arma::uword n, const py::object& callback, const py::object& checkpoint) {
  const comm::MpiGrid grid(from_handle(comm), pr, pc, m, n);
  const auto rows = grid.block_rows().count, cols = grid.block_cols().count;
  if (static_cast<arma::uword>(indptr.size()) != cols + 1)
    throw std::invalid_argument("unmix._mpi: this rank's block must have " + std::to_string(cols) +
                                " columns (indptr of " + std::to_string(cols + 1) +
                                " entries), got " + std::to_string(indptr.size()) + " entries");
  const data::Sparse<eT, Index> data(rows, cols, indptr.data(), indices.data(), values.data());
  return with_grid_info(
      run<eT>(data, grid, m, n, k, options, std::nullopt, std::nullopt, callback, checkpoint), grid, m,
      n);
}

template <typename eT>
void def_dense(py::module_& mod) {
  mod.def("nmf_dense", &nmf_dense<eT>, py::arg("block").noconvert(), py::arg("k"),
          py::arg("options"), py::arg("comm"), py::arg("pr"), py::arg("pc"), py::arg("m"),
          py::arg("n"), py::arg("callback") = py::none(), py::arg("checkpoint") = py::none());
}

template <typename eT, typename Index>
void def_sparse(py::module_& mod) {
  mod.def("nmf_sparse", &nmf_sparse<eT, Index>, py::arg("indptr").noconvert(),
          py::arg("indices").noconvert(), py::arg("data").noconvert(), py::arg("k"),
          py::arg("options"), py::arg("comm"), py::arg("pr"), py::arg("pc"), py::arg("m"),
          py::arg("n"), py::arg("callback") = py::none(), py::arg("checkpoint") = py::none());
}

}  // namespace

}  // namespace unmix::bindings

PYBIND11_MODULE(_mpi, mod) {
  mod.doc() = "Distributed NMF on an mpi4py communicator (use unmix.distributed).";
  using namespace unmix::bindings;
  def_dense<double>(mod);
  def_dense<float>(mod);
  def_sparse<double, std::int32_t>(mod);
  def_sparse<double, std::int64_t>(mod);
  def_sparse<float, std::int32_t>(mod);
  def_sparse<float, std::int64_t>(mod);
}
