"""Hearth's ingest service: telemetry from MQTT into PostgreSQL, acknowledged only after commit."""
