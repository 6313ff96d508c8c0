"""Suite-wide settings; fixtures come from the `shared.testing.plugin` pytest plugin."""
