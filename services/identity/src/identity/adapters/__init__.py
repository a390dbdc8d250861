"""Identity's adapters: SQLAlchemy storage, argon2 password hashes, joserfc signatures."""
