"""What the PDF check (appliance/documents/pdfcheck.py) found in a stored file: active content such as JavaScript,
launch actions or embedded files, as comma-separated names (pdfcheck.KINDS); '' for clean files and other types.
Such files are kept and marked for the clerk (issue 11). Files that a reader cannot open never get a row."""

VERSION = 9
SQL = """
        ALTER TABLE doc_files ADD COLUMN pdf_active TEXT NOT NULL DEFAULT '';
        """
