"""The collector's `mlxlink` probe on a host root with two IB ports and a stand-in mlxlink printing real
recordings: --json asked first, the text layout once when --json gets no JSON (an older MFT), absent tool and no
IB recorded as such, a hung mlxlink killed and not started again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from preflight.collect import collector
from preflight.collect.probes import PROBES_BY_ID
from preflight.sim.profile import hung_stand_in_script, stand_in_script

IB = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "ib"
JSON_OK = IB / "mlxlink-json-m-c-cx7-400g-dr4-osfp-mft-4.34.1.txt"
FORUM = IB / "mlxlink-c-connectx4-100gbe-rs-fec-forum-blank-lines.txt"


def _probe(timeout_s: float = 30.0) -> dict:
    p = PROBES_BY_ID["mlxlink"]
    return {"id": p.id, "kind": p.kind, "path": p.path, "timeout_s": timeout_s}


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for dev in ("mlx5_0", "mlx5_1"):
        (tmp_path / "root" / "sys" / "class" / "infiniband" / dev / "ports" / "1").mkdir(parents=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "rec").mkdir()
    monkeypatch.setenv("PREFLIGHT_HOST_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")  # sh, cat and sleep for the stand-ins
    monkeypatch.setattr(collector, "_HUNG", set())
    return tmp_path


def _tool(node: Path, text: str) -> None:
    script = node / "bin" / "mlxlink"
    script.write_text(text)
    script.chmod(0o755)


def test_json_first_then_text_once_for_an_mft_without_json(node: Path) -> None:
    _tool(node, stand_in_script("mlxlink", {"-d mlx5_0 -p 1 -m -c --json": (JSON_OK, 0, 0.0),
                                            "-d mlx5_1 -p 1 -m -c": (FORUM, 0, 0.0)}, node / "rec"))
    res = collector.builtin_mlxlink(_probe(), {})
    assert res["error"] is None
    ports = json.loads(res["stdout"])["ports"]
    assert sorted(ports) == ["mlx5_0/1", "mlx5_1/1"]
    assert ports["mlx5_0/1"]["argv"] == ["mlxlink", "-d", "mlx5_0", "-p", "1", "-m", "-c", "--json"]
    assert json.loads(ports["mlx5_0/1"]["stdout"])["status"]["code"] == 0
    assert ports["mlx5_1/1"]["argv"] == ["mlxlink", "-d", "mlx5_1", "-p", "1", "-m", "-c"]
    assert "Raw Physical BER : 3E-12" in ports["mlx5_1/1"]["stdout"]


def test_no_mlxlink_is_absent_and_no_ib_is_said(node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("mlxlink"):
        pytest.skip("this machine has a real mlxlink on /usr/bin or /bin")
    assert collector.builtin_mlxlink(_probe(), {})["error"] == "absent"
    monkeypatch.setenv("PREFLIGHT_HOST_ROOT", str(node / "nowhere"))
    res = collector.builtin_mlxlink(_probe(), {})
    assert res["error"] is None and json.loads(res["stdout"]) == {"ports": {}, "no_ib": True}


def test_a_hung_mlxlink_is_killed_and_not_started_again(node: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tool(node, hung_stand_in_script("mlxlink", 600))
    monkeypatch.setattr(collector, "MLXLINK_PORT_S", 1.0)
    ports = json.loads(collector.builtin_mlxlink(_probe(), {})["stdout"])["ports"]
    assert ports["mlx5_0/1"]["error"] == "timeout"
    assert ports["mlx5_1/1"]["error"] == "not run" and "timed out on an earlier port" in ports["mlx5_1/1"]["note"]
