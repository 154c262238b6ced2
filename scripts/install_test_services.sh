#!/usr/bin/env bash
# System packages the test suite uses: PostgreSQL server binaries and Chromium for the dashboard's
# browser test. Idempotent; needs root (apt-get). Tests that need them skip with a reason only when
# they cannot be installed.
set -uo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver fonts-dejavu-core)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${need[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") \
      >/tmp/hwsearch-apt.log 2>&1 || echo "warning: apt-get install failed (see /tmp/hwsearch-apt.log); dependent tests will skip"
  else
    echo "warning: cannot install ${need[*]} (not root or no apt-get); dependent tests will skip"
  fi
fi
exit 0
