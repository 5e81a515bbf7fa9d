# alembic
