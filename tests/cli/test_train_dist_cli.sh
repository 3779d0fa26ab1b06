#!/usr/bin/env bash
# End-to-end tests of `train` as several processes (README "Training on several machines"): real
# processes on localhost joined by c10d (TCPStore rendezvous, Gloo), launched through the plain
# launcher variables (torchrun's and srun's) always, and through PyTorch's own launcher
# (python3 -m torch.distributed.run) where it is installed (Debian's python3-torch).
#   bash tests/cli/test_train_dist_cli.sh /path/to/train /path/to/make_tiny_dataset
# Each check prints "ok - name" or "FAIL - name: details" (or "skip - name: why"); the last line is
# "N passed, M failed" and the exit status is non-zero if any check failed. Runs are a few steps
# of batch 2 on 0.5 s crops with one thread per process; weights are compared through
# --debug-weights (each rank's weights after every step, raw float32).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ $# -eq 2 ] || { echo "usage: $0 /path/to/train /path/to/make_tiny_dataset" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
TRAIN=$(abs "$1") MAKE_DATA=$(abs "$2")
for b in "$TRAIN" "$MAKE_DATA"; do
  [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }
done
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
"$PY" -c "import numpy" 2>/dev/null || { echo "missing: python3 with numpy" >&2; exit 2; }
command -v timeout >/dev/null || { echo "missing tool: timeout" >&2; exit 2; }
# No launcher variables from the caller's environment (a CI job run under Slurm, say).
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT GLOO_SOCKET_IFNAME \
  TORCHELASTIC_USE_AGENT_STORE TORCHELASTIC_RESTART_COUNT SLURM_PROCID SLURM_NTASKS \
  SLURM_STEP_NUM_TASKS SLURM_LOCALID SLURM_STEP_ID SLURM_STEPID SLURM_STEP_NODELIST \
  SLURM_JOB_NODELIST SLURM_NODELIST

T=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T" || exit 2
PASSED=0 FAILED=0
ok()   { echo "ok - $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL - $1: $2"; FAILED=$((FAILED + 1)); }
skip() { echo "skip - $1: $2"; }
text() { tr '\n' '|' <"$1"; }

"$MAKE_DATA" --pairs 8 --seconds 1.5 data >/dev/null || { echo "make_tiny_dataset failed" >&2; exit 2; }
# (-q, or not where the notices are checked: "resuming at step ...").
FASTV=(--data data --batch 2 --crop-seconds 0.5 --threads 1 --workers 1)
FAST=("${FASTV[@]}" -q)
LIMIT=120  # no run may take longer: a hang fails its checks instead of stalling ctest

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ranks DIR N PORT ARGS...: N ranks through torchrun's variables; each rank R writes DIR/outR,
# DIR/errR, DIR/rcR. Waits for all.
ranks() {
  local dir=$1 n=$2 port=$3 r; shift 3
  mkdir -p "$dir"
  local pids=()
  for ((r = 0; r < n; r++)); do
    (MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=$n RANK=$r LOCAL_RANK=$r \
      timeout -k 5 $LIMIT "$TRAIN" "$@" >"$dir/out$r" 2>"$dir/err$r"; echo $? >"$dir/rc$r") &
    pids+=($!)
  done
  wait "${pids[@]}"
}
rcs() { local d=$1 r out=""; for r in $(seq 0 $(($2 - 1))); do out+="$(cat "$d/rc$r" 2>/dev/null || echo ?) "; done; echo "${out% }"; }

# compare.py DIR-A RANK-A DIR-B RANK-B STEPS: the largest difference between the weights of the
# two ranks after each of STEPS (comma-separated): "max <value> at steps <STEPS>", or what is
# missing.
cat >compare.py <<'EOF'
import os, sys
import numpy as np
a_dir, a_rank, b_dir, b_rank, steps = sys.argv[1:6]
worst = 0.0
for s in steps.split(","):
    x, y = [os.path.join(d, "rank%s.step%s.f32" % (r, s)) for d, r in ((a_dir, a_rank), (b_dir, b_rank))]
    for f in (x, y):
        if not os.path.exists(f):
            print("missing", f); sys.exit()
    x, y = np.fromfile(x, np.float32), np.fromfile(y, np.float32)
    if x.size != y.size or x.size == 0:
        print("sizes differ", x.size, y.size); sys.exit()
    worst = max(worst, float(np.abs(x.astype(np.float64) - y).max()))
