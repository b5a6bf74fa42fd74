"""The registry: well-formed checks, docs/checks.md in step, --checks/--skip selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.engine import all_checks, select_checks
from preflight.registry import KNOWN_FACTS, check
from preflight.report.checks_doc import checks_markdown

ROOT = Path(__file__).resolve().parents[3]


def test_every_check_is_well_formed() -> None:
    specs = all_checks()
    assert len(specs) >= 10
    for s in specs:
        assert s.id.count(".") >= 1 and s.id == s.id.lower()
        assert s.summary and s.remediation, s.id
        assert set(s.needs) <= KNOWN_FACTS


def test_docs_checks_md_matches_registry() -> None:
    doc = ROOT / "docs" / "checks.md"
    assert doc.read_text() == checks_markdown(), "regenerate: preflight checks --markdown > docs/checks.md"


def test_duplicate_id_is_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        check(id="gpu.count", group="gpu", summary="x", needs=("gpus",))(lambda n, c: [])


def test_unknown_fact_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown facts"):
        check(id="test.bogus", group="gpu", summary="x", needs=("warp_drive",))(lambda n, c: [])


def test_select_by_glob_and_group() -> None:
    chosen = select_checks("topology.*,ib")
    assert chosen and all(s.id.startswith("topology.") or s.group == "ib" for s in chosen)
    assert "pcie.nic.link" in {s.id for s in chosen}  # in group ib, selected by the group name
    skipped = {s.id for s in select_checks(None, "versions")}
    assert not any(i.startswith("versions.") for i in skipped)


def test_unknown_pattern_is_an_error() -> None:
    with pytest.raises(ValueError, match="matches no check"):
        select_checks("nosuch.*")


def test_the_registry_is_a_leaf() -> None:
    """Check modules import the registry; it must not import them, the engine or the parsers (no hidden circle)."""
    import subprocess
    import sys

    code = ("import sys, preflight.registry\n"
            "bad = [m for m in sys.modules if m == 'checks' or m.startswith(('checks.', 'preflight.engine', 'preflight.parse'))]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"importing preflight.registry loaded {out}"


def test_checks_import_only_the_authoring_api() -> None:
    """A check module imports preflight.registry, .facts and .results only (and the stdlib)."""
    import ast

    allowed = {"preflight.registry", "preflight.facts", "preflight.results", "checks", "__future__"}
    for path in sorted((ROOT / "checks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.split(".")[0] in ("preflight", "checks"):
                    assert name in allowed, f"{path.name} imports {name}"
