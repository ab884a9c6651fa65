"""Sources: the I/O that turns delivery logs and Graph API answers into observations."""
