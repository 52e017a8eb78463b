"""The web layer: thin Flask views over captive/, sessions/ and store/."""
