"""Built-in checks. The list is explicit: importing this package registers every check."""

from checks import (
    active,
    gpu,
    health,
    infiniband,
    limits,
    link_quality,
    memory,
    nccl,
    network,
    pcie,
    topology,
    versions,
)

__all__ = ["active", "gpu", "health", "infiniband", "limits", "link_quality", "memory", "nccl", "network", "pcie",
           "topology", "versions"]
