"""Widgets and renderers of the preflight TUI."""
