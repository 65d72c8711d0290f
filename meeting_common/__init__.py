"""Small pieces both tiers share: settings parsing and structured logging."""
