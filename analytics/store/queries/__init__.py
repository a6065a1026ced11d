"""SQL by area: plain functions taking the Store plus plain parameters (bound parameters only)."""
