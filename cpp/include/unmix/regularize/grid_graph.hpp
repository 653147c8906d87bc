#pragma once
#include <armadillo>
#include <stdexcept>
#include <string>
#include <vector>

namespace unmix::regularize {

// The similarity of a 2-D pixel grid (ny rows x nx columns, pixels numbered
// in C order, i * nx + j, as a numpy image reshaped to (ny * nx, channels)):
// weight 1 between edge neighbours (connectivity 4) and also between corner
// neighbours (connectivity 8). The same graph as unmix.graphs.grid.
inline arma::sp_mat grid_graph(arma::uword ny, arma::uword nx, int connectivity = 4) {
  if (connectivity != 4 && connectivity != 8)
    throw std::invalid_argument("unmix::regularize::grid_graph: connectivity must be 4 or 8, got " +
                                std::to_string(connectivity));
  std::vector<arma::uword> rows, cols;
  auto link = [&](arma::uword a, arma::uword b) {
    rows.insert(rows.end(), {a, b});
    cols.insert(cols.end(), {b, a});
  };
  for (arma::uword i = 0; i < ny; ++i)
    for (arma::uword j = 0; j < nx; ++j) {
      const arma::uword p = i * nx + j;
      if (j + 1 < nx) link(p, p + 1);
      if (i + 1 < ny) link(p, p + nx);
      if (connectivity == 8 && i + 1 < ny) {
        if (j + 1 < nx) link(p, p + nx + 1);
        if (j > 0) link(p, p + nx - 1);
      }
    }
  arma::umat locations(2, rows.size());
  for (std::size_t e = 0; e < rows.size(); ++e) {
    locations(0, e) = rows[e];
    locations(1, e) = cols[e];
  }
  return arma::sp_mat(locations, arma::vec(rows.size(), arma::fill::ones), ny * nx, ny * nx);
}

}  // namespace unmix::regularize
