"""Optional parts of the SDK built on its public API only (each module imports what it needs;
importing this package does nothing)."""
