// Fuzz target: the text of a .npy header (the Python dict literal) straight
// into the parser, without a file around it — many more inputs per second
// than fuzz_npy, all of them spent on the parser.
#include <armadillo>
#include <unmix/io/npy.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string source = "fuzz-header.npy";
  const std::string text(reinterpret_cast<const char*>(data), size);
  unmix_fuzz::expect_clean(source, [&] {
    unmix::io::NpyHeader h;
    unmix::io::detail::NpyDictParser(text, source).parse(h);
    if (!((h.descr == "<f8" && h.word == 8) || (h.descr == "<f4" && h.word == 4)))
      unmix_fuzz::fail("accepted dtype '" + h.descr + "' with " + std::to_string(h.word) + "-byte words");
  });
  return 0;
}