print("max %.3g at steps %s" % (worst, steps))
EOF
compare() { "$PY" compare.py "$@"; }
# check_same NAME DIR-A RANK-A DIR-B RANK-B TOLERANCE STEPS: the weights after each step within
# TOLERANCE (0: bit for bit).
check_same() {
  local r; r=$(compare "$2" "$3" "$4" "$5" "$7")
  if [[ "$r" != max* ]]; then fail "$1" "$r"; return; fi
  if awk -v m="$(cut -d' ' -f2 <<<"$r")" -v t="$6" 'BEGIN { exit !(m <= t) }'; then ok "$1 ($r)"
  else fail "$1" "$r, tolerance $6"; fi
}

# ---------------------------------------------------------------- two ranks, and one standing in

P=$(free_port)
mkdir -p w2 o2 o2b
ranks w2 2 "$P" "${FAST[@]}" --steps 4 --val-every 2 -o o2/m.dnz --debug-weights w2
[ "$(rcs w2 2)" = "0 0" ] && ok "two ranks: both exit 0" || fail "two ranks: both exit 0" "exit codes $(rcs w2 2); $(text w2/err0) $(text w2/err1)"
check_same "two ranks: identical weights after every step" w2 0 w2 1 0 "0,1,2,3,4"
grep -qF "2 processes, global batch 4 (2 x 2 per process)" w2/out0 &&
  ok "two ranks: the summary gives the global batch" ||
  fail "two ranks: the summary gives the global batch" "$(text w2/out0)"
[ -s o2/m.dnz ] && [ -s o2/m.resume.pt ] && [ "$(wc -l <o2/m.log.jsonl)" -eq 3 ] &&
  ok "two ranks: rank 0 wrote the model, state and log (3 validations)" ||
  fail "two ranks: rank 0 wrote the model, state and log" "$(ls o2; cat o2/m.log.jsonl 2>/dev/null | wc -l)"
grep -aqE '"ranks": ?2[,}]' o2/m.dnz && ok "two ranks: the model's metadata says 2 ranks" ||
  fail "two ranks: the model's metadata says 2 ranks" "no \"ranks\": 2"
[ ! -s w2/out1 ] && [ ! -s w2/err1 ] && ok "two ranks: rank 1 is silent" ||
  fail "two ranks: rank 1 is silent" "$(text w2/out1) $(text w2/err1)"

# Rank 1 told to write elsewhere writes nothing there: rank 0 alone writes.
P=$(free_port)
mkdir -p wo
(MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=2 RANK=0 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 2 -o o2b/r0.dnz >/dev/null 2>wo/err0) &
MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=2 RANK=1 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 2 -o wo/r1.dnz >/dev/null 2>wo/err1
wait
[ -s o2b/r0.dnz ] && [ -z "$(ls wo | grep -v '^err')" ] && ok "only rank 0 writes files" ||
  fail "only rank 0 writes files" "rank 1's folder: $(ls wo | tr '\n' ' '); rank 0's: $(ls o2b | tr '\n' ' ')"

mkdir -p ws os
timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 4 --val-every 2 -o os/m.dnz --simulate-ranks 2 \
  --debug-weights ws >ws/out 2>ws/err
check_same "one process drawing both ranks' batches reaches the same weights (1e-5)" w2 0 ws sim 1e-5 "0,1,2,3,4"
grep -qF "2 simulated ranks, global batch 4" ws/out && ok "simulated ranks: the summary says so" ||
  fail "simulated ranks: the summary says so" "$(text ws/out)"
