#!/bin/sh
# The image's entrypoint: the UI binds 0.0.0.0 in the container, so it needs a password. WORKBENCH_AUTH=user:password
# chooses it; without it, one is made on first start and kept in the data volume, readable by this user only
# ($WORKBENCH_HOME/ui-auth: `docker exec CONTAINER cat /data/ui-auth`). Auth is never switched off here: to serve
# without a password, pass --insecure-no-auth to app.py yourself. Then runs the command (`python app.py ...`).
set -eu
if [ -z "${WORKBENCH_AUTH:-}" ]; then
    file="${WORKBENCH_HOME:-/data}/ui-auth"
    if [ ! -s "$file" ]; then
        umask 077
        password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')
        printf 'workbench:%s\n' "$password" > "$file.tmp"
        mv "$file.tmp" "$file"
    fi
    WORKBENCH_AUTH=$(cat "$file")
    export WORKBENCH_AUTH
    echo "workbench: log in as 'workbench' with the password in $file (docker exec CONTAINER cat $file)," \
        "or set WORKBENCH_AUTH=user:password" >&2
fi
exec "$@"
