"""One adapter per outside system (AWS stores, KMS, the flag, Zoom, the directory)."""
