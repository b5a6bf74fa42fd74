"""`preflight merge BUNDLE|REPORT...`: the shards of a `run --shard K/N` joined into one fleet verdict.

Bundles (each shard's `--save DIR`) are joined into one bundle and judged by the same engine as `run` and
`replay`, so the fleet-wide checks see every node: the verdict is the unsharded run's. JSON reports (each
shard's `--json`) carry verdicts, not facts: their per-node verdicts are joined, the fleet-wide checks read
"could not judge across shards" (preflight/merge.py). Missing shards are named and the result is partial.

Exit codes as `run`: 0 pass, 1 warnings (--fail-on warn), 2 failures (a partial merge is never 0), 3 cannot
run (unreadable input, mixed inventories, a shard twice, overlapping nodes, bundles mixed with reports).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from preflight.cli.common import consoles, write_json, write_text
from preflight.merge import merge_label
from preflight.results import EXIT_CANNOT_RUN, exit_code

# Options that need facts (or a bundle): refused for reports, which hold only verdicts.
_NEEDS_FACTS = ("model", "baseline", "checks", "skip", "timings", "emit_hosts", "emit_excluded", "save", "drain",
                "resume")


def _load(path: str) -> tuple[str, Any]:
    """('bundle', Bundle) or ('report', dict); ValueError (one line) for anything else."""
    from preflight.collect.bundle import BUNDLE_FILE, BUNDLE_FORMAT, load_bundle

    p = Path(path)
    target = p / BUNDLE_FILE if p.is_dir() else p
    try:
        doc = json.loads(target.read_text())
    except FileNotFoundError:
        raise ValueError(f"{target}: no such file (give bundle directories, bundle.json or JSON report files)") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{target}: not readable JSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("format") == BUNDLE_FORMAT:
        return "bundle", load_bundle(target)
    if isinstance(doc, dict) and doc.get("schema") == "preflight-report":
        return "report", doc
    raise ValueError(f"{target}: neither a preflight bundle nor a preflight JSON report")


def cmd_merge(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import BundleError
    from preflight.merge import MergeError, merge_bundles

    out, err = consoles(args)
    try:
        loaded = [(path, *_load(path)) for path in args.inputs]
        kinds = {kind for _p, kind, _d in loaded}
        if len(kinds) > 1:
            raise MergeError("give only bundles or only JSON reports, not both (bundles: "
                             + ", ".join(p for p, k, _d in loaded if k == "bundle") + ")")
        if kinds == {"report"}:
            return _merge_reports(args, [(p, d) for p, _k, d in loaded], out, err)
        bundle = merge_bundles([(p, d) for p, _k, d in loaded])
    except (BundleError, ValueError) as exc:  # MergeError is a ValueError
        err.print(f"[bold red]preflight merge: {escape(str(exc))}[/]")
        return EXIT_CANNOT_RUN
    if args.save:
        from preflight.collect.bundle import save_bundle

        err.print(f"merged bundle saved: {save_bundle(bundle, args.save)}")
    if not args.record:
        args.no_history = True  # each shard's run was recorded already
    from preflight.cli.run import emit

    record = bundle.options["shard"]
    return emit(args, bundle, _source(args, record, bundle.inventory.get("path"), "bundles"), merge_label(record, len(loaded)))


def _source(args: argparse.Namespace, record: dict[str, Any], inventory: Any, what: str) -> dict[str, Any]:
    return {"kind": "merge", "bundle": args.save, "label": f"merge of {len(args.inputs)} {what}",
            "inventory": inventory, "inputs": list(args.inputs), "shard": record}


def _merge_reports(args: argparse.Namespace, items: list[tuple[str, dict[str, Any]]], out: Console,
                   err: Console) -> int:
    from preflight.engine import all_checks
    from preflight.merge import fleet_dependent, merge_reports
    from preflight.report.json_report import report_dict

    asked = [f"--{k.replace('_', '-')}" for k in _NEEDS_FACTS if getattr(args, k, None)]
    if asked or getattr(args, "expect", None) or getattr(args, "accept", None) or getattr(args, "ack", None):
        asked += [f"--{k}" for k in ("expect", "accept", "ack") if getattr(args, k, None)]
        err.print(f"[bold red]preflight merge: {', '.join(asked)} need facts: merge the shards' bundles, not their "
                  "JSON reports[/]")
        return EXIT_CANNOT_RUN
    report, record = merge_reports(items, fleet_dependent(all_checks()))
    source = _source(args, record, None, "reports")
    doc = report_dict(report, source=source, fail_on=args.fail_on, lazy=True)  # nodes made as written
    if args.json:
        write_json(args.json, doc)
    if args.junit:
        from preflight.report.junit import junit_xml

        write_text(args.junit, junit_xml(report, fail_on=args.fail_on))
    if args.markdown:
        from preflight.report.markdown_report import markdown_summary

        write_text(args.markdown, markdown_summary(report, fail_on=args.fail_on))
    label = merge_label(record, len(items)) + ". From JSON reports: fleet-wide checks could not be judged across shards"
    if not args.quiet and args.json != "-":
        from preflight.report import console as console_report

        console_report.render(report, out, source_label=label)
    elif args.quiet:
        err.print(label)
    return exit_code(report, args.fail_on)
