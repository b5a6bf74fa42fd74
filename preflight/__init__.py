"""preflight: GPU-fleet preflight and diagnostics (collect raw, judge centrally)."""

__version__ = "0.1.0"
