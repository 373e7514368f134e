"""Inference plans: each synthesis layer's algorithm decided once per network, device and batch
size, with the filters derived from the weights prepared once (``plan.py``: the walk and the
dataclasses; ``policy.py``: the per-layer decisions; ``executor.py``: a forward run from a plan)."""
from .plan import InferencePlan, LayerPlan, StalePlanError, build_plan

__all__ = ["InferencePlan", "LayerPlan", "StalePlanError", "build_plan"]
