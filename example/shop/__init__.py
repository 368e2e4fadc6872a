"""A tiny shop: customers and orders, and the background tasks that serve them."""
