"""The dashboards with several replicas (real Prometheus engine, `promtool test rules`): two
replicas briefly exporting one tenant (a handover) count its agents and exceptions once, the
shared outbox is not multiplied by the number of replicas, and tenants on different replicas
add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.dashboards import load_dashboards, panels
from tests.deploy.promql import PROMTOOL, promtool_eval, substitute

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (prometheus)")

DASHBOARDS = {d["uid"]: d for d in load_dashboards().values()}
VALUES = {"tenant": ".*", "team": ".*", "top": "10", "__range": "10m"}

SERIES = [
    # tenant t1 handed over from replica a to b: both export it at 5m (a's last scrape)
    ('puzzelmon_agents{tenant="t1",team="Support",state="ready",instance="a"}', "3x5"),
    ('puzzelmon_agents{tenant="t1",team="Support",state="ready",instance="b"}', "_x5 3x5"),
    ('puzzelmon_exceptions{tenant="t1",team="Support",rule="break_overrun",instance="a"}', "1x5"),
    (
        'puzzelmon_exceptions{tenant="t1",team="Support",rule="break_overrun",instance="b"}',
        "_x5 1x5",
    ),
    # tenant t2 on replica c all along
    ('puzzelmon_agents{tenant="t2",team="Sales",state="ready",instance="c"}', "2x10"),
    ('puzzelmon_exceptions{tenant="t2",team="Sales",rule="late_login",instance="c"}', "1x10"),
    # the one shared outbox, as each of the three replicas reports it
    *((f'puzzelmon_outbox_pending{{sink="slack",instance="{i}"}}', "4x10") for i in "abc"),
]


def expr_of(uid: str, title: str) -> str:
    panel = next(p for p in panels(DASHBOARDS[uid]) if p.get("title") == title)
    return substitute(panel["targets"][0]["expr"], VALUES)


def test_a_tenant_exported_by_two_replicas_during_a_handover_counts_once(tmp_path: Path) -> None:
    tests = [
        {
            "expr": expr_of("pzm-adherence", "Agents logged on"),
            "eval_time": "5m",
            "exp_samples": [{"labels": "{}", "value": 5}],  # 3 of t1 (once) + 2 of t2
        },
        {
            "expr": expr_of("pzm-adherence", "Open exceptions"),
            "eval_time": "5m",
            "exp_samples": [{"labels": "{}", "value": 2}],
        },
        {
            "expr": expr_of("pzm-adherence", "Agents by state"),
            "eval_time": "5m",
            "exp_samples": [{"labels": '{state="ready"}', "value": 5}],
        },
        {
            "expr": expr_of("pzm-adherence", "Open exceptions by rule"),
            "eval_time": "5m",
            "exp_samples": [
                {"labels": '{rule="break_overrun"}', "value": 1},
                {"labels": '{rule="late_login"}', "value": 1},
            ],
        },
    ]
    done = promtool_eval(tmp_path, SERIES, tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_shared_outbox_is_not_multiplied_by_the_replicas(tmp_path: Path) -> None:
    tests = [
        {
            "expr": expr_of("pzm-health", "Outbox pending"),
            "eval_time": "5m",
            "exp_samples": [{"labels": '{sink="slack"}', "value": 4}],
        }
    ]
    done = promtool_eval(tmp_path, SERIES, tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_check_would_catch_a_plain_sum(tmp_path: Path) -> None:
    """The same series through the sum the dashboards had: the handover counts t1 twice."""
    tests = [
        {
            "expr": 'sum(puzzelmon_agents{state!="logged_off"})',
            "eval_time": "5m",
            "exp_samples": [{"labels": "{}", "value": 5}],
        }
    ]
    done = promtool_eval(tmp_path, SERIES, tests)
    assert done.returncode != 0
    assert "8" in done.stdout + done.stderr
