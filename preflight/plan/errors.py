"""The one error the planner raises: bad user input (unknown model, unreadable config.json)."""

from __future__ import annotations


class PlanError(ValueError):
    """A planning input that cannot be used; the message says what to fix."""
