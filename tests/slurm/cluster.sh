#!/usr/bin/env bash
# A throwaway Slurm on this host for the tests: slurmctld plus two slurmd (simulated nodes n1 and
# n2, both at 127.0.0.1), two partitions (batch, the default, and cpu), auth/none, everything
# (config, state, spool, logs, pid files) under one base folder, ports chosen free per start.
#
#   tests/slurm/cluster.sh start BASE   # prints the `export SLURM_CONF=...` line on success
#   tests/slurm/cluster.sh env BASE     # the same line, for a cluster already started
#   tests/slurm/cluster.sh stop BASE    # scontrol shutdown, then ends what is left by pid file
#
# Needs root (the daemons run as SlurmUser=root) and Debian's slurm-wlm.
set -euo pipefail

usage() { echo "usage: $0 start|stop|env BASE" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
base=$(realpath -m "$2")
conf=$base/etc/slurm.conf
export SLURM_CONF=$conf

# A port nobody listens on now; distinct from the ones already taken by this start.
taken=""
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 40000 ))
    case " $taken " in *" $p "*) continue ;; esac
    if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
      taken="$taken $p"
      echo "$p"
      return 0
    fi
  done
  echo "cluster.sh: no free port found" >&2
  return 1
}

write_config() {
  local host ctld_port n1_port n2_port
  host=$(hostname -s)
  ctld_port=$(free_port)
  n1_port=$(free_port)
  n2_port=$(free_port)
  mkdir -p "$base/etc" "$base/state" "$base/spool/n1" "$base/spool/n2" "$base/log" "$base/run"
  : > "$base/etc/plugstack.conf"
  cat > "$conf.tmp" <<EOF
ClusterName=nemokit-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
# A requeued job waits cred_expire+1 s before it may start again (default 120): short here.
AuthInfo=cred_expire=5
CredType=cred/none
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool/%n
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd-%n.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd-%n.log
PlugStackConfig=$base/etc/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$base/log/jobcomp.txt
DependencyParameters=kill_invalid_depend
ReturnToService=2
MinJobAge=600
KillWait=5
SchedulerParameters=sched_interval=2
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=$n1_port CPUs=2 RealMemory=4000 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=$n2_port CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=batch Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=n1,n2 MaxTime=INFINITE State=UP
EOF
  mv "$conf.tmp" "$conf"
}

wait_idle() {
  for _ in $(seq 1 100); do
    if [ "$(sinfo -h -N -o '%t' 2>/dev/null | grep -c '^idle')" -ge 2 ]; then return 0; fi
    sleep 0.2
  done
  echo "cluster.sh: nodes did not become idle; see $base/log/" >&2
  sinfo -N >&2 || true
  return 1
}

# Ends the daemons named by the pid files: TERM, up to 5 s, then KILL.
stop_by_pid_files() {
  local f pid running
  for f in "$base"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    case "$pid" in ''|0|*[!0-9]*) continue ;; esac
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  done
  for _ in $(seq 1 50); do
    running=0
    for f in "$base"/run/*.pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f" 2>/dev/null || true)
      if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then running=1; fi
    done
    [ $running = 0 ] && break
    sleep 0.1
  done
  for f in "$base"/run/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    case "$pid" in ''|0|*[!0-9]*) rm -f "$f"; continue ;; esac
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
}

case "$action" in
  start)
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
      { echo "cluster.sh: slurm-wlm is not installed (slurmctld/slurmd not found)" >&2; exit 3; }
    [ "$(id -u)" = 0 ] || { echo "cluster.sh: must run as root (SlurmUser=root)" >&2; exit 3; }
    stop_by_pid_files
    rm -rf "$base/state" "$base/spool" "$base/log"
    write_config
    slurmctld -i
    slurmd -N n1
    slurmd -N n2
    wait_idle
    echo "export SLURM_CONF=$conf"
    ;;
  env)
    [ -f "$conf" ] || { echo "cluster.sh: no cluster under $base" >&2; exit 1; }
    echo "export SLURM_CONF=$conf"
    ;;
  stop)
    # The daemons remove their pid files as they exit: note the pids first, then wait for them.
    daemon_pids=""
    for f in "$base"/run/*.pid; do
      [ -f "$f" ] || continue
      p=$(cat "$f" 2>/dev/null || true)
      case "$p" in ''|0|*[!0-9]*) ;; *) daemon_pids="$daemon_pids $p" ;; esac
    done
    if [ -f "$conf" ]; then
      # Jobs still running would leave their slurmstepd behind once slurmd is gone: end them first.
      jobs=$(timeout 5 squeue -h -o %i 2>/dev/null || true)
      if [ -n "$jobs" ]; then
        timeout 5 scancel $jobs >/dev/null 2>&1 || true
        for _ in $(seq 1 50); do
          [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null || true)" ] && break
          sleep 0.1
        done
      fi
      timeout 5 scontrol shutdown >/dev/null 2>&1 || true
    fi
    still_up=""
    for _ in $(seq 1 50); do
      still_up=""
      for p in $daemon_pids; do kill -0 "$p" 2>/dev/null && still_up="$still_up $p"; done
      [ -z "$still_up" ] && break
      sleep 0.1
    done
    stop_by_pid_files
    for p in $still_up; do kill -9 "$p" 2>/dev/null || true; done
    # Any step daemon of this cluster that outlived it (found by the SLURM_CONF it was given).
    for d in /proc/[0-9]*; do
      [ "$(cat "$d/comm" 2>/dev/null)" = slurmstepd ] || continue
      if tr '\0' '\n' < "$d/environ" 2>/dev/null | grep -qxF "SLURM_CONF=$conf"; then
        kill -9 "${d#/proc/}" 2>/dev/null || true
      fi
    done
    ;;
  *) usage ;;
esac
