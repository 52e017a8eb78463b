"""Watching the box and its clients: pure parsers of daemon and kernel text, collectors around them."""
