#!/usr/bin/env bash
# mpirun -H across two hosts, for real: two network namespaces joined by a veth pair, each with its own
# hostname and its own sshd, stand in for two machines (the filesystem is shared, as NFS would be).
# (a) train_gpt on 2 ranks, one per host, over TCP, ends with the checkpoint of the same run on one host,
# byte for byte; (b) the second host dying mid-training (every process in its namespace killed) ends
# the job within 10 s, non-zero, the output naming that host, and the checkpoint in --out whole.
# Needs root, network namespaces and Debian's openssh-server; without them it exits 77 (skipped).
# usage: check_hosts.sh <mpirun> <train_gpt> <work folder>
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 <mpirun> <train_gpt> <work folder>" >&2
    exit 2
fi
mpirun=$1 program=$2 work=$3
skip() {
    echo "check_hosts: skipped: $*"
    exit 77
}
fail() {
    echo "check_hosts: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || skip "needs root, for network namespaces and a veth pair"
[ -x /usr/sbin/sshd ] || skip "no /usr/sbin/sshd: install Debian's openssh-server"
for tool in ip ssh ssh-keygen unshare timeout; do
    command -v $tool >/dev/null || skip "no $tool: install iproute2, openssh-client, util-linux and coreutils"
done

ns1=xgrad-host1-$$ ns2=xgrad-host2-$$
ip1=10.213.0.1 ip2=10.213.0.2 subnet=10.213.0.0/24
tmp=$(mktemp -d /tmp/xgrad-hosts.XXXXXX)
made_run_sshd=0
cleanup() {
    local ns
    for ns in $ns2 $ns1; do   # whatever still runs in a namespace: sshd, its sessions, a job
        if [ -e /run/netns/$ns ]; then
            ip netns pids $ns 2>/dev/null | xargs -r kill -9 2>/dev/null || true
            ip netns del $ns 2>/dev/null || true
        fi
    done
    [ $made_run_sshd -eq 0 ] || rmdir /run/sshd 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # through the EXIT trap

ip netns add $ns1 2>"$tmp/netns.err" || skip "ip netns add failed: $(cat "$tmp/netns.err")"
ip netns add $ns2
# the link's ends are named after this process too: two runs at once must not collide
ip link add xgh1-$$ netns $ns1 type veth peer name xgh2-$$ netns $ns2 2>"$tmp/veth.err" ||
    skip "no veth pair: $(cat "$tmp/veth.err")"
ip -n $ns1 addr add $ip1/24 dev xgh1-$$
ip -n $ns2 addr add $ip2/24 dev xgh2-$$
ip -n $ns1 link set lo up
ip -n $ns2 link set lo up
ip -n $ns1 link set xgh1-$$ up
ip -n $ns2 link set xgh2-$$ up

# throw-away keys: the client's (authorized on both hosts) and one host key for both
ssh-keygen -q -t ed25519 -N '' -C xgrad-check-hosts -f "$tmp/id"
ssh-keygen -q -t ed25519 -N '' -C xgrad-check-hosts -f "$tmp/host_key"
cat >"$tmp/ssh_config" <<EOF
Host *
    User root
    IdentityFile $tmp/id
    IdentitiesOnly yes
    BatchMode yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ConnectTimeout 5
EOF
if [ ! -d /run/sshd ]; then   # sshd's privilege separation needs it
    mkdir -p /run/sshd
    made_run_sshd=1
fi
start_sshd() {   # namespace, address, hostname
    cat >"$tmp/sshd_$3" <<EOF
ListenAddress $2
HostKey $tmp/host_key
AuthorizedKeysFile $tmp/id.pub
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile $tmp/sshd_$3.pid
EOF
    # a hostname of its own (a UTS namespace), inherited by the sessions: mpirun's messages name the host
    ip netns exec $1 unshare --uts sh -c "hostname $3 && exec /usr/sbin/sshd -D -e -f $tmp/sshd_$3" \
        >"$tmp/sshd_$3.log" 2>&1 &
    disown   # the cleanup's kill -9 is expected: no "Killed" from bash
}
start_sshd $ns1 $ip1 xgrad-host1
start_sshd $ns2 $ip2 xgrad-host2
deadline=$((SECONDS + 10))
until ip netns exec $ns1 ssh -F "$tmp/ssh_config" $ip1 true 2>/dev/null &&
      ip netns exec $ns1 ssh -F "$tmp/ssh_config" $ip2 true 2>/dev/null; do   # up once each lets us in
    [ $SECONDS -lt $deadline ] || { cat "$tmp"/sshd_*.log >&2; fail "sshd did not let us in within 10 s"; }
    sleep 0.1
done

common=(--n-layer 2 --eval-interval 4 --eval-iters 2 --max-new-tokens 5 --dropout 0.1)
# Each job under a timeout: a hung one must fail here, where the trap cleans up, not be killed by ctest.
# One host, as the other MPI tests run it.
one_host=(timeout -k 5 60 "$mpirun" --allow-run-as-root --oversubscribe --mca plm isolated --mca btl self,vader
          --mca btl_vader_single_copy_mechanism none -x XGRAD_NUM_THREADS=1 -np 2)
# Two hosts: mpirun on the first (in its hostname too); ssh, with the throw-away key, starts the second's
# daemon. The ranks talk over TCP on the veth pair alone (ob1 is the PML that uses the TCP BTL; UCX
# would pick its own transports). --bind-to none: the two "hosts" share this machine's cores.
two_hosts=(timeout -k 5 60 ip netns exec $ns1 unshare --uts sh -c 'hostname xgrad-host1 && exec "$@"' sh
           "$mpirun" --allow-run-as-root -H $ip1:1,$ip2:1 -np 2 --display-map --bind-to none
           --mca plm rsh --mca plm_rsh_agent "ssh -F $tmp/ssh_config"
           --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include $subnet --mca oob_tcp_if_include $subnet
           -x XGRAD_NUM_THREADS=1)
# the lines that say where the ranks ran and how training went
summary() { grep -E "Data for node|Process rank|data-parallel|step +[0-9]+ +train|^wrote" "$1" || true; }

rm -rf "$work"
mkdir -p "$work"
cd "$work"   # mpirun starts the ranks in its own folder: the same path on both hosts

# (a) the same 8 steps on one host and across two: byte-identical checkpoints
"${one_host[@]}" "$program" "${common[@]}" --steps 8 --out "$work/one-host" >"$work/one-host.log" 2>&1 ||
    { cat "$work/one-host.log"; fail "the one-host run failed"; }
"${two_hosts[@]}" "$program" "${common[@]}" --steps 8 --out "$work/two-hosts" >"$work/two-hosts.log" 2>&1 ||
    { cat "$work/two-hosts.log"; fail "the two-host run failed"; }
summary "$work/two-hosts.log"
grep -q "data-parallel: 2 ranks" "$work/two-hosts.log" || fail "train_gpt did not run on 2 ranks"
# mpirun's map puts rank 1 on the second host, and that host's sshd let mpirun's daemon in
grep -A1 "Data for node: $ip2" "$work/two-hosts.log" | grep -q "Process rank: 1" || fail "rank 1 did not run on $ip2"
grep -q "Accepted publickey for root" "$tmp/sshd_xgrad-host2.log" ||
    { cat "$tmp/sshd_xgrad-host2.log"; fail "nothing logged in to the second host"; }
cmp "$work/one-host/checkpoint.safetensors" "$work/two-hosts/checkpoint.safetensors" ||
    fail "the two-host run's checkpoint differs from the one-host run's"
echo "check_hosts: 2 ranks on two hosts over TCP end with the one-host run's checkpoint, byte for byte"

# (b) the second host dies mid-training. The run resumes the 8-step checkpoint in a copy of its folder:
# train_gpt writes its checkpoint at the end alone, so the one there must outlive the job whole.
cp -a "$work/two-hosts" "$work/host-dies"
"${two_hosts[@]}" "$program" "${common[@]}" --steps 100000 --resume "$work/host-dies/checkpoint.safetensors" \
    --out "$work/host-dies" >"$work/host-dies.log" 2>&1 &
job=$!
# until rank 0 reports step 12: both ranks are in the training loop (the job's timeout bounds the wait)
until grep -q "step    12 " "$work/host-dies.log"; do
    kill -0 $job 2>/dev/null || { cat "$work/host-dies.log"; fail "the run ended before step 12"; }
    sleep 0.1
done
start=$(date +%s)
ip netns pids $ns2 | xargs -r kill -9   # the host's every process: sshd, mpirun's daemon and rank 1
deadline=$((SECONDS + 30))   # 30 s to end, of which it may take 10 (below)
while kill -0 $job 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 0.1
done
kill -0 $job 2>/dev/null && { cat "$work/host-dies.log"; fail "the job still runs 30 s after the second host died"; }
status=0
wait $job || status=$?
seconds=$(($(date +%s) - start))
sed -n '/step    12 /,$p' "$work/host-dies.log"
echo "check_hosts: exit status $status, $seconds s after the second host died"
[ $status -ne 0 ] || fail "the job ended with 0 after losing a host"
[ $status -ne 124 ] && [ $status -ne 137 ] || fail "the job was ended by its 60 s timeout, not by the lost host"
[ $seconds -le 10 ] || fail "the job took $seconds s to end after the second host died, more than 10 s"
for pid in $(ip netns pids $ns1); do
    [ "$(cat /proc/$pid/comm 2>/dev/null)" != train_gpt ] || fail "rank 0 (process $pid) still runs after the job ended"
done
# OpenMPI 4.1 names a lost host, never its ranks: the job's map, printed at the start, ties the host to
# rank 1. mpirun's message is one of two, by a race between two reports of the same closed connection:
# the daemon's ("ORTE has lost communication with a remote daemon ... on node 10.213.0.2"), or ssh's
# exit, taken for a daemon that failed to start ("ORTE was unable to reliably start one or more
# daemons", no host). ssh names the host either way: "Connection to 10.213.0.2 closed by remote host."
grep -A1 "Data for node: $ip2" "$work/host-dies.log" | grep -q "Process rank: 1" || fail "mpirun's map does not put rank 1 on $ip2"
host=${ip2//./\\.}
grep -Eq "Remote daemon: .* on node $host\$|Connection to $host closed" "$work/host-dies.log" ||
    fail "the output does not name the lost host $ip2"
# the checkpoint is the 8-step one, byte for byte, and loads: one more step resumed from it, in one process
cmp "$work/two-hosts/checkpoint.safetensors" "$work/host-dies/checkpoint.safetensors" ||
    fail "the checkpoint in --out is not the whole one of step 8"
XGRAD_NUM_THREADS=1 timeout 60 "$program" "${common[@]}" --steps 9 --resume "$work/host-dies/checkpoint.safetensors" \
    --out "$work/reloaded" >"$work/reloaded.log" 2>&1 || { cat "$work/reloaded.log"; fail "the checkpoint left behind does not load"; }
echo "check_hosts: the second host ($ip2, rank 1's) dying ended the job in $seconds s, naming it; the step-8 checkpoint is whole"
