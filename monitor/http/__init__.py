"""The HTTP face: the Prometheus collector and app (`metrics`) and the API's bearer auth."""
