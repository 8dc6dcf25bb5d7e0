"""Issue 15's dashboard joins evaluated by the real Prometheus engine (`promtool test rules`
with `promql_expr_test`) on hand-written series: names come from puzzelmon_agent_info, an agent
without one is still listed by id, queue exceptions are listed by queue name, and the timelines
keep the agents with the most time out of adherence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.dashboards import load_dashboards, panels
from tests.deploy.promql import PROMTOOL, promtool_eval, substitute

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (prometheus)")

ADHERENCE = next(d for d in load_dashboards().values() if d["uid"] == "pzm-adherence")
VALUES = {"tenant": "t1", "team": ".*", "top": "2", "__range": "10m"}

SERIES = [
    # two agents with names, one without (left the roster), one queue
    ('puzzelmon_agent_info{tenant="t1",team="Support",agent_id="1001",name="Ada Nilsen"}', "1x20"),
    ('puzzelmon_agent_info{tenant="t1",team="Sales",agent_id="1002",name="Kari Berg"}', "1x20"),
    ('puzzelmon_agent_info{tenant="t1",team="Sales",agent_id="1004",name="Ola Dahl"}', "1x20"),
    (
        'puzzelmon_exception_started_timestamp_seconds{tenant="t1",team="Support",'
        'agent_id="1001",rule="break_overrun"}',
        "300x20",
    ),
    (
        'puzzelmon_exception_started_timestamp_seconds{tenant="t1",team="Sales",'
        'agent_id="1003",rule="late_login"}',
        "420x20",
    ),
    (
        'puzzelmon_queue_exception_started_timestamp_seconds{tenant="t1",queue="4102",'
        'rule="queue_no_agents_ready"}',
        "540x20",
    ),
    ('puzzelmon_queue_requests_waiting{tenant="t1",queue="4102",queue_name="Sales NO"}', "2x20"),
    # out of adherence over the range: 1001 60 s, 1002 300 s, 1004 0 s
    ('puzzelmon_scheduled_seconds_total{tenant="t1",team="Support",agent_id="1001"}', "0+60x20"),
    ('puzzelmon_adherent_seconds_total{tenant="t1",team="Support",agent_id="1001"}', "0+57x20"),
    ('puzzelmon_scheduled_seconds_total{tenant="t1",team="Sales",agent_id="1002"}', "0+60x20"),
    ('puzzelmon_adherent_seconds_total{tenant="t1",team="Sales",agent_id="1002"}', "0+45x20"),
    ('puzzelmon_scheduled_seconds_total{tenant="t1",team="Sales",agent_id="1004"}', "0+60x20"),
    ('puzzelmon_adherent_seconds_total{tenant="t1",team="Sales",agent_id="1004"}', "0+60x20"),
    *(
        (f'puzzelmon_agent_state_code{{tenant="t1",team="{team}",agent_id="{aid}"}}', f"{code}x20")
        for team, aid, code in (("Support", "1001", 7), ("Sales", "1002", 4), ("Sales", "1004", 1))
    ),
]


def _expr(metric: str) -> str:
    panel = next(p for p in panels(ADHERENCE) if metric in p["targets"][0]["expr"])
    return substitute(panel["targets"][0]["expr"], VALUES)


def test_current_exceptions_name_agents_and_list_queues(tmp_path: Path) -> None:
    """At 10 min: Ada Nilsen's break overrun (open 300 s), agent 1003 without a name by id
    (180 s), and the Sales NO queue (60 s), longest first."""
    sample = {
        "exp_samples": [
            {
                "labels": '{tenant="t1",team="Support",agent_id="1001",rule="break_overrun",'
                'name="Ada Nilsen",who="Ada Nilsen"}',
                "value": 300,
            },
            {
                "labels": '{tenant="t1",team="Sales",agent_id="1003",rule="late_login",'
                'who="agent 1003"}',
                "value": 180,
            },
            {
                "labels": '{tenant="t1",queue="4102",rule="queue_no_agents_ready",'
                'queue_name="Sales NO",who="queue Sales NO"}',
                "value": 60,
            },
        ]
    }
    expr = _expr("puzzelmon_exception_started_timestamp_seconds")
    done = promtool_eval(tmp_path, SERIES, [{"expr": expr, "eval_time": "10m", **sample}])
    assert done.returncode == 0, done.stdout + done.stderr


def test_timelines_keep_the_agents_most_out_of_adherence_with_names(tmp_path: Path) -> None:
    """With top = 2 the state timeline keeps Kari Berg (300 s out) and Ada Nilsen (60 s), not
    Ola Dahl (0 s), each labelled with the name and with its state code unchanged."""
    expected = [
        {"labels": '{agent_id="1001",name="Ada Nilsen"}', "value": 7},
        {"labels": '{agent_id="1002",name="Kari Berg"}', "value": 4},
    ]
    expr = _expr("puzzelmon_agent_state_code")
    done = promtool_eval(
        tmp_path, SERIES, [{"expr": expr, "eval_time": "10m", "exp_samples": expected}]
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_per_agent_adherence_table_carries_names(tmp_path: Path) -> None:
    """The per-agent adherence query keeps its ratio and gains the agent's name."""
    panel = next(p for p in panels(ADHERENCE) if p["title"].startswith("Adherence and conformance"))
    expr = substitute(panel["targets"][0]["expr"], VALUES)
    expected = [
        {"labels": f'{{tenant="t1",team="{team}",agent_id="{aid}",name="{name}"}}', "value": v}
        for team, aid, name, v in (
            ("Support", "1001", "Ada Nilsen", 0.95),
            ("Sales", "1002", "Kari Berg", 0.75),
            ("Sales", "1004", "Ola Dahl", 1),
        )
    ]
    done = promtool_eval(
        tmp_path, SERIES, [{"expr": expr, "eval_time": "10m", "exp_samples": expected}]
    )
    assert done.returncode == 0, done.stdout + done.stderr
