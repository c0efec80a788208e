"""Operations: health checks, Prometheus metrics, alerts, backups, schema checks, logs.

docs/operations.md is the operator's side of this package.
"""
