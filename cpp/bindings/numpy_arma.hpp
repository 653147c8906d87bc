#pragma once
// Zero-copy passage between numpy arrays and Armadillo matrices.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <armadillo>

namespace unmix::bindings {

namespace py = pybind11;

template <typename eT>
using FArray = py::array_t<eT, py::array::f_style>;

// A read-only Armadillo view of a Fortran-ordered numpy array. The memory
// stays numpy's; the caller keeps the array alive while the view is used.
template <typename eT>
arma::Mat<eT> view(const FArray<eT>& a) {
  const auto rows = static_cast<arma::uword>(a.shape(0));
  const auto cols = static_cast<arma::uword>(a.shape(1));
  // The library never writes to the data, so dropping const is safe.
  return arma::Mat<eT>(const_cast<eT*>(a.data()), rows, cols, /*copy_aux_mem=*/false,
                       /*strict=*/true);
}

// Moves a matrix into a numpy array that owns it (no copy of the elements).
template <typename eT>
py::array_t<eT> to_numpy(arma::Mat<eT>&& m) {
  auto* owner = new arma::Mat<eT>(std::move(m));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<arma::Mat<eT>*>(p); });
  const auto rows = static_cast<py::ssize_t>(owner->n_rows);
  const auto cols = static_cast<py::ssize_t>(owner->n_cols);
  const auto item = static_cast<py::ssize_t>(sizeof(eT));
  return py::array_t<eT>({rows, cols}, {item, item * rows}, owner->memptr(), free_when_done);
}

}  // namespace unmix::bindings
