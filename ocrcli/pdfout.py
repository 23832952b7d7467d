"""Searchable PDF: each page image with an invisible text layer over every recognised line.

The text is drawn in PDF text render mode 3 (neither filled nor stroked), in Helvetica, sized to the
line's box height and stretched horizontally to its width, so that selecting or searching in a PDF
viewer highlights the handwriting itself. Pages keep the pixel size of the decoded input at
``PDF_DPI`` (the default rasterisation resolution of PDF inputs), so a PDF input keeps its size.
"""

from __future__ import annotations

import io

from ocrcli import __version__
from ocrcli.documents import DocumentResult

PDF_DPI = 200


def _encodable(text: str) -> str:
    """The standard fonts use WinAnsi encoding: other characters become '?'."""
    return "".join(ch if ch.encode("cp1252", "ignore") else "?" for ch in text)


def to_pdf(doc: DocumentResult, run) -> bytes:
    """A PDF with one page per input page; needs ``PageResult.image`` (kept when pdf output is asked for)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pageCompression=1, invariant=1)
    pdf.setCreator(f"ocrcli {__version__} ({run.model_id})")
    pdf.setTitle(doc.path)
    scale = 72.0 / PDF_DPI  # points per pixel
    for page in doc.pages:
        if page.image is None:
            raise ValueError(f"{doc.path}: page {page.number} has no image for PDF output")
        w_pt, h_pt = page.width * scale, page.height * scale
        pdf.setPageSize((w_pt, h_pt))
        pdf.drawImage(ImageReader(io.BytesIO(page.image)), 0, 0, width=w_pt, height=h_pt)
        for line in page.lines:
            text = _encodable(line.text)
            box = line.bbox
            size = max(1.0, box.height * scale * 0.8)
            natural = stringWidth(text, "Helvetica", size)
            if not text.strip() or natural <= 0:
                continue
            t = pdf.beginText()
            t.setTextRenderMode(3)  # invisible
            t.setFont("Helvetica", size)
            t.setHorizScale(100.0 * box.width * scale / natural)
            # Baseline a fifth of the box height above its bottom (descenders below it).
            t.setTextOrigin(box.x0 * scale, h_pt - (box.y1 - 0.2 * box.height) * scale)
            t.textOut(text)
            pdf.drawText(t)
        pdf.showPage()
    pdf.save()
    return buf.getvalue()
