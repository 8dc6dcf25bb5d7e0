"""A simulated Puzzel tenant served over HTTP: random mode (a seeded contact centre) or scripted
mode (a scenario file), with fault injection. See `Simulator` and `app.create_app`."""

from monitor.simulator.auth import Credentials
from monitor.simulator.centre import Behaviour, CentreConfig, RandomCentre
from monitor.simulator.faults import Faults
from monitor.simulator.scripted import ScriptedCentre
from monitor.simulator.simulator import RequestRecord, Simulator

__all__ = [
    "Behaviour",
    "CentreConfig",
    "Credentials",
    "Faults",
    "RandomCentre",
    "RequestRecord",
    "ScriptedCentre",
    "Simulator",
]
