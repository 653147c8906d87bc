"""Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/).

Small valid files of every kind the readers accept and one invalid file per
way a file can be wrong; libFuzzer mutates them, and the ctests
fuzz_replay_<target> replay them on every test run. Inputs the fuzzer found
(crash reproducers, after the fix) are kept next to them as regress-*.
Run from anywhere: ``python tests/fuzz/make_corpus.py``; the output is
deterministic.
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def npy(dict_text: str, data: bytes = b"", version: int = 1, pad: bool = True) -> bytes:
    """A .npy file with a hand-written header (numpy's padding to 64 bytes)."""
    header = dict_text
    pre = 10 if version == 1 else 12
    if pad:
        while (pre + len(header) + 1) % 64:
            header += " "
    header += "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode("latin-1") + data


def f8(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


def f4(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def d(descr: str, order: str, shape: str) -> str:
    return f"{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}"


NPY_HEADERS = {
    "c_f8": d("<f8", "False", "(3, 4)"),
    "f_f4": d("<f4", "True", "(2, 5)"),
    "order_keys": "{'shape': (3, 2), 'fortran_order': False, 'descr': '<f8'}",
    "double_quotes": '{"descr": "<f8", "fortran_order": False, "shape": (1, 1)}',
    "empty_rows": d("<f8", "False", "(0, 7)"),
    "one_d": d("<f8", "False", "(4,)"),
    "three_d": d("<f8", "False", "(1, 2, 2)"),
    "scalar": d("<f8", "False", "()"),
    "int_dtype": d("<i8", "False", "(2, 2)"),
    "big_endian": d(">f8", "False", "(2, 2)"),
    "structured": "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2, 2), }",
    "unknown_key": "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'x': 1}",
    "missing_key": "{'descr': '<f8', 'shape': (2, 2)}",
    "negative_size": d("<f8", "False", "(-1, 2)"),
    "huge_size": d("<f8", "False", "(99999999999999999999, 2)"),
    "bad_bool": "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (2, 2)}",
    "unterminated": "{'descr': '<f8",
    "empty": "",
}

MTX = {
    "general": "%%MatrixMarket matrix coordinate real general\n% comment\n\n4 3 5\n"
               "1 1 1.5\n2 3 2\n4 1 -3e-1\n3 2 4\n4 3 5\n",
    "symmetric_pattern": "%%MatrixMarket matrix coordinate pattern symmetric\n3 3 3\n1 1\n2 1\n3 2\n",
    "integer": "%%MatrixMarket matrix coordinate integer general\n2 2 1\n2 2 7\n",
    "crlf": "%%MatrixMarket matrix coordinate real general\r\n2 2 2\r\n1 1 1\r\n2 2 2\r\n",
    "duplicates": "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1\n1 1 2\n2 1 3\n",
    "empty_matrix": "%%MatrixMarket matrix coordinate real general\n0 0 0\n",
    "no_entries": "%%MatrixMarket matrix coordinate real general\n5 5 0\n",
    "nonfinite": "%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 nan\n2 2 inf\n1 2 -1e999\n",
    "huge_dims": "%%MatrixMarket matrix coordinate real general\n1000000000000 1000000000000 1\n1 1 1\n",
    "huge_entries": "%%MatrixMarket matrix coordinate real general\n2 2 1000000000000\n1 1 1\n",
    "array_format": "%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",
    "complex": "%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n",
    "skew": "%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 1\n",
    "not_square": "%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n",
    "bad_banner": "%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 1\n",
    "row_out_of_range": "%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 1\n4 1 1\n",
    "zero_index": "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 0 1\n",
    "negative_index": "%%MatrixMarket matrix coordinate real general\n3 2 1\n-1 1 1\n",
    "too_few": "%%MatrixMarket matrix coordinate real general\n3 2 3\n1 1 1\n",
    "too_many": "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1 1\n2 2 2\n",
    "no_value": "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1\n",
    "trailing_text": "%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1 1 x\n",
    "missing_size": "%%MatrixMarket matrix coordinate real general\n% only a comment\n",
    "bad_size": "%%MatrixMarket matrix coordinate real general\n3 two 1\n",
    "nul_byte": "%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 1\x00junk\n",
    "empty_file": "",
}


def main() -> None:
    out = HERE / "corpus"
    files: dict[str, dict[str, bytes]] = {"npy": {}, "npy_header": {}, "mtx": {}}

    for name, text in NPY_HEADERS.items():
        files["npy_header"][name] = text.encode("latin-1")

    n = files["npy"]
    n["c_f8"] = npy(d("<f8", "False", "(3, 4)"), f8(*range(12)))
    n["f_f8"] = npy(d("<f8", "True", "(3, 4)"), f8(*range(12)))
    n["c_f4"] = npy(d("<f4", "False", "(2, 3)"), f4(0.5, 1, 2, 3, 4, 5))
    n["f_f4"] = npy(d("<f4", "True", "(2, 3)"), f4(0.5, 1, 2, 3, 4, 5))
    n["v2"] = npy(d("<f8", "False", "(1, 2)"), f8(1, 2), version=2)
    n["v3"] = npy(d("<f8", "False", "(2, 1)"), f8(1, 2), version=3)
    n["unpadded"] = npy(d("<f8", "False", "(1, 1)"), f8(7), pad=False)
    n["empty_cols"] = npy(d("<f8", "False", "(3, 0)"))
    n["nonfinite"] = npy(d("<f8", "False", "(1, 3)"), f8(float("nan"), float("inf"), -1.0))
    n["one_d"] = npy(d("<f8", "False", "(3,)"), f8(1, 2, 3))
    n["int_dtype"] = npy(d("<i4", "False", "(2, 2)"), bytes(16))
    n["truncated_data"] = npy(d("<f8", "False", "(3, 4)"), f8(*range(11)))
    n["truncated_header"] = npy(d("<f8", "False", "(3, 4)"))[:40]
    n["huge_shape"] = npy(d("<f8", "False", "(100000000, 100000000)"), f8(1))
    n["long_header_len"] = b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8'"
    n["bad_version"] = b"\x93NUMPY\x09\x00" + npy(d("<f8", "False", "(1, 1)"), f8(1))[8:]
    n["bad_magic"] = b"\x93NUMPZ" + npy(d("<f8", "False", "(1, 1)"), f8(1))[6:]
    n["text"] = b"hello, this is not numpy\n"
    n["empty_file"] = b""

    for name, text in MTX.items():
        files["mtx"][name] = text.encode("latin-1")

    # What the fuzzers crashed on before the fixes (the same inputs, rebuilt).
    regress: dict[str, dict[str, bytes]] = {"npy": {}, "npy_header": {}, "mtx": {}}
    # rows * 8 + header wrapped around 2**64 and passed the size check
    regress["npy"]["size_overflow"] = npy(d("<f8", "False", "(2305843009213693951, 1)"), f8(1))
    regress["npy"]["size_overflow_cols"] = npy(d("<f4", "True", "(1, 4611686018427387903)"),
                                               f4(1))
    # a block with no rows, transposed: a reference through a null pointer
    regress["npy"]["empty_block"] = npy(d("<f8", "False", "(1, 2)"), f8(1, 2), version=2)
    # binary bytes and a 4 GB length in the header, quoted raw in the message
    regress["npy"]["binary_descr"] = npy("{'descr': '<f8\x82, 'fortran_order': False, "
                                         "'shape': (1, 1), }", f8(1))
    regress["npy"]["header_len_4g"] = b"\x93NUMPY\x02\x00\xff\xff\xff\xff{'descr': '<f8'"
    # no rows and 2**62 - 1 columns: the target's own element loop ran for hours
    regress["npy"]["zero_by_huge"] = npy(d("<f4", "True", "(0, 4611686018427387903)"))
    regress["npy_header"]["binary_descr"] = (
        b"{'descr': '<f8\x82, 'fortran_order': False, 'shape': (), }")
    regress["npy_header"]["long_shape"] = (
        "{'descr':'<f8', 'fortran_order': False, 'shape': (" + ", ".join(["99999998"] * 300)
        + "), }").encode()
    regress["mtx"]["binary_index"] = (b"%%MatrixMarket matrix coordinate real general\n"
                                      b"3 2 1\n-1 \xd3 1\n")
    regress["mtx"]["size_product_overflow"] = (
        b"%%MatrixMarket matrix coordinate pattern general\n4294967296 4294967297 1\n1 1\n")

    for prefix, groups in (("seed", files), ("regress", regress)):
        for target, entries in groups.items():
            folder = out / target
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in entries.items():
                (folder / f"{prefix}-{name}").write_bytes(data)
    print(f"wrote {sum(map(len, files.values()))} seed and "
          f"{sum(map(len, regress.values()))} regression inputs to {out}")


if __name__ == "__main__":
    main()
