"""Command line: run | replay | merge | demo | plan | tui | hang | analyze | checks | nccl-multinode.

Exit codes: 0 pass, 1 warnings (--fail-on warn), 2 failures, 3 cannot run, 4 drift from --baseline
(regressions, when the run itself passed); 130 interrupted.

The parser is cli/parser.py; each command lives with its kind: cli/run.py (run, replay, demo, checks), cli/merge.py,
cli/plan.py, cli/oncall.py (hang, analyze, nccl-multinode), cli/tui.py. Nothing outside this package
imports it: the layers under it (session, engine, plan, report, tui) are handed data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from preflight.cli.common import DEMO_LABEL, demo_bundle_path
from preflight.cli.parser import build_parser
from preflight.cli.tui import interactive


def _handlers() -> dict[str, Callable[..., int]]:
    from preflight.cli.history import cmd_history
    from preflight.cli.merge import cmd_merge
    from preflight.cli.oncall import cmd_analyze, cmd_hang, cmd_nccl_multinode
    from preflight.cli.plan import cmd_plan
    from preflight.cli.run import cmd_checks, cmd_demo, cmd_replay, cmd_run
    from preflight.cli.tui import cmd_tui

    return {"run": cmd_run, "replay": cmd_replay, "demo": cmd_demo, "checks": cmd_checks,
            "nccl-multinode": cmd_nccl_multinode, "plan": cmd_plan, "tui": cmd_tui,
            "analyze": cmd_analyze, "hang": cmd_hang, "history": cmd_history, "merge": cmd_merge}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _handlers()[args.command](args)
    except KeyboardInterrupt:
        print("preflight: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


__all__ = ["DEMO_LABEL", "build_parser", "demo_bundle_path", "interactive", "main"]
