"""ocrcli: offline handwriting OCR for folders of scanned or photographed pages."""

__version__ = "0.1.0"
