"""The benchmark suite of puzzel-monitor: `python -m bench` (`make bench`); see bench/README.md."""
