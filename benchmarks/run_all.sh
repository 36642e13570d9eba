#!/usr/bin/env bash
# Run every bench_<system>.py in turn; results/<system>.jsonl (one JSON line
# per workload), results/<system>.stderr.log, results/summary.md.
#
#   bash run_all.sh                  # all systems
#   bash run_all.sh dask ray         # a subset
#   VENV=/tmp/benchvenv bash run_all.sh
#
# Every process a bench script starts inherits BENCH_RUN_TAG=<unique>; after
# each script we look for still-alive processes carrying that tag (read from
# /proc/PID/environ, so no name matching) and end them by PID, recording them.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${VENV:-/tmp/benchvenv}"
PY="$VENV/bin/python"
RES="$HERE/results"
mkdir -p "$RES"
SYSTEMS=("$@")
[ ${#SYSTEMS[@]} -eq 0 ] && SYSTEMS=(processpool orch ipyparallel dask ray)

tagged_pids() {  # PIDs whose environment holds BENCH_RUN_TAG=$1
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qx "BENCH_RUN_TAG=$1"; then
      echo "${p#/proc/}"
    fi
  done
}

{
  echo "== $(date -Is) run_all start"; uname -a; nproc; free -m | head -2
  "$PY" -V
} > "$RES/machine.txt"

for s in "${SYSTEMS[@]}"; do
  script="$HERE/bench_$s.py"
  [ -f "$script" ] || { echo "no $script, skipping"; continue; }
  out="$RES/$s.jsonl"; : > "$out"
  {
    echo; echo "== $(date -Is) before $s: load $(cut -d' ' -f1-3 /proc/loadavg)"
    top -bn1 -o %CPU | sed -n '7,12p'
  } >> "$RES/machine.txt"
  tag="bench-$s-$$-$(date +%s%N)"
  echo ">>> $s"
  t0=$(date +%s.%N)
  ( cd "$HERE" && BENCH_RUN_TAG="$tag" BENCH_OUT="$out" \
      timeout 600 "$PY" "$script" 2> "$RES/$s.stderr.log" ) \
    | cut -c1-160
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  echo "<<< $s rc=$rc wall=$(echo "$t1 - $t0" | bc)s"
  echo "== $(date -Is) after $s: rc=$rc load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$RES/machine.txt"
  # grace: processes may still be exiting on their own (e.g. ipyparallel's
  # engine nannies take ~2 s); wait up to 15 s before calling them leftovers
  linger=0
  while [ -n "$(tagged_pids "$tag")" ] && [ $linger -lt 15 ]; do
    sleep 1; linger=$((linger + 1))
  done
  left=$(tagged_pids "$tag" | tr '\n' ' ' | sed 's/ *$//')
  if [ -n "$left" ]; then
    echo "leftover processes after $s: $left -- terminating by PID"
    ps -o pid,ppid,etime,args -p "${left// /,}" | cut -c1-160 >> "$RES/machine.txt"
    kill -TERM $left 2>/dev/null; sleep 3
    still=$(tagged_pids "$tag" | tr '\n' ' ')
    [ -n "${still// /}" ] && kill -KILL $still 2>/dev/null
  fi
  printf '{"system": "%s", "workload": "run_info", "rc": %s, "script_wall_s": %s, "exit_linger_s": %s, "leftover_pids": [%s]}\n' \
    "$s" "$rc" "$(echo "$t1 - $t0" | bc)" "$linger" "$(echo $left | tr ' ' ',')" >> "$out"
done

"$PY" "$HERE/summarize.py" "$RES"/*.jsonl > "$RES/summary.md"
cat "$RES/summary.md"
