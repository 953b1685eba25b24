"""pytest plugin entry point (pytest11). Inert until the receiver-role suite lands."""
