"""Screens of the preflight TUI: fleet, node, check, plan, help."""