# A check that can fail: one process with its own batches only trains otherwise.
mkdir -p w1 o1
timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 4 --val-every 2 -o o1/m.dnz --debug-weights w1 >/dev/null 2>&1
r=$(compare w2 0 w1 0 4)
awk -v m="$(cut -d' ' -f2 <<<"$r")" 'BEGIN { exit !(m > 1e-3) }' &&
  ok "a single process (rank 0's batches only) ends elsewhere ($r)" ||
  fail "a single process (rank 0's batches only) ends elsewhere" "$r"

# ---------------------------------------------------------------- launchers

# Slurm's srun: its task variables, the master from the step's node list, the port from the option.
P=$(free_port)
mkdir -p wslurm oslurm
for r in 0 1; do
  (SLURM_PROCID=$r SLURM_NTASKS=2 SLURM_STEP_NUM_TASKS=2 SLURM_LOCALID=$r SLURM_STEP_ID=0 \
    SLURM_STEP_NODELIST=localhost SLURM_JOB_NODELIST=localhost \
    timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 4 --val-every 2 -o oslurm/m.dnz \
    --master-port "$P" --debug-weights wslurm >wslurm/out$r 2>wslurm/err$r; echo $? >wslurm/rc$r) &
done
wait
[ "$(rcs wslurm 2)" = "0 0" ] && ok "srun variables: both tasks exit 0" ||
  fail "srun variables: both tasks exit 0" "$(rcs wslurm 2); $(text wslurm/err0) $(text wslurm/err1)"
check_same "srun variables: the same weights as torchrun's variables" w2 0 wslurm 1 0 "0,1,2,3,4"

# A batch script's own shell (SLURM_PROCID without a step) trains alone, as by hand.
mkdir -p obatch
SLURM_PROCID=0 SLURM_NTASKS=2 SLURM_JOB_NODELIST=nowhere timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" \
  --steps 1 -o obatch/m.dnz >obatch/out 2>obatch/err
rc=$?
[ $rc -eq 0 ] && ! grep -q processes obatch/out && ok "sbatch's shell without srun: one process" ||
  fail "sbatch's shell without srun: one process" "exit $rc; $(text obatch/out) $(text obatch/err)"

# PyTorch's launcher. Debian bookworm's (1.13 under Python 3.11) fails on its default output
# options ("'NoneType' object has no attribute 'get'"), hence --redirects/--tee given explicitly.
if "$PY" -c "import torch.distributed.run" 2>/dev/null; then
  mkdir -p wtr otr
  timeout -k 5 $LIMIT "$PY" -m torch.distributed.run --no_python --standalone --nproc_per_node 2 \
    --monitor_interval 0.5 --redirects 1 --tee 2 --log_dir trlogs \
    "$TRAIN" "${FAST[@]}" --steps 4 --val-every 2 -o otr/m.dnz --debug-weights wtr >wtr/out 2>wtr/err
  rc=$?
  [ $rc -eq 0 ] && ok "torchrun --no_python: exit 0" || fail "torchrun --no_python: exit 0" "exit $rc; $(tail -5 wtr/err | tr '\n' '|')"
  check_same "torchrun: identical weights on both ranks" wtr 0 wtr 1 0 "0,1,2,3,4"
  check_same "torchrun: the same weights as the plain variables" w2 0 wtr 0 0 "0,1,2,3,4"
  out0=$(find trlogs -path '*/0/stdout.log' | head -1)
  [ -n "$out0" ] && grep -qF "global batch 4" "$out0" && ok "torchrun: rank 0's summary" ||
    fail "torchrun: rank 0's summary" "$(cat "$out0" 2>/dev/null | tr '\n' '|')"
else
  skip "torchrun" "python3 -m torch.distributed.run not installed (Debian: python3-torch)"
fi

# ---------------------------------------------------------------- faults

