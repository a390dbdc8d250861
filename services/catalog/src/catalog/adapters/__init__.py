"""Storage for the catalog: SQLAlchemy tables, repositories, unit of work and demo data."""
