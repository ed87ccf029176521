"""HTTP facades. ``app`` assembles the routers; each vendor API is its own router module that
translates its wire format onto the core services."""
