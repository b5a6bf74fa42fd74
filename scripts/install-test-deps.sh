#!/usr/bin/env bash
# What the test suite needs from the system, installed only where missing (Debian/Ubuntu, apt-get):
#   openssh-server + client  the simulated fleet is real sshd daemons on 127.0.0.1
#   tmux                     the TUI test runs the real `preflight tui` in tmux and reads the screen
#   slurm-wlm + munge        the Slurm transport is tested against a real local Slurm
# Installs packages only: no service is enabled, started or configured (tests start their own
# daemons from temp folders and stop them by PID). Needs root or sudo, and says so when it has neither.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
{ [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1; } ||
  need+=(openssh-server openssh-client)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
for prog in munged slurmctld slurmd srun sinfo scontrol salloc; do
  if ! command -v "$prog" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$prog" ]; then need+=(slurm-wlm munge); break; fi
done
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"
  else
    echo "scripts/install-test-deps.sh: needs root (or passwordless sudo) to apt-get install ${need[*]}; without them the sshd, TUI and Slurm tests skip" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "scripts/install-test-deps.sh: no apt-get here; install ${need[*]} yourself (the tests that need them skip)" >&2
  exit 0
fi
echo "scripts/install-test-deps.sh: installing ${need[*]}" >&2
$SUDO apt-get update -qq
# Where systemd runs, packages may start their stock services; the tests' daemons use other ports
# and a private munge socket, so the two do not meet.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
