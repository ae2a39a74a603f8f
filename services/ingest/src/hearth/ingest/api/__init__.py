"""Ingest's HTTP routes.

None yet beyond the standard ``/healthz``, ``/readyz`` and ``/metrics``: the history API
(series, latest, export, import, rejects) lands here, planned in "Ingest: the history API
(series, latest, export, import, rejects) and capability-aware ingest".
"""
