#!/usr/bin/env bash
# One-shot init: migrate the metadata DB, then create the connections and pools the example DAG uses.
# Connection JSON comes from RINGCX_CONN_JSON and AWS_CONN_JSON (see docker-compose.yaml).
set -euo pipefail

airflow db migrate

upsert_connection() {  # id json
    airflow connections delete "$1" >/dev/null 2>&1 || true
    airflow connections add "$1" --conn-json "$2"
}
upsert_connection ringcx_default "${RINGCX_CONN_JSON:?set RINGCX_CONN_JSON}"
upsert_connection aws_default "${AWS_CONN_JSON:?set AWS_CONN_JSON}"

# Sizes follow the vendor budgets (airflow_provider_ringcx/dagconfig.py POOLS).
airflow pools set ringcx_metadata 1 "RingCX interaction-metadata calls (budget 2/60 s and 9/15 min per sub-account)"
airflow pools set ringcx_downloads 4 "RingCX recording downloads (budget 120/60 s per sub-account)"

echo "airflow-init: database migrated, connections ringcx_default and aws_default, pools ready"
