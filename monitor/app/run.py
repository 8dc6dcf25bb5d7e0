"""`puzzel-monitor run -c config.yaml`: load the configuration, set up logging, wire the monitor
(`monitor.app.wiring`) and serve it until a signal (`monitor.app.service.serve`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitor.app.config import ConfigError, iter_secrets, load_config
from monitor.app.gc_tuning import tune_gc
from monitor.app.logging import configure_logging
from monitor.app.service import serve
from monitor.app.wiring import Monitor
from monitor.core.exits import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_RUNTIME
from monitor.rules.loader import RulesError


def run_command(args: argparse.Namespace) -> int:
    """`puzzel-monitor run -c config.yaml`."""
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"puzzel-monitor: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    level: str = config.log.level
    cli_level = getattr(args, "log_level", "info")
    if cli_level and cli_level.lower() != "info":  # an explicit --log-level wins
        level = cli_level.lower()
    configure_logging(level, config.log.format, secrets=iter_secrets(config))
    try:
        monitor = Monitor(config)
    except RulesError as e:
        print(f"puzzel-monitor: rules error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    tune_gc()  # after the configuration, rules and wiring exist: they are never garbage
    try:
        return asyncio.run(serve(monitor))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping
        return EXIT_INTERRUPTED
    except Exception as e:  # last resort: one line, not a traceback
        print(f"puzzel-monitor: fatal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_RUNTIME
