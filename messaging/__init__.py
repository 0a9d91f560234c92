"""Moving events between the database and Kafka: the transactional outbox and its relay,
idempotent consumers with dead-lettering, replay and read-model rebuilds, topic readers,
and the AsyncAPI document generated from the contract in ``events``."""
