"""Serve the studio on a small random conditional network (for tests/test_app_browser.py)."""
import sys

import torch

import stylegan_anime as sa
from stylegan_anime.app import FavouritesStore, launch
from stylegan_anime.data.attributes import label_names
from stylegan_anime.editing.tags import with_label_names

torch.manual_seed(0)
cfg = sa.GeneratorConfig(z_dim=16, w_dim=16, img_resolution=64, mapping_layers=2, channel_base=256, channel_max=16,
                         c_dim=len(label_names()), extra=with_label_names({}, label_names()))
G = sa.Generator(cfg).eval()
launch(G, host="127.0.0.1", port=int(sys.argv[1]), store=FavouritesStore(sys.argv[2]))
