"""One module per quickjh_spawner, chosen by name (quickjh.hubconfig.set_spawner): each has configure(c, settings)."""
