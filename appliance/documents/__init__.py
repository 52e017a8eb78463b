"""The document mirror: session files stored by content on the box, read by the entitled (issue 3).

blobs (content-addressed storage) · rules (names, types, limits: pure) · zipimport (safe ZIP reading) ·
policy (who may read what: the one place) · service (items, files, log, wipe) · httpfile (Range, ETag,
Content-Disposition: pure) · oparl (reader: pure) · oparl_import (fetching through appliance.outside, and
importing) · jobs (import jobs and the process that owns each).
"""


class DocumentError(ValueError):
    """A refusal with a German message meant for the person who caused it."""
