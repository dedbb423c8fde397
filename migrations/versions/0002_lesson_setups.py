"""lesson setups: which lesson setup scripts ran in which attendee's sandbox

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lessonsetup",
        sa.Column("attendee_id", sa.Integer(), nullable=False),
        sa.Column("lesson", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sandbox", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=False),
        sa.Column("output", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("ran_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["attendee_id"], ["attendee.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("attendee_id", "lesson"),
    )


def downgrade() -> None:
    op.drop_table("lessonsetup")
