// choose_grid picks the MPI-FAUN grid with the least communication.
#include <catch2/catch.hpp>
#include <unmix/comm/grid_shape.hpp>

using unmix::comm::choose_grid;

TEST_CASE("the grid follows the shape of the matrix", "[grid]") {
  CHECK(choose_grid(8, 1000000, 50) == std::pair<int, int>(8, 1));  // tall-skinny
  CHECK(choose_grid(8, 50, 1000000) == std::pair<int, int>(1, 8));  // wide
  CHECK(choose_grid(4, 1000, 1000) == std::pair<int, int>(2, 2));
  CHECK(choose_grid(16, 1000, 1000) == std::pair<int, int>(4, 4));
  const auto six = choose_grid(6, 1000, 1000);
  CHECK(((six == std::pair<int, int>(2, 3)) || (six == std::pair<int, int>(3, 2))));
  CHECK(choose_grid(1, 10, 10) == std::pair<int, int>(1, 1));
  // A prime number of ranks has only the two flat grids.
  CHECK(choose_grid(7, 5000, 100) == std::pair<int, int>(7, 1));
}

TEST_CASE("the grid never has more rows or columns than the matrix", "[grid]") {
  // The flat grids 4 x 1 and 1 x 4 would leave grid rows or columns empty.
  CHECK(choose_grid(4, 3, 3) == std::pair<int, int>(2, 2));
  CHECK(choose_grid(4, 100000, 2) == std::pair<int, int>(4, 1));
  CHECK(choose_grid(6, 2, 3) == std::pair<int, int>(2, 3));
  REQUIRE_THROWS_AS(choose_grid(7, 3, 3), std::invalid_argument);
  REQUIRE_THROWS_AS(choose_grid(0, 3, 3), std::invalid_argument);
}

TEST_CASE("pr * pc is always the number of ranks", "[grid]") {
  for (int p = 1; p <= 64; ++p) {
    for (arma::uword m : {64u, 100u, 1000u, 100000u}) {
      for (arma::uword n : {64u, 100u, 1000u, 100000u}) {
        const auto [pr, pc] = choose_grid(p, m, n);
        CHECK(pr * pc == p);
        CHECK(arma::uword(pr) <= m);
        CHECK(arma::uword(pc) <= n);
        // No other admissible grid moves fewer words.
        for (int r = 1; r <= p; ++r)
          if (p % r == 0)
            CHECK(unmix::comm::grid_words(pr, pc, m, n) <=
                  unmix::comm::grid_words(r, p / r, m, n) * (1 + 1e-9));
      }
    }
  }
}
