"""Every hang parser on every NCCL-log / flight-recorder corpus file, truncated or mangled: a value, never a raise."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from preflight.hang.flight_recorder import parse_dump_text, parse_frtrace, safe_unpickle
from preflight.hang.nccl_log import parse_nccl_log
from preflight.hang.ncclras import parse_ras
from preflight.hang.sniff import HangFile, parse_path, parse_text
from preflight.hang.verdict import analyze
from preflight.hang.watchdog import parse_watchdog
from preflight.parse.common import Unparseable, strip_corpus_header

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
FILES = sorted([*CORPUS.glob("nccl_logs/*.txt"), *CORPUS.glob("flight_recorder/*.txt")])
PARSERS = [parse_nccl_log, parse_watchdog, parse_dump_text, parse_frtrace, parse_text, parse_ras]


def test_the_corpus_files_are_there() -> None:
    assert len(FILES) >= 30  # the corpus grows (copies of shared recordings, samples added here)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_file_gives_a_typed_result(path: Path) -> None:
    r = parse_text(path.read_text(), path.name)
    assert isinstance(r, HangFile) and r.kinds, getattr(r, "reason", "")
    assert isinstance(parse_path(path), HangFile)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_no_parser_crashes_on_truncations_or_garbage(path: Path) -> None:
    _, body = strip_corpus_header(path.read_text())
    rng = random.Random(str(path))
    cuts = [body, "", "\n\n", body.replace("\n", "\r\n")] + [body[: rng.randrange(0, max(1, len(body)))] for _ in range(6)]
    cuts.append("\x00\xff\xfe garbage \x1b[31m" + "".join(chr(rng.randrange(0, 0x2FF)) for _ in range(300)))
    cuts.append(bytes(rng.randrange(256) for _ in range(512)).decode("latin-1"))
    cuts.append(body[: len(body) // 2] + "\x00\x01\x02" + body[len(body) // 2:])
    cuts.append("{" * 5000 + "'entries'")  # deep nesting for the literal reader
    for parser in PARSERS:
        for text in cuts:
            result = parser(text)  # must not raise
            if isinstance(result, Unparseable):
                assert result.reason and len(result.excerpt) <= 200


def test_garbage_pickles_and_files(tmp_path: Path) -> None:
    rng = random.Random(7)
    for i in range(30):
        blob = b"\x80" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        assert isinstance(safe_unpickle(blob), (Unparseable, dict, list, tuple, int, str, float, bool, type(None), set, bytes))
        (tmp_path / f"trace_{i}").write_bytes(blob)
    v = analyze([tmp_path])  # every file reported, none fatal
    assert len(v.files) == 30 and all(not f.kinds for f in v.files)


def test_truncated_scenario_logs_still_analyse(tmp_path: Path) -> None:
    from preflight.hang.scenarios import build
    s = build("rank_stopped", nodes=2)
    for rel, text in s.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text[: len(text) * 2 // 3])
    v = analyze([tmp_path])
    assert v.files and all(f.kinds for f in v.files)
