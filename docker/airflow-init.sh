#!/usr/bin/env bash
# One-shot init: migrate the metadata DB, then create the connections and pools the example DAG uses.
# Connection JSON comes from RINGCX_CONN_JSON and AWS_CONN_JSON (see docker-compose.yaml).
#
# It runs on every `docker compose up`, so it only creates what is missing: a connection or pool that
# exists (edited in the UI, or created by an earlier up) is left exactly as it is. To re-apply the JSON of
# docker-compose.yaml, delete the connection in the UI (Admin > Connections) and run `docker compose up`.
#
# Sourcing this file defines the functions without running main (tests/test_compose.py does that).
set -euo pipefail

ensure_connection() {  # id json
    # `connections get` exits 1 when the id is unknown. Neither its output (the password) nor that of
    # `connections add` (a table with the extra, where a JWT credential or token lives) reaches the log.
    if airflow connections get "$1" >/dev/null 2>&1; then
        echo "airflow-init: connection $1 exists, left unchanged"
    else
        airflow connections add "$1" --conn-json "$2" >/dev/null
        echo "airflow-init: connection $1 created"
    fi
}

ensure_pool() {  # name slots description
    if airflow pools get "$1" >/dev/null 2>&1; then
        echo "airflow-init: pool $1 exists, left unchanged"
    else
        airflow pools set "$1" "$2" "$3" >/dev/null
        echo "airflow-init: pool $1 created with $2 slots"
    fi
}

main() {
    airflow db migrate

    ensure_connection ringcx_default "${RINGCX_CONN_JSON:?set RINGCX_CONN_JSON}"
    ensure_connection aws_default "${AWS_CONN_JSON:?set AWS_CONN_JSON}"

    # Sizes follow the vendor budgets (airflow_provider_ringcx/example_dags/settings.py POOLS).
    ensure_pool ringcx_metadata 1 "RingCX interaction-metadata calls (budget 2/60 s and 9/15 min per sub-account)"
    ensure_pool ringcx_downloads 4 "RingCX recording downloads (budget 120/60 s per sub-account)"
    ensure_pool ringcx_history_metadata 1 "RingCX metadata calls of history and repairs (never hold the live slot)"
    ensure_pool ringcx_history_downloads 4 "RingCX downloads of history and repairs (paced as history)"

    echo "airflow-init: database migrated; connections ringcx_default and aws_default and pools present"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    main "$@"
fi
