from __future__ import annotations

from pathlib import Path

import pytest

from preflight.parse.common import strip_corpus_header

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def body(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


@pytest.fixture
def corpus() -> Path:
    return CORPUS
