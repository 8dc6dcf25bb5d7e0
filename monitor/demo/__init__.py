"""`puzzel-monitor demo`: the scripted scenario, the run, and the live terminal view."""
