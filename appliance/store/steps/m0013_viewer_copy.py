"""The viewer's copy of a PDF (issue 16): `doc_files.view_sha256` names the blob the viewer reads – a linearized
("fast web view") copy made at import (appliance/documents/linearize.py), the original's own hash when it was
linearized already, NULL for other types, files imported before this step (`sitzungsbox documents prepare`) and
PDFs qpdf could not prepare: then the viewer reads the original. `sha256` stays the original's: downloads, the
ZIP and OParl's checksums are about those bytes. Nothing personal (a hash of a file's bytes)."""

VERSION = 13
SQL = """
        ALTER TABLE doc_files ADD COLUMN view_sha256 TEXT;
        """
