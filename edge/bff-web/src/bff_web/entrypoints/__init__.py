"""Pages, forms and assets: what the browser asks for."""
