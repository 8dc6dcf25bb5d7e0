"""`python -m monitor doctor -c file` as a process, against a simulator on a real port."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.app.conftest import SiteFactory

ROOT = Path(__file__).resolve().parents[2]


async def run_doctor(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "doctor",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_doctor_as_a_process(site: SiteFactory, tmp_path: Path) -> None:
    s = await site("public")
    code, out, err = await run_doctor("-c", str(s.config()), "--record", str(tmp_path / "rec"))
    assert code == 0, out + err
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert lines["pause_types"].rstrip().endswith("unsupported (off)")
    assert lines["user_group_state_information"].rstrip().endswith(" ok")
    assert (tmp_path / "rec" / s.sim.customer_key / "users.json").is_file()
    bad, _, bad_err = await run_doctor("-c", str(tmp_path / "missing.yaml"))
    assert bad == 2
    assert "configuration error" in bad_err
