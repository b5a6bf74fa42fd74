"""Offline hang analysis: NCCL_DEBUG logs, PyTorch watchdog timeouts, flight-recorder dumps, Xid kernel logs.

Entry point: `preflight.hang.verdict.analyze(paths) -> HangVerdict` (ranked causes with evidence).
Single texts: `preflight.hang.sniff.parse_text(text)`.
"""
