"""scripts/drill: the exactly-once drill on Airflow's distributed setup on loopback (docs/drill.md)."""
