"""Runs one benchmark case in a fresh Python process, so that its imports, compile time and peak
memory are its own."""

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

_CHILD = (
  'import importlib, json, sys; '
  'case = importlib.import_module(sys.argv[1]).run_case(json.loads(sys.argv[2])); '
  'json.dump(case, open(sys.argv[3], "w"))'
)


def run_case(module: str, settings: dict[str, Any]) -> dict[str, Any]:
  """`module.run_case(settings)` in a child process; its JSON result, or `settings` with an
  `error` (the child's last line of output) when it fails."""
  with tempfile.TemporaryDirectory() as folder:
    output = os.path.join(folder, 'case.json')
    command = [sys.executable, '-c', _CHILD, module, json.dumps(settings), output]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0 and os.path.exists(output):
      with open(output) as f:
        return json.load(f)
  lines = (done.stderr or done.stdout).strip().splitlines()
  return {**settings, 'error': lines[-1] if lines else f'exit status {done.returncode}'}
