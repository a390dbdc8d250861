"""The orders model: orders, their lines and the checkout's steps, in plain Python."""
