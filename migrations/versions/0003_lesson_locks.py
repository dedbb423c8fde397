"""lesson locks: lessons the instructor has closed for now, to pace the class

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lessonlock",
        sa.Column("workshop", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("lesson", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("locked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workshop", "lesson"),
    )


def downgrade() -> None:
    op.drop_table("lessonlock")
