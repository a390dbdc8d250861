"""Storage for the inventory: SQLAlchemy tables, repositories, unit of work and demo stock."""
