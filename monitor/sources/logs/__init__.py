"""Delivery logs: paths and files -> lines -> ``Delivery`` observations, once or tailed."""
