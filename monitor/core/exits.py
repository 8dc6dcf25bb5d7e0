"""The exit codes of every command, in one place (README, "Exit codes")."""

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a problem: `replay --check`, `doctor`, `rules check`
EXIT_CONFIG = 2  # bad configuration or input: the message names the file, line or field
EXIT_INPUT = EXIT_CONFIG
EXIT_RUNTIME = 3  # could not run: a port taken, Redis unreachable, a fatal error
EXIT_INTERRUPTED = 130  # stopped by SIGINT (Ctrl-C); SIGTERM is a clean stop (0)
