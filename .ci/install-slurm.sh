#!/usr/bin/env bash
# Installs what tests/integration/test_slurm_transport.py needs: Debian's Slurm (slurmctld, slurmd,
# srun, sinfo, scontrol, salloc) and munge. Only when something is missing; apt-get only; sudo when
# not root. Installs packages and nothing else: no service is enabled, started or configured (the
# test starts its own munged/slurmctld/slurmd from a temp folder and stops them by PID).
set -euo pipefail

missing=""
for prog in munged slurmctld slurmd srun sinfo scontrol salloc; do
  command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || missing="$missing $prog"
done
if [ -z "$missing" ]; then
  exit 0
fi

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-slurm: missing$missing; installing slurm-wlm munge" >&2
$SUDO apt-get update -qq
# Where systemd runs, the packages may start their stock services (reading /etc); the test's own
# daemons use other ports and a private munge socket, so the two do not meet.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
