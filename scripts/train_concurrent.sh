#!/usr/bin/env bash
# Train several configs at once, one process per config, and keep track of them.
#
#   scripts/train_concurrent.sh [--background] CONFIG... [-- extra ppo_lstm_enkf.py flags]
#   scripts/train_concurrent.sh --status      # which trainings run, their last progress line, exit codes
#   scripts/train_concurrent.sh --stop        # SIGTERM every running training: each writes a checkpoint, exits
#
# Each training logs to logs/<config>/train.log and writes its PID to logs/<config>/train.pid; its exit code
# goes to logs/<config>/train.exit when it ends. The cores are shared out (--torch-threads = cores / configs,
# at least 1). In the foreground the script waits and prints a summary of exit codes (non-zero if any failed);
# Ctrl-C stops all trainings cleanly (they checkpoint; resume with --resume). --background detaches the whole
# thing (nohup); its summary goes to logs/train_all.log. Environment: PY (python), RL4DA_LOGS (logs folder).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGS=${RL4DA_LOGS:-logs}

status() {
  local found=0
  for pidf in "$LOGS"/*/train.pid; do
    [ -e "$pidf" ] || continue
    found=1
    local dir name pid state
    dir=$(dirname "$pidf"); name=$(basename "$dir"); pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      state="running (pid $pid)"
    elif [ -f "$dir/train.exit" ]; then
      state="finished, exit $(cat "$dir/train.exit")"
    else
      state="not running (pid $pid gone without an exit code: killed?)"
    fi
    printf '%-14s %s\n' "$name" "$state"
    [ -f "$dir/train.log" ] && grep -E '^\[(train|eval|resume|signal)' "$dir/train.log" | tail -n 1 | cut -c1-160 | sed 's/^/               /'
  done
  [ $found = 1 ] || echo "no trainings started from scripts/train_concurrent.sh under $LOGS/"
}

stop() {
  local n=0
  for pidf in "$LOGS"/*/train.pid; do
    [ -e "$pidf" ] || continue
    local pid; pid=$(cat "$pidf")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" && n=$((n + 1)) && echo "SIGTERM -> $(basename "$(dirname "$pidf")") (pid $pid): checkpoint, then exit"
    fi
  done
  echo "$n training(s) signalled"
}

case "${1:-}" in
  --status) status; exit 0 ;;
  --stop) stop; exit 0 ;;
  -h|--help|"") sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; [ -n "${1:-}" ]; exit $? ;;
esac

if [ "$1" = "--background" ]; then
  shift
  mkdir -p "$LOGS"
  nohup "$0" "$@" > "$LOGS/train_all.log" 2>&1 &
  echo "started in the background (pid $!); summary in $LOGS/train_all.log; 'make status' to follow"
  exit 0
fi

configs=() extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  configs+=("$1"); shift
done
for c in "${configs[@]}"; do
  [ -f "$c" ] || { echo "error: config file not found: $c" >&2; exit 2; }
done
cores=$(nproc 2>/dev/null || echo 1)
threads=$(( cores / ${#configs[@]} )); [ "$threads" -ge 1 ] || threads=1

pids=() names=()
for c in "${configs[@]}"; do
  name=$(basename "$c" .py)
  dir="$LOGS/$name"; mkdir -p "$dir"
  if [ -f "$dir/train.pid" ] && kill -0 "$(cat "$dir/train.pid")" 2>/dev/null; then
    echo "error: $name is already training (pid $(cat "$dir/train.pid")); 'make stop' first" >&2
    continue
  fi
  rm -f "$dir/train.exit"
  "$PY" ppo_lstm_enkf.py --config "$c" --torch-threads "$threads" "${extra[@]}" > "$dir/train.log" 2>&1 &
  echo $! > "$dir/train.pid"
  pids+=($!) names+=("$name")
  echo "started $name (pid $!, $threads thread(s)) -> $dir/train.log"
done

trap 'echo "stopping: SIGTERM to all trainings (each checkpoints)"; for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done' INT TERM
fail=0
for i in "${!pids[@]}"; do
  while true; do
    wait "${pids[$i]}"; code=$?
    # a trapped signal interrupts `wait` with code > 128 while the child still runs: wait again
    kill -0 "${pids[$i]}" 2>/dev/null || break
  done
  echo "$code" > "$LOGS/${names[$i]}/train.exit"
done
echo "summary:"
for i in "${!pids[@]}"; do
  code=$(cat "$LOGS/${names[$i]}/train.exit")
  [ "$code" = 0 ] || fail=1
  printf '  %-14s exit %s  (%s)\n' "${names[$i]}" "$code" "$LOGS/${names[$i]}/train.log"
done
exit $fail
