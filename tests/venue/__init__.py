"""The virtual venue: a test harness, never part of the product (not in the package nor in the card image).

- net: the venue's network namespaces, leases, HTTP from inside a client (`Venue`).
- box: the whole appliance inside a venue (`start_appliance`) and `running_box`, the one setup shared by
  the venue tests (the `venue_factory` fixture in tests/conftest.py), bench/ and `make venue`.
- wired_lab: a real hostapd (driver=wired) on a veth pair, for tests/test_radio_real_hostapd.py and
  recording appliance/radio/recordings/wired-8021x.txt.
- `python -m tests.venue` (`make venue`): the venue by hand, until Ctrl-C.
"""

from tests.venue.box import Box, chown_tree, running_box, start_appliance, venue_config
from tests.venue.net import SAFE_PATH, HttpResponse, Lease, Venue, VenueError, client_mac

__all__ = ["SAFE_PATH", "Box", "HttpResponse", "Lease", "Venue", "VenueError", "chown_tree", "client_mac",
           "running_box", "start_appliance", "venue_config"]
