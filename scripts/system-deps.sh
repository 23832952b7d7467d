#!/usr/bin/env bash
# System packages ocrcli needs: poppler-utils (pdftoppm/pdfinfo) for PDF input.
# Installs them with apt when possible; otherwise says what to do and carries on (PDF input then fails
# with a clear per-file error, and the PDF tests skip).
set -u
if command -v pdftoppm >/dev/null 2>&1 && command -v pdfinfo >/dev/null 2>&1; then
  exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=""; fi
  fi
  if [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; then
    echo "installing poppler-utils (PDF support)..." >&2
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    if DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq poppler-utils >/dev/null 2>&1; then
      exit 0
    fi
  fi
fi
echo "note: poppler-utils is not installed, so PDF input will not work." >&2
echo "      install it with: sudo apt-get install poppler-utils  (macOS: brew install poppler)" >&2
exit 0
