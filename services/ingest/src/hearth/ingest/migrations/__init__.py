"""Ingest's alembic migrations (env.py, versions/)."""
