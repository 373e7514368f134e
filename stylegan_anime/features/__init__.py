"""What users make with a generator, over the Python API: images from seeds (``generation``), grids
(``render``), interpolation paths and their videos (``interpolation``, ``video``), style mixing
(``mixing``) and truncation grids (``truncation``)."""
