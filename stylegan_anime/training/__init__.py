"""Training: data set reader, augmentation (ADA), losses, loop, checkpoints."""
