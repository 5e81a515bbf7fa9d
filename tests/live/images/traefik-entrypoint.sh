#!/bin/sh
# Stand-in for the traefik image's /entrypoint.sh (ENTRYPOINT, with CMD ["traefik"]): flags
# alone (`--configFile=...`) run Traefik with them, a Traefik subcommand (`healthcheck`,
# `version`) runs through Traefik, and anything else (`traefik ...`, a shell) runs as given.
set -e
if [ "${1#-}" != "$1" ]; then
  set -- traefik "$@"
fi
if [ "$1" != traefik ] && traefik "$1" --help >/dev/null 2>&1; then
  set -- traefik "$@"
fi
exec "$@"
