"""The hang verdict's likely causes, one module per kind of evidence: progress (watchdog, flight recorder),
kernel (Xid), network (transport, socket fallback), nccl (versions, init, WARN lines), ras (ncclras reports).
Each returns scored Causes; preflight.hang.verdict.analyze ranks them."""
