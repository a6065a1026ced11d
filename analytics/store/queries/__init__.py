"""SQL by area: plain functions taking the Store (or a Session) and plain parameters, bound parameters only."""
