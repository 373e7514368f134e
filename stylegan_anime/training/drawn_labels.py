"""Fine-tuning a conditional network on pictures without labels (a user's own drawings).

Each image gets the labels its index draws as a seed (``editing.tags.seed_labels``: the network's
training-label frequencies), fixed for the run. The label input keeps being trained with the
frequencies it knows, so rolling and prompts keep working; what the labels mean on these pictures
is not learnt (label the set, ``dataset --labels``, for that).
"""
from __future__ import annotations

import torch


class DrawnLabels(torch.utils.data.Dataset):
    """An unlabelled set seen through a conditional ``G``: ``ds[i]`` → (image, label [c_dim])."""

    def __init__(self, dataset, G):
        from ..editing.tags import network_label_names, seed_labels
        self.dataset = dataset
        self.label_names = network_label_names(G)
        self._labels = seed_labels(G, list(range(len(dataset))))   # [N, c_dim]

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dataset[idx][0], self._labels[idx].clone()

    def get_label(self, idx: int) -> torch.Tensor:
        return self._labels[idx].clone()

    def __getattr__(self, name: str):
        # Everything else (resolution, image names, ...) is the wrapped set's.
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
