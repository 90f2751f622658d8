"""HTTP handlers: thin, they parse the request, call the Kiji model, and answer or stream."""
