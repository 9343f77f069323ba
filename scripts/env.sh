# Sourced by the other scripts: creates .venv on first use, installs nst_jax with the given
# extras when setup.cfg changed since the last install, and activates it.
# Usage: source scripts/env.sh [extra[,extra...]]
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
stamp=".venv/.installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
source .venv/bin/activate
