//! Messaging between engine nodes: publish/subscribe, queue groups and request/reply over memory, NATS or PostgreSQL.
