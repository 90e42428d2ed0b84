"""records in time order, and the duplicates index holding duplicates only

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

Written out as it is at this revision (no live code imported). The records browser and the API list
records newest first, 50 at a time; without an index on (created_at, id) every page sorted the
whole table. The index on duplicate_of becomes partial (duplicates only): SQLite, without
statistics, took the whole one for "duplicate_of IS NULL" and walked every canonical record in it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_records_created_at_id", "records", ["created_at", "id"])
    op.drop_index("ix_records_duplicate_of", table_name="records")
    only_duplicates = sa.text("duplicate_of IS NOT NULL")
    op.create_index("ix_records_duplicate_of", "records", ["duplicate_of"], sqlite_where=only_duplicates,
                    postgresql_where=only_duplicates)


def downgrade() -> None:
    op.drop_index("ix_records_duplicate_of", table_name="records")
    op.create_index("ix_records_duplicate_of", "records", ["duplicate_of"])
    op.drop_index("ix_records_created_at_id", table_name="records")
