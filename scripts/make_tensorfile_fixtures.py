#!/usr/bin/env python3
"""Fixtures for the TensorFiles readers: a torch.save (zip format) file holding non-contiguous views,
shared storages and several dtypes, and a safetensors file with the same tensors made contiguous.

    /tmp/ref/bin/python scripts/make_tensorfile_fixtures.py Tests/TensorFilesTests/Fixtures
"""
import os
import sys
from collections import OrderedDict

import safetensors.torch
import torch


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/TensorFilesTests/Fixtures"
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(4, 6, generator=g)
    y = torch.arange(10, dtype=torch.float64)
    tensors = OrderedDict([
        ("plain", x),
        ("transposed", x.t()),                 # strides (1, 6)
        ("sliced", x[1:, ::2]),                # offset 6, strides (6, 2)
        ("offset", y[3:7]),                    # offset into a shared double storage
        ("shared", y),
        ("half", x.half()),
        ("bfloat16", x.bfloat16()),
        ("int64", torch.arange(5)),
        ("int32", torch.arange(3, dtype=torch.int32)),
        ("uint8", torch.tensor([0, 7, 255], dtype=torch.uint8)),
        ("bool", torch.tensor([True, False, True])),
        ("scalar", torch.tensor(2.5)),
        ("empty", torch.zeros(0, 3)),
    ])
    torch.save(tensors, os.path.join(out, "views.pt"))
    torch.save(tensors, os.path.join(out, "views_legacy.pt"), _use_new_zipfile_serialization=False)
    safetensors.torch.save_file({k: v.contiguous().clone() for k, v in tensors.items()},
                                os.path.join(out, "views.safetensors"))
    # Zip layouts: ZIP64 records on a stored entry, and a deflated entry (read in place only when stored).
    import zipfile
    with zipfile.ZipFile(os.path.join(out, "zip64.zip"), "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        with z.open("dir/hello.txt", "w", force_zip64=True) as entry:
            entry.write(b"hello, zip64")
        z.writestr("second.bin", bytes(range(16)))
    import random as _random
    rng = _random.Random(3)
    text = " ".join(rng.choice(["tensor", "storage", "Megatron", "BERT", "layer", "norm", "the", "of", "345M", "\n"])
                    for _ in range(6000)).encode()
    with zipfile.ZipFile(os.path.join(out, "deflated.zip"), "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.txt", b"compress me " * 20)                       # short: fixed Huffman codes
        z.writestr("text.txt", text)                                       # longer: dynamic Huffman codes
        z.writestr("random.bin", bytes(rng.getrandbits(8) for _ in range(5000)))  # incompressible: stored blocks
        z.writestr("empty.txt", b"")
    with zipfile.ZipFile(os.path.join(out, "deflated-stored.zip"), "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("data.txt", b"compress me " * 20)
        z.writestr("text.txt", text)
    # The zip-format views.pt re-packed with deflate (as a download might be): read by inflating.
    with zipfile.ZipFile(os.path.join(out, "views.pt")) as source, \
            zipfile.ZipFile(os.path.join(out, "views_deflated.pt"), "w", compression=zipfile.ZIP_DEFLATED) as z:
        for info in source.infolist():
            z.writestr(info.filename, source.read(info.filename))
    with open(os.path.join(out, "NOTES.md"), "w") as f:
        f.write(f"Written by scripts/make_tensorfile_fixtures.py with torch {torch.__version__}: views.pt is "
                "torch.save of an OrderedDict of views (transposed, sliced, offset, shared storages) and dtypes; "
                "views_legacy.pt the same in the pre-1.6 (non-zip) serialization; "
                "views.safetensors holds the same tensors made contiguous; zip64.zip has ZIP64 records on a stored "
                "entry, deflated.zip deflated entries (fixed, dynamic and stored blocks), deflated-stored.zip two of them "
                "uncompressed, views_deflated.pt is views.pt re-packed with deflate (Python's zipfile).\n")


if __name__ == "__main__":
    main()
