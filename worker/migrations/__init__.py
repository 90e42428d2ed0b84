"""Alembic migrations for Gleaner's SQL schema (SQLite and PostgreSQL)."""
