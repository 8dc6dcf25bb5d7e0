"""`puzzel-monitor rules check [DIR] [-c CONFIG]`: the rule files alone, or also against a
configuration's cadences (the rules layer cannot read the configuration itself)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from monitor.app.config import ConfigError, load_config
from monitor.core.exits import EXIT_CONFIG
from monitor.rules import loader


def check_command(args: argparse.Namespace) -> int:
    cadences: dict[str, tuple[Mapping[str, float], float]] = {}
    config_path = getattr(args, "config", None)
    if config_path:
        try:
            config = load_config(config_path)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_CONFIG
        cadences = {
            t.customer_key: (t.cadences.enabled(), float(t.cadences.jitter)) for t in config.tenants
        }
    return loader.check_command(args, cadences)
