"""Evidence lines and launcher-prefix stripping shared by the hang parsers."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EVIDENCE = 300  # characters of one quoted line


@dataclass(frozen=True)
class Evidence:
    """One real line of an input file: where it is and what it says."""

    source: str  # file name (or '' for a bare text)
    line: int  # 1-based line number in the file as given (after any corpus header)
    text: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.source else f"line {self.line}"
        return f"{where}: {self.text}"


def evidence(source: str, lineno: int, text: str) -> Evidence:
    t = text.strip()
    return Evidence(source, lineno, t if len(t) <= MAX_EVIDENCE else t[: MAX_EVIDENCE - 3] + "...")


# Launcher prefixes that come before NCCL's own 'host:pid:tid [dev]' prefix or torch's '[rankN]:' prefix:
#   log-viewer line numbers '[80746] ', MPI '--tag-output' '[1,0]<stdout>:', MPI rank tags '[155] ',
#   srun --label '10: ', pdsh/deepspeed 'host: '.
_LAUNCHER = re.compile(
    r"^\s*(?:"
    r"\[\d+,\d+\]<std(?:out|err)>:\s?"
    r"|\[\d+\]\s+"
    r"|\d+:\s+"
    r"|[A-Za-z0-9][\w.\-]*:\s+(?=[A-Za-z0-9][\w.\-]*:\d+:\d+ \[)"
    r")"
)
_MPI_RANK = re.compile(r"^\s*\[(?:\d+,)?(\d+)\](?:<std(?:out|err)>:)?")


def strip_launcher(line: str) -> tuple[str, int | None]:
    """The line without launcher prefixes (up to three), and the launcher's rank tag when it printed one."""
    tag: int | None = None
    for _ in range(3):
        m = _LAUNCHER.match(line)
        if not m:
            break
        if tag is None:
            t = _MPI_RANK.match(m.group(0))
            if t:
                tag = int(t.group(1))
        line = line[m.end():]
    return line.strip(), tag


def split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
