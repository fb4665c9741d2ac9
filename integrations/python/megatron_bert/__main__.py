"""``megatron-bert`` as the wheel installs it (and ``python -m megatron_bert``): this process becomes the binary that
the wheel carries (megatron_bert/bin/megatron-bert), with the same arguments, so signals, exit status and standard
streams are the binary's own."""

import os
import sys

from .worker import installed_binary


def main() -> None:
    binary = installed_binary()
    if binary is None:
        sys.exit("megatron-bert: this installation of the megatron_bert package carries no binary (a source install); "
                 "install the wheel (`pip install megatron-bert`), or build MegatronBERT.swift and put its "
                 "megatron-bert on the PATH")
    os.execv(binary, [binary] + sys.argv[1:])


if __name__ == "__main__":
    main()