# start_pair DIR PORT ARGS...: two ranks in the background (PID0, PID1: the train processes
# themselves, for signals; end_of bounds the wait), outputs in DIR.
start_pair() {
  local dir=$1 port=$2 r; shift 2
  mkdir -p "$dir"
  for r in 0 1; do
    MASTER_ADDR=127.0.0.1 MASTER_PORT=$port WORLD_SIZE=2 RANK=$r "$TRAIN" "$@" \
      >"$dir/out$r" 2>"$dir/err$r" &
    eval "PID$r=$!"
    PIDS+=($!)
  done
}
# end_of PID: waits for it (killing it after $LIMIT s); sets RC.
end_of() {
  local tries=$((LIMIT * 10))
  while kill -0 "$1" 2>/dev/null && [ $tries -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
  kill -0 "$1" 2>/dev/null && { echo "# process $1 did not exit in $LIMIT s; killing it"; kill -9 "$1"; }
  wait "$1"; RC=$?
}
wait_file() {  # SECONDS PATH
  local tries=$(($1 * 10))
  while [ ! -e "$2" ] && [ $tries -gt 0 ]; do sleep 0.1; tries=$((tries - 1)); done
  [ -e "$2" ]
}
# one_line NAME FILE REGEX: FILE is one line that matches.
one_line() {
  local n; n=$(wc -l <"$2")
  if [ "$n" -eq 1 ] && grep -qE -- "$3" "$2"; then ok "$1: $(cat "$2")"
  else fail "$1" "$n lines, wanted one matching /$3/: $(text "$2")"; fi
}
elapsed_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Rank 1 last: rank 0 then saves the state of the last step, which a single process resumes.
for victim in 0 1; do
  other=$((1 - victim))
  P=$(free_port)
  rm -rf wk ok_
  mkdir -p wk ok_
  start_pair wk "$P" "${FAST[@]}" --steps 1000 --val-every 4 -o ok_/m.dnz --debug-weights wk
  if wait_file 60 wk/rank1.step9.f32; then
    eval "kill -9 \$PID$victim"
    t0=$(date +%s.%N)
    eval "end_of \$PID$other"
    rc=$RC
    took=$(elapsed_since "$t0")
    [ $rc -eq 1 ] && awk -v s="$took" 'BEGIN { exit !(s < 30) }' &&
      ok "rank $victim killed: rank $other exits 1 in ${took} s" ||
      fail "rank $victim killed: rank $other exits 1 within 30 s" "exit $rc after $took s"
    saved=""
    [ "$other" -eq 0 ] && saved=".*; resume state of step [0-9]+ saved$"
    one_line "rank $victim killed: rank $other's error" wk/err$other \
      "^train: rank $other of 2: the all-reduce of step [0-9]+ failed: .*(closed|reset|Broken pipe)$saved"
  else
    fail "rank $victim killed" "no step 9 within 60 s: $(text wk/err0) $(text wk/err1)"
  fi
  end_of "$PID0"; end_of "$PID1"
done
# The model and the resume state rank 0 saved at the failed step are intact: a single process
# resumes from that step.
mkdir -p wr
saved=$(sed -n 's/.*; resume state of step \([0-9]*\) saved$/\1/p' wk/err0)
timeout -k 5 $LIMIT "$TRAIN" "${FASTV[@]}" --steps 30 --val-every 4 -o ok_/m.dnz --resume >wr/out 2>wr/err
rc=$?
[ $rc -eq 0 ] && [ -n "$saved" ] && grep -qF "resuming at step $saved of 30" wr/err && [ -s ok_/m.dnz ] &&
  ok "after a killed rank: a single process resumes at the saved step $saved" ||
  fail "after a killed rank: a single process resumes at the saved step" "saved '$saved', exit $rc: $(text wr/err)"

# A rank that hangs (stopped) ends the other after --dist-timeout.
P=$(free_port)
rm -rf wk; mkdir -p wk ok_
start_pair wk "$P" "${FAST[@]}" --steps 1000 --val-every 1000 -o ok_/h.dnz --debug-weights wk --dist-timeout 5
if wait_file 60 wk/rank1.step5.f32; then
  kill -STOP "$PID1"
  t0=$(date +%s.%N)
  end_of "$PID0"
  rc=$RC
  took=$(elapsed_since "$t0")
  [ $rc -eq 1 ] && awk -v s="$took" 'BEGIN { exit !(s >= 4.5 && s < 25) }' &&
    ok "rank 1 hung: rank 0 exits 1 after the 5 s timeout (${took} s)" ||
    fail "rank 1 hung: rank 0 exits 1 after the 5 s timeout" "exit $rc after $took s"
  one_line "rank 1 hung: rank 0's error" wk/err0 "^train: rank 0 of 2: the all-reduce of step [0-9]+ failed: .*[Tt]imed out.*timeout 5 s"
else
  fail "rank 1 hung" "no step 5 within 60 s: $(text wk/err0)"
fi
kill -9 "$PID1" 2>/dev/null
end_of "$PID0"; end_of "$PID1"

# The master cannot be reached.
P=$(free_port)
mkdir -p wm
t0=$(date +%s.%N)
MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=2 RANK=1 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" \
  --steps 2 -o wm/m.dnz --dist-timeout 2 >wm/out 2>wm/err
rc=$?
took=$(elapsed_since "$t0")
[ $rc -eq 1 ] && awk -v s="$took" 'BEGIN { exit !(s < 15) }' && ok "no master: exit 1 in ${took} s" ||
  fail "no master: exit 1 within 15 s" "exit $rc after $took s"
one_line "no master: the error" wm/err "^train: rank 1 of 2: cannot reach the job's master at 127.0.0.1:$P within 2 s"
[ -z "$(ls wm | grep -v '^\(out\|err\)$')" ] && ok "no master: no output files" || fail "no master: no output files" "$(ls wm)"

# The master's port is in use.
P=$(free_port)
"$PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("", int(sys.argv[1]))); s.listen(); time.sleep(30)' "$P" &
LISTENER=$!
PIDS+=($LISTENER)
sleep 0.5
MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=2 RANK=0 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" \
  --steps 2 -o wm/m.dnz --dist-timeout 2 >wm/out 2>wm/err
rc=$?
kill "$LISTENER" 2>/dev/null
[ $rc -eq 1 ] && ok "port in use: exit 1" || fail "port in use: exit 1" "exit $rc"
one_line "port in use: the error" wm/err "^train: rank 0 of 2: cannot host the job's rendezvous at 127.0.0.1:$P: the port is in use"

# The ranks disagree on the world size.
P=$(free_port)
mkdir -p wx
(MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=2 RANK=0 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 2 -o wx/m.dnz --dist-timeout 10 >/dev/null 2>wx/err0; echo $? >wx/rc0) &
(MASTER_ADDR=127.0.0.1 MASTER_PORT=$P WORLD_SIZE=3 RANK=1 timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 2 -o wx/m.dnz --dist-timeout 10 >/dev/null 2>wx/err1; echo $? >wx/rc1) &
wait
[ "$(rcs wx 2)" = "1 1" ] && ok "world sizes disagree: both exit 1" || fail "world sizes disagree: both exit 1" "$(rcs wx 2)"
one_line "world sizes disagree: rank 0's error" wx/err0 "^train: rank 0 of 2: the ranks disagree on the world size: rank 1 has 3, this rank 2$"
one_line "world sizes disagree: rank 1's error" wx/err1 "^train: rank 1 of 3: the ranks disagree on the world size: rank 0 has 2, this rank 3$"

# Launcher variables that do not make sense.
bad_env() {  # name regex VAR=VALUE...
  local name=$1 re=$2; shift 2
  env "$@" timeout -k 5 $LIMIT "$TRAIN" "${FAST[@]}" --steps 2 -o wm/m.dnz >wm/out 2>wm/err
  local rc=$?
  [ $rc -eq 1 ] && ok "$name: exit 1" || fail "$name: exit 1" "exit $rc"
  one_line "$name: the error" wm/err "$re"
}
bad_env "RANK without WORLD_SIZE" "^train: launcher environment: WORLD_SIZE is not set$" RANK=1
bad_env "RANK not a number" "RANK=first is not a whole number" RANK=first WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1
bad_env "RANK beyond WORLD_SIZE" "RANK=2 is not below WORLD_SIZE=2" RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=1

# ---------------------------------------------------------------- stop, resume, other world sizes

# SIGTERM to one rank (as a scheduler's preemption would): the job stops after one step, together.
P=$(free_port)
rm -rf wk; mkdir -p wk ost
start_pair wk "$P" "${FASTV[@]}" --steps 1000 --val-every 1000 -o ost/m.dnz --debug-weights wk
if wait_file 60 wk/rank1.step4.f32; then
  kill -TERM "$PID1"
  end_of "$PID0"; rc0=$RC
  end_of "$PID1"; rc1=$RC
  last0=$(ls wk | sed -n 's/^rank0\.step\([0-9]*\)\.f32$/\1/p' | sort -n | tail -1)
  last1=$(ls wk | sed -n 's/^rank1\.step\([0-9]*\)\.f32$/\1/p' | sort -n | tail -1)
  [ "$rc0 $rc1" = "130 130" ] && [ "$last0" = "$last1" ] && [ -s ost/m.resume.pt ] &&
    grep -qF "stopped at step $last0;" wk/err0 &&
    ok "SIGTERM to rank 1: both stop at step $last0 (exit 130), state saved" ||
    fail "SIGTERM to rank 1: both stop at one step" "exits $rc0 $rc1, last steps $last0 $last1: $(text wk/err0) $(text wk/err1)"
else
  fail "SIGTERM to rank 1" "no step 4 within 60 s"
  end_of "$PID0"; end_of "$PID1"
fi

# Two ranks stop at step 2 of 4; the state resumes with 2 (the same weights as never stopping),
# 1 and 3 processes (everyone starts from the saved weights, and keeps in step).
P=$(free_port)
mkdir -p wb ob
ranks wb 2 "$P" "${FAST[@]}" --steps 4 --val-every 2 --stop-at 2 -o ob/m.dnz --debug-weights wb
for n in 1 3 2; do
  rm -rf "ob$n" "wr$n"
  cp -r ob "ob$n"
  mkdir -p "wr$n"
  if [ "$n" -eq 1 ]; then
    timeout -k 5 $LIMIT "$TRAIN" "${FASTV[@]}" --steps 4 --val-every 2 --resume -o ob1/m.dnz \
      --debug-weights wr1 >wr1/out0 2>wr1/err0
    echo $? >wr1/rc0
  else
    ranks "wr$n" "$n" "$(free_port)" "${FASTV[@]}" --steps 4 --val-every 2 --resume -o "ob$n/m.dnz" \
      --debug-weights "wr$n"
  fi
  want=$(printf '0 %.0s' $(seq "$n"))
  [ "$(rcs "wr$n" "$n")" = "${want% }" ] && grep -qF "resuming at step 2 of 4" "wr$n/err0" &&
    ok "2 ranks resumed as $n: exit 0, at step 2" ||
    fail "2 ranks resumed as $n: exit 0, at step 2" "$(rcs "wr$n" "$n"): $(text "wr$n/err0")"
  for r in $(seq 0 $((n - 1))); do
    check_same "2 ranks resumed as $n: rank $r starts from the saved weights" wb 0 "wr$n" "$r" 0 2
    [ "$r" -gt 0 ] && check_same "2 ranks resumed as $n: rank $r in step with rank 0" "wr$n" 0 "wr$n" "$r" 0 "2,3,4"
  done
done
check_same "2 ranks stopped and resumed: the weights of an uninterrupted run" wr2 0 w2 0 0 "2,3,4"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
