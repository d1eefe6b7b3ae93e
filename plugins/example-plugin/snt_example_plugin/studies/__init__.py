"""Study spaces shipped by the example plugin package."""
