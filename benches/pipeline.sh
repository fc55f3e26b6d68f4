#!/usr/bin/env bash
# Whole-pipeline throughput (SPEC §9, issue 6): `cemflow ingest` (pcap → flows, CEI,
# Delta lake) against ndpiReader (libndpi-bin) and nfstream (PyPI) on the same synth
# capture, in the same run. Prints packets/s of each (best of $RUNS) and the ratios.
#
#   benches/pipeline.sh [CEMFLOW_BIN]      (default: target release binary)
# Env: USERS (2000), MINUTES (3), RUNS (3), WORKERS (1), WORK (temp dir),
#      NFSTREAM_PY ($HOME/.cache/cemflow-venv/bin/python).
set -euo pipefail
BIN=${1:-${CEMFLOW_BIN:-${CARGO_TARGET_DIR:-target}/release/cemflow}}
USERS=${USERS:-2000}; MINUTES=${MINUTES:-3}; RUNS=${RUNS:-3}; WORKERS=${WORKERS:-1}
PY=${NFSTREAM_PY:-$HOME/.cache/cemflow-venv/bin/python}
WORK=${WORK:-$(mktemp -d)}
[ -x "$BIN" ] || { echo "no cemflow binary at $BIN (cargo build --release)"; exit 2; }
CAP=$WORK/pipeline.pcap
if [ ! -s "$CAP" ]; then
  "$BIN" synth --users "$USERS" --minutes "$MINUTES" --seed 9 --volume 0.01 \
    --faults access:olt2:congestion@1-2m --out "$CAP" --topology "$WORK/topo.csv" >&2
fi
PKTS=$("$BIN" flows "$CAP" --format jsonl | python3 -c '
import sys, json
print(sum(r["c2s_pkts"] + r["s2c_pkts"] for r in map(json.loads, sys.stdin)))')
best() { # best wall seconds of RUNS runs of "$@"
  local b=""
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N)
    b=$(python3 -c "a=$t1-$t0; b='$b'; print(a if not b else min(a, float(b)))")
  done
  echo "$b"
}
cem_run() { rm -rf "$WORK/lake"; CEMFLOW_PSEUDO_KEY=bench "$BIN" ingest "$CAP" \
  --topology "$WORK/topo.csv" --lake "$WORK/lake" -w "$WORKERS" --no-progress; }
T_CEM=$(best cem_run)
echo "capture: $CAP ($PKTS packets)"
printf "cemflow ingest -w %s: %.2f s = %.0f packets/s\n" "$WORKERS" "$T_CEM" \
  "$(python3 -c "print($PKTS/$T_CEM)")"
if command -v ndpiReader >/dev/null; then
  T_NDPI=$(best ndpiReader -i "$CAP" -q)
  printf "ndpiReader: %.2f s = %.0f packets/s; cemflow/ndpiReader = %.2fx\n" "$T_NDPI" \
    "$(python3 -c "print($PKTS/$T_NDPI)")" "$(python3 -c "print($T_NDPI/$T_CEM)")"
else echo "ndpiReader missing (apt-get install libndpi-bin)"; fi
if "$PY" -c "import nfstream" 2>/dev/null; then
  T_NFS=$(best "$PY" -c "
import nfstream, sys
n = 0
for f in nfstream.NFStreamer(source='$CAP', statistical_analysis=False, n_dissections=20):
    n += 1
print(n)")
  printf "nfstream: %.2f s = %.0f packets/s; cemflow/nfstream = %.2fx\n" "$T_NFS" \
    "$(python3 -c "print($PKTS/$T_NFS)")" "$(python3 -c "print($T_NFS/$T_CEM)")"
else echo "nfstream missing ($PY -m pip install nfstream)"; fi
