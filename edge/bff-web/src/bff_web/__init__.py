"""The web storefront's backend (BFF): server-rendered pages, a session cookie, tokens kept here."""
