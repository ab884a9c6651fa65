"""Alert lifecycle: pure decisions over check results, and the outbox they write."""
