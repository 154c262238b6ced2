#!/usr/bin/env bash
# arm64 rehearsal of the Raspberry Pi agent, on this x86 machine, without any image download.
#
# 1. builds (once; cached) a Debian bookworm arm64 root with mmdebstrap from this machine's Debian
#    mirror, run under qemu-user-static through binfmt_misc;
# 2. installs the agent into it exactly as the README's Pi section says (python3 -m venv,
#    pip install '/tmp/hwsearch[agent]' from a git clone, /etc/hwsearch/agent.env, a system user);
# 3. starts a coordinator on 127.0.0.1 with TLS (a throwaway CA made with openssl) and enrolment,
#    and the agent inside the root as the README's systemd unit would (its user, its env file);
# 4. measures three artifacts (fp32, fp16, int8 static): the figures must say EMULATED;
# 5. runs 200 images through each artifact with ARM onnxruntime and compares with x86 onnxruntime:
#    max |delta logit| and argmax agreement per scheme.
#
# Usage (as root):  scripts/pi_rehearsal.sh [--rebuild]
# Environment: HWSEARCH_REHEARSAL_CACHE (default /var/cache/hwsearch-pi-rehearsal) holds the root;
#              PYTHON (default: python3) must have this repository's search extra installed.
# Exit status: 0 when everything passed, 1 when a check failed, 2 when this host cannot run it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${HWSEARCH_REHEARSAL_CACHE:-/var/cache/hwsearch-pi-rehearsal}"
ROOT="$CACHE/bookworm-arm64"
PYTHON="${PYTHON:-python3}"
SUITE=bookworm
DEVICE=rpi4b
STARTED=$(date +%s)
STEP_STARTED=$STARTED
WORK=""
MOUNTS=()
PIDS=()

FIRST_STEP=1

step() {
    local now
    now=$(date +%s)
    [ "$FIRST_STEP" = 1 ] || echo "    (took $((now - STEP_STARTED)) s)"
    FIRST_STEP=0
    STEP_STARTED=$now
    echo "==> [$(date +%H:%M:%S), +$((now - STARTED)) s] $*"
}

cannot() {
    echo "error: $1 -- fix: $2" >&2
    exit 2
}

fail() {
    echo "error: $*" >&2
    exit 1
}

