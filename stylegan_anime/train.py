"""``python -m stylegan_anime.train ...`` = ``stylegan-anime train ...``; the entry that
``torchrun --nproc_per_node N -m stylegan_anime.train`` starts once per process."""
from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
