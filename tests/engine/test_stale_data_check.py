"""`rules check -c CONFIG` refuses a stale_data `after` that is not longer than an endpoint's
cadence plus jitter (it would fire between two good polls), and accepts the shipped files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[2]


def rules_dir(tmp_path: Path, after: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "activities.yaml").write_text((ROOT / "rules" / "activities.yaml").read_text())
    rules = yaml.safe_load((ROOT / "rules" / "rules.yaml").read_text())
    rules["rules"]["stale_data"]["after"] = after
    (d / "rules.yaml").write_text(yaml.safe_dump(rules))
    return d


def config(tmp_path: Path, queues: str) -> Path:
    path = tmp_path / "config.yaml"
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    data["tenants"][0]["cadences"] = {"queues": queues, "agent_stats": "off",
                                      "queue_ticker": "off", "access_points": "off"}  # fmt: skip
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_rules_fit_the_example_config(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "check", str(ROOT / "rules"), "-c", str(ROOT / "config.example.yaml")])
    assert code == 0, capsys.readouterr().err


@pytest.mark.parametrize(("after", "queues", "code"), [("30s", "30s", 2), ("45s", "30s", 0)])
def test_stale_data_after_must_exceed_the_cadence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], after: str, queues: str, code: int
) -> None:
    rules = rules_dir(tmp_path, after)
    assert main(["rules", "check", str(rules), "-c", str(config(tmp_path, queues))]) == code
    err = capsys.readouterr().err
    if code:
        assert "stale_data.after" in err
        assert "queues cadence" in err
    else:
        assert err == ""


def test_without_a_config_only_the_files_are_checked(tmp_path: Path) -> None:
    assert main(["rules", "check", str(rules_dir(tmp_path, "1s"))]) == 0
