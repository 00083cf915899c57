"""Run a command while one CPU-bound process per core competes with it, then stop them.

``make test-under-load`` runs the test suite so: a test that depends on timing (a worker
killed while starting, a heartbeat, a timeout) must hold when the machine is busy, as CI's
shared machines often are. The burners are stopped however the command ends; the exit code
is the command's.

Usage: python scripts/with-load.py [--burners N] -- COMMAND [ARG ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

BURN = "while True: pass"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--burners", type=int, default=cores, help=f"default {cores}")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
    print(f"with-load: {args.burners} CPU-bound processes on {cores} cores", file=sys.stderr)
    start = time.monotonic()
    try:
        code = subprocess.call(command)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"with-load: exit {code} after {time.monotonic() - start:.0f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
