#!/usr/bin/env bash
# Installs what the Slurm executor's integration test needs on a fresh Debian machine, idempotently: Slurm's
# daemons and commands (slurm-wlm) and munge. The test (test/engine/sweeps/slurm.integration.test.ts) starts a
# one-node cluster itself, on ports of its own, and stops it afterwards; nothing is started here.
set -euo pipefail

say() { printf '[setup-slurm] %s\n' "$*"; }

if command -v slurmctld >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
  say "slurm-wlm and munge: already installed"
else
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  say "apt-get update"
  $SUDO apt-get update -qq
  say "apt-get install slurm-wlm munge"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
say "installed: $(dpkg-query -W -f='${Package} ${Version}  ' slurm-wlm munge)"
