"""The HTTP API: operators submit events; Kafka acknowledges before we answer."""
