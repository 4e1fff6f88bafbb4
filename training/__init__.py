"""Plain torch: datasets over shards, models, losses, metrics and ``train(cfg)`` entry points."""
