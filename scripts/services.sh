#!/usr/bin/env bash
# Start the PostgreSQL and Redis the integration tests use, when they are not running.
# Under CI=true a service that cannot be started is an error: the suite must not pass by skipping.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_postgres() {
  command -v pg_ctlcluster >/dev/null || return 1
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
}

start_redis() {
  command -v redis-server >/dev/null || return 1
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

missing=0
for service in postgres:5432 redis:6379; do
  name=${service%%:*}; port=${service##*:}
  if ! up "$port"; then
    echo "services: $name is not running on 127.0.0.1:$port; starting it"
    "start_$name" || true
    for _ in $(seq 1 20); do up "$port" && break; sleep 0.5; done
  fi
  if up "$port"; then
    echo "services: $name is up on 127.0.0.1:$port"
  else
    echo "services: $name is NOT reachable on 127.0.0.1:$port" >&2
    missing=1
  fi
done

if [ "$missing" = 1 ] && [ "${CI:-}" = "true" ]; then
  echo "services: CI=true and a service is missing: failing rather than skipping its tests" >&2
  exit 1
fi
exit 0
