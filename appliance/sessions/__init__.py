"""Sessions and their member lists."""
