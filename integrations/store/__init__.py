"""The local SQLModel store: tables, async engine, per-request sessions and Alembic migrations."""
