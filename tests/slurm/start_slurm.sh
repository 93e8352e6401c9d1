#!/bin/sh
# Start a private single-node SLURM (slurmctld + slurmd, munge auth) for the SLURM test tier.
#
#   tests/slurm/start_slurm.sh DIR     # installs the Debian packages if missing, writes DIR/etc/slurm.conf,
#                                      # starts the daemons, waits until the node is idle
#   export SLURM_CONF=DIR/etc/slurm.conf
#   tests/slurm/start_slurm.sh --stop DIR
#
# Runs as root without systemd or cgroups. The config lives under DIR (never /etc/slurm), so a
# machine's real cluster is left alone; SLURM_CTLD_PORT / SLURMD_PORT pick other ports than 6817/6818.
# munged is started only if none is running, and then stopped by --stop.
set -eu

if [ "${1:-}" = "--stop" ]; then
    DIR=${2:?usage: start_slurm.sh --stop DIR}
    for pidfile in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munged.pid"; do
        [ -f "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    done
    exit 0
fi

DIR=${1:?usage: start_slurm.sh DIR}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
CTLD_PORT=${SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${SLURMD_PORT:-6818}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

mkdir -p "$DIR/etc" "$DIR/log" "$DIR/state" "$DIR/spool"

# munge: reuse a running daemon, else start one (its pid is kept so --stop ends only ours)
if ! [ -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null;
                                     chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    runuser -u munge -- /usr/sbin/munged --force
    cp /run/munge/munged.pid "$DIR/munged.pid"
fi

HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
cat > "$DIR/etc/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
MaxArraySize=10001
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=300
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF="$DIR/etc/slurm.conf"
nohup slurmctld -D -i >"$DIR/log/slurmctld.stdout" 2>&1 &
nohup slurmd -D >"$DIR/log/slurmd.stdout" 2>&1 &

for _ in $(seq 150); do
    state=$(sinfo -h -o %T 2>/dev/null || true)
    if [ "$state" = "idle" ]; then
        echo "SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.2
done
echo "SLURM did not become idle in 30 s (node state: '${state:-none}'); logs in $DIR/log:" >&2
tail -n 5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 2>/dev/null || true
exit 1
