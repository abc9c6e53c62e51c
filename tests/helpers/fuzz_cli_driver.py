"""Runs `litdata.cli.main` on a list of cases, each in a forked child with its own time limit (see
tests/commands/test_cli_fuzz.py). Usage: python fuzz_cli_driver.py CASES.json RESULTS.json

litdata is imported once here and each case runs in a fork, so a case costs its own work, not an interpreter
start; the fork also isolates the cases and lets a case that hangs (a regex, a reader loop) be killed at its
deadline. Nothing in this parent runs litdata code, so no library thread exists when it forks.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from litdata.cli import main


def run_case(case: dict) -> dict:
    out_path, err_path = case["stdout"], case["stderr"]
    pid = os.fork()
    if pid == 0:  # the child: the case's folder, its own stdout and stderr files
        code = 98
        try:
            os.chdir(case["cwd"])
            fd_out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd_err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            code = main(case["argv"])
        except SystemExit as e:  # argparse rejecting an option: exit 2, its usage line on stderr
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 99
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + case["limit_s"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"rc": os.waitstatus_to_exitcode(status), "timed_out": False}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"rc": None, "timed_out": True}
        time.sleep(0.05)


if __name__ == "__main__":
    cases = json.loads(open(sys.argv[1]).read())
    results = []
    for case in cases:
        t = time.monotonic()
        r = run_case(case)
        results.append({**r, "seconds": round(time.monotonic() - t, 2)})
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
