"""Parallelism planner: which TP/PP/DP/EP layouts a measured fleet can safely run, and why.

Pure functions of (fleet facts, model, options): no SSH, no UI, no I/O beyond reading the
model catalog or a config.json.
"""

from __future__ import annotations

from .constraints import Reason
from .errors import PlanError
from .estimate import Estimate
from .memory import MemoryBreakdown, memory_per_gpu
from .models import ModelSpec, catalog, load_model
from .planner import Candidate, Placement, Plan, evaluate, plan
from .shapes import FleetShape, NodeShape, PlanOptions

__all__ = [
    "Candidate", "Estimate", "FleetShape", "MemoryBreakdown", "ModelSpec", "NodeShape", "Placement", "Plan",
    "PlanError", "PlanOptions", "Reason", "catalog", "evaluate", "load_model", "memory_per_gpu", "plan",
]
