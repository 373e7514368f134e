"""Checks of this installation against the references, for `stylegan-anime doctor --check`:
a generator forward and a training step, native ops against reference ops (``network_check``).
Each op's own check lives beside the ops (``ops/op_check.py``), since the native build calls it."""