cleanup() {
    local pid mount
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        mount="${MOUNTS[$i]}"
        umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
    done
    [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

bind_into_root() {
    mkdir -p "$ROOT$2"
    mount --bind "$1" "$ROOT$2"
    MOUNTS+=("$ROOT$2")
}

wait_for_line() {  # FILE PATTERN SECONDS PID: print FILE's first line matching PATTERN; fail if PID exits first
    local deadline=$(($(date +%s) + $3))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if grep -m1 -E "$2" "$1" 2>/dev/null; then
            return 0
        fi
        kill -0 "$4" 2>/dev/null || return 1
        sleep 0.5
    done
    return 1
}

REBUILD=0
[ "${1:-}" = "--rebuild" ] && REBUILD=1

step "checking the host"
[ "$(id -u)" = 0 ] || cannot "the rehearsal needs root (mmdebstrap, binfmt_misc, mounts and chroot)" "run it with sudo"
[ "$(uname -m)" = x86_64 ] || echo "    note: host is $(uname -m), not x86_64; the comparison is then ARM vs $(uname -m)"
"$PYTHON" -c "import torch, onnxruntime, evaluators" 2>/dev/null \
    || cannot "$PYTHON cannot import torch, onnxruntime and this repository" "set PYTHON to the project's venv python and PYTHONPATH=$REPO"
missing=()
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
[ -x /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
command -v arch-test >/dev/null || missing+=(arch-test)
command -v openssl >/dev/null || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]} (Debian packages)"
    (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}") >/dev/null \
        || cannot "apt-get could not install ${missing[*]}" "install them by hand (apt-get install ${missing[*]})"
fi

step "setting up binfmt_misc for qemu-aarch64"
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || cannot "cannot mount binfmt_misc" "run on a kernel with binfmt_misc and as real root (not in an unprivileged container)"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    conf=/usr/lib/binfmt.d/qemu-aarch64.conf
    [ -r "$conf" ] || cannot "no $conf" "install qemu-user-static"
    grep -v '^#' "$conf" | head -1 > /proc/sys/fs/binfmt_misc/register \
        || cannot "cannot register qemu-aarch64 with binfmt_misc" "check dmesg; the host must allow binfmt registration"
fi
grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 || cannot "qemu-aarch64 is registered but disabled" \
    "echo 1 > /proc/sys/fs/binfmt_misc/qemu-aarch64"
arch-test arm64 >/dev/null || cannot "this host cannot run arm64 binaries through qemu" "check /proc/sys/fs/binfmt_misc/qemu-aarch64"
echo "    $(head -2 /proc/sys/fs/binfmt_misc/qemu-aarch64 | tr '\n' ' ')"

MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$MIRROR" ] || cannot "no Debian mirror in /etc/apt/sources.list.d/debian.sources" "add one (URIs: http://deb.debian.org/debian)"

if [ "$REBUILD" = 1 ] && [ -d "$ROOT" ]; then
    step "removing the cached root $ROOT (--rebuild)"
    rm -rf "$ROOT"
fi
if [ -e "$ROOT/.hwsearch-root-complete" ]; then
    step "reusing the cached arm64 root $ROOT"
else
    step "building a Debian $SUITE arm64 root with mmdebstrap from $MIRROR into $ROOT (minutes, emulated)"
    mkdir -p "$CACHE"
    rm -rf "$ROOT.partial"
    mmdebstrap --quiet --arch=arm64 --variant=apt \
        --include=python3,python3-venv,python3-pip,git,ca-certificates,passwd \
        "$SUITE" "$ROOT.partial" "$MIRROR" || fail "mmdebstrap could not build the root (see above)"
    touch "$ROOT.partial/.hwsearch-root-complete"
    mv "$ROOT.partial" "$ROOT"
fi

WORK=$(mktemp -d /tmp/hwsearch-rehearsal.XXXXXX)
chmod 755 "$WORK"
# /proc and /dev only: with the x86 host's /proc *and* /sys visible, onnxruntime's cpuinfo (1.32,
# under qemu 7.2) segfaults at import; without /sys it warns and falls back to generic kernels.
bind_into_root /proc /proc
bind_into_root /dev /dev
bind_into_root "$WORK" /rehearsal
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
[ -r /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
in_root() { chroot "$ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
echo "    $(in_root python3 -c 'import platform; print("root python", platform.python_version(), platform.machine())')"

step "installing the agent as the README's Pi section says (venv, pip install '.[agent]': aarch64 wheels, emulated)"
rm -rf "$ROOT/opt/hwsearch-agent" "$ROOT/tmp/hwsearch" "$ROOT/var/lib/hwsearch-agent" "$ROOT/var/cache/hwsearch-agent" \
    "$ROOT/etc/hwsearch"
git clone --quiet "$REPO" "$ROOT/tmp/hwsearch"
echo "    cloned $(git -C "$ROOT/tmp/hwsearch" log --oneline -1)"
if ! git -C "$REPO" diff --quiet HEAD -- evaluators pyproject.toml; then
    echo "    note: uncommitted changes under evaluators/ are not in the clone; the root installs the committed HEAD"
fi
in_root env PIP_CERT=/etc/ssl/certs/ca-certificates.crt sh -ec '
    id hwsearch-agent >/dev/null 2>&1 || useradd --system --home /var/lib/hwsearch-agent --shell /usr/sbin/nologin hwsearch-agent
    python3 -m venv /opt/hwsearch-agent
    /opt/hwsearch-agent/bin/pip install --quiet --disable-pip-version-check "/tmp/hwsearch[agent]"
    install -d -m 750 -g hwsearch-agent /etc/hwsearch
    install -d -o hwsearch-agent -g hwsearch-agent -m 700 /var/lib/hwsearch-agent /var/cache/hwsearch-agent
'
in_root /opt/hwsearch-agent/bin/python -c 'import importlib.metadata as m; print("    agent venv:", ", ".join(f"{p} {m.version(p)}" for p in ("onnxruntime", "numpy", "httpx")))'
cp "$REPO/scripts/pi_rehearsal.py" "$WORK/pi_rehearsal.py"

step "building the rehearsal model (fp32, fp16, int8 static) and the x86 reference outputs"
PYTHONPATH="$REPO" OMP_NUM_THREADS=1 "$PYTHON" "$REPO/scripts/pi_rehearsal.py" prepare --out "$WORK"

step "starting a coordinator on 127.0.0.1 with TLS (throwaway CA) and enrolment"
TOKEN=$(openssl rand -hex 32)
ENROL_TOKEN=$(openssl rand -hex 32)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=hwsearch rehearsal CA" \
    -keyout "$WORK/ca-key.pem" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=hwsearch coordinator" \
    -keyout "$WORK/server-key.pem" -out "$WORK/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$WORK/server.ext"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca-key.pem" -CAcreateserial -days 2 \
    -extfile "$WORK/server.ext" -out "$WORK/server.pem" 2>/dev/null
HWSEARCH_FLEET_TOKEN="$TOKEN" HWSEARCH_FLEET_ENROL_TOKEN="$ENROL_TOKEN" PYTHONPATH="$REPO" \
    "$PYTHON" -m evaluators.fleet serve --storage "sqlite:///$WORK/fleet.db" --listen 127.0.0.1:0 \
    --tls-cert "$WORK/server.pem" --tls-key "$WORK/server-key.pem" --log-level warning \
    > "$WORK/coordinator.out" 2> "$WORK/coordinator.log" &
PIDS+=($!)
banner=$(wait_for_line "$WORK/coordinator.out" "listening on" 60 "${PIDS[-1]}") || fail "the coordinator did not start: $(tail -5 "$WORK/coordinator.log")"
URL=$(echo "$banner" | sed -E 's/.* listening on (https:[^ ]+) .*/\1/')
echo "    $banner"

step "starting the agent inside the arm64 root (user hwsearch-agent, /etc/hwsearch/agent.env, as the systemd unit)"
install -m 644 "$WORK/ca.pem" "$ROOT/etc/hwsearch/ca.pem"
printf 'HWSEARCH_FLEET_TOKEN=%s\nHWSEARCH_FLEET_URL=%s\nHWSEARCH_FLEET_CA=%s\n' "$ENROL_TOKEN" "$URL" /etc/hwsearch/ca.pem \
    > "$ROOT/etc/hwsearch/agent.env"
chmod 600 "$ROOT/etc/hwsearch/agent.env"
chroot "$ROOT" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 sh -c '
    set -a; . /etc/hwsearch/agent.env; set +a
    export HOME=/var/lib/hwsearch-agent
    exec setpriv --reuid=hwsearch-agent --regid=hwsearch-agent --init-groups \
        /opt/hwsearch-agent/bin/python -m evaluators.agent --fleet "$HWSEARCH_FLEET_URL" --device '"$DEVICE"' \
        --threads 4 --work-dir /var/cache/hwsearch-agent --credential /var/lib/hwsearch-agent/credential.json' \
    2> "$WORK/agent.log" &
PIDS+=($!)
registered=$(wait_for_line "$WORK/agent.log" "registered as|^error:| ERROR agent:" 300 "${PIDS[-1]}") || fail "the agent did not register: $(tail -5 "$WORK/agent.log")"
echo "$registered" | grep -q "registered as" || fail "the agent failed: $(tail -5 "$WORK/agent.log")"
echo "    $registered"
echo "    credential file: $(in_root stat -c '%n mode %a owner %U' /var/lib/hwsearch-agent/credential.json)"

step "measuring the three artifacts on the emulated agent (figures must say EMULATED)"
PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/pi_rehearsal.py" measure --out "$WORK" --fleet "$URL" --token "$TOKEN" \
    --ca "$WORK/ca.pem" --device "$DEVICE"

step "running 200 images through each artifact with ARM onnxruntime (emulated)"
in_root /opt/hwsearch-agent/bin/python /rehearsal/pi_rehearsal.py infer --out /rehearsal

step "comparing ARM and x86 outputs"
PYTHONPATH="$REPO" "$PYTHON" "$REPO/scripts/pi_rehearsal.py" compare --out "$WORK"

step "done: the arm64 rehearsal passed in $(($(date +%s) - STARTED)) s"
