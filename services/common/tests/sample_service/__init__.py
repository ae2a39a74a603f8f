"""A throwaway service package for the migration tests: one model, its alembic folder."""
