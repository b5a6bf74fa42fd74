"""Built-in checks. The list is explicit: importing this package registers every check."""

from checks import gpu, infiniband, memory, topology, versions  # noqa: F401

__all__ = ["gpu", "infiniband", "memory", "topology", "versions"]
